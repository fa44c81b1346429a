"""Outage operations at the edge: the assignment plan, call lists and emergency sheets as people read them.

The rules are in ledger/ (planning, contacts, registry); this module gathers what they need from
the read model and the aggregates, and renders the results: JSON-able dicts for the API and the
CLI, CSV, and PDFs (fpdf2, the same document class as the HL7 treatment summary). Every word goes
through `adapters.i18n.Words`; dates come from the events or the caller, never from the clock.
"""

from __future__ import annotations

import csv
import io
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from fpdf.enums import XPos, YPos

from adapters.hl7.pdf import SummaryPdf
from adapters.i18n import Words
from ledger.contacts import call_reasons
from ledger.course import ACTIVE, Course
from ledger.planning import AssignmentPlan
from ledger.registry import technique_of

DEFAULT_ZONE = "Europe/Brussels"


def zone_of(app: Any, centre: str) -> str:
    return app.trust.centre_zone(centre) or DEFAULT_ZONE


def today_at(app: Any, centre: str) -> date:
    """The ledger clock's day in the centre's zone (the tests' clock, a drill's, or the wall's)."""
    return app.clock().astimezone(ZoneInfo(zone_of(app, centre))).date()


def home_course_ids(read: Any, home: str) -> list[str]:
    """The active courses whose home centre is `home` (read model)."""
    return [c["id"] for c in read.courses(centre=home, status=ACTIVE) if c["home_centre"] == home]


def person(name: str) -> str:
    """FAMILY^GIVEN as a person reads it."""
    family, _, given = name.split("=")[0].partition("^")
    return f"{family} {given.replace('^', ' ')}".strip()


# ---- the assignment plan ---------------------------------------------------------------------


def need_dict(need: Any) -> dict:
    return {"course": need.course_id, "patient_id": need.patient_id, "plan": need.label, "triage": need.triage,
            "technique": need.technique, "remaining": need.remaining}


def plan_dict(plan: AssignmentPlan, w: Words) -> dict:
    return {
        "capacity_lost": plan.capacity_lost, "day": plan.day.isoformat(),
        "proposals": [{**need_dict(p.need), "centre": p.centre, "machines": list(p.machines)} for p in plan.proposals],
        "unplaceable": [{**need_dict(u.need), "reason": w.say(u.reason), "said": u.reason} for u in plan.unplaceable],
        "kept": [{**need_dict(p.need), "centre": p.centre} for p in plan.kept],
        "waiting": [need_dict(n) for n in plan.waiting],
        "load": plan.load,
        "assigned": False,
    }


def plan_text(plan: dict, w: Words) -> str:
    lines = [w.t("plan_heading", capacity_lost=plan["capacity_lost"], day=w.day(plan["day"]))]
    for p in plan["proposals"]:
        lines.append(f"  {w.t('plan_propose'):<12} {p['patient_id']:<12} {p['plan']:<20} triage {p['triage']} "
                     f"{p['technique']:<9} -> {p['centre']} ({', '.join(p['machines'])})  {p['course']}")
    for u in plan["unplaceable"]:
        lines.append(f"  {w.t('plan_unplaceable'):<12} {u['patient_id']:<12} {u['plan']:<20} triage {u['triage']} "
                     f"{u['technique']:<9} {u['reason']}  {u['course']}")
    for k in plan["kept"]:
        lines.append(f"  {w.t('plan_kept'):<12} {k['patient_id']:<12} {k['plan']:<20} -> {k['centre']}")
    for n in plan["waiting"]:
        lines.append(f"  {w.t('plan_waiting'):<12} {n['patient_id']:<12} {n['plan']:<20} triage {n['triage']}")
    for centre, load in sorted(plan["load"].items()):
        lines.append(f"  {centre}: {w.t('plan_load', per_day=load['per_day'], taken=load['taken'], proposed=load['proposed'])}")
    lines.append(w.t("plan_summary", proposals=len(plan["proposals"]), unplaceable=len(plan["unplaceable"]),
                     kept=len(plan["kept"]), waiting=len(plan["waiting"])))
    return "\n".join(lines)


# ---- call lists --------------------------------------------------------------------------------


def capacity_windows(app: Any, day: date) -> dict[str, tuple[str, str]]:
    return {o.centre: o.window for o in app.outage.offers_on(day)}


def call_list(app: Any, read: Any, centre: str, day: date, w: Words, with_contacts: bool = True) -> list[dict]:
    """Who must be called on `day` about the courses of `centre` (home or assigned), and why."""
    zone = zone_of(app, centre)
    windows = capacity_windows(app, day)
    rows = []
    for row in read.courses(centre=centre):
        course = app.get_course(row["id"])
        home_zone = zone_of(app, course.home_centre)
        reasons = call_reasons(app.course_events(row["id"]), day, home_zone, course.home_centre, windows,
                               course.schedule_in(home_zone))
        if not reasons:
            continue
        contact = app.outage.contact(course.home_centre, course.patient["id"])
        calls = contact.calls_on(str(course.id), day) if contact else []
        details = (contact.details if contact else None) or {}
        rows.append({
            "course": str(course.id), "patient_id": course.patient["id"], "patient_name": course.patient["name"],
            "birth_date": row.get("birth_date"),
            "name": person(course.patient["name"]), "plan": course.plan.label, "home_centre": course.home_centre,
            "why": [w.say(r) for r in reasons], "said": reasons,
            "phones": list(details.get("phones", [])) if with_contacts else [],
            "contact_person": (details.get("contact_person") or "") if with_contacts else "",
            "contact_phone": (details.get("contact_phone") or "") if with_contacts else "",
            "calls": [{"outcome": c["outcome"], "by": c["by"], "at": c["at"].isoformat(), "note": c["note"]}
                      for c in calls],
            "zone": zone,
        })
    return sorted(rows, key=lambda r: (r["patient_id"], r["course"]))


def outcome_word(w: Words, calls: list[dict]) -> str:
    return w.t(f"call_{calls[-1]['outcome']}") if calls else w.t("call_pending")


def call_list_csv(rows: list[dict], w: Words) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["patient_id", "name", "plan", "why", "phones", "contact_person", "contact_phone", "outcome",
                     "course"])
    for r in rows:
        writer.writerow([r["patient_id"], r["name"], r["plan"], "; ".join(w.say(x) for x in r["said"]), " / ".join(r["phones"]),
                         person(r["contact_person"]) if r["contact_person"] else "", r["contact_phone"],
                         outcome_word(w, r["calls"]), r["course"]])
    return out.getvalue()


class OutagePdf(SummaryPdf):
    def __init__(self, title: str, w: Words):
        super().__init__(title)
        self.words = w

    def footer(self) -> None:
        self.set_y(-12)
        self.set_font(self.family, "", 8)
        self.cell(0, 5, self.text_of(f"{self.doc_title} - {self.words.t('pdf_page', page=self.page_no())}/{{nb}}"),
                  align="C")


def new_pdf(title: str, w: Words, made_at: datetime) -> OutagePdf:
    pdf = OutagePdf(title, w)
    pdf.set_creation_date(made_at)
    pdf.set_title(title)
    for setter in (pdf.set_author, pdf.set_creator, pdf.set_producer):
        setter("fraction-ledger")
    pdf.alias_nb_pages()
    pdf.add_page()
    pdf.set_font(pdf.family, "B", 14)
    pdf.cell(0, 8, pdf.text_of(title), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.set_font(pdf.family, "", 9)
    return pdf


def call_list_pdf(rows: list[dict], centre: str, day: date, w: Words, made_at: datetime) -> bytes:
    pdf = new_pdf(w.t("calls_title", centre=centre, day=w.day(day)), w, made_at)
    pdf.rows([w.t("col_patient"), w.t("col_name"), w.t("col_why"), w.t("col_phones"), w.t("col_contact_person"),
              w.t("col_outcome")],
             [[r["patient_id"], r["name"], "; ".join(w.say(x) for x in r["said"]), " / ".join(r["phones"]),
               " ".join(x for x in (person(r["contact_person"]) if r["contact_person"] else "", r["contact_phone"]) if x),
               outcome_word(w, r["calls"]) + "  [ ]"] for r in rows],
             (22, 30, 58, 30, 30, 20))
    pdf.ln(6)
    pdf.cell(0, 6, pdf.text_of(w.t("signature_line")), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    return bytes(pdf.output())


# ---- the emergency sheet -----------------------------------------------------------------------


def centre_in_charge(course: Course) -> str:
    partners = [c for c in course.assigned_centres if c != course.home_centre]
    return partners[-1] if partners else course.home_centre


def sheet_data(app: Any, course: Course, w: Words, with_contacts: bool = True) -> dict:
    """What the emergency sheet shows of a course (also its JSON)."""
    centre = centre_in_charge(course)
    in_use = course.plan_in_use(centre)
    nxt = course.next_fraction(centre)
    records = sorted(course.active_records(), key=lambda r: (r.group, r.number, r.delivered_at))
    contact = app.outage.contact(course.home_centre, course.patient["id"]) if with_contacts else None
    details = (contact.details if contact else None) or {}
    warnings = [w.say(x) for r in records for x in r.warnings] + [w.say(f["reason"]) for f in course.flags]
    if course.status != ACTIVE:
        warnings.insert(0, w.t("sheet_not_active", status=w.say({"code": f"status.{course.status}", "params": {}}),
                               reason=(course.status_note or {}).get("reason") or "-"))
    return {
        "course": str(course.id), "patient_id": course.patient["id"], "name": person(course.patient["name"]),
        "birth_date": course.patient.get("birth_date"), "sex": course.patient.get("sex"),
        "home_centre": course.home_centre, "centre": centre, "assigned": list(course.assigned_centres),
        "triage": course.triage, "technique": technique_of(course.plan),
        "prescription": {"label": course.plan.label, "uid": course.plan.uid,
                         "groups": [{"number": g.number, "fractions_planned": g.fractions_planned} for g in course.plan.fraction_groups]},
        "plan_in_use": {"label": in_use.label, "uid": in_use.uid, "centre": in_use.centre or course.home_centre,
                        "beams": [{"group": g.number, "number": b.number, "name": b.name, "meterset": str(b.meterset)}
                                  for g in in_use.fraction_groups for b in g.beams]},
        "delivered": course.fractions_delivered(), "planned": course.fractions_planned(),
        "fractions": [{"group": r.group, "number": r.number, "at": r.delivered_at.isoformat(), "centre": r.centre,
                       "machine": r.machine, "verified": r.verified_by is not None} for r in records],
        "next": None if nxt is None else {"group": nxt[0].number, "number": nxt[1], "centre": centre},
        "warnings": warnings, "status": course.status,
        "phones": list(details.get("phones", [])), "contact_person": details.get("contact_person") or "",
        "contact_phone": details.get("contact_phone") or "",
    }


def last_event_time(course: Course, app: Any) -> datetime:
    """The sheet's date: when the course last changed (the same log gives the same bytes)."""
    events = app.course_events(str(course.id))
    return events[-1].meta["recorded_at"] if events else course.registered_at


def emergency_sheet_pdf(app: Any, course: Course, w: Words) -> bytes:
    """The one-page sheet of a course."""
    return sheet_pages(app, [course], w)


def sheet_pages(app: Any, courses: list[Course], w: Words) -> bytes:
    """The sheets of a patient's courses, a page each, as one PDF."""
    first = sheet_data(app, courses[0], w)
    pdf = new_pdf(w.t("sheet_title", patient_id=first["patient_id"]), w,
                  max(last_event_time(c, app) for c in courses))
    for i, course in enumerate(courses):
        if i:
            pdf.add_page()
        draw_sheet(pdf, sheet_data(app, course, w), w)
    return bytes(pdf.output())


def draw_sheet(pdf: OutagePdf, s: dict, w: Words) -> None:
    pdf.heading(w.t("sheet_patient"))
    pdf.line_of(w.t("col_name"), s["name"])
    pdf.line_of(w.t("col_patient"), f"{s['patient_id']} ({w.t('sheet_home', centre=s['home_centre'])})")
    pdf.line_of(w.t("sheet_birth_sex"), f"{w.day(s['birth_date']) if s['birth_date'] else '-'} / {s['sex'] or '-'}")
    pdf.line_of(w.t("col_phones"), " / ".join(s["phones"]) or "-")
    pdf.line_of(w.t("col_contact_person"),
                " ".join(x for x in (person(s["contact_person"]) if s["contact_person"] else "", s["contact_phone"]) if x) or "-")
    pdf.heading(w.t("sheet_course"))
    pdf.line_of(w.t("sheet_prescription"), f"{s['prescription']['label']} ({s['prescription']['uid']}), "
                + w.t("sheet_counts", delivered=s["delivered"], planned=s["planned"]))
    pdf.line_of(w.t("sheet_plan_in_use"), f"{s['plan_in_use']['label']} ({s['plan_in_use']['uid']}), "
                f"{s['plan_in_use']['centre']}: " + ", ".join(f"{b['number']} {b['name']} {b['meterset']} MU".replace("  ", " ")
                                                                for b in s["plan_in_use"]["beams"]))
    pdf.line_of(w.t("sheet_triage_technique"), f"{s['triage'] or '-'} / {s['technique']}")
    pdf.line_of(w.t("sheet_centres"), ", ".join([s["home_centre"], *[c for c in s["assigned"] if c != s["home_centre"]]]))
    pdf.line_of(w.t("sheet_next"), w.t("sheet_next_value", number=s["next"]["number"], group=s["next"]["group"],
                                      centre=s["next"]["centre"]) if s["next"] else w.t("sheet_nothing_next"))
    pdf.heading(w.t("sheet_warnings"))
    pdf.multi_cell(0, 5, pdf.text_of("\n".join(s["warnings"]) or "-"), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.heading(w.t("sheet_fractions"))
    # Three fractions a row, so that a whole course fits the one page.
    cells = [f"{f['group']}/{f['number']}  {w.when(f['at'])}  {f['centre']} {f['machine']}"
             + ("" if f["verified"] else f"  ({w.t('sheet_not_verified')})") for f in s["fractions"]]
    cells += [""] * (-len(cells) % 3)
    if cells:
        pdf.set_font(pdf.family, "", 7)
        with pdf.table(col_widths=(63, 63, 64), text_align="LEFT", line_height=3.6, first_row_as_headings=False) as table:
            for i in range(0, len(cells), 3):
                row = table.row()
                for cell in cells[i:i + 3]:
                    row.cell(pdf.text_of(cell))
        pdf.set_font(pdf.family, "", 9)
    else:
        pdf.cell(0, 5, "-", new_x=XPos.LMARGIN, new_y=YPos.NEXT)


# ---- the day list ----------------------------------------------------------------------------------


def day_list(app: Any, read: Any, centre: str, day: date) -> list[dict]:
    """`centre`'s patients on `day`: expected (assignments and each course's schedule), delivered, missing."""
    from ledger.day_list import entry_for

    zone = zone_of(app, centre)
    day_over = today_at(app, centre) > day
    rows = []
    for row in read.courses(centre=centre):
        course = app.get_course(row["id"])
        entry = entry_for(course, app.course_events(row["id"]), centre, day, zone, day_over)
        if entry is not None:
            rows.append({"course": entry.course_id, "patient_id": entry.patient_id, "name": person(entry.patient_name),
                         "patient_name": entry.patient_name, "birth_date": row.get("birth_date"),
                         "plan": entry.label, "home_centre": course.home_centre, "expected": entry.expected,
                         "delivered": entry.delivered, "status": entry.status})
    order = {"missing": 0, "expected": 1, "delivered": 2, "unexpected": 3}
    return sorted(rows, key=lambda r: (order[r["status"]], r["patient_id"], r["course"]))


def day_list_pdf(rows: list[dict], centre: str, day: date, w: Words, made_at: datetime) -> bytes:
    pdf = new_pdf(w.t("day_list_title", centre=centre, day=w.day(day)), w, made_at)
    counts = {s: sum(1 for r in rows if r["status"] == s) for s in ("expected", "delivered", "missing", "unexpected")}
    pdf.cell(0, 6, pdf.text_of(w.t("day_list_counts", **counts)), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.rows([w.t("col_patient"), w.t("col_name"), w.t("col_plan"), w.t("col_expected"), w.t("col_delivered_at"),
              w.t("col_status"), w.t("col_check")],
             [[r["patient_id"], r["name"], r["plan"], str(r["expected"]),
               "; ".join(f"{d['number']} {w.when(d['at'])} {d['machine']}" for d in r["delivered"]) or "-",
               w.t("day_status_" + r["status"]), "[ ]"] for r in rows],
             (22, 34, 34, 14, 46, 22, 12))
    pdf.ln(6)
    pdf.cell(0, 6, pdf.text_of(w.t("day_list_signature")), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    return bytes(pdf.output())
