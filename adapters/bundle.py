"""Bundle files: what one centre recorded while apart, signed and hash-chained, for another ledger.

The file is two lines of JSON:
  1. the bundle (schemas/trust.py `Bundle`), keys sorted: the exporting centre, its ledger's
     chain head, the courses, and the events, each event carrying `hash` =
     sha256(previous hash bytes + sorted-keys JSON of the event without `hash`), starting from
     64 zeros; `head` is the last event's hash;
  2. `{"signature": base64 Ed25519 over the exact bytes of line 1, "signed_by": centre, "key": fingerprint}`.
Signing the bytes as written means no re-encoding question on import. The chain lets a
refusal name the damaged event. A bundle holds patient data in clear: move it like any
other patient record (an encrypted medium or channel).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import msgspec

from adapters.chain import GENESIS, head_hash
from adapters.keys import fingerprint, load_private_key, public_key_text, sign, signature_valid
from ledger import errors
from ledger.course import Course
from schemas.course import to_event
from schemas.trust import BUNDLE_FORMAT, Bundle

TOPIC = "ledger.course:Course."
KINDS = ("FractionDelivered", "FractionVerified", "FractionVoided", "FallbackPlanAdded", "FallbackPlanApproved",
         # issue 17: what a partner needs to count against the amended prescription, on the same schedule
         "PrescriptionAmended", "AmendmentCountersigned", "ScheduleSet")
BATCH = 500


def canonical(value: Any) -> bytes:
    return msgspec.json.encode(value, order="sorted")


def event_hash(prev: str, event: dict) -> str:
    body = {k: v for k, v in event.items() if k != "hash"}
    return hashlib.sha256(bytes.fromhex(prev) + canonical(body)).hexdigest()


def _course_events(app: Any) -> Iterator[tuple[Any, Any]]:
    topics = [TOPIC + k for k in KINDS]
    start = 0
    while True:
        page = app.recorder.select_notifications(start, BATCH, topics=topics, inclusive_of_start=False)
        for n in page:
            yield n, app.mapper.to_domain_event(n)
        if len(page) < BATCH:
            return
        start = page[-1].id


def collect(app: Any, centre: str, since: datetime | None) -> list[dict]:
    """The events recorded at `centre` (not those it received from others), oldest first."""
    own: set[str] = set()  # record ids delivered at the centre: its verifications and voids of these travel
    out: list[dict] = []
    for n, e in _course_events(app):
        meta = e.meta
        kind = n.topic[len(TOPIC):]
        if kind == "FractionDelivered" and e.record["centre"] == centre and e.record["source"] != "bundle":
            own.add(e.record["record_id"])
        if meta.get("bundle") or (since is not None and meta["recorded_at"] < since):
            continue
        item: dict[str, Any] = {"type": kind, "key": f"{n.originator_id}/{n.originator_version}",
                                "course": str(n.originator_id), "user": meta["user"], "centre": meta["centre"],
                                "recorded_at": meta["recorded_at"]}
        if kind == "FractionDelivered":
            if e.record["record_id"] not in own:
                continue
            item |= {"centre": centre, "record": e.record}
        elif meta["centre"] != centre:
            continue
        elif kind == "FallbackPlanAdded":
            item["plan"] = e.plan
            starts = getattr(e, "starts_at", None)
            if starts:
                item["starts_at"] = {str(k): int(v) for k, v in starts.items()}
        elif kind == "FallbackPlanApproved":
            item["plan_uid"] = e.plan_uid
        elif kind == "PrescriptionAmended":
            item["amendment"] = e.amendment
        elif kind == "AmendmentCountersigned":
            item |= {"amendment_id": e.amendment_id, "before": e.before, "after": e.after}
        elif kind == "ScheduleSet":
            item |= {"schedule": e.schedule, "site": e.site}
        else:
            ids = [r for r in e.record_ids if r in own]
            if not ids:
                continue
            item |= {"record_ids": ids, "by": e.by} | ({"reason": e.reason} if kind == "FractionVoided" else {})
        out.append(item)
    return out


def course_entry(course: Course) -> dict:
    return {"id": str(course.id), "registration": {
        "patient": course.patient, "home_centre": course.home_centre, "plan": to_event(course.plan),
        "triage": course.triage, "assigned_centres": course.assigned_centres}}


def export_bundle(app: Any, centre: str, key_path: Any, since: datetime | None = None) -> tuple[bytes, dict]:
    """The signed file's bytes and a summary. The key must be the centre's registered key."""
    key = load_private_key(key_path)
    public = public_key_text(key.public_key())
    registered = app.trust.get_centre(centre).public_key
    if registered != public:
        raise errors.CentreConflict(
            "centre_conflict.not_key_registered_centre", key_path=key_path, centre=centre, fingerprint=fingerprint(registered) if registered else 'no key registered'
        )
    events = msgspec.to_builtins(collect(app, centre, since))
    prev = GENESIS
    for item in events:
        item["hash"] = prev = event_hash(prev, item)
    courses = [course_entry(app.get_course(cid)) for cid in dict.fromkeys(e["course"] for e in events)]
    doc = {"format": BUNDLE_FORMAT, "centre": centre, "exported_at": app.clock(), "since": since,
           "source_head": head_hash(app), "courses": courses, "events": events, "head": prev}
    body = canonical(msgspec.to_builtins(doc))
    trailer = canonical({"signature": sign(key, body), "signed_by": centre, "key": fingerprint(public)})
    summary = {"centre": centre, "events": len(events), "courses": len(courses), "head": prev,
               "source_head": doc["source_head"], "key": fingerprint(public)}
    return body + b"\n" + trailer + b"\n", summary


def read_bundle(app: Any, data: bytes) -> Bundle:
    """Check a bundle file against the ledger's key for its centre and its own chain; the
    typed bundle, or BundleRefused naming the reason (nothing is applied then)."""
    lines = [line for line in data.split(b"\n") if line.strip()]
    if len(lines) != 2:
        raise errors.BundleRefused("bundle_refused.not_bundle_file_expected", n_lines=len(lines))
    body, trailer = lines
    try:
        raw, seal = msgspec.json.decode(body), msgspec.json.decode(trailer)
    except msgspec.DecodeError as exc:
        raise errors.BundleRefused("bundle_refused.not_bundle_file", exc=exc) from None
    if not isinstance(raw, dict) or raw.get("format") != BUNDLE_FORMAT or not isinstance(seal, dict):
        raise errors.BundleRefused("bundle_refused.not_bundle_file_format", bundle_format=BUNDLE_FORMAT)
    centre = str(raw.get("centre"))
    try:
        public = app.trust.get_centre(centre).public_key
    except errors.CentreNotFound as exc:
        raise errors.BundleRefused("bundle_refused.signed_unknown_centre", exc=exc) from None
    if public is None:
        raise errors.BundleRefused("bundle_refused.centre_has_no_public", centre=centre, centre2=centre)
    if seal.get("signed_by") != centre or not signature_valid(public, body, str(seal.get("signature", ""))):
        raise errors.BundleRefused(
            "bundle_refused.signature_does_not_match", centre=centre, fingerprint=fingerprint(public)
        )
    prev = GENESIS
    for i, item in enumerate(raw.get("events") or [], 1):
        if not isinstance(item, dict) or event_hash(prev, item) != item.get("hash"):
            key = item.get("key") if isinstance(item, dict) else "?"
            raise errors.BundleRefused("bundle_refused.event_does_not_match", i=i, key=key)
        prev = item["hash"]
    if raw.get("head") != prev:
        raise errors.BundleRefused("bundle_refused.bundle_s_head_does")
    try:
        return msgspec.convert(raw, Bundle, strict=False)
    except msgspec.ValidationError as exc:
        raise errors.BundleRefused("bundle_refused.malformed_bundle", exc=exc) from None
