"""A DICOM Storage SCP: RT Plans and OIS records pushed to the ledger (C-STORE) as they are made.

Each object received goes through exactly the path of `import plan` / `import records`: written
as the Part 10 file it travelled as (`Event.encoded_dataset`, not decoded and re-encoded), then
`import_plan_file` or `Baseline.import_one`, which read it with `read_dataset` (completeness
checked) and apply the ledger's rules. Only the calling AE titles given (`allow`: AE title ->
centre) may associate; the centre is the home centre of courses their plans register, and the
AE title is the record's `aet` name for attribution (`centre alias add CENTRE --aet TITLE`).

The answer comes after the import call returned, so Success means the events are durable:
0x0000 imported or unchanged (the same object twice changes nothing), 0xB000 accepted with a
warning (ErrorComment says which), 0xC000 refused by the ledger or unreadable (ErrorComment:
the reason), 0x0110 when the ledger could not be reached. An object larger than
`adapters.files.DICOM_FILE` is refused unread; a deflated one is inflated within the bounds of
`read_dataset`. One lock serializes the imports of concurrent associations (the read model is
one local SQLite file).
"""

from __future__ import annotations

import logging
import socket
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydicom.dataset import Dataset
from pydicom.uid import RTBeamsTreatmentRecordStorage, RTPlanStorage, RTTreatmentSummaryRecordStorage
from pynetdicom import AE, ALL_TRANSFER_SYNTAXES, evt

from adapters.dicom.baseline import Baseline
from adapters.dicom.plans import SOP_NAMES, import_plan_file
from adapters.files import DICOM_FILE, size_text, write_private
from adapters.runtime import Ledger
from ledger.receipts import record_receipt
from ledger.service import Actor

ACCEPTED_CLASSES = (RTPlanStorage, RTBeamsTreatmentRecordStorage, RTTreatmentSummaryRecordStorage)
SUCCESS, WARNING = 0x0000, 0xB000
REFUSED = 0xC000  # "Cannot understand": the ledger's rules or the file refused it
NOT_SUPPORTED = 0x0122  # SOP class not supported
PROCESSING_FAILURE = 0x0110
COMMENT_LIMIT = 64  # ErrorComment is LO

log = logging.getLogger("fraction_ledger.listen")


def status(code: int, comment: str = "") -> Dataset:
    ds = Dataset()
    ds.Status = code
    if comment:
        text = " ".join(comment.split()).replace("\\", "/")
        ds.ErrorComment = text if len(text) <= COMMENT_LIMIT else text[:COMMENT_LIMIT - 3] + "..."
    return ds


def no_delay(event: Any) -> None:
    """Answer each C-STORE at once: without TCP_NODELAY a small answer can wait for the peer's
    delayed ACK (tens of milliseconds an object)."""
    try:
        event.assoc.dul.socket.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    except (AttributeError, OSError):
        pass


def parse_allow(values: list[str] | tuple[str, ...]) -> dict[str, str]:
    """`AET=CENTRE` pairs as a mapping; ValueError naming the bad one."""
    allow: dict[str, str] = {}
    for value in values:
        aet, sep, centre = value.partition("=")
        aet, centre = aet.strip(), centre.strip()
        if not sep or not aet or not centre:
            raise ValueError(f"{value!r}: expected AET=CENTRE, e.g. HOME-OIS=AZ-HOME")
        if len(aet) > 16:
            raise ValueError(f"{aet!r}: an AE title has at most 16 characters")
        allow[aet] = centre
    if not allow:
        raise ValueError("allow at least one calling AE title (AET=CENTRE)")
    return allow


class StorageSCP:
    """Start with `start()` (returns the bound port), stop with `stop()`; `answers` holds the
    import answer of every object received, with the calling AE title and the status sent.
    Each object answered leaves a receipt (`ledger.receipts`): the source's last word is known."""

    channel = "listen"

    def __init__(self, ledger: Ledger, allow: dict[str, str], aet: str = "LEDGER", host: str = "127.0.0.1",
                 port: int = 11112, user: str = "dicom-listener", deviation_reason: str | None = None,
                 on_answer: Callable[[dict], None] | None = None, timeout: float = 30):
        self.ledger = ledger
        self.allow = dict(allow)
        self.aet, self.host, self.port = aet, host, port
        self.user = user
        self.deviation_reason = deviation_reason
        self.on_answer = on_answer
        self.timeout = timeout
        self.lock = threading.Lock()
        self.answers: list[dict] = []
        self.server: Any = None

    # ---- lifecycle ---------------------------------------------------------------------------

    def start(self) -> int:
        ae = AE(ae_title=self.aet)
        ae.require_calling_aet = list(self.allow)
        for name in ("acse_timeout", "dimse_timeout", "network_timeout"):
            setattr(ae, name, self.timeout)
        ae.maximum_associations = 16
        for uid in ACCEPTED_CLASSES:
            ae.add_supported_context(uid, ALL_TRANSFER_SYNTAXES)
        self.server = ae.start_server((self.host, self.port), block=False,
                                      evt_handlers=[(evt.EVT_C_STORE, self.handle_store),
                                                    (evt.EVT_CONN_OPEN, no_delay)])
        self.port = self.server.server_address[1]
        return self.port

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server = None

    def __enter__(self) -> StorageSCP:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ---- one object --------------------------------------------------------------------------

    def source_of(self, event: Any) -> str:
        """The AE title that sent the object: here the caller; a pull's archive is the acceptor."""
        return str(event.assoc.requestor.ae_title).strip()

    def handle_store(self, event: Any) -> Dataset:
        calling = self.source_of(event)
        sop_class = str(event.request.AffectedSOPClassUID)
        answer: dict[str, Any] = {"aet": calling, "sop_instance_uid": str(event.request.AffectedSOPInstanceUID),
                                  "kind": SOP_NAMES.get(sop_class, sop_class)}
        try:
            reply = self.store(event, calling, sop_class, answer)
        except Exception as exc:  # noqa: BLE001 - the peer must get an answer, and it is not Success
            log.exception("C-STORE from %s failed", calling)
            answer.update(status="error", error=f"the ledger could not take it: {exc}")
            reply = status(PROCESSING_FAILURE, answer["error"])
        answer["dimse_status"] = f"0x{int(reply.Status):04X}"
        self.receipt(calling, answer, int(reply.Status))
        self.answers.append(answer)
        if self.on_answer:
            self.on_answer(answer)
        return reply

    def receipt(self, source: str, answer: dict, code: int) -> None:
        """Record what came and what the ledger answered; the answer stands if this fails."""
        status_word = "warning" if code == WARNING else answer.get("status", "error")
        try:
            record_receipt(self.ledger.app, source, self.channel, answer["kind"], answer["sop_instance_uid"],
                           answer.get("course_id"), status_word, Actor(user=self.user, centre="-"))
        except Exception:  # noqa: BLE001 - the object's own answer does not depend on its receipt
            log.exception("could not record the receipt of %s from %s", answer["sop_instance_uid"], source)

    def store(self, event: Any, calling: str, sop_class: str, answer: dict) -> Dataset:
        centre = self.allow.get(calling)
        if centre is None:  # require_calling_aet refuses it first; never import for an unknown caller
            answer.update(status="error", error=f"calling AE title {calling!r} is not allowed")
            return status(REFUSED, answer["error"])
        if sop_class not in ACCEPTED_CLASSES:
            answer.update(status="error", error=f"{answer['kind']} is not taken: only RT Plans and RT records")
            return status(NOT_SUPPORTED, answer["error"])
        encoded = event.encoded_dataset()
        if len(encoded) > DICOM_FILE:  # never written: the importers would refuse it anyway
            answer.update(status="error", error=f"too large: {len(encoded)} bytes, more than the "
                                                f"{size_text(DICOM_FILE)} a DICOM object may have here")
            return status(REFUSED, answer["error"])
        with tempfile.TemporaryDirectory(prefix="fraction-ledger-listen-") as tmp:
            path = Path(tmp) / f"{answer['sop_instance_uid'][:60]}.dcm"
            write_private(path, encoded)
            del encoded
            with self.lock:
                result = self.import_file(path, sop_class, calling, centre)
        result.pop("file", None)
        if "kind" in result:  # the importer's word (session, summary) beside the SOP class's name
            result["record"] = result.pop("kind")
        answer.update(result)
        if answer.get("status") == "error":
            return status(REFUSED, answer.get("error") or "refused")
        warning = answer.get("warning") or "; ".join(answer.get("skipped") or [])
        if warning:
            return status(WARNING, warning)
        return status(SUCCESS)

    def import_file(self, path: Path, sop_class: str, calling: str, centre: str) -> dict:
        return import_object(self.ledger, path, sop_class, calling, centre, self.user, self.deviation_reason)


def import_object(ledger: Ledger, path: Path, sop_class: str, source: str, centre: str, user: str,
                  deviation_reason: str | None = None) -> dict:
    """The importers of `import plan` and `import records`, unchanged: an RT Plan registers the
    course of `centre`, a record is attributed with `source` as the AE title it came from."""
    actor = Actor(user=user, centre=centre)
    if sop_class == RTPlanStorage:
        return import_plan_file(ledger.app, path, actor, centre)
    baseline = Baseline(ledger, actor, deviation_reason=deviation_reason)
    baseline.aet = source
    return baseline.import_one(path)
