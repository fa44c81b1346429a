"""Recovery: read the restored OIS's records, reconcile them with the ledger (the rules are in
`ledger.reconcile`), write the import set of exactly what the OIS lacks, and the report.

The OIS side is a folder of RT Beams Treatment Records and RT Treatment Summary Records, read
one file at a time with the same readers as the baseline import; a file that cannot be used
is reported by name and the reconciliation goes on.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Iterable
from datetime import datetime, tzinfo
from decimal import Decimal
from pathlib import Path
from typing import Any

import msgspec
from pydicom.uid import RTBeamsTreatmentRecordStorage, RTTreatmentSummaryRecordStorage

from adapters.chain import describe_head
from adapters.dicom import BadFile, iter_files
from adapters.dicom.baseline import session_facts, summary_facts
from adapters.dicom.export import encode, write
from adapters.dicom.plans import kind_of, read_dataset
from adapters.files import MANIFEST_SIZE, InputTooLarge, private_dir, read_input_text, write_private
from adapters.dicom.records import CourseView, beams_record, summary_record
from adapters.runtime import Ledger, department_zone
from ledger.reconcile import CourseKey, Session, reconcile
from ledger.summaries import counts_from_summary

MANIFEST = "import-set.json"
_DECIMAL = re.compile(r"-?[0-9]+(\.[0-9]+)?")  # an MU or a count, written as the report's reader writes numbers


def ledger_side(ledger: Ledger, home_centre: str | None = None) -> tuple[list[CourseKey], list[Session]]:
    """Every course and every session the ledger holds (of one home centre's courses, when
    given: a centre reconciles its own OIS), from the read model's tables."""
    read = ledger.fresh()
    courses, patients = [], {}
    for c in read.courses():
        if home_centre is not None and c["home_centre"] != home_centre:
            continue
        mapping = {}
        if len(c["plans"]) > 1:  # re-plans: their numbering and the patient's ids elsewhere are the course's
            course = ledger.app.get_course(c["id"])
            mapping = {"patient_ids": list(course.patient_ids.values()), "plan_starts": course.plan_starts}
        courses.append(CourseKey(course_id=c["id"], patient_id=c["patient_id"],
                                 plan_uids=[p["uid"] for p in c["plans"]], label=c["plan_label"], **mapping))
        patients[c["id"]] = c["patient_id"]
    sessions = [
        Session(patient_id=patients[row["course_id"]], plan_uid=row["plan_uid"], group=row["grp"],
                number=row["number"], delivered_at=datetime.fromisoformat(row["delivered_at"]),
                machine=row["machine"], centre=row["centre"], voided=bool(row["voided"]), ref=row["record_id"],
                detailed=not row["summary_only"], delivery_type=row["delivery_type"],
                mu={b["number"]: Decimal(b["delivered_mu"]) for b in json.loads(row["beams"])})
        for row in read.db["fractions"].rows_where(order_by="course_id, grp, number, delivered_at")
        if row["course_id"] in patients
    ]
    return courses, sessions


def ois_side(paths: Iterable[str | Path], default_tz: tzinfo,
             progress: Callable[[], None] | None = None) -> tuple[list[Session], list[dict], int]:
    """The OIS's sessions; problems as {file, error}; how many files were read."""
    sessions: list[Session] = []
    problems: list[dict] = []
    files = 0
    for path in iter_files(paths):
        files += 1
        try:
            ds = read_dataset(path)
            sop = str(ds.SOPClassUID)
            if sop == RTBeamsTreatmentRecordStorage:
                f = session_facts(ds, default_tz)
                sessions.append(Session(
                    patient_id=f["patient_id"], plan_uid=f["plan_uid"], group=f["group"] or 1, number=f["number"],
                    delivered_at=f["delivered_at"], machine=f["machine"], ref=f"{path.name} ({f['sop_instance_uid']})",
                    delivery_type=f["delivery_type"], mu={b["number"]: b["delivered_mu"] for b in f["beams"]}))
            elif sop == RTTreatmentSummaryRecordStorage:
                s = summary_facts(ds, default_tz)
                sessions.extend(
                    Session(patient_id=s["patient_id"], plan_uid=s["plan_uid"], group=f["group"], number=f["number"],
                            delivered_at=f["delivered_at"], machine="", mu={}, ref=f"{path.name} (summary)",
                            detailed=False)
                    for f in s["fractions"] if counts_from_summary(f["termination"]))
            else:
                raise BadFile(f"not an RT treatment record: it is a {kind_of(ds)}")
        except (BadFile, ValueError, KeyError, AttributeError) as exc:
            problems.append({"file": str(path), "error": str(exc)})
        if progress:
            progress()
    return sessions, problems, files


def run(ledger: Ledger, ois: Iterable[str | Path], default_tz: tzinfo, restore_point: datetime | None = None,
        tolerance: Decimal | None = None, progress: Callable[[], None] | None = None,
        home_centre: str | None = None) -> dict[str, Any]:
    courses, ours = ledger_side(ledger, home_centre)
    theirs, problems, files = ois_side(ois, default_tz, progress)
    kwargs = {"tolerance": tolerance} if tolerance is not None else {}
    result = reconcile(courses, ours, theirs, restore_point=restore_point, **kwargs)
    acknowledged = ledger.read.ois_imports()
    for item in result["missing_in_ois"]:
        acks = [acknowledged[r] for r in item["refs"] if r in acknowledged]
        # The OIS was said to have imported it, yet it is not there: the import did not take.
        item["acknowledged"] = acks[0] if acks else None
    result["totals"]["files_read"] = files
    result["totals"]["unreadable_files"] = len(problems)
    result["unreadable_files"] = problems
    result["log_head"] = describe_head(ledger.app)
    return result


def export_import_set(ledger: Ledger, result: dict[str, Any], out: Path, hl7_builder: Any = None) -> dict[str, Any]:
    """Exactly the missing RT Beams Treatment Records, a refreshed summary per course they belong
    to, and (with an HL7 configuration) their charges; plus a manifest naming the set."""
    private_dir(out)
    by_course: dict[str, set[str]] = {}
    for item in result["missing_in_ois"]:
        by_course.setdefault(item["course_id"], set()).update(item["refs"])
    items, files, charges = [], [], 0
    read = ledger.fresh()
    for course_id in sorted(by_course):
        wanted = by_course[course_id]
        view = CourseView.of(ledger.app.get_course(course_id))
        folder = out / course_id
        private_dir(folder)
        for record in view.active():
            if record.record_id not in wanted:
                continue
            ds = beams_record(view, record)
            path = folder / f"record_g{record.group}_f{record.number:03d}_{record.record_id[:8]}.dcm"
            write(path, encode(ds))
            files.append(str(path.relative_to(out)))
            items.append({"course_id": course_id, "group": record.group, "number": record.number,
                          "record_ids": [record.record_id], "sop_instance_uid": str(ds.SOPInstanceUID)})
        summary = summary_record(view)
        write(folder / "summary.dcm", encode(summary))
        files.append(str((folder / "summary.dcm").relative_to(out)))
        if hl7_builder is not None:
            course = read.course(course_id)
            course = {**course, "fractions": [f for f in course["fractions"] if f["record_id"] in wanted]}
            for message in hl7_builder.charges(course):
                private_dir(out / "hl7")
                write_private(out / "hl7" / f"{message.control_id}.hl7", message.er7.encode("utf-8"))
                charges += 1
    digest = hashlib.sha256("\n".join(sorted(i["sop_instance_uid"] for i in items)).encode()).hexdigest()
    manifest = {
        "set_id": digest[:16],
        "log_head": result.get("log_head"),
        "records": len(items),
        "summaries": len(by_course),
        "charges": charges,
        "items": items,
        "files": files,
    }
    write_private(out / MANIFEST, msgspec.json.format(msgspec.json.encode(manifest)))
    return manifest


def read_manifest(path: Path) -> dict[str, Any]:
    """The manifest of an import set, given the set's folder or the manifest file itself."""
    file = path / MANIFEST if path.is_dir() else path
    try:
        manifest = json.loads(read_input_text(file, MANIFEST_SIZE, "import set manifest"))
    except InputTooLarge:
        raise
    except (OSError, ValueError) as exc:
        raise ValueError(f"{file}: not an import set manifest ({exc})") from None
    if not isinstance(manifest, dict) or "set_id" not in manifest or "items" not in manifest:
        raise ValueError(f"{file}: not an import set manifest (set_id and items are required)")
    return manifest


def render_report(result: dict[str, Any], ois: str, made: datetime, lang: str = "en") -> str:
    """The printable report: totals first, then per course what the OIS lacks, what it has that
    the ledger does not, and what conflicts, in the order a physicist works. In the reader's
    language (`lang`: the CLI's, or the page's it was asked from; domain `reports`); in English
    its times and numbers are written as they always were (ISO), else as the reader writes them."""
    import jinja2

    from adapters.i18n import words
    from ledger.reconcile import is_clean

    w = words(lang)
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(Path(__file__).parent / "templates"),
                             autoescape=True, trim_blocks=True, lstrip_blocks=True)
    by = {key: {} for key in ("missing_in_ois", "unknown_to_ledger", "conflicts")}
    for key in by:
        for item in result[key]:
            by[key].setdefault(item["course_id"], []).append(item)
    courses = [
        {**c, "missing_items": by["missing_in_ois"].get(c["course_id"], []),
         "unknown_items": by["unknown_to_ledger"].get(c["course_id"], []),
         "conflict_items": by["conflicts"].get(c["course_id"], [])}
        for c in result["courses"]
    ]
    at = made.astimezone(department_zone())  # the department's clock
    return env.get_template("reconcile.html").render(
        r=result, n=result["totals"], courses=courses, ois=ois, clean=is_clean(result), lang=w.lang, t=w.report,
        v=(lambda x: x) if w.lang == "en" else (lambda x: w.number(x) if _DECIMAL.fullmatch(str(x)) else w.value(x)),
        made=at.isoformat(timespec="minutes") if w.lang == "en" else w.when(at))
