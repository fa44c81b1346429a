"""Replay to the home OIS as files: every delivered session, a summary per course, and the
partners' fallback plans, written under `out/<course id>/`.

Courses are taken one at a time and each file is written as soon as it is built, so memory
stays flat however long the log is. `since` selects fractions by when the ledger recorded
them (not when they were delivered): "everything since the last export".
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from pydicom.dataset import Dataset

from adapters.dicom.archive import load_plan_document, part10
from adapters.files import private_dir, write_private
from adapters.dicom.records import CourseView, beams_record, summary_record
from adapters.readmodel import ReadModel
from ledger.service import FractionLedger

KINDS = ("record", "summary", "plan")


@dataclass(frozen=True)
class Exported:
    kind: str  # record | summary | plan
    course_id: str
    sop_class_uid: str
    sop_instance_uid: str
    path: Path


def encode(ds: Dataset) -> bytes:
    """A Part 10 file, Explicit VR Little Endian: the same dataset always gives the same bytes."""
    return part10(ds)


def write(path: Path, content: bytes) -> None:
    """Unchanged files are not rewritten, so a repeated export leaves their times alone."""
    if path.exists() and path.stat().st_size == len(content) and path.read_bytes() == content:
        return
    tmp = path.with_suffix(".part")
    write_private(tmp, content)
    tmp.replace(path)


def export_course(app: FractionLedger, view: CourseView, out: Path, since: datetime | None = None,
                  kinds: tuple[str, ...] = KINDS) -> Iterator[Exported]:
    selected = [r for r in view.active() if since is None or (r.recorded_at and r.recorded_at >= since)]
    changed = since is None or selected or any(
        m and m >= since for r in view.records for m in (r.voided_at, r.verified_at)
    )
    folder = out / view.id
    if selected or changed:
        private_dir(folder)
    if "record" in kinds:
        for r in selected:
            ds = beams_record(view, r)
            path = folder / f"record_g{r.group}_f{r.number:03d}_{r.record_id[:8]}.dcm"
            write(path, encode(ds))
            yield Exported("record", view.id, str(ds.SOPClassUID), str(ds.SOPInstanceUID), path)
    if "summary" in kinds and changed:
        ds = summary_record(view)
        path = folder / "summary.dcm"
        write(path, encode(ds))
        yield Exported("summary", view.id, str(ds.SOPClassUID), str(ds.SOPInstanceUID), path)
    if "plan" in kinds:
        used = {r.plan_uid for r in selected}
        for plan in view.plans[1:]:
            if since is not None and plan.uid not in used:
                continue
            document = load_plan_document(app, plan.uid)
            if document is None:  # registered by hand, without a file: nothing to return
                continue
            path = folder / f"plan_{plan.uid}.dcm"
            write(path, document.content())
            yield Exported("plan", view.id, "1.2.840.10008.5.1.4.1.1.481.5", plan.uid, path)


def export_all(app: FractionLedger, read: ReadModel, out: Path, course_id: str | None = None,
               since: datetime | None = None, kinds: tuple[str, ...] = KINDS) -> Iterator[Exported]:
    private_dir(out)
    ids = [course_id] if course_id else [c["id"] for c in read.courses()]
    for cid in ids:
        view = CourseView.of(app.get_course(cid))
        yield from export_course(app, view, out, since, kinds)
