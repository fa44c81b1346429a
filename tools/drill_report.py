"""The drill's report: every check (expected, found, pass/fail), the timeline with the duration
of each phase, and the counts; as a printable HTML page and as a PDF (fpdf2)."""

from __future__ import annotations

import html
import json
from pathlib import Path

from adapters.i18n import catalog

# The drill's sentences (checks, phases, counts) in Dutch and French, keyed by their English text:
# the gettext domain `drill` (adapters/locale/*/LC_MESSAGES/drill.po; tests/test_drill_words.py fails
# when one lacks a translation).


def sentences(lang: str) -> dict[str, str]:
    return {} if lang == "en" else catalog(lang, "drill")


def say(lang: str, text: str, params: dict | None = None) -> str:
    """One of the drill's sentences in `lang`, its {placeholders} filled."""
    return sentences(lang).get(text, text).format(**(params or {}))


def localize(r: dict, lang: str) -> dict:
    """The summary with every sentence in `lang` (the stored summary keeps codes and values)."""
    return {**r,
            "checks": [{**c, "phase": say(lang, c["phase"]), "check": say(lang, c.get("name", c["check"]),
                                                                       c.get("params"))} for c in r["checks"]],
            "timeline": [{**p, "phase": say(lang, p["phase"])} for p in r["timeline"]],
            "counts": {say(lang, k): v for k, v in r["counts"].items()},
            "skipped": [say(lang, s["text"], s["params"]) for s in r["skipped"]]}


def shown(value) -> str:
    return value if isinstance(value, str) else json.dumps(value, default=str)


def words(r: dict, lang: str):
    """The report's words in `lang` (the pages' catalogs), and its verdict and about lines."""
    from adapters.http.i18n import translator

    t = translator(lang)
    failed = sum(1 for c in r["checks"] if not c["ok"])
    verdict = t("drill_verdict", verdict="PASS" if r["passed"] else "FAIL", passed=len(r["checks"]) - failed,
                total=len(r["checks"]))
    about = t("drill_about", seed=r["seed"], courses=r["courses"], home="AZ-HOME", partners=", ".join(r["partners"]),
              offline=r["offline_partner"], clock=r["clock"], seconds=r["seconds"])
    return t, verdict, about


def render_html(r: dict, lang: str = "en") -> str:
    e = html.escape
    r = localize(r, lang)
    t, verdict, about = words(r, lang)
    rows = "\n".join(
        f"<tr class={'ok' if c['ok'] else 'fail'}><td>{e(c['phase'])}</td><td>{e(c['check'])}</td>"
        f"<td><code>{e(shown(c['expected']))}</code></td><td><code>{e(shown(c['found']))}</code></td>"
        f"<td>{e(t('drill_pass') if c['ok'] else t('drill_fail'))}</td></tr>" for c in r["checks"])
    phases = "\n".join(f"<tr><td>{e(p['phase'])}</td><td>{e(p['started'])}</td><td>{p['seconds']:.1f} s</td></tr>"
                       for p in r["timeline"])
    counts = "\n".join(f"<tr><td>{e(k)}</td><td>{v}</td></tr>" for k, v in counted(r, t))
    skipped = "".join(f"<li>{e(s)}</li>" for s in r["skipped"])
    return f"""<!doctype html>
<html lang="{lang}"><head><meta charset="utf-8"><title>{e(t('drill_title'))}, seed {r['seed']}: {e(verdict)}</title>
<style>
body {{ font-family: sans-serif; margin: 2em; }} table {{ border-collapse: collapse; margin-bottom: 1.5em; }}
td, th {{ border: 1px solid #999; padding: .25em .5em; vertical-align: top; text-align: left; }}
tr.fail td {{ background: #fdd; font-weight: bold; }} code {{ font-size: .8em; word-break: break-all; }}
.verdict {{ font-size: 1.5em; font-weight: bold; }}
</style></head><body>
<h1>{e(t('drill_title'))}</h1>
<p class="verdict">{e(verdict)}</p>
<p>{e(about)}</p>
{f'<ul>{skipped}</ul>' if skipped else ''}
<h2>{e(t('drill_checks'))}</h2>
<table><tr>{''.join(f'<th>{e(t(k))}</th>' for k in ('drill_phase', 'drill_check', 'drill_expected', 'drill_found', 'drill_result'))}</tr>
{rows}
</table>
<h2>{e(t('drill_timeline'))}</h2>
<table><tr><th>{e(t('drill_phase'))}</th><th>{e(t('drill_started'))}</th><th>{e(t('drill_duration'))}</th></tr>
{phases}
</table>
<h2>{e(t('drill_counts'))}</h2>
<table><tr><th>{e(t('drill_what'))}</th><th>{e(t('drill_count'))}</th></tr>
{counts}
</table>
<p>{e(t('drill_signed'))}</p>
</body></html>
"""


def counted(r: dict, t) -> list[tuple[str, object]]:
    return [*r["counts"].items(), (t("drill_events"), r.get("log_events"))]


def latin1(text: str, limit: int = 400) -> str:
    """fpdf2's core fonts are Latin-1 (Dutch and French included); other characters are replaced."""
    text = text if len(text) <= limit else text[: limit - 3] + "..."
    return text.encode("latin-1", "replace").decode("latin-1")


def render_pdf(r: dict, lang: str = "en") -> bytes:
    from fpdf import FPDF

    t, verdict, about = words(r, lang)
    r = localize(r, lang)
    pdf = FPDF(orientation="L", format="A4")
    pdf.set_auto_page_break(True, margin=12)
    pdf.add_page()
    pdf.set_font("Helvetica", "B", 16)
    pdf.cell(0, 10, latin1(f"{t('drill_title')}, seed {r['seed']}: {verdict}"), new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", "", 9)
    pdf.multi_cell(0, 5, latin1(about + " " + " ".join(r["skipped"])), new_x="LMARGIN", new_y="NEXT")

    def table(title: str, header: tuple, rows: list[tuple], widths: tuple) -> None:
        pdf.set_font("Helvetica", "B", 12)
        pdf.cell(0, 9, latin1(t(title)), new_x="LMARGIN", new_y="NEXT")
        pdf.set_font("Helvetica", "", 7)
        with pdf.table(col_widths=widths, text_align="LEFT", line_height=3.5) as table:
            table.row(tuple(latin1(t(h)) for h in header))
            for row in rows:
                table.row(tuple(latin1(str(v)) for v in row))

    table("drill_checks", ("drill_phase", "drill_check", "drill_expected", "drill_found", "drill_result"),
          [(c["phase"], c["check"], shown(c["expected"]), shown(c["found"]), t("drill_pass") if c["ok"] else t("drill_fail"))
           for c in r["checks"]], (18, 70, 80, 80, 14))
    table("drill_timeline", ("drill_phase", "drill_started", "drill_duration"),
          [(p["phase"], p["started"], f"{p['seconds']:.1f} s") for p in r["timeline"]], (100, 60, 30))
    table("drill_counts", ("drill_what", "drill_count"), counted(r, t), (120, 30))
    pdf.ln(8)
    pdf.set_font("Helvetica", "", 10)
    pdf.cell(0, 8, latin1(t("drill_signed")), new_x="LMARGIN", new_y="NEXT")
    return bytes(pdf.output())


def write_reports(r: dict, out: Path, lang: str = "en") -> tuple[Path, Path]:
    out.mkdir(parents=True, exist_ok=True)
    html_path, pdf_path = out / "report.html", out / "report.pdf"
    html_path.write_text(render_html(r, lang), encoding="utf-8")
    pdf_path.write_bytes(render_pdf(r, lang))
    return html_path, pdf_path
