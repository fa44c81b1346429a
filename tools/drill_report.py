"""The drill's report: every check (expected, found, pass/fail), the timeline with the duration
of each phase, and the counts; as a printable HTML page and as a PDF (fpdf2)."""

from __future__ import annotations

import html
import json
from pathlib import Path


def shown(value) -> str:
    return value if isinstance(value, str) else json.dumps(value, default=str)


def render_html(r: dict) -> str:
    e = html.escape
    verdict = "PASS" if r["passed"] else "FAIL"
    failed = sum(1 for c in r["checks"] if not c["ok"])
    rows = "\n".join(
        f"<tr class={'ok' if c['ok'] else 'fail'}><td>{e(c['phase'])}</td><td>{e(c['check'])}</td>"
        f"<td><code>{e(shown(c['expected']))}</code></td><td><code>{e(shown(c['found']))}</code></td>"
        f"<td>{'pass' if c['ok'] else 'FAIL'}</td></tr>" for c in r["checks"])
    phases = "\n".join(f"<tr><td>{e(t['phase'])}</td><td>{e(t['started'])}</td><td>{t['seconds']:.1f} s</td></tr>"
                       for t in r["timeline"])
    counts = "\n".join(f"<tr><td>{e(k)}</td><td>{v}</td></tr>" for k, v in counted(r))
    skipped = "".join(f"<li>{e(s)}</li>" for s in r["skipped"])
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Outage drill, seed {r['seed']}: {verdict}</title>
<style>
body {{ font-family: sans-serif; margin: 2em; }} table {{ border-collapse: collapse; margin-bottom: 1.5em; }}
td, th {{ border: 1px solid #999; padding: .25em .5em; vertical-align: top; text-align: left; }}
tr.fail td {{ background: #fdd; font-weight: bold; }} code {{ font-size: .8em; word-break: break-all; }}
.verdict {{ font-size: 1.5em; font-weight: bold; }}
</style></head><body>
<h1>Outage drill</h1>
<p class="verdict">{verdict}: {len(r['checks']) - failed} of {len(r['checks'])} checks passed</p>
<p>Seed {r['seed']}, {r['courses']} courses, home AZ-HOME, partners {e(', '.join(r['partners']))}
({e(r['offline_partner'])} offline), clock {e(r['clock'])}, {r['seconds']} s.</p>
{f'<ul>{skipped}</ul>' if skipped else ''}
<h2>Checks</h2>
<table><tr><th>phase</th><th>check</th><th>expected</th><th>found</th><th>result</th></tr>
{rows}
</table>
<h2>Timeline</h2>
<table><tr><th>phase</th><th>started (ledger clock)</th><th>duration</th></tr>
{phases}
</table>
<h2>Counts</h2>
<table><tr><th>what</th><th>count</th></tr>
{counts}
</table>
<p>Signed: ______________________ (physicist) &nbsp; date: __________</p>
</body></html>
"""


def counted(r: dict) -> list[tuple[str, object]]:
    return [*r["counts"].items(), ("events in the log (verified)", r.get("log_events"))]


def latin1(text: str, limit: int = 400) -> str:
    """fpdf2's core fonts are Latin-1; the drill's texts are ASCII but values may not be."""
    text = text if len(text) <= limit else text[: limit - 3] + "..."
    return text.encode("latin-1", "replace").decode("latin-1")


def render_pdf(r: dict) -> bytes:
    from fpdf import FPDF

    pdf = FPDF(orientation="L", format="A4")
    pdf.set_auto_page_break(True, margin=12)
    pdf.add_page()
    pdf.set_font("Helvetica", "B", 16)
    failed = sum(1 for c in r["checks"] if not c["ok"])
    verdict = "PASS" if r["passed"] else "FAIL"
    pdf.cell(0, 10, latin1(f"Outage drill, seed {r['seed']}: {verdict} ({len(r['checks']) - failed} of "
                           f"{len(r['checks'])} checks passed)"), new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", "", 9)
    pdf.multi_cell(0, 5, latin1(f"{r['courses']} courses, home AZ-HOME, partners {', '.join(r['partners'])} "
                                f"({r['offline_partner']} offline), clock {r['clock']}, {r['seconds']} s. "
                                + " ".join(r["skipped"])), new_x="LMARGIN", new_y="NEXT")

    def table(title: str, header: tuple, rows: list[tuple], widths: tuple) -> None:
        pdf.set_font("Helvetica", "B", 12)
        pdf.cell(0, 9, title, new_x="LMARGIN", new_y="NEXT")
        pdf.set_font("Helvetica", "", 7)
        with pdf.table(col_widths=widths, text_align="LEFT", line_height=3.5) as t:
            t.row(header)
            for row in rows:
                t.row(tuple(latin1(str(v)) for v in row))

    table("Checks", ("phase", "check", "expected", "found", "result"),
          [(c["phase"], c["check"], shown(c["expected"]), shown(c["found"]), "pass" if c["ok"] else "FAIL")
           for c in r["checks"]], (18, 70, 80, 80, 12))
    table("Timeline", ("phase", "started (ledger clock)", "duration"),
          [(t["phase"], t["started"], f"{t['seconds']:.1f} s") for t in r["timeline"]], (100, 60, 30))
    table("Counts", ("what", "count"), counted(r), (120, 30))
    return bytes(pdf.output())


def write_reports(r: dict, out: Path) -> tuple[Path, Path]:
    out.mkdir(parents=True, exist_ok=True)
    html_path, pdf_path = out / "report.html", out / "report.pdf"
    html_path.write_text(render_html(r), encoding="utf-8")
    pdf_path.write_bytes(render_pdf(r))
    return html_path, pdf_path
