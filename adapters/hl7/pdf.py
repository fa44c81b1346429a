"""The treatment summary document a person reads in the HIS: one PDF per completed course.

fpdf2 writes it (a maintained, pure-Python PDF library with Unicode fonts and tables);
the DejaVu Sans font (Debian `fonts-dejavu-core`) carries names like Müller-Lefèvre or
Zoë. The document is deterministic: its dates come from the events, never from the clock.

Incidents are another part of the ledger; `incidents` is the hook for them: a list of
dicts with `at`, `centre`, `summary` (and optionally `severity`), shown when given.
"""

from __future__ import annotations

import os
from datetime import datetime
from decimal import Decimal
from pathlib import Path

from fpdf import FPDF
from fpdf.enums import XPos, YPos

FONT_PATHS = [
    Path(os.environ.get("FRACTION_LEDGER_PDF_FONT", "/nonexistent")),
    Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"),
]


def short(value: str | None) -> str:
    """An ISO time as a person reads it: 2026-11-02 08:30 (+01:00)."""
    if not value:
        return "-"
    t = datetime.fromisoformat(value) if isinstance(value, str) else value
    return t.strftime("%Y-%m-%d %H:%M") + (f" ({t.strftime('%z')[:3]}:{t.strftime('%z')[3:]})" if t.tzinfo else "")


def delivered_mu(fraction: dict) -> Decimal:
    return sum((Decimal(str(b["delivered_mu"])) for b in fraction["beams"]), Decimal(0))


class SummaryPdf(FPDF):
    def __init__(self, title: str):
        super().__init__(orientation="P", unit="mm", format="A4")
        self.doc_title = title
        font = next((p for p in FONT_PATHS if p.is_file()), None)
        if font is not None:
            self.add_font("Body", "", str(font))
            bold = font.with_name(font.stem + "-Bold.ttf")
            self.add_font("Body", "B", str(bold if bold.is_file() else font))
            self.family = "Body"
        else:  # no Unicode font: the core font, with characters outside Latin-1 replaced
            self.family = "Helvetica"
        self.set_auto_page_break(True, margin=15)

    def text_of(self, value: object) -> str:
        text = str(value)
        return text if self.family == "Body" else text.encode("latin-1", "replace").decode("latin-1")

    def footer(self) -> None:
        self.set_y(-12)
        self.set_font(self.family, "", 8)
        self.cell(0, 5, self.text_of(f"{self.doc_title} - page {self.page_no()}/{{nb}}"), align="C")

    def heading(self, text: str) -> None:
        self.ln(3)
        self.set_font(self.family, "B", 12)
        self.cell(0, 7, self.text_of(text), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        self.set_font(self.family, "", 9)

    def line_of(self, label: str, value: object) -> None:
        self.set_font(self.family, "B", 9)
        self.cell(42, 5, self.text_of(label))
        self.set_font(self.family, "", 9)
        self.multi_cell(0, 5, self.text_of(value), new_x=XPos.LMARGIN, new_y=YPos.NEXT)

    def rows(self, header: list[str], rows: list[list[str]], widths: tuple[int, ...]) -> None:
        self.set_font(self.family, "", 8)
        with self.table(col_widths=widths, text_align="LEFT", line_height=4.5, first_row_as_headings=True) as table:
            for values in [header, *rows]:
                row = table.row()
                for v in values:
                    row.cell(self.text_of(v))
        self.set_font(self.family, "", 9)


def amendment_text(a: dict) -> str:
    if a["kind"] == "twice_daily":
        return f"two fractions on {a['day']}"
    if a["kind"] == "treatment_day":
        return f"one fraction on {a['day']}"
    return f"group {a['group']}: {a.get('before')} -> {a.get('after')} fractions"


def treatment_summary(course: dict, completed_at: datetime, incidents: list[dict] | None = None) -> bytes:
    """The PDF of a course as the read model gives it (with its fractions)."""
    patient = course["patient_name"].split("=")[0].replace("^", " ").strip()
    pdf = SummaryPdf(f"Radiotherapy treatment summary - {course['patient_id']}")
    pdf.set_creation_date(completed_at)
    pdf.set_title(f"Radiotherapy treatment summary {course['patient_id']}")
    pdf.set_author("fraction-ledger")
    pdf.set_creator("fraction-ledger")
    pdf.set_producer("fraction-ledger")
    pdf.alias_nb_pages()
    pdf.add_page()
    pdf.set_font(pdf.family, "B", 15)
    pdf.cell(0, 9, pdf.text_of("Radiotherapy treatment summary"), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.set_font(pdf.family, "", 9)

    pdf.heading("Patient")
    pdf.line_of("Name", patient)
    pdf.line_of("Patient id", f"{course['patient_id']} (home centre {course['home_centre']})")
    pdf.line_of("Birth date / sex", f"{course.get('birth_date') or '-'} / {course.get('sex') or '-'}")

    active = [f for f in course["fractions"] if not f["voided"]]
    pdf.heading("Course")
    pdf.line_of("Course id", course["id"])
    original = sum(g["fractions_planned"] for g in course["plans"][0]["fraction_groups"])
    amended = f" (amended; originally {original})" if original != course["fractions_planned"] else ""
    pdf.line_of("Prescription", f"{course['plan_label']} - {course['fractions_planned']} fractions planned{amended}, "
                                f"{course['fractions_delivered']} delivered")
    pdf.line_of("Status", f"{course['status']} on {short(completed_at)}"
                          + (f" ({course['status_reason']})" if course.get("status_reason") else ""))
    centres = sorted({f["centre"] for f in active})
    pdf.line_of("Delivered at", ", ".join(f"{c}: {sum(1 for f in active if f['centre'] == c)} sessions" for c in centres) or "-")

    pdf.heading("Plans used")
    plan_rows = []
    for i, plan in enumerate(course["plans"]):
        groups = "; ".join(
            f"group {g['number']}: {g['fractions_planned']} fx, "
            + ", ".join(f"beam {b['number']} {b.get('name') or ''} {b['meterset']} MU".replace("  ", " ") for b in g.get("beams", []))
            for g in plan["fraction_groups"])
        used = sum(1 for f in active if f["plan_uid"] == plan["uid"])
        plan_rows.append([plan["label"], "original" if i == 0 else "fallback", plan.get("centre") or "-",
                          plan.get("machine") or "-", str(used), groups, plan["uid"]])
    pdf.rows(["Plan", "Kind", "Centre", "Machine", "Sessions", "Fraction groups and beams", "UID"], plan_rows,
             (24, 14, 18, 21, 15, 57, 41))

    if course.get("amendments"):  # issue 17: the original and every amendment, with who and why
        pdf.heading("Prescription amendments")
        pdf.rows(["Change", "Reason", "Proposed", "Countersigned"],
                 [[amendment_text(a), a["reason"], f"{a['by']} {short(a['at'])}",
                   f"{a['countersigned_by']} {short(a['countersigned_at'])}" if a.get("countersigned_by")
                   else "not countersigned: not in force"] for a in course["amendments"]],
                 (52, 62, 38, 38))

    pdf.heading("Fractions")
    rows = []
    for f in course["fractions"]:
        state = f"VOID: {f['void_reason']} ({f['voided_by']})" if f["voided"] else (
            f"verified by {f['verified_by']} {short(f['verified_at'])}" if f["verified_by"] else "NOT VERIFIED")
        rows.append([f"{f['group']}/{f['number']}", short(f["delivered_at"]), f["centre"], f["machine"],
                     format(delivered_mu(f), "f"), f["delivery_type"].lower(), f["operator"], state])
    pdf.rows(["Gr/Fx", "Delivered", "Centre", "Machine", "MU", "Type", "Operator", "Verification"], rows,
             (12, 30, 22, 22, 14, 20, 22, 48))

    pdf.heading("Incidents")
    if incidents:
        pdf.rows(["When", "Centre", "Severity", "Summary"],
                 [[short(i.get("at")), i.get("centre", "-"), str(i.get("severity") or "-"), i.get("summary", "")]
                  for i in incidents], (30, 25, 20, 115))
    else:
        pdf.line_of("", "No incident recorded for this course.")
    return bytes(pdf.output())
