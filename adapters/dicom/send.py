"""C-STORE to the home OIS, remembering per destination what it accepted.

Each answer is recorded in the log (the `ledger.delivery.Destination` stream shared with the
HL7 replay), in small batches while the send runs: a second send skips what was accepted and retries what was refused, and a send
that is interrupted resumes where it stopped. At most one batch of answers can be lost in a
crash; those instances are sent again, which is safe because the same log gives the same
UIDs and bytes (the receiver stores the same instance again).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from pynetdicom import AE
from pynetdicom.status import GENERAL_STATUS, STORAGE_SERVICE_CLASS_STATUS, code_to_category
from pydicom.uid import ExplicitVRLittleEndian, RTBeamsTreatmentRecordStorage, RTPlanStorage, RTTreatmentSummaryRecordStorage

from adapters.dicom.export import Exported
from ledger.service import Actor, FractionLedger

SOP_CLASSES = (RTBeamsTreatmentRecordStorage, RTTreatmentSummaryRecordStorage, RTPlanStorage)
BATCH = 50


class SendFailed(Exception):
    """The association could not be made or was lost; what was answered is recorded."""


def destination_name(host: str, port: int, called_aet: str) -> str:
    """Where a destination is (shown beside its name); not what its answers are kept under."""
    return f"dicom://{called_aet}@{host}:{port}"


def stream_name(name: str) -> str:
    """The `Destination` stream of a configured DICOM destination: keyed by its name, so moving
    the OIS to another host or port keeps what it accepted (HL7 destinations: by name too)."""
    return f"dicom/{name}"


def accepted_by(app: FractionLedger, name: str, address: str | None = None) -> dict[str, str]:
    """What the named destination accepted, with what a ledger from before name keys recorded
    under its address (`dicom://AET@host:port`): an upgrade does not send everything again."""
    found = app.destinations.destination(stream_name(name))
    legacy = app.destinations.destination(address) if address else None
    return {**(legacy.accepted if legacy else {}), **(found.accepted if found else {})}


def describe_status(code: int) -> str:
    known = STORAGE_SERVICE_CLASS_STATUS.get(code) or GENERAL_STATUS.get(code)
    return known[1] if known else code_to_category(code)


@dataclass
class SendReport:
    destination: str
    address: str = ""
    sent: int = 0
    accepted: int = 0
    already_accepted: int = 0
    refused: list[dict] = field(default_factory=list)
    error: str | None = None

    def to_dict(self) -> dict:
        return {"destination": self.destination, "address": self.address, "sent": self.sent, "accepted": self.accepted,
                "already_accepted": self.already_accepted, "refused": self.refused, "error": self.error}


class Sender:
    """One association to one destination, opened on the first instance that needs sending."""

    def __init__(self, host: str, port: int, called_aet: str, calling_aet: str, timeout: float = 30):
        self.host, self.port, self.called_aet = host, port, called_aet
        self.ae = AE(ae_title=calling_aet)
        self.ae.acse_timeout = self.ae.dimse_timeout = self.ae.network_timeout = timeout
        for sop_class in SOP_CLASSES:
            # Only the syntax the files are written in: the receiver gets the exported bytes.
            self.ae.add_requested_context(sop_class, ExplicitVRLittleEndian)
        self.assoc = None

    def store(self, item: Exported) -> tuple[int, str]:
        if self.assoc is None or not self.assoc.is_established:
            self.assoc = self.ae.associate(self.host, self.port, ae_title=self.called_aet)
            if not self.assoc.is_established:
                self.assoc = None
                raise SendFailed(
                    f"no association with {self.called_aet} at {self.host}:{self.port} (refused, rejected or unreachable)"
                )
        status = self.assoc.send_c_store(item.path)
        if "Status" not in status:
            self.assoc = None
            raise SendFailed(f"{self.called_aet} at {self.host}:{self.port} gave no answer (timeout or abort)")
        comment = str(status.get("ErrorComment", "") or "")
        return int(status.Status), comment

    def close(self) -> None:
        if self.assoc is not None and self.assoc.is_established:
            self.assoc.release()
        self.assoc = None


def send_all(app: FractionLedger, items: Iterable[Exported], destination: str, host: str, port: int,
             called_aet: str, calling_aet: str, actor: Actor, limit: int | None = None,
             progress: Callable[[Exported, str], None] | None = None, timeout: float = 30) -> SendReport:
    """Send every item the named destination has not accepted yet (at most `limit` of them)."""
    address = destination_name(host, port, called_aet)
    name = stream_name(destination)
    accepted = set(accepted_by(app, destination, address))
    report = SendReport(destination, address)
    sender = Sender(host, port, called_aet, calling_aet, timeout)
    answers: list[dict] = []

    def flush() -> None:
        if answers:
            app.destinations.record_answers(name, [a["uid"] for a in answers if a["accepted"]],
                               [{"id": a["uid"], "code": a["status"], "text": a["reason"],
                                 "course": str(a["course_id"]) if a.get("course_id") else None}
                                for a in answers if not a["accepted"]], actor)
            answers.clear()

    try:
        for item in items:
            if item.sop_instance_uid in accepted:
                report.already_accepted += 1
                if progress:
                    progress(item, "already accepted")
                continue
            if limit is not None and report.sent >= limit:
                break
            code, comment = sender.store(item)
            report.sent += 1
            ok = code_to_category(code) in ("Success", "Warning")
            answer = {"uid": item.sop_instance_uid, "kind": item.kind, "course_id": item.course_id,
                      "accepted": ok, "status": f"0x{code:04X}",
                      "reason": describe_status(code) + (f": {comment}" if comment else "")}
            answers.append(answer)
            if ok:
                report.accepted += 1
            else:
                report.refused.append({**answer, "file": str(item.path)})
            if progress:
                progress(item, "accepted" if ok else f"refused {answer['status']}")
            if len(answers) >= BATCH:
                flush()
    except SendFailed as exc:
        report.error = str(exc)
    finally:
        sender.close()
        flush()
    return report
