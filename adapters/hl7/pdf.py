"""The treatment summary document a person reads in the HIS: one PDF per completed course.

fpdf2 writes it (a maintained, pure-Python PDF library with Unicode fonts and tables);
the DejaVu Sans font (Debian `fonts-dejavu-core`) carries names like Müller-Lefèvre or
Zoë. The document is deterministic: its dates come from the events, never from the clock.

Its words are in the reader's language (`lang`: the CLI's, or the page's; domain `reports`
of adapters/locale); English keeps the ISO times it always had. Incidents are another part of the ledger; `incidents` is the hook for them: a list of
dicts with `at`, `centre`, `summary` (and optionally `severity`), shown when given.
"""

from __future__ import annotations

import os
from datetime import datetime
from decimal import Decimal
from pathlib import Path

from fpdf import FPDF
from fpdf.enums import XPos, YPos

from adapters.i18n import Words, words

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
    def __init__(self, title: str, w: Words | None = None):
        self.reader = w or words("en")
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
        self.cell(0, 5, self.text_of(self.reader.report("pdf_footer", title=self.doc_title, page=self.page_no(), pages="{nb}")),
                  align="C")

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


def amendment_text(a: dict, w: Words | None = None) -> str:
    """An amendment of the prescription as its reader says it."""
    w = w or words("en")
    day = a.get("day")
    day = day if w.lang == "en" or not day else w.day(day)
    if a["kind"] == "twice_daily":
        return w.report("pdf_amend_twice_daily", day=day)
    if a["kind"] == "treatment_day":
        return w.report("pdf_amend_treatment_day", day=day)
    return w.report("pdf_amend_group", group=a["group"], before=a.get("before"), after=a.get("after"))


def treatment_summary(course: dict, completed_at: datetime, incidents: list[dict] | None = None,
                      lang: str = "en") -> bytes:
    """The PDF of a course as the read model gives it (with its fractions), in `lang`."""
    w = words(lang)
    r = w.report

    def when(value: str | datetime | None) -> str:
        return short(value) if w.lang == "en" else w.when(value)

    def num(value: object) -> str:
        return str(value) if w.lang == "en" else w.number(value)

    patient = course["patient_name"].split("=")[0].replace("^", " ").strip()
    title = r("pdf_title")
    pdf = SummaryPdf(r("pdf_doc_title", title=title, patient_id=course["patient_id"]), w)
    pdf.set_creation_date(completed_at)
    pdf.set_title(f"{title} {course['patient_id']}")
    pdf.set_author("fraction-ledger")
    pdf.set_creator("fraction-ledger")
    pdf.set_producer("fraction-ledger")
    pdf.alias_nb_pages()
    pdf.add_page()
    pdf.set_font(pdf.family, "B", 15)
    pdf.cell(0, 9, pdf.text_of(title), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.set_font(pdf.family, "", 9)

    pdf.heading(r("pdf_patient"))
    pdf.line_of(r("pdf_name"), patient)
    pdf.line_of(r("pdf_patient_id"), r("pdf_patient_id_home", patient_id=course["patient_id"], home=course["home_centre"]))
    birth = course.get("birth_date")
    pdf.line_of(r("pdf_birth_sex"), f"{(birth if w.lang == 'en' else w.day(birth)) if birth else '-'} / {course.get('sex') or '-'}")

    active = [f for f in course["fractions"] if not f["voided"]]
    pdf.heading(r("pdf_course"))
    pdf.line_of(r("pdf_course_id"), course["id"])
    original = sum(g["fractions_planned"] for g in course["plans"][0]["fraction_groups"])
    amended = r("pdf_amended", original=num(original)) if original != course["fractions_planned"] else ""
    pdf.line_of(r("pdf_prescription"), r("pdf_prescription_text", plan_label=course["plan_label"],
                                         planned=num(course["fractions_planned"]), amended=amended,
                                         delivered=num(course["fractions_delivered"])))
    status = r(f"pdf_status_{course['status']}") if course["status"] in ("active", "suspended", "completed") else course["status"]
    pdf.line_of(r("pdf_status"), r("pdf_status_on", status=status, at=when(completed_at))
                + (f" ({course['status_reason']})" if course.get("status_reason") else ""))
    centres = sorted({f["centre"] for f in active})
    pdf.line_of(r("pdf_delivered_at"), ", ".join(
        r("pdf_centre_sessions", centre=c, sessions=num(sum(1 for f in active if f["centre"] == c))) for c in centres) or "-")

    pdf.heading(r("pdf_plans_used"))
    plan_rows = []
    for i, plan in enumerate(course["plans"]):
        groups = "; ".join(
            r("pdf_group", number=g["number"], fractions=num(g["fractions_planned"]))
            + ", ".join(r("pdf_beam", number=b["number"], name=b.get("name") or "", mu=num(b["meterset"])).replace("  ", " ")
                        for b in g.get("beams", []))
            for g in plan["fraction_groups"])
        used = sum(1 for f in active if f["plan_uid"] == plan["uid"])
        plan_rows.append([plan["label"], r("pdf_original") if i == 0 else r("pdf_fallback"), plan.get("centre") or "-",
                          plan.get("machine") or "-", num(used), groups, plan["uid"]])
    pdf.rows([r("pdf_plan"), r("pdf_kind"), r("pdf_centre"), r("pdf_machine"), r("pdf_sessions"),
              r("pdf_groups_and_beams"), "UID"], plan_rows, (24, 14, 18, 21, 15, 57, 41))

    if course.get("amendments"):  # issue 17: the original and every amendment, with who and why
        pdf.heading(r("pdf_amendments"))
        pdf.rows([r("pdf_change"), r("pdf_reason"), r("pdf_proposed"), r("pdf_countersigned")],
                 [[amendment_text(a, w), a["reason"], f"{a['by']} {when(a['at'])}",
                   f"{a['countersigned_by']} {when(a['countersigned_at'])}" if a.get("countersigned_by")
                   else r("pdf_not_countersigned")] for a in course["amendments"]],
                 (52, 62, 38, 38))

    pdf.heading(r("pdf_fractions"))
    rows = []
    for f in course["fractions"]:
        state = r("pdf_void", reason=f["void_reason"], by=f["voided_by"]) if f["voided"] else (
            r("pdf_verified_by", by=f["verified_by"], at=when(f["verified_at"])) if f["verified_by"] else r("pdf_not_verified"))
        rows.append([f"{f['group']}/{f['number']}", when(f["delivered_at"]), f["centre"], f["machine"],
                     num(format(delivered_mu(f), "f")), f["delivery_type"].lower(), f["operator"], state])
    pdf.rows([r("pdf_gr_fx"), r("pdf_delivered"), r("pdf_centre"), r("pdf_machine"), r("pdf_mu"), r("pdf_type"),
              r("pdf_operator"), r("pdf_verification")], rows, (12, 30, 22, 22, 14, 20, 22, 48))

    pdf.heading(r("pdf_incidents"))
    if incidents:
        pdf.rows([r("pdf_when"), r("pdf_centre"), r("pdf_severity"), r("pdf_summary")],
                 [[when(i.get("at")), i.get("centre", "-"), str(i.get("severity") or "-"), i.get("summary", "")]
                  for i in incidents], (30, 25, 20, 115))
    else:
        pdf.line_of("", r("pdf_no_incident"))
    return bytes(pdf.output())
