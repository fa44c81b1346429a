"""The pre-outage baseline: the home OIS's RT Beams Treatment Records and RT Treatment
Summary Records become fractions in the ledger (`source="baseline"`, `source="summary"` for a
fraction only a summary lists).

Every fraction goes through the ledger's own rules (`FractionLedger.log_fraction`), so none is
counted twice; a summary's fraction that a session record already brought in is `covered`
(`FractionLedger.log_from_summary` asks the course, it is not a refusal and no near-miss), and a
session record arriving after the summary (in a later import) replaces the summary's entry
(`ledger.summaries`). Files are taken in three passes (first sessions, then continuations of
interrupted sessions, then summaries); only file names are held between passes.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime, timedelta, timezone, tzinfo
from pathlib import Path
from typing import Any

import msgspec
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue
from pydicom.uid import RTBeamsTreatmentRecordStorage, RTTreatmentSummaryRecordStorage

from adapters.dicom import BadFile, iter_files, said_of
from adapters.dicom.elements import read_record
from adapters.dicom.plans import attribute, decimal, kind_of, need, text_of
from adapters.runtime import Ledger
from ledger import errors
from ledger.course import Course
from ledger.origin import UNKNOWN_MACHINE, people_of_record
from ledger.summaries import counts_from_summary
from ledger.service import Actor
from schemas.text import PersonName, ShortString, check_person_name
from ledger.messages import said
from ledger.validation import describe



def moment(date_value: Any, time_value: Any, offset: Any, default_tz: tzinfo) -> datetime:
    """A DICOM DA + TM (+ TimezoneOffsetFromUTC) as an aware datetime."""
    d, t = str(date_value or "").strip(), str(time_value or "").strip()
    if len(d) != 8:
        raise BadFile("bad_file.not_a_dicom_date", value=repr(d))
    head, _, frac = t.partition(".")
    head = (head + "000000")[:6]
    tz = default_tz
    text = str(offset or "").strip()
    if len(text) == 5 and text[0] in "+-" and text[1:].isdigit():
        sign = -1 if text[0] == "-" else 1
        tz = timezone(sign * timedelta(hours=int(text[1:3]), minutes=int(text[3:])))
    try:
        return datetime(int(d[:4]), int(d[4:6]), int(d[6:]), int(head[:2]), int(head[2:4]), int(head[4:6]),
                        int((frac + "000000")[:6]) if frac else 0, tzinfo=tz)
    except ValueError as exc:
        raise BadFile("bad_file.bad_date_time", date=d, time=t, detail=str(exc)) from None


def has_offset(ds: Dataset) -> bool:
    text = str(ds.get("TimezoneOffsetFromUTC") or "").strip()
    return len(text) == 5 and text[0] in "+-" and text[1:].isdigit()


def referenced_plan(ds: Dataset) -> str:
    refs = ds.get("ReferencedRTPlanSequence") or []
    if not refs or not refs[0].get("ReferencedSOPInstanceUID"):
        raise BadFile("bad_file.no_referenced_plan")
    return str(refs[0].ReferencedSOPInstanceUID)


def whole_facts(read: Callable[..., dict[str, Any]]) -> Callable[..., dict[str, Any]]:
    """A reader of a record's facts that gives all of them or refuses the file (BadFile): a value it
    cannot use (a number holding two values, a text where a number is due) never escapes as another
    error, so a caller names the file and goes on, and nothing is written from half a record (the
    facts are all taken before the first write)."""
    @functools.wraps(read)
    def reading(ds: Any, *args: Any) -> dict[str, Any]:
        try:
            return read(ds, *args)
        except BadFile:
            raise
        except (ValueError, TypeError, ArithmeticError, LookupError, AttributeError) as exc:
            raise BadFile("bad_file.value_unreadable", kind=type(exc).__name__, detail=str(exc)) from None
    return reading


@whole_facts
def session_facts(ds: Dataset, default_tz: tzinfo) -> dict[str, Any]:
    """What an RT Beams Treatment Record says about its session, in the ledger's words.
    Shared by the baseline import and the reconciliation, so both read a record alike."""
    beams_seq = need(ds, "TreatmentSessionBeamSequence")
    numbers = {int(need(b, "CurrentFractionNumber")) for b in beams_seq}
    if len(numbers) != 1:
        raise BadFile("bad_file.fractions_differ", numbers=str(sorted(numbers)))
    beams, delivery_types = [], set()
    for b in beams_seq:
        beam_number = int(need(b, "ReferencedBeamNumber"))
        specified, delivered = b.get("SpecifiedPrimaryMeterset"), b.get("DeliveredPrimaryMeterset")
        if not (specified and delivered):  # the control points only when the beam's own metersets are not given
            points = b.get("ControlPointDeliverySequence") or []
            specified = specified or (points[0].get("SpecifiedMeterset") if points else None)
            delivered = delivered or (points[-1].get("DeliveredMeterset") if points else None)
        if delivered in (None, "") and str(b.get("TreatmentDeliveryType") or "") == "SETUP":
            delivered = "0"  # a setup beam gives no dose; some systems leave its meterset empty
        if delivered is None:
            raise BadFile("bad_file.no_delivered_meterset", beam=beam_number)
        delivered_mu = decimal(delivered, said("bad_file.delivered_meterset_of_beam", beam=beam_number))
        beam = {"number": beam_number, "delivered_mu": delivered_mu,
                "termination": str(b.get("TreatmentTerminationStatus") or "UNKNOWN")}
        if specified is not None:
            beam["specified_mu"] = decimal(specified, said("bad_file.specified_meterset_of_beam", beam=beam_number))
        beams.append(beam)
        delivery_types.add(str(b.get("TreatmentDeliveryType") or "TREATMENT"))
    machines = ds.get("TreatmentMachineSequence") or [Dataset()]
    raw = ds.get("OperatorsName")
    group = ds.get("ReferencedFractionGroupNumber")
    return {
        "sop_instance_uid": str(need(ds, "SOPInstanceUID")),
        "patient_id": str(need(ds, "PatientID")),
        "plan_uid": referenced_plan(ds),
        "number": numbers.pop(),
        "group": int(group) if group is not None else None,
        "institution": str(machines[0].get("InstitutionName") or ds.get("InstitutionName") or ""),
        "station": str(ds.get("StationName") or ""),
        "has_offset": has_offset(ds),
        "machine": str(machines[0].get("TreatmentMachineName") or ""),
        "operators": [str(n) for n in (raw if isinstance(raw, MultiValue) else [raw]) if n is not None and str(n)],
        "delivered_at": moment(ds.get("TreatmentDate"), ds.get("TreatmentTime"), ds.get("TimezoneOffsetFromUTC"),
                               default_tz),
        "beams": beams,
        "delivery_type": "CONTINUATION" if "CONTINUATION" in delivery_types else "TREATMENT",
        "verified": bool({str(b.get("TreatmentVerificationStatus") or "") for b in beams_seq}
                         & {"VERIFIED", "VERIFIED_OVR"}),
    }


@whole_facts
def summary_facts(ds: Dataset, default_tz: tzinfo) -> dict[str, Any]:
    """What an RT Treatment Summary Record says: the fractions it lists, with date and end."""
    fractions = []
    for g in ds.get("FractionGroupSummarySequence") or []:
        group = int(need(g, "ReferencedFractionGroupNumber"))
        for f in g.get("FractionStatusSummarySequence") or []:
            fractions.append({
                "group": group,
                "number": int(need(f, "ReferencedFractionNumber")),
                "termination": str(f.get("TreatmentTerminationStatus") or "NORMAL"),
                "delivered_at": moment(f.get("TreatmentDate"), f.get("TreatmentTime"),
                                       ds.get("TimezoneOffsetFromUTC"), default_tz),
            })
    return {"sop_instance_uid": str(need(ds, "SOPInstanceUID")), "patient_id": str(need(ds, "PatientID")),
            "plan_uid": referenced_plan(ds), "fractions": fractions}


def seen(ledger: Any, course_id: str) -> bool:
    """Whether the importing user sees this course: a ledger for one user (the HTTP upload's)
    says so with `sees(course_id)`; the command line sees every course."""
    sees = getattr(ledger, "sees", None)
    return sees(course_id) if sees is not None else True


class Baseline:
    """Imports records into one ledger; `import_files` yields one answer per file."""

    def __init__(self, ledger: Ledger, actor: Actor, default_tz: tzinfo | None = None,
                 deviation_reason: str | None = None):
        """`default_tz`: the zone of times that carry no offset, when the physicist gives one; else
        the zone of the centre that delivered (`centre zone`), else the department's.
        `deviation_reason`: the physicist's confirmation for records whose metersets differ from the
        plan beyond tolerance (without it such a record is refused, the file named)."""
        self.deviation_reason = deviation_reason
        self.zones: dict[str, tzinfo] = {}
        self.ledger = ledger
        self.app = ledger.app
        self.actor = actor
        self.default_tz = default_tz
        # The AE title the records came from over the network (`fraction-ledger listen`): a name
        # for attribution, like the institution and station the record names.
        self.aet = ""

    # ---- finding what a record belongs to --------------------------------------------------

    def course_for(self, patient_id: str, plan_uid: str) -> Course:
        """The course of the plan a record references, as the ledger finds it from its log
        (`FractionLedger.course_of_record`); the answer of a file it finds none for."""
        found = self.app.trust.course_of_record(patient_id, plan_uid, lambda course_id: seen(self.ledger, course_id))
        if found.problem == "patient_not_known_as":
            raise BadFile("bad_file.patient_not_known_as", plan=plan_uid, course=found.courses[0], patient_id=patient_id)
        if found.problem == "patient_unknown":
            raise BadFile("bad_file.patient_unknown", patient_id=patient_id)
        if found.problem is not None:
            raise BadFile("bad_file.plan_unknown", plan=plan_uid, patient_id=patient_id)
        return self.app.get_course(found.course_id)

    def zone_for(self, centre: str) -> tzinfo:
        """The physicist's zone for this import, else the centre's (`FractionLedger.zone_of`)."""
        if self.default_tz is not None:
            return self.default_tz
        if centre not in self.zones:  # one lookup per centre and import, not per file
            self.zones[centre] = self.app.zone_of(centre)
        return self.zones[centre]

    # ---- one file --------------------------------------------------------------------------

    @staticmethod
    def check_writable(ds: Dataset) -> None:
        """The machine and the operators become the fraction's and are written back to the OIS
        (TreatmentMachineName SH, OperatorsName PN): refuse the file, naming the attribute,
        before anything is written, if they cannot be (the reconciliation only reads them)."""
        for machine in ds.get("TreatmentMachineSequence") or []:
            text_of(machine, "TreatmentMachineName", ShortString,
                    said("bad_file.where_sequence", sequence="TreatmentMachineSequence"))
        raw = ds.get("OperatorsName")
        for k, name in enumerate(raw if isinstance(raw, MultiValue) else [raw], 1):
            if name is None or not str(name):
                continue
            try:
                msgspec.convert(str(name), PersonName)
                check_person_name(str(name), "OperatorsName")
            except ValueError as exc:  # msgspec.ValidationError is one too
                reason = describe(str(exc))[1]
                raise BadFile("bad_file.operator_not_writable_back", attribute=attribute('OperatorsName'), k=k,
                              value=repr(str(name)), reason=reason) from None

    def session(self, ds: Dataset, path: Path) -> dict:
        self.check_writable(ds)
        facts = session_facts(ds, timezone.utc)
        course = self.course_for(facts["patient_id"], facts["plan_uid"])
        course_id = str(course.id)
        answer = {"file": str(path), "course_id": course_id, "kind": "session", "fractions": 0}
        if course.has_imported(facts["sop_instance_uid"]):
            return answer | {"status": "unchanged"}
        centre = self.app.trust.attribute_record(course_id, facts["plan_uid"], facts["machine"],
                                           {"institution": facts["institution"], "station": facts["station"],
                                            "aet": self.aet})
        at = facts["delivered_at"]
        if not facts["has_offset"]:  # the wall time at the linac, in the zone in force there on that date
            at = at.replace(tzinfo=self.zone_for(centre))
        operator, verifier = people_of_record(facts["operators"], facts["verified"])
        data = {
            "number": facts["number"],
            "numbering": "plan",  # a record counts in its plan's numbering (a re-plan's from 1)
            "group": facts["group"],
            "centre": centre,
            "machine": facts["machine"] or UNKNOWN_MACHINE,
            "operator": operator,
            "delivered_at": at,
            "plan_uid": facts["plan_uid"],
            "beams": facts["beams"],
            "delivery_type": facts["delivery_type"],
            "source": "baseline",
            "source_uid": facts["sop_instance_uid"],
            "deviation_reason": self.deviation_reason,
        }
        record = self.app.log_fraction(course_id, data, self.actor)
        if verifier is not None:
            self.app.verify_fraction(course_id, record["number"], verifier, self.actor, group=record["group"])
        return answer | {"status": "imported", "fractions": 1}

    def summary(self, ds: Dataset, path: Path) -> dict:
        course = self.course_for(str(need(ds, "PatientID")), referenced_plan(ds))
        course_id = str(course.id)
        facts = summary_facts(ds, self.zone_for(course.home_centre))
        answer: dict[str, Any] = {"file": str(path), "course_id": course_id, "kind": "summary", "fractions": 0,
                                  "covered": 0, "skipped": []}
        for f in facts["fractions"]:
            group, number = f["group"], f["number"]
            source_uid = f"{facts['sop_instance_uid']}/{group}/{number}"
            if not counts_from_summary(f["termination"]):
                answer["skipped"].append(f"fraction {number} (group {group}) ended {f['termination']}: import its session record")
                continue
            if course.has_imported(source_uid):
                continue
            data = course.summary_fraction(group, number, f["delivered_at"], source_uid)
            if self.app.log_from_summary(course_id, data, self.actor) is None:
                answer["covered"] += 1  # a session record (or an earlier summary) has it already
            else:
                answer["fractions"] += 1
        status = "imported" if answer["fractions"] else "unchanged"
        return answer | {"status": status}

    def import_one(self, path: Path, ds: Dataset | None = None) -> dict:
        answer: dict[str, Any] = {"file": str(path), "course_id": None, "status": "error", "error": None}
        try:
            ds = ds if ds is not None else read_record(path)
            sop = str(ds.SOPClassUID)
            if sop == RTBeamsTreatmentRecordStorage:
                return {**answer, **self.session(ds, path)}
            if sop == RTTreatmentSummaryRecordStorage:
                return {**answer, **self.summary(ds, path)}
            raise BadFile("bad_file.not_a_record", kind=kind_of(ds))
        except errors.LedgerError as exc:
            answer["error"], answer["error_said"] = exc.message, exc.said
        except ValueError as exc:
            answer["error"], answer["error_said"] = str(exc), said_of(exc)
        return answer

    def import_files(self, paths: Iterable[str | Path], progress: Callable[[], None] | None = None) -> Iterator[dict]:
        """Sessions first, then continuations, then summaries; one answer per file."""
        continuations: list[Path] = []
        summaries: list[Path] = []
        for path in iter_files(paths):
            try:
                ds = read_record(path)
                continuation = str(ds.SOPClassUID) == RTBeamsTreatmentRecordStorage and any(
                    str(b.get("TreatmentDeliveryType") or "") == "CONTINUATION"
                    for b in ds.get("TreatmentSessionBeamSequence") or [])
            except BadFile as exc:
                yield {"file": str(path), "course_id": None, "status": "error", "error": str(exc),
                       "error_said": exc.said}
                if progress:
                    progress()
                continue
            sop = str(ds.SOPClassUID)
            if sop == RTTreatmentSummaryRecordStorage:
                summaries.append(path)
                continue
            if continuation:
                continuations.append(path)
                continue
            yield self.import_one(path, ds)
            if progress:
                progress()
        for path in continuations + summaries:
            yield self.import_one(path)
            if progress:
                progress()
