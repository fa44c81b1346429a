"""Prescription amendments: what a doctor decides after an interruption, under four eyes.

A prescriber (an oncologist, or a physicist where the centre allows it: `ledger.access`)
proposes an amendment with a reason: a fraction group's number of fractions changes
(`fractions`: the new number; `extra_fractions`: so many more), or a compensation day is added
to the schedule (`twice_daily`: two fractions that day, at least 6 hours apart;
`treatment_day`: one fraction on a day the schedule does not treat, e.g. a Saturday). It
changes nothing until a second person, another prescriber or a physicist, countersigns it.
From then on the rules of `ledger/course.py` count against the amended prescription
(`Course.prescription`, `Course.group`): fraction N+1 of a group amended from N to N+1 is
accepted, N+2 refused. The original plan and every amendment (who, why, who countersigned,
before and after) stay in the course's history.

Part of the `Course` aggregate (a mixin): the events `PrescriptionAmended` and
`AmendmentCountersigned` are defined on `Course`.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

import msgspec

from ledger import errors
from ledger import schedule as schedules
from schemas.course import FractionGroup, Plan
from schemas.prescription import AmendPrescription, Amendment
from schemas.schedule import Schedule

COUNT_KINDS = ("fractions", "extra_fractions")
DAY_FRACTIONS = {"twice_daily": 2, "treatment_day": 1}


def prescribed_plan(plan: Plan, prescribed: dict[int, int]) -> Plan:
    """The plan with each fraction group's number of fractions as amended."""
    if not prescribed:
        return plan
    groups = [msgspec.structs.replace(g, fractions_planned=prescribed.get(g.number, g.fractions_planned))
              for g in plan.fraction_groups]
    return msgspec.structs.replace(plan, fraction_groups=groups)


def dose_of(groups: Iterable[FractionGroup], delivered: Iterable[tuple[int, int]]) -> tuple[Decimal | None, Decimal | None]:
    """(prescribed, delivered) dose in Gy of a prescription's groups (as amended) and the delivered
    fractions (group, number), where every group gives a dose per fraction; else (None, None)."""
    groups = list(groups)
    if not groups or any(g.dose_gy is None for g in groups):
        return None, None
    per = {g.number: g.dose_gy for g in groups}
    prescribed = sum((g.dose_gy * g.fractions_planned for g in groups), Decimal(0))
    return prescribed, sum((per.get(grp, Decimal(0)) for grp, _ in set(delivered)), Decimal(0))


def next_planned(groups: Iterable[FractionGroup], delivered: Iterable[tuple[int, int]]) -> tuple[int, int] | None:
    """The next fraction the prescription plans: the first missing number of its first incomplete group."""
    done = set(delivered)
    for g in groups:
        missing = next((n for n in range(1, g.fractions_planned + 1) if (g.number, n) not in done), None)
        if missing is not None:
            return g.number, missing
    return None


def amended_schedule(schedule: Schedule, amendments: Iterable[Amendment]) -> Schedule:
    """The schedule with the compensation days of the countersigned amendments, in the order
    they were countersigned (a later one for the same day wins)."""
    signed = sorted((a for a in amendments if a.countersigned_at and a.kind in DAY_FRACTIONS),
                    key=lambda a: a.countersigned_at or "")
    for a in signed:
        schedule = schedule.with_day(a.day, DAY_FRACTIONS[a.kind])
    return schedule


def signed_at(meta: dict) -> str:
    """When a countersignature was given: at this ledger, or where a bundle says it was recorded."""
    when = (meta.get("bundle") or {}).get("recorded_at") or meta["recorded_at"]
    return when.isoformat(timespec="seconds") if hasattr(when, "isoformat") else str(when)


class Prescriptions:
    """Needs the Course's `plan`, `status`, `delivered_numbers`, `only_group`, `id`, `version`,
    `original_schedule_in` and the events `_amendment_proposed`, `_amendment_countersigned`."""

    amendments: list[Amendment]
    prescribed: dict[int, int]  # group -> fractions planned, as countersigned amendments left it

    @property
    def prescription(self) -> Plan:
        """The prescription in force: the registered plan with every countersigned amendment."""
        return prescribed_plan(self.plan, self.prescribed)  # type: ignore[attr-defined]

    def dose(self) -> tuple[Decimal | None, Decimal | None]:
        """(prescribed, delivered) dose in Gy, against the prescription in force, where the plan
        gives every fraction group a dose per fraction; else (None, None)."""
        return dose_of(self.prescription.fraction_groups,
                       ((r.group, r.number) for r in self.active_records()))  # type: ignore[attr-defined]

    def original_fractions_planned(self) -> int:
        return sum(g.fractions_planned for g in self.plan.fraction_groups)  # type: ignore[attr-defined]

    def pending_amendments(self) -> list[Amendment]:
        return [a for a in self.amendments if a.countersigned_by is None]

    def amendment(self, amendment_id: str) -> Amendment:
        for a in self.amendments:
            if a.id == amendment_id:
                return a
        raise errors.AmendmentNotFound("amendment_not_found.no_amendment", amendment=amendment_id,
                                       course=self.plan.label)  # type: ignore[attr-defined]

    # ---- rules -------------------------------------------------------------------------------

    def check_can_amend(self) -> None:
        if self.status == "completed":  # type: ignore[attr-defined]
            raise errors.LifecycleConflict("amendment.course_completed", course=self.plan.label)  # type: ignore[attr-defined]

    def check_not_below_delivered(self, group: int, after: int) -> None:
        """A group cannot be amended to fewer fractions than the highest one already delivered."""
        done = self.delivered_numbers(group)  # type: ignore[attr-defined]
        highest = max(done, default=0)
        if after < highest:
            raise errors.AmendmentConflict(
                "amendment.below_delivered", group=group, course=self.plan.label, after=after,  # type: ignore[attr-defined]
                highest=highest, conflict={"group": group, "after": after, "highest_delivered": highest},
            )

    def count_after(self, cmd: Any, group: FractionGroup) -> int:
        return cmd.fractions if cmd.kind == "fractions" else group.fractions_planned + cmd.fractions

    # ---- commands ------------------------------------------------------------------------------

    def amend(self, cmd: AmendPrescription, meta: dict, zone: Any = "UTC") -> Amendment:
        """Record a proposed amendment (it changes nothing before `countersign`)."""
        self.check_can_amend()
        if not cmd.reason.strip():
            raise errors.InvalidCommand("reason", "invalid.amendment_needs_reason")
        group_no, before, after = cmd.group, None, None
        if cmd.kind in COUNT_KINDS:
            if cmd.fractions is None:
                raise errors.InvalidCommand("fractions", "invalid.amendment_needs_fractions", kind=cmd.kind)
            group = self.group(cmd.group) if cmd.group is not None else self.only_group()  # type: ignore[attr-defined]
            group_no, before, after = group.number, group.fractions_planned, self.count_after(cmd, group)
            if after == before:
                raise errors.InvalidCommand("fractions", "invalid.amendment_changes_nothing", group=group.number,
                                            fractions=before)
            self.check_not_below_delivered(group.number, after)
        else:
            if cmd.day is None:
                raise errors.InvalidCommand("day", "invalid.amendment_needs_day", kind=cmd.kind)
            intended = self.original_schedule_in(zone)  # type: ignore[attr-defined]
            now = amended_schedule(intended, self.amendments)
            if cmd.day < intended.start:
                raise errors.InvalidCommand("day", "invalid.day_before_schedule", day=cmd.day.isoformat(),
                                            start=intended.start.isoformat())
            if schedules.fractions_on(now, cmd.day) >= DAY_FRACTIONS[cmd.kind]:
                raise errors.InvalidCommand("day", "invalid.day_already_treats", day=cmd.day.isoformat(),
                                            fractions=schedules.fractions_on(now, cmd.day))
        amendment = Amendment(
            id=str(uuid.uuid5(self.id, f"amendment/{self.version + 1}/{meta['recorded_at'].isoformat()}")),  # type: ignore[attr-defined]
            kind=cmd.kind, reason=cmd.reason, by=meta["user"], centre=meta["centre"],
            at=meta["recorded_at"].isoformat(timespec="seconds"), group=group_no,
            fractions=cmd.fractions if cmd.kind in COUNT_KINDS else None,
            day=cmd.day if cmd.kind in DAY_FRACTIONS else None, before=before, after=after,
        )
        self._amendment_proposed(amendment=msgspec.to_builtins(amendment), meta=meta)  # type: ignore[attr-defined]
        return self.amendments[-1]

    def countersign(self, amendment_id: str, meta: dict) -> Amendment:
        """A second person makes an amendment take effect: never the one who proposed it."""
        found = self.amendment(amendment_id)
        if found.countersigned_by is not None:
            raise errors.AmendmentConflict(
                "amendment.already_countersigned", amendment=found.id, by=found.countersigned_by,
                at=found.countersigned_at, conflict=msgspec.to_builtins(found),
            )
        if meta["user"] == found.by:
            raise errors.CountersignerIsPrescriber(
                "countersigner_is_prescriber.same_person", by=found.by, course=self.plan.label,  # type: ignore[attr-defined]
                conflict=msgspec.to_builtins(found),
            )
        self.check_can_amend()
        before = after = None
        if found.kind in COUNT_KINDS:
            group = self.group(found.group)  # type: ignore[attr-defined]
            before, after = group.fractions_planned, self.count_after(found, group)
            self.check_not_below_delivered(group.number, after)
        self._amendment_countersigned(amendment_id=found.id, before=before, after=after, meta=meta)  # type: ignore[attr-defined]
        return self.amendment(found.id)

    # ---- received from another centre's ledger (a bundle: ledger/service_trust.py) ---------------

    def receive_amendment(self, amendment: Amendment, meta: dict) -> bool:
        """An amendment proposed at another centre, with its own id; the same one again changes nothing."""
        if any(a.id == amendment.id for a in self.amendments):
            return False
        fresh = msgspec.structs.replace(amendment, countersigned_by=None, countersigned_centre=None,
                                        countersigned_at=None)
        self._amendment_proposed(amendment=msgspec.to_builtins(fresh), meta=meta)  # type: ignore[attr-defined]
        return True

    def receive_countersign(self, amendment_id: str, before: int | None, after: int | None, meta: dict) -> bool:
        """A countersignature given at another centre (its four eyes were checked there): the
        amendment takes effect here with the count it gave there."""
        found = self.amendment(amendment_id)
        if found.countersigned_by is not None:
            return False
        self._amendment_countersigned(amendment_id=found.id, before=before, after=after, meta=meta)  # type: ignore[attr-defined]
        return True

    # ---- facts -------------------------------------------------------------------------------------

    def apply_amendment(self, amendment: dict) -> None:
        self.amendments.append(msgspec.convert(amendment, Amendment, strict=False))

    def apply_countersign(self, amendment_id: str, before: int | None, after: int | None, meta: dict) -> None:
        changes = {"countersigned_by": meta["user"], "countersigned_centre": meta["centre"],
                   "countersigned_at": signed_at(meta)}
        if after is not None:
            changes.update(before=before, after=after)
        self.amendments = [msgspec.structs.replace(a, **changes) if a.id == amendment_id else a
                           for a in self.amendments]
        done = self.amendment(amendment_id)
        if after is not None and done.group is not None:
            self.prescribed = {**self.prescribed, done.group: after}
