"""The partners' fallback RT Plans, kept whole in the log so that they can be returned.

The SLA says the partner returns its completed plans. The course only holds what the ledger
needs of a plan (`schemas.course.Plan`); the document itself lives in its own stream, one
per plan UID, so that loading a course never pays for a multi-megabyte VMAT plan. Stored
compressed, as a Part 10 file (Explicit VR Little Endian, file meta rebuilt), so that the
export is the same bytes every time.
"""

from __future__ import annotations

import base64
import hashlib
import io
import uuid
import zlib
from typing import Any

from eventsourcing.application import AggregateNotFoundError
from eventsourcing.domain import Aggregate, event
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian

from adapters.files import DICOM_DATASET, MIB, size_text
from ledger.course import NAMESPACE
from ledger.service import Actor, FractionLedger


def document_id(uid: str) -> uuid.UUID:
    return uuid.uuid5(NAMESPACE, f"plan-document/{uid}")


class PlanDocument(Aggregate):
    @staticmethod
    def create_id(uid: str, **_: Any) -> uuid.UUID:
        return document_id(uid)

    @event("Stored")
    def __init__(self, uid: str, sha256: str, data: str, meta: dict):
        self.uid = uid
        self.sha256 = sha256
        self.data = data

    def content(self) -> bytes:
        """The Part 10 file, inflated within the bound of any DICOM read (`adapters.files`): it
        was stored from a bounded read, so more means the log was tampered with."""
        inflater = zlib.decompressobj()
        limit = DICOM_DATASET + MIB  # the data set, re-encoded, and its file meta
        data = inflater.decompress(base64.b64decode(self.data), limit + 1)
        if len(data) > limit or not inflater.eof:
            raise ValueError(f"plan document {self.uid}: not a stored plan of at most {size_text(limit)}")
        return data


def part10(ds: Dataset) -> bytes:
    """The dataset as a conformant Part 10 file: file meta rebuilt from the dataset itself
    (backed-up plans often lack it, or carry a MediaStorageSOPInstanceUID of another file)."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = ds.SOPClassUID
    meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta = meta
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True, implicit_vr=False, little_endian=True)
    return buffer.getvalue()


def store_plan_document(app: FractionLedger, ds: Dataset, actor: Actor) -> bool:
    """Keep the plan's file; storing the same plan again changes nothing."""
    content = part10(ds)
    digest = hashlib.sha256(content).hexdigest()
    uid = str(ds.SOPInstanceUID)

    def act(meta: dict) -> tuple[list[Any], Any]:
        if load_plan_document(app, uid) is not None:
            return [], False
        data = base64.b64encode(zlib.compress(content, 6)).decode()
        return [PlanDocument(uid=uid, sha256=digest, data=data, meta=meta)], True

    return app.uow.run("store_plan_document", {"uid": uid, "sha256": digest}, actor, None, act)


def load_plan_document(app: FractionLedger, uid: str) -> PlanDocument | None:
    try:
        found = app.repository.get(document_id(uid))
    except AggregateNotFoundError:
        return None
    return found if isinstance(found, PlanDocument) else None
