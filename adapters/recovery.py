"""Recovery: read the restored OIS's records, reconcile them with the ledger (the rules are in
`ledger.reconcile`), write the import set of exactly what the OIS lacks, and the report.

The OIS side is a folder of RT Beams Treatment Records and RT Treatment Summary Records, read
one file at a time with the same readers as the baseline import; a file that cannot be used
is reported by name and the reconciliation goes on.
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import json
import pickle
import re
import sqlite3
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime, tzinfo
from decimal import Decimal
from pathlib import Path
from typing import Any

import msgspec
from pydicom.uid import RTBeamsTreatmentRecordStorage, RTTreatmentSummaryRecordStorage

from adapters.chain import describe_head
from adapters.dicom import BadFile, iter_files, said_of
from adapters.dicom.baseline import session_facts, summary_facts
from adapters.dicom.export import encode, write
from adapters.dicom.elements import read_record
from adapters.dicom.plans import kind_of
from adapters.files import MANIFEST_SIZE, InputTooLarge, private_dir, read_input_text, write_private
from adapters.dicom.records import CourseView, beams_record, summary_record
from adapters.runtime import Ledger, department_zone
from ledger.reconcile import CourseKey, Reconciliation, Session
from ledger.summaries import counts_from_summary

MANIFEST = "import-set.json"
_DECIMAL = re.compile(r"-?[0-9]+(\.[0-9]+)?")  # an MU or a count, written as the report's reader writes numbers


def ledger_courses(ledger: Ledger, home_centre: str | None = None) -> Iterator[tuple[CourseKey, list[Session]]]:
    """Every course the ledger holds (of one home centre's courses, when given: a centre
    reconciles its own OIS), with its sessions, one course at a time in the order a physicist
    works (`ledger.reconcile.course_order`), from the read model's tables."""
    read = ledger.fresh()
    where, params = ("WHERE home_centre = ?", [home_centre]) if home_centre is not None else ("", [])
    # Fetched in pages, so that only one page of courses is held (and nothing is read from the
    # read model while a statement on it is open).
    after: tuple[str, str, str] | None = None
    while True:
        clause, args = where, list(params)
        if after is not None:
            clause = f"{where} {'AND' if where else 'WHERE'} (patient_id, ifnull(plan_label, ''), id) > (?, ?, ?)"
            args += list(after)
        page = read.db.execute(f"SELECT id, patient_id, plan_label, plans FROM courses {clause} "
                               "ORDER BY patient_id, ifnull(plan_label, ''), id LIMIT 500", args).fetchall()
        if not page:
            return
        for course_id, patient_id, label, plans in page:
            plan_uids = [p["uid"] for p in json.loads(plans)]
            mapping = {}
            if len(plan_uids) > 1:  # re-plans: their numbering and the patient's ids elsewhere are the course's
                course = ledger.app.get_course(course_id)
                mapping = {"patient_ids": list(course.patient_ids.values()), "plan_starts": course.plan_starts}
            key = CourseKey(course_id=course_id, patient_id=patient_id, plan_uids=plan_uids, label=label, **mapping)
            yield key, [
                Session(patient_id=patient_id, plan_uid=row["plan_uid"], group=row["grp"],
                        number=row["number"], delivered_at=datetime.fromisoformat(row["delivered_at"]),
                        machine=row["machine"], centre=row["centre"], voided=bool(row["voided"]), ref=row["record_id"],
                        detailed=not row["summary_only"], delivery_type=row["delivery_type"],
                        mu={b["number"]: Decimal(b["delivered_mu"]) for b in json.loads(row["beams"])})
                for row in read.db["fractions"].rows_where("course_id = ?", [course_id],
                                                           order_by="grp, number, delivered_at")
                if row["plan_uid"] in plan_uids
            ]
        after = page[-1][1], page[-1][2] or "", page[-1][0]


def ledger_side(ledger: Ledger, home_centre: str | None = None) -> tuple[list[CourseKey], list[Session]]:
    """Every course and every session the ledger holds, whole (see `ledger_courses`)."""
    courses, sessions = [], []
    for course, found in ledger_courses(ledger, home_centre):
        courses.append(course)
        sessions.extend(found)
    return courses, sessions


class OisReader:
    """The OIS's sessions, file by file; a file that cannot be used is kept as {file, error}."""

    def __init__(self, default_tz: tzinfo, progress: Callable[[], None] | None = None):
        self.default_tz, self.progress = default_tz, progress
        self.problems: list[dict] = []
        self.files = 0

    def sessions(self, paths: Iterable[str | Path]) -> Iterator[Session]:
        for path in iter_files(paths):
            self.files += 1
            try:
                # Every fact is taken from the file before any is given out: a value that cannot
                # be decoded refuses the file whole (BadFile), never half of it.
                found = self.of_file(path)
            except (BadFile, ValueError, KeyError, AttributeError) as exc:
                self.problems.append({"file": str(path), "error": str(exc), "error_said": said_of(exc)})
                found = []
            yield from found
            if self.progress:
                self.progress()

    def of_file(self, path: Path) -> list[Session]:
        ds = read_record(path)
        sop = str(ds.SOPClassUID)
        if sop == RTBeamsTreatmentRecordStorage:
            f = session_facts(ds, self.default_tz)
            return [Session(
                patient_id=f["patient_id"], plan_uid=f["plan_uid"], group=f["group"] or 1, number=f["number"],
                delivered_at=f["delivered_at"], machine=f["machine"], ref=f"{path.name} ({f['sop_instance_uid']})",
                delivery_type=f["delivery_type"], mu={b["number"]: b["delivered_mu"] for b in f["beams"]})]
        if sop == RTTreatmentSummaryRecordStorage:
            s = summary_facts(ds, self.default_tz)
            return [Session(patient_id=s["patient_id"], plan_uid=s["plan_uid"], group=f["group"], number=f["number"],
                            delivered_at=f["delivered_at"], machine="", mu={}, ref=f"{path.name} (summary)",
                            detailed=False)
                    for f in s["fractions"] if counts_from_summary(f["termination"])]
        raise BadFile("bad_file.not_a_record", kind=kind_of(ds))


def ois_side(paths: Iterable[str | Path], default_tz: tzinfo,
             progress: Callable[[], None] | None = None) -> tuple[list[Session], list[dict], int]:
    """The OIS's sessions, whole; problems as {file, error}; how many files were read."""
    reader = OisReader(default_tz, progress)
    sessions = list(reader.sessions(paths))
    return sessions, reader.problems, reader.files


class Spool:
    """The OIS's sessions, kept out of memory until their course is compared: a private,
    temporary SQLite database (SQLite deletes it when it is closed; its cache is bounded), one
    row per session, found by plan and patient."""

    def __init__(self) -> None:
        self.db = sqlite3.connect("")  # "": a temporary on-disk database, gone once closed
        self.db.execute("PRAGMA cache_size = -512")  # KiB: the spool's pages stay on disk, not in memory
        self.db.execute("CREATE TABLE sessions (patient_id TEXT, plan_uid TEXT, body BLOB)")
        # Pickled, so that a session comes back exactly as read (its delivery time keeps the zone it was
        # read in, which the comparison of days uses); only this process writes and reads the database.
        self.encode = functools.partial(pickle.dumps, protocol=pickle.HIGHEST_PROTOCOL)
        self.decode = pickle.loads

    def __enter__(self) -> Spool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.db.close()

    def fill(self, sessions: Iterable[Session]) -> None:
        self.db.executemany("INSERT INTO sessions VALUES (?, ?, ?)",
                            ((s.patient_id, s.plan_uid, self.encode(s)) for s in sessions))
        self.db.execute("CREATE INDEX by_plan ON sessions (plan_uid, patient_id)")

    def take(self, course: CourseKey) -> list[Session]:
        """The sessions of the course's plans under any of its patient's ids, in the order the
        files were read; taken out, so that what is left at the end belongs to no course."""
        uids, pids = course.plan_uids, [course.patient_id, *course.patient_ids]
        rows = self.db.execute(
            f"SELECT rowid, body FROM sessions WHERE plan_uid IN ({', '.join('?' * len(uids))}) "
            f"AND patient_id IN ({', '.join('?' * len(pids))}) ORDER BY rowid", [*uids, *pids]).fetchall()
        self.db.executemany("DELETE FROM sessions WHERE rowid = ?", ((r[0],) for r in rows))
        return [self.decode(body) for _, body in rows]

    def left(self) -> Iterator[tuple[tuple[str, str], list[Session]]]:
        """What no course took, by (patient id, plan uid)."""
        rows = self.db.execute("SELECT patient_id, plan_uid, body FROM sessions ORDER BY patient_id, plan_uid, rowid")
        for key, group in itertools.groupby(rows, key=lambda r: (r[0], r[1])):
            yield key, [self.decode(r[2]) for r in group]


def run(ledger: Ledger, ois: Iterable[str | Path], default_tz: tzinfo, restore_point: datetime | None = None,
        tolerance: Decimal | None = None, progress: Callable[[], None] | None = None,
        home_centre: str | None = None) -> dict[str, Any]:
    """Reconcile the OIS's files with the ledger. Memory does not grow with the number of
    fractions compared: the OIS's sessions wait in a `Spool`, and each course is compared with
    only its own sessions of both sides in memory."""
    kwargs = {"tolerance": tolerance} if tolerance is not None else {}
    reader = OisReader(default_tz, progress)
    done = Reconciliation(restore_point=restore_point, **kwargs)
    with Spool() as spool:
        spool.fill(reader.sessions(ois))
        for course, ours in ledger_courses(ledger, home_centre):
            done.add_course(course, ours, spool.take(course))
        for (pid, uid), sessions in spool.left():
            done.add_ois_only(pid, uid, sessions)
    result = done.result()
    for item in result["missing_in_ois"]:
        acks = [a for a in map(lambda r: acknowledgement(ledger, r), item["refs"]) if a is not None]
        # The OIS was said to have imported it, yet it is not there: the import did not take.
        item["acknowledged"] = acks[0] if acks else None
    result["totals"]["files_read"] = reader.files
    result["totals"]["unreadable_files"] = len(reader.problems)
    result["unreadable_files"] = reader.problems
    result["log_head"] = describe_head(ledger.app)
    return result


def acknowledgement(ledger: Ledger, record_id: str) -> dict | None:
    """What the OIS was said to have imported of a record: {set_id, acknowledged_at, acknowledged_by}."""
    row = ledger.read.db.execute("SELECT set_id, acknowledged_at, acknowledged_by FROM ois_imports WHERE record_id = ?",
                                 [record_id]).fetchone()
    return dict(zip(("set_id", "acknowledged_at", "acknowledged_by"), row)) if row else None


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
        r=result, n=result["totals"], courses=courses, ois=ois, clean=is_clean(result), lang=w.lang, t=w.report, say=w.say,
        v=(lambda x: x) if w.lang == "en" else (lambda x: w.number(x) if _DECIMAL.fullmatch(str(x)) else w.value(x)),
        made=at.isoformat(timespec="minutes") if w.lang == "en" else w.when(at))
