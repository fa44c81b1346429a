"""Reconciliation: what the restored OIS lacks, what it has that the ledger lacks, and
where the two disagree, per course and per fraction.

This is the step where the FANC REX 3 incident went wrong (a restore erased a day of records,
re-entry from a screenshot was incomplete, a patient got an extra fraction), so the rules of
what counts as "the same fraction" and "a conflict" live here, in the domain, not in the
DICOM adapter that reads the OIS's files.

Both sides are reduced to one `Fraction` per (course, group, number): the sessions of an
interrupted fraction and its continuation are summed per beam. Where one side holds only one of
those sessions (the OIS has the interrupted session but not its continuation, or the other way
round), the session it lacks is itself missing (or unknown) and the rest is compared.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime
from decimal import Decimal
from typing import Any

import msgspec

from ledger.local_time import local_day
from ledger.messages import english, said

DEFAULT_MU_TOLERANCE = Decimal("0.5")


class Session(msgspec.Struct, frozen=True, kw_only=True):
    """One treatment session as either side records it."""

    patient_id: str
    plan_uid: str
    group: int
    number: int
    delivered_at: datetime
    machine: str
    mu: dict[int, Decimal]  # delivered MU per beam number
    ref: str = ""  # record id (ledger) or SOP Instance UID / file (OIS)
    centre: str = ""
    voided: bool = False
    # A treatment record (machine, MU per beam); False for a fraction known only from a treatment
    # summary, which states its date and nothing else.
    detailed: bool = True
    delivery_type: str = "TREATMENT"  # or CONTINUATION: the session resumed an interrupted fraction


class CourseKey(msgspec.Struct, frozen=True, kw_only=True):
    course_id: str
    patient_id: str
    plan_uids: list[str]  # the prescription's plan first, then fallback plans
    label: str = ""
    patient_ids: list[str] = []  # the patient's ids at other centres (the course's identity map)
    # plan uid -> {group: course fraction that is the plan's fraction 1}: an OIS record of a re-plan
    # counts in the re-plan's own numbering
    plan_starts: dict[str, dict[int, int]] = {}

    def in_course_numbering(self, s: Session) -> Session:
        start = self.plan_starts.get(s.plan_uid, {}).get(s.group, 1)
        return s if start == 1 else msgspec.structs.replace(s, number=start + s.number - 1)


class Fraction(msgspec.Struct, kw_only=True):
    group: int
    number: int
    first_at: datetime
    machines: list[str]
    mu: dict[int, Decimal]
    refs: list[str]
    centre: str = ""
    voided: bool = False
    detailed: bool = True


def merge(sessions: Iterable[Session]) -> dict[tuple[int, int], Fraction]:
    """One Fraction per (group, number); voided sessions only where nothing else is active."""
    out: dict[tuple[int, int], Fraction] = {}
    voided: dict[tuple[int, int], Fraction] = {}
    for s in sorted(sessions, key=lambda s: s.delivered_at):
        target = voided if s.voided else out
        key = (s.group, s.number)
        f = target.get(key)
        if f is None:
            target[key] = Fraction(group=s.group, number=s.number, first_at=s.delivered_at, machines=[s.machine],
                                   mu=dict(s.mu), refs=[s.ref], centre=s.centre, voided=s.voided, detailed=s.detailed)
            continue
        f.detailed = f.detailed or s.detailed
        if s.machine not in f.machines:
            f.machines.append(s.machine)
        for beam, mu in s.mu.items():
            f.mu[beam] = f.mu.get(beam, Decimal(0)) + mu
        f.refs.append(s.ref)
    for key, f in voided.items():
        out.setdefault(key, f)
    return out


def total_mu(sessions: Iterable[Session]) -> dict[int, Decimal]:
    out: dict[int, Decimal] = {}
    for s in sessions:
        for beam, mu in s.mu.items():
            out[beam] = out.get(beam, Decimal(0)) + mu
    return out


def same_mu(a: dict[int, Decimal], b: dict[int, Decimal], tolerance: Decimal) -> bool:
    return all(abs(a.get(k, Decimal(0)) - b.get(k, Decimal(0))) <= tolerance for k in set(a) | set(b))


def without(sessions: list[Session], gone: list[Session]) -> list[Session]:
    ids = {id(s) for s in gone}
    return [s for s in sessions if id(s) not in ids]


def unpaired(ours: list[Session], theirs: list[Session]) -> tuple[list[Session], list[Session]]:
    """The sessions of one fraction paired across the sides: same delivery type, nearest in time.
    Returns what stays unpaired on each side."""
    left = list(theirs)
    alone = []
    for s in sorted(ours, key=lambda s: s.delivered_at):
        same = [t for t in left if t.delivery_type == s.delivery_type]
        if not same:
            alone.append(s)
            continue
        nearest = min(same, key=lambda t: abs(t.delivered_at - s.delivered_at))
        left = without(left, [nearest])
    return alone, left


def lacking_sessions(ours: list[Session], theirs: list[Session], tolerance: Decimal) -> list[Session]:
    """The sessions of a fraction (e.g. the interrupted session or its continuation) that the
    `theirs` side lacks: unpaired on our side, and without them both sides' MU agree. An OIS that
    holds the fraction as one session with the sum of the MU lacks nothing."""
    alone, _ = unpaired(ours, theirs)
    if not alone or len(alone) == len(ours):
        return []
    rest = without(ours, alone)
    mine, other = total_mu(ours), total_mu(theirs)
    if same_mu(mine, other, tolerance) or not same_mu(total_mu(rest), other, tolerance):
        return []
    return alone


def differences(ledger: Fraction, ois: Fraction, tolerance: Decimal) -> list[dict[str, Any]]:
    """How the two sides of one fraction differ, as messages (codes and values)."""
    found = []
    if ledger.voided:
        found.append(said("reconcile.voided_in_ledger"))
    # Both days at the linac as the OIS states it (its offset, or the zone its records were read in):
    # the same moment written in UTC by one side and in local time by the other is the same day.
    ours, theirs = local_day(ledger.first_at, ois.first_at.tzinfo), ois.first_at.date()
    if ours != theirs:
        found.append(said("reconcile.date", ledger=ours.isoformat(), ois=theirs.isoformat()))
    # A treatment summary record names neither machine nor MU: compare only what the OIS states.
    theirs = {m.strip().upper() for m in ois.machines if m.strip()}
    if theirs and ledger.detailed and not theirs & {m.strip().upper() for m in ledger.machines}:
        found.append(said("reconcile.machine", ledger=", ".join(ledger.machines), ois=", ".join(ois.machines)))
    for beam in sorted(set(ledger.mu) | set(ois.mu)) if ois.detailed and ledger.detailed else ():
        a, b = ledger.mu.get(beam, Decimal(0)), ois.mu.get(beam, Decimal(0))
        if abs(a - b) > tolerance:
            found.append(said("reconcile.beam_mu", beam=beam, ledger=str(a), ois=str(b), tolerance=str(tolerance)))
    return found


def conflict(described: dict[str, Any], ois: dict[str, Any], found: list[dict[str, Any]]) -> dict[str, Any]:
    """A conflicting fraction: `differences` in English (what programs and logs read, as before),
    `differences_said` as codes for the reader's language."""
    return {**described, "ois": ois, "differences": [english(d) for d in found], "differences_said": found}


def describe(course: CourseKey, f: Fraction, side: str) -> dict[str, Any]:
    return {
        "course_id": course.course_id,
        "patient_id": course.patient_id,
        "plan_label": course.label,
        "group": f.group,
        "fraction_number": f.number,
        "centre": f.centre,
        "delivered_at": f.first_at.isoformat(),
        "machine": ", ".join(f.machines),
        "mu": {str(k): str(v) for k, v in sorted(f.mu.items())},
        "refs": f.refs,
        "side": side,
    }


class Reconciliation:
    """The comparison built one course at a time, so that a caller can hold one course of each
    side at a time (`adapters.recovery` streams them); `reconcile` gives it both sides whole.
    Courses are to be added in the order a physicist works (patient, plan label, course id),
    then what the OIS holds of no course, by patient and plan."""

    def __init__(self, *, restore_point: datetime | None = None, tolerance: Decimal = DEFAULT_MU_TOLERANCE):
        self.restore_point, self.tolerance = restore_point, tolerance
        self.missing: list[dict] = []
        self.unknown: list[dict] = []
        self.conflicts: list[dict] = []
        self.per_course: list[dict] = []
        self.only_ledger: list[dict] = []
        self.only_ois: list[dict] = []

    def add_course(self, course: CourseKey, ledger_sessions: list[Session], ois_sessions: list[Session]) -> None:
        """One course: its ledger sessions, and the OIS's sessions of its plans (in the plans'
        own numbering: a re-plan's are put in the course's here)."""
        restore_point, tolerance = self.restore_point, self.tolerance
        missing, unknown, conflicts = self.missing, self.unknown, self.conflicts
        ois_sessions = [course.in_course_numbering(s) for s in ois_sessions]
        ours = merge(ledger_sessions)
        theirs = merge(ois_sessions)
        sessions_of: dict[tuple[str, int, int], list[Session]] = defaultdict(list)
        for side, found in (("ledger", ledger_sessions), ("ois", ois_sessions)):
            for s in found:
                if s.detailed and not s.voided:
                    sessions_of[(side, s.group, s.number)].append(s)
        active = {k: f for k, f in ours.items() if not f.voided}
        if not theirs and active:
            self.only_ledger.append({"course_id": course.course_id, "patient_id": course.patient_id,
                                     "plan_label": course.label, "ledger_fractions": len(active)})
        row = {"course_id": course.course_id, "patient_id": course.patient_id, "plan_label": course.label,
               "ledger_fractions": len(active), "ois_fractions": len(theirs), "missing": 0, "unknown": 0,
               "conflicts": 0}
        for key in sorted(set(ours) | set(theirs)):
            mine, other = ours.get(key), theirs.get(key)
            # The OIS lacks a fraction's treatment record when it has nothing of it, or lists it
            # only in a summary while the ledger holds the session itself.
            summary_only = other is not None and not other.detailed and mine is not None and mine.detailed
            if mine is not None and (other is None or summary_only):
                if mine.voided:
                    if other is not None:
                        conflicts.append(conflict(describe(course, mine, "ledger"), describe(course, other, "ois"),
                                                  differences(mine, other, tolerance)))
                        row["conflicts"] += 1
                    continue
                item = describe(course, mine, "ledger")
                item["after_restore_point"] = bool(restore_point and mine.first_at > restore_point)
                item["ois_has_summary_only"] = summary_only
                missing.append(item)
                row["missing"] += 1
            elif mine is None and other is not None:
                unknown.append(describe(course, other, "ois"))
                row["unknown"] += 1
            elif mine is not None and other is not None:
                # A fraction of two sessions (interrupted, then its continuation) of which one side
                # lacks one: that session is missing (or unknown), the rest is compared.
                a, b = sessions_of.get(("ledger", *key), []), sessions_of.get(("ois", *key), [])
                if not mine.voided and mine.detailed and other.detailed:
                    lacking, extra = lacking_sessions(a, b, tolerance), lacking_sessions(b, a, tolerance)
                    if lacking:
                        item = describe(course, merge(lacking)[key], "ledger")
                        item["after_restore_point"] = bool(restore_point and min(
                            s.delivered_at for s in lacking) > restore_point)
                        item["ois_has_summary_only"] = False
                        item["missing_sessions"] = [s.delivery_type for s in lacking]
                        missing.append(item)
                        row["missing"] += 1
                        mine = merge(without(a, lacking))[key]
                    if extra:
                        item = describe(course, merge(extra)[key], "ois")
                        item["unknown_sessions"] = [s.delivery_type for s in extra]
                        unknown.append(item)
                        row["unknown"] += 1
                        other = merge(without(b, extra))[key]
                found = differences(mine, other, tolerance)
                if found:
                    conflicts.append(conflict(describe(course, mine, "ledger"), describe(course, other, "ois"), found))
                    row["conflicts"] += 1
        self.per_course.append(row)

    def add_ois_only(self, patient_id: str, plan_uid: str, sessions: list[Session]) -> None:
        """The OIS's sessions of a plan no course of the ledger has."""
        self.only_ois.append({"patient_id": patient_id, "plan_uid": plan_uid, "ois_fractions": len(merge(sessions))})

    def result(self) -> dict[str, Any]:
        per_course = self.per_course
        return {
            "totals": {
                "courses": len(per_course),
                "ledger_fractions": sum(r["ledger_fractions"] for r in per_course),
                "ois_fractions": sum(r["ois_fractions"] for r in per_course),
                "missing_in_ois": len(self.missing),
                "unknown_to_ledger": len(self.unknown),
                "conflicts": len(self.conflicts),
                "courses_only_in_ledger": len(self.only_ledger),
                "courses_only_in_ois": len(self.only_ois),
            },
            "restore_point": self.restore_point.isoformat() if self.restore_point else None,
            "mu_tolerance": str(self.tolerance),
            "missing_in_ois": self.missing,
            "unknown_to_ledger": self.unknown,
            "conflicts": self.conflicts,
            "courses": per_course,
            "courses_only_in_ledger": self.only_ledger,
            "courses_only_in_ois": self.only_ois,
        }


def course_order(course: CourseKey) -> tuple[str, str, str]:
    """The order a physicist works in: by patient, plan, course."""
    return course.patient_id, course.label, course.course_id


def reconcile(
    courses: Iterable[CourseKey],
    ledger_sessions: Iterable[Session],
    ois_sessions: Iterable[Session],
    *,
    restore_point: datetime | None = None,
    tolerance: Decimal = DEFAULT_MU_TOLERANCE,
) -> dict[str, Any]:
    """Compare; every list is in the order a physicist works: by patient, course, fraction."""
    courses = list(courses)
    by_plan = {(pid, uid): c for c in courses for uid in c.plan_uids for pid in (c.patient_id, *c.patient_ids)}
    ledger_by_course: dict[str, list[Session]] = defaultdict(list)
    ois_by_course: dict[str, list[Session]] = defaultdict(list)
    ois_only: dict[tuple[str, str], list[Session]] = defaultdict(list)
    for s in ledger_sessions:
        course = by_plan.get((s.patient_id, s.plan_uid))
        if course is not None:
            ledger_by_course[course.course_id].append(s)
    for s in ois_sessions:
        course = by_plan.get((s.patient_id, s.plan_uid))
        if course is None:
            ois_only[(s.patient_id, s.plan_uid)].append(s)
        else:
            ois_by_course[course.course_id].append(s)
    done = Reconciliation(restore_point=restore_point, tolerance=tolerance)
    for course in sorted(courses, key=course_order):
        done.add_course(course, ledger_by_course.get(course.course_id, []), ois_by_course.get(course.course_id, []))
    for (pid, uid), sessions in sorted(ois_only.items()):
        done.add_ois_only(pid, uid, sessions)
    return done.result()


def is_clean(result: dict[str, Any]) -> bool:
    t = result["totals"]
    return not (t["missing_in_ois"] or t["unknown_to_ledger"] or t["conflicts"] or t["courses_only_in_ois"])
