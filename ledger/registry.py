"""The centre registry: which centres the network has, their names, machines and techniques.

One stream holds the whole registry, so that "is this centre known?" is one read and two
physicists registering at the same moment are serialised by the log. A centre's time zone and
aliases stay on its `Centre` stream (`ledger.centre`), where the DICOM attribution reads them.

Once one centre is registered, every centre a command names must be: assigning a course,
logging a fraction, registering a course, creating an account, a partner's capacity, a bundle's
records. A ledger whose registry is still empty (a fresh one being set up, or one made before
the registry existed) accepts any code, as it always did.
"""

from __future__ import annotations

import difflib
import uuid
from typing import Any

from eventsourcing.domain import Aggregate, event

from ledger import errors
from ledger.course import NAMESPACE
from schemas.outage import TECHNIQUES

REGISTRY_ID = uuid.uuid5(NAMESPACE, "centre-registry")


class CentreRegistry(Aggregate):
    @staticmethod
    def create_id(**_: Any) -> uuid.UUID:
        return REGISTRY_ID

    @event("Opened")
    def __init__(self, *, meta: dict):
        self.centres: dict[str, dict] = {}  # code -> {"code", "name", "machines": {name: {name, model, techniques}}}

    def knows(self, code: str) -> bool:
        return code in self.centres

    def check_known(self, code: str, field: str = "centre") -> None:
        if code not in self.centres:
            close = difflib.get_close_matches(code, list(self.centres), n=1, cutoff=0.6)
            raise errors.UnknownCentre(
                "unknown_centre.not_registered" if not close else "unknown_centre.did_you_mean",
                field=field, centre=code, known=", ".join(sorted(self.centres)), suggestion=close[0] if close else "",
                conflict={"centre": code, "known": sorted(self.centres)},
            )

    def register(self, code: str, name: str, machines: list[dict], meta: dict) -> bool:
        """A new centre; the same again changes nothing; another name is a rename."""
        known = self.centres.get(code)
        changed = False
        if known is None:
            self._registered(code=code, name=name, meta=meta)
            changed = True
        elif known["name"] != name:
            self._renamed(code=code, name=name, meta=meta)
            changed = True
        for machine in machines:
            changed = self.set_machine(code, machine, meta) or changed
        return changed

    def set_machine(self, code: str, machine: dict, meta: dict) -> bool:
        self.check_known(code)
        if self.centres[code]["machines"].get(machine["name"]) == machine:
            return False
        self._machine_set(code=code, machine=machine, meta=meta)
        return True

    def remove_machine(self, code: str, name: str, meta: dict) -> bool:
        self.check_known(code)
        if name not in self.centres[code]["machines"]:
            raise errors.InvalidCommand("machine", "invalid.machine_not_at_centre", machine=name, centre=code)
        self._machine_removed(code=code, name=name, meta=meta)
        return True

    def machines(self, code: str) -> list[dict]:
        return sorted(self.centres.get(code, {}).get("machines", {}).values(), key=lambda m: m["name"])

    def check_machines(self, code: str, names: list[str]) -> None:
        own = self.centres[code]["machines"]
        for name in names:
            if name not in own:
                raise errors.InvalidCommand("machines", "invalid.machine_not_at_centre", machine=name, centre=code)

    @event("CentreRegistered")
    def _registered(self, code: str, name: str, meta: dict) -> None:
        self.centres[code] = {"code": code, "name": name, "machines": {}}

    @event("CentreRenamed")
    def _renamed(self, code: str, name: str, meta: dict) -> None:
        self.centres[code]["name"] = name

    @event("MachineSet")
    def _machine_set(self, code: str, machine: dict, meta: dict) -> None:
        self.centres[code]["machines"][machine["name"]] = dict(machine)

    @event("MachineRemoved")
    def _machine_removed(self, code: str, name: str, meta: dict) -> None:
        del self.centres[code]["machines"][name]


def technique_of(plan: Any) -> str:
    """The technique a course's plan needs, from its beams: electrons if any treatment beam is an
    electron beam, VMAT if any is dynamic (arcs, sliding window), else static. A plan may name
    it itself (`source["technique"]`, e.g. SRS or IMRT, which the beams alone do not tell)."""
    named = (getattr(plan, "source", None) or {}).get("technique", "")
    if named in TECHNIQUES:
        return named
    beams = [b for g in plan.fraction_groups for b in g.beams if b.delivery_type == "TREATMENT"]
    if any((b.radiation_type or "").upper() == "ELECTRON" for b in beams):
        return "electrons"
    if any(b.beam_type == "DYNAMIC" for b in beams):
        return "VMAT"
    return "static"


def techniques_of(machines: list[dict]) -> set[str]:
    return {t for m in machines for t in m["techniques"]}
