"""Accounts, the whole event log, who-am-I, health and readiness."""

from __future__ import annotations

import secrets
from typing import Annotated

from litestar import Request, Response, Router, get, post
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import FromPath, JSONBody, QueryParameter

from adapters.http.api_courses import IdempotencyKey, backend
from adapters.http import access_log
from adapters.http.auth import PUBLIC, current
from adapters.http.backend import request_id_for
from adapters.http.errors import READ, WRITE, documented
from adapters.http.views import as_, event_out
from ledger.accounts import hash_token
from schemas.api import AccountIn, AccountOut, EventOut, Health, Me, NewAccountOut, SourceOut

TOKEN_BYTES = 32


def new_token() -> str:
    return "fl_" + secrets.token_urlsafe(TOKEN_BYTES)


@get("/api/me", opt={"action": "me"}, sync_to_thread=True, responses=documented(401), tags=["accounts"],
     summary="The calling account")
def me(request: Request) -> Me:
    who = current(request)
    return Me(who.user, who.role, who.centre)


@get("/api/accounts", opt={"action": "accounts.manage"}, sync_to_thread=True, responses=documented(*READ),
     tags=["accounts"], summary="The accounts of the caller's centre (never a token)")
def accounts(request: Request) -> list[AccountOut]:
    return [as_(AccountOut, a) for a in backend(request).accounts_view(current(request))]


@post("/api/accounts", opt={"action": "accounts.manage", "body": AccountIn}, sync_to_thread=True, status_code=201,
      responses=documented(*WRITE), tags=["accounts"],
      summary="Create an account at the caller's centre; its token is in this answer only")
def create_account(request: Request, data: JSONBody[AccountIn], idempotency_key: IdempotencyKey = None) -> NewAccountOut:
    who = current(request)
    token = new_token()
    # A retried request must not hand out a second token for one account: idempotent creation is refused (422/409).
    account = backend(request).add_account(who, {"name": data.name, "role": data.role, "centre": data.centre},
                                           hash_token(token), request_id_for(who, idempotency_key))
    return as_(NewAccountOut, {**account, "token": token})


@post("/api/accounts/{name:str}/revoke", opt={"action": "accounts.manage"}, sync_to_thread=True, status_code=200,
      responses=documented(*WRITE), tags=["accounts"],
      summary="Revoke an account of the caller's centre: its token stops working at once")
def revoke(request: Request, name: FromPath[str], idempotency_key: IdempotencyKey = None) -> AccountOut:
    who = current(request)
    return as_(AccountOut, backend(request).revoke_account(who, name, request_id_for(who, idempotency_key)))


@post("/api/accounts/{name:str}/rotate", opt={"action": "accounts.manage"}, sync_to_thread=True, status_code=200,
      responses=documented(*WRITE), tags=["accounts"],
      summary="A new token for an account of the caller's centre (a lost token); the old one stops working")
def rotate(request: Request, name: FromPath[str]) -> NewAccountOut:
    # No Idempotency-Key: a retry must not hand out the token of a first answer again.
    who = current(request)
    token = new_token()
    account = backend(request).rotate_account(who, name, hash_token(token))
    return as_(NewAccountOut, {**account, "token": token})


@get("/api/events", opt={"action": "events.read"}, sync_to_thread=True, responses=documented(*READ), tags=["events"],
     summary="The events of the courses the caller sees, in log order, after a position")
def events(request: Request,
           after: Annotated[int, QueryParameter(ge=0, le=2**62)] = 0,
           limit: Annotated[int, QueryParameter(ge=1, le=1000)] = 100) -> list[EventOut]:
    rows = backend(request).course_events_view(current(request), after, limit)
    for _, event, _ in rows:
        access_log.saw(event.originator_id)
    return [event_out(event, position, topic) for position, event, topic in rows]


@get("/health", opt={"action": PUBLIC}, sync_to_thread=True, tags=["system"],
     summary="The process is up; each source's last object, and which are silent")
def health(request: Request) -> Health:
    """`status` is "ok" while the process is up; a source silent longer than the limit of working
    time (FRACTION_LEDGER_SOURCE_SILENCE) is named in `detail`: the baseline may be behind."""
    try:
        sources = backend(request).sources_view()
    except ValueError as exc:  # a bad freshness setting: say which
        return Health("ok", f"sources unknown: {exc}")
    except Exception as exc:  # noqa: BLE001 - the process is up even when its read model is not
        return Health("ok", f"sources unknown: {type(exc).__name__}")
    silent = [s for s in sources if s["silent_minutes"] is not None]
    detail = "; ".join(f"{s['name']} silent for {s['silent_minutes']} working minutes" for s in silent)
    return Health("ok", detail, [as_(SourceOut, s) for s in sources])


@get("/ready", opt={"action": PUBLIC}, sync_to_thread=True, tags=["system"],
     responses={503: ResponseSpec(data_container=Health, description="The event store is unreachable")},
     summary="The event store answers and the read model is current")
def ready(request: Request) -> Response[Health]:
    b = backend(request)
    try:
        b.read(lambda r: r.position())
        b.app.recorder.max_notification_id()
    except Exception as exc:  # any failure of a store means not ready
        return Response(Health("unavailable", type(exc).__name__), status_code=503)
    return Response(Health("ready"), status_code=200)


router = Router("/", route_handlers=[me, accounts, create_account, revoke, rotate, events, health, ready])
