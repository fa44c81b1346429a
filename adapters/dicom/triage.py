"""The triage list: per patient and plan, a triage code 1-5 and the centre that will treat.

A CSV with a header `patient_id,plan,triage,centre` (plan: the plan's UID or its label;
centre may be empty), and optionally `phone,contact_person,contact_phone`: the patient's contact
details (phones separated by ";"), registered with the line. Each line is answered on its own: an unknown patient or a bad code is
reported with its line number and changes nothing for that line.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path

from adapters.dicom import BadFile, said_of
from adapters.dicom.baseline import seen
from adapters.files import TRIAGE_LIST, check_size
from adapters.runtime import Ledger
from ledger import errors
from ledger.service import Actor
from ledger.unit_of_work import parse
from schemas.outage import ContactDetails

COLUMNS = ("patient_id", "plan", "triage", "centre")
# Optional: how to reach the patient (`ledger.contacts`); phones separated by ";".
CONTACT_COLUMNS = ("phone", "contact_person", "contact_phone")


def contact_of(row: dict) -> dict | None:
    phones = [p.strip() for p in (row.get("phone") or "").split(";") if p.strip()]
    person = (row.get("contact_person") or "").strip() or None
    if not phones and person is None:
        return None
    return {"phones": phones, "contact_person": person,
            "contact_phone": (row.get("contact_phone") or "").strip() or None}


def find_course(ledger: Ledger, patient_id: str, plan: str) -> str:
    """The course a line is for, as the ledger finds it from its log (`FractionLedger.course_of_patient_plan`);
    another centre's patient is as unknown (need to know)."""
    found = ledger.app.trust.course_of_patient_plan(patient_id, plan, lambda course_id: seen(ledger, course_id))
    if found.problem == "patient_unknown":
        raise BadFile("bad_file.triage_patient_unknown", patient_id=repr(patient_id))
    if found.problem == "plan_unknown":
        raise BadFile("bad_file.triage_no_plan", patient_id=patient_id, plan=repr(plan))
    if found.problem == "plan_ambiguous":
        raise BadFile("bad_file.triage_label_ambiguous", plan=repr(plan), count=len(found.courses),
                      patient_id=patient_id)
    return found.course_id


def import_triage(ledger: Ledger, path: Path, actor: Actor) -> Iterator[dict]:
    check_size(path, TRIAGE_LIST, "triage list")
    with path.open(newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        missing = [c for c in COLUMNS[:3] if c not in (reader.fieldnames or [])]
        if missing:
            yield {"line": 1, "status": "error", "error": f"header: missing column(s) {', '.join(missing)} "
                   f"(expected {','.join(COLUMNS)})"}
            return
        for row in reader:
            line = reader.line_num
            answer = {"line": line, "patient_id": (row.get("patient_id") or "").strip(), "course_id": None,
                      "status": "error", "error": None}
            try:
                text = (row.get("triage") or "").strip()
                if not text.isdigit() or not 1 <= int(text) <= 5:
                    raise BadFile("bad_file.triage_code", value=repr(text))
                course_id = find_course(ledger, answer["patient_id"], (row.get("plan") or "").strip())
                answer["course_id"] = course_id
                centre = (row.get("centre") or "").strip()
                ledger.app.outage.check_centres_known(("centre", centre))  # before anything of the line is written
                contact = contact_of(row)
                if contact is not None:
                    parse(ContactDetails, contact)  # refused before the triage code of the line is written
                changed = ledger.app.set_triage(course_id, int(text), actor)["changed"]
                if contact is not None:
                    course = ledger.app.get_course(course_id)
                    changed = ledger.app.outage.set_contact(course.home_centre, course.patient["id"], contact,
                                                     actor)["status"] == "set" or changed
                if centre:
                    changed = ledger.app.assign_centre(course_id, centre, actor)["changed"] or changed
                answer["status"] = "changed" if changed else "unchanged"
            except errors.LedgerError as exc:
                answer["error"], answer["error_said"] = exc.message, exc.said
            except ValueError as exc:
                answer["error"], answer["error_said"] = str(exc), said_of(exc)
            yield answer
