"""Replaying the log into HL7 messages, and writing them to a folder.

Courses and fractions come from the read model (one course at a time, so memory stays
flat); the completion time of a course comes from its StatusChanged event. Whether a
voided fraction needs a credit depends on what billing may hold: the billing
destination's record in the log (exported to a folder, or accepted over MLLP).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

from adapters.files import private_dir, write_private
from adapters.hl7.messages import Hl7Message, MessageBuilder
from adapters.hl7.pdf import treatment_summary
from adapters.runtime import Ledger
from ledger import errors
from ledger.service import Actor

COMPLETED = "completed"
# The hook for incidents (another part of the ledger): course id -> list of incident dicts.
IncidentSource = Callable[[str], list[dict]]


def no_incidents(course_id: str) -> list[dict]:
    return []


def ledger_incidents(read: Any) -> IncidentSource:
    """The course's incidents from the read model (near-misses included), as the summary lists them."""

    def source(course_id: str) -> list[dict]:
        return [
            {"at": i["occurred_at"] or i["registered_at"], "centre": i["centre"], "severity": i["severity"],
             "summary": f"{i['category']}: {i['description']} ({i['status']})"}
            for i in read.incidents_for_course(course_id)
        ]

    return source


def completed_at(ledger: Ledger, course_id: str) -> datetime | None:
    """When the course was completed, as recorded by its StatusChanged event."""
    for e in ledger.app.repository.event_store.get(uuid.UUID(course_id), desc=True):
        if type(e).__name__ == "StatusChanged" and e.status == COMPLETED:
            return e.meta["recorded_at"]
    return None


def course_messages(
    ledger: Ledger,
    builder: MessageBuilder,
    course_id: str | None = None,
    since: datetime | None = None,
    destinations: set[str] | None = None,
    incidents: IncidentSource | None = None,
    lang: str = "en",
) -> Iterator[Hl7Message]:
    """Every message the log yields, course by course, in a stable order. The summary lists the
    course's incidents from the ledger unless `incidents` gives another source; the summary PDF
    is written in `lang` (its reader's language; the HL7 fields stay as they are)."""
    read = ledger.fresh()
    incidents = incidents or ledger_incidents(read)
    if course_id is not None:
        if read.course(course_id) is None:
            raise errors.CourseNotFound("course_not_found.no_course_with_id", course_id=course_id)
        ids = [course_id]
    else:
        ids = [c["id"] for c in read.courses()]
    config = builder.config

    def wanted(kind: str) -> bool:
        name = config.destination_of(kind)
        return name is not None and (destinations is None or name in destinations)

    billing = config.destination_of("DFT")
    held = ledger.app.destinations.destination(billing) if billing else None
    may_hold = held.may_hold if held is not None else (lambda _: False)
    for cid in ids:
        course = read.course(cid)
        out: list[Hl7Message] = []
        if wanted("DFT"):
            out.extend(builder.charges(course, may_hold))
        if course["status"] == COMPLETED and (wanted("MDM") or wanted("ADT")):
            done = completed_at(ledger, cid)
            if wanted("MDM"):
                out.append(builder.summary(course, done, treatment_summary(course, done, incidents(cid), lang)))
            if wanted("ADT"):
                out.append(builder.purge(course, done))
        for message in out:
            if since is None or message.at >= since:
                yield message


def export_to(ledger: Ledger, messages: Iterator[Hl7Message], out: Path, actor: Actor) -> dict[str, int]:
    """Write each message to OUT/<destination>/<control id>.hl7 (segments end with \\r,
    UTF-8 as MSH-18 says) and record them as exported for their destination."""

    def write(name: str, data: bytes) -> None:
        path = out / name
        private_dir(path.parent)
        write_private(path, data)

    return export_with(ledger, messages, write, str(out.resolve()), actor)


def export_with(ledger: Ledger, messages: Iterable[Hl7Message], write: Callable[[str, bytes], None], where: str,
                actor: Actor) -> dict[str, int]:
    """Hand each message to `write` as `<destination>/<control id>.hl7` (a folder, a zip...) and
    record them as exported for their destination, `where` naming the place."""
    counts: dict[str, int] = {}
    written: dict[str, list[str]] = {}
    for m in messages:
        write(f"{m.destination or 'unrouted'}/{m.control_id}.hl7", m.er7.encode("utf-8"))
        written.setdefault(m.destination, []).append(m.control_id)
        counts[m.kind] = counts.get(m.kind, 0) + 1
    for name, ids in written.items():
        ledger.app.destinations.record_export(name, ids, where, actor)
    return counts


def send_pending(ledger: Ledger, builder: MessageBuilder, sender, actor: Actor,
                 destinations: set[str] | None = None, course_id: str | None = None,
                 since: datetime | None = None, messages: Iterable[Hl7Message] | None = None,
                 lang: str = "en") -> dict:
    """Send every message its destination has not accepted; record each answer in the log.
    `messages` (already built, e.g. for one centre's courses) replaces the replay of the log.

    Returns a report: counts, and the refusals with the receiver's text. A send that fails
    (no ACK after every retry) still records every answer received before it, then raises."""
    from adapters.hl7.mllp import AnswerBook

    names = destinations or set(builder.config.destinations)
    state = {name: ledger.app.destinations.destination(name) for name in names}
    book = AnswerBook(lambda name, acc, ref: ledger.app.destinations.record_answers(name, acc, ref, actor))
    sent: dict[str, Hl7Message] = {}
    report: dict = {"sent": 0, "accepted": 0, "refused": [], "skipped": 0}

    def pending() -> Iterator[tuple[str, str]]:
        source = messages if messages is not None else course_messages(ledger, builder, course_id, since, names, lang=lang)
        for m in source:
            if m.destination not in names:
                continue
            held = state.get(m.destination)
            if held is not None and held.is_accepted(m.control_id):
                report["skipped"] += 1
                continue
            sent[m.control_id] = m
            report["sent"] += 1
            yield m.control_id, m.er7

    def on_answer(control_id: str, answer) -> None:
        m = sent.pop(control_id)
        book.add(m.destination, answer, str(m.course_id) if m.course_id else None)
        if answer.accepted:
            report["accepted"] += 1
        else:
            report["refused"].append({"control_id": control_id, "kind": m.kind, "course": m.course_id,
                                      "destination": m.destination, "code": answer.code, "text": answer.text})

    try:
        sender.send(pending(), on_answer)
    finally:
        book.flush()
    return report
