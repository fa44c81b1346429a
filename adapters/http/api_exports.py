"""HL7 for the home physicists: the replayed messages as a zip download, a send to the
configured destinations, and what each destination accepted or refused (with its reason).

Only addresses in the server's HL7 configuration are reached (`serve --hl7-config`), never
one typed by a user. A send runs in a worker thread (the MLLP sender runs its own asyncio
loop there), so the server's event loop keeps answering; it is bounded by each
destination's ACK timeout and attempts and by the server's send deadline, and one send
runs at a time. What a receiver answered is recorded as it comes, so a send stopped by the
deadline resumes where it stopped.
"""

from __future__ import annotations

import io
import threading
import time
import zipfile
from datetime import datetime
from pathlib import Path
from collections.abc import Iterable
from typing import Any

from litestar import Request, Response, Router, get, post
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import FromQuery, JSONBody

from adapters.http import access_log
from adapters.http.api_courses import backend
from adapters.http.api_incidents import safe
from adapters.http.auth import current
from adapters.http.backend import Backend, actor_of
from adapters.http.errors import READ, WRITE, documented
from adapters.http.i18n import language_of
from adapters.http.views import as_
from ledger import errors
from ledger.access import Principal
from schemas.api_ops import SendIn, SendOut

SEND_DEADLINE = 120.0  # seconds for a whole send; `serve --send-deadline` changes it
ZIP_TIME = (1980, 1, 1, 0, 0, 0)  # fixed: the same messages give the same zip


class CannotReplay(errors.Conflict):
    code = "cannot_replay"


class SendRefused(errors.Conflict):
    """No address for a destination, or another send still running."""

    code = "send_refused"


class Hl7Settings:
    """The server's HL7 configuration (loaded once) and the lock that keeps sends one at a time."""

    def __init__(self, config_path: Path | str | None = None, deadline: float = SEND_DEADLINE):
        from adapters.hl7.codes import ProcedureCodes
        from adapters.hl7.config import Hl7Config
        from adapters.hl7.messages import MessageBuilder

        config = Hl7Config.load(config_path)
        self.builder = MessageBuilder(config, ProcedureCodes.load(config.procedure_codes))
        self.deadline = deadline
        self.sending = threading.Lock()

    @property
    def destinations(self) -> dict[str, Any]:
        return self.builder.config.destinations


def settings(request: Request) -> Hl7Settings:
    state = request.app.state
    if getattr(state, "hl7", None) is None:
        state.hl7 = Hl7Settings()
    return state.hl7


def address(d: Any) -> str | None:
    return f"{d.host}:{d.port}" if d.host and d.port else None


def home_messages(b: Backend, who: Principal, hl7: Hl7Settings, course_id: str | None,
                  since: datetime | None, destinations: set[str] | None, lang: str = "en") -> list:
    """The messages of the caller's home courses (or of one of them), built under the read lock;
    a treatment summary PDF in `lang` (the page's language when downloaded from a page)."""
    from adapters.hl7.er7 import Hl7ValueError
    from adapters.hl7.replay import course_messages

    if course_id is not None:
        b.course_for(who, "exports", course_id)
        ids = [course_id]
    else:
        ids = [c["id"] for c in b.read(lambda r: r.courses(centre=who.centre)) if c["home_centre"] == who.centre]
    for cid in ids:
        access_log.saw(cid)
    try:
        return b.read(lambda r: [m for cid in ids
                                 for m in course_messages(b.ledger, hl7.builder, cid, since, destinations, lang=lang)])
    except Hl7ValueError as exc:
        raise CannotReplay("cannot_replay.hl7", detail=str(exc)) from None


def zipped(entries: Iterable[tuple[str, bytes]]) -> bytes:
    """A zip of (name, content) with fixed times: the same files always give the same bytes."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in entries:
            archive.writestr(zipfile.ZipInfo(name, ZIP_TIME), data, zipfile.ZIP_DEFLATED)
    return buffer.getvalue()


def folder_zip(folder: Path) -> bytes:
    return zipped((p.relative_to(folder).as_posix(), p.read_bytes())
                  for p in sorted(folder.rglob("*")) if p.is_file())


def hl7_zip(b: Backend, who: Principal, hl7: Hl7Settings, course_id: str | None = None,
            since: datetime | None = None, lang: str = "en") -> bytes:
    """The messages of the caller's home courses as a zip, recorded as exported (as `export hl7`)."""
    from adapters.hl7.replay import export_with

    if since is not None and since.tzinfo is None:
        raise errors.InvalidCommand("since", "invalid.add_timezone_offset_e")
    messages = home_messages(b, who, hl7, course_id, since, None, lang)
    entries: list[tuple[str, bytes]] = []
    export_with(b.ledger, messages, lambda name, data: entries.append((name, data)), f"http download by {who.user}",
                actor_of(who))
    return zipped(entries)


def zip_response(data: bytes, name: str) -> Response[bytes]:
    return Response(data, media_type="application/zip",
                    headers={"Content-Disposition": f'attachment; filename="{safe(name)}.zip"'})


@get("/api/exports/hl7", opt={"action": "exports"}, sync_to_thread=True, media_type="application/zip",
     responses={**documented(*READ), 200: ResponseSpec(data_container=bytes, media_type="application/zip",
                                                       description="<destination>/<control id>.hl7 per message")},
     summary="HL7 messages of the caller's home courses as a zip (recorded as exported)")
def export_hl7(request: Request, course_id: FromQuery[str | None] = None,
               since: FromQuery[datetime | None] = None) -> Response[bytes]:
    who = current(request)
    return zip_response(hl7_zip(backend(request), who, settings(request), course_id, since, language_of(request)), f"hl7-{who.centre}")


def send_to(b: Backend, who: Principal, hl7: Hl7Settings, names: list[str], messages: list,
            deadline_at: float) -> list[dict]:
    from adapters.hl7.mllp import MllpSender, SendFailed
    from adapters.hl7.replay import send_pending

    out = []
    for name in names:
        d = hl7.destinations[name]
        before = b.app.destinations.destination(name)
        accepted_before = len(before.accepted) if before else 0
        row: dict = {"destination": name, "address": address(d)}
        left = deadline_at - time.monotonic()
        if left <= 0:
            out.append({**row, "failure": f"not started: the send deadline ({hl7.deadline:g} s) passed"})
            continue
        sender = MllpSender(d.host, d.port, timeout=d.timeout, attempts=d.attempts, deadline=left)
        try:
            report = send_pending(b.ledger, hl7.builder, sender, actor_of(who), {name},
                                  messages=[m for m in messages if m.destination == name])
            out.append({**row, **report})
        except SendFailed as exc:
            after = b.app.destinations.destination(name)
            accepted = (len(after.accepted) if after else 0) - accepted_before
            reason = (f"stopped at message {exc.control_id}: the send deadline ({hl7.deadline:g} s) passed"
                      if time.monotonic() >= deadline_at - 0.05 else str(exc))
            out.append({**row, "accepted": accepted,
                        "failure": f"{reason}; every answer before it is recorded, send again to resume"})
    return out


def send_hl7_now(b: Backend, who: Principal, hl7: Hl7Settings, destinations: list[str] | None = None,
                 course_id: str | None = None, since: datetime | None = None, lang: str = "en") -> list[dict]:
    """Send to the named (default: every addressed) destination; one send at a time (a summary PDF in `lang`)."""
    unknown = sorted(set(destinations or ()) - set(hl7.destinations))
    if unknown:
        raise errors.InvalidCommand("destinations", "invalid.unknown_known_2", unknown=', '.join(unknown), destinations=', '.join(hl7.destinations))
    names = list(destinations or ()) or [n for n, d in hl7.destinations.items() if address(d)]
    missing = [n for n in names if not address(hl7.destinations[n])]
    if not names or missing:
        raise (SendRefused("send_refused.no_hl7_address", names=", ".join(missing)) if missing
               else SendRefused("send_refused.no_hl7_destination"))
    if not hl7.sending.acquire(blocking=False):
        raise SendRefused("send_refused.busy")
    try:
        deadline_at = time.monotonic() + hl7.deadline
        messages = home_messages(b, who, hl7, course_id, since, set(names), lang)
        return send_to(b, who, hl7, names, messages, deadline_at)
    finally:
        hl7.sending.release()


@post("/api/sends/hl7", opt={"action": "sends", "body": SendIn}, sync_to_thread=True, status_code=200,
      responses=documented(*WRITE),
      summary="Send over MLLP what each configured destination has not accepted; its answers per destination")
def send_hl7(request: Request, data: JSONBody[SendIn]) -> list[SendOut]:
    # No Idempotency-Key: a send is idempotent by itself (what a destination accepted is skipped).
    rows = send_hl7_now(backend(request), current(request), settings(request), list(data.destinations),
                        data.course_id, data.since, language_of(request))
    return [as_(SendOut, row) for row in rows]


def deliveries_of(b: Backend, hl7: Hl7Settings) -> list[dict]:
    """Per configured destination, as `fraction-ledger deliveries`."""
    rows = []
    for name, d in hl7.destinations.items():
        found = b.app.destinations.destination(name)
        rows.append({
            "destination": name, "address": address(d), "kind": "hl7",
            "accepted": len(found.accepted) if found else 0,
            "exported": len(found.exported) if found else 0,
            "last_accepted_at": max(found.accepted.values()) if found and found.accepted else None,
            "refused": [{"control_id": k, **v} for k, v in sorted(found.refused.items())] if found else [],
        })
    return rows


router = Router("/", route_handlers=[export_hl7, send_hl7], tags=["exports and sends"])
