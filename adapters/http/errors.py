"""Refusals as HTTP answers: one JSON shape (`ErrorOut`) for every error of the API.

400 bad input (each bad field and why), 401 no or bad token, 403 wrong role or centre,
404 unknown id, 409 a rule or the current state refuses (with the record in the way),
422 an Idempotency-Key reused for another request. Nothing is written on any of them.
"""

from __future__ import annotations

import errno
import logging
import sqlite3
from typing import Any

import msgspec
from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException
from litestar.openapi.datastructures import ResponseSpec
from eventsourcing.persistence import InterfaceError, OperationalError
from litestar.status_codes import HTTP_500_INTERNAL_SERVER_ERROR, HTTP_503_SERVICE_UNAVAILABLE

from adapters.files import size_text
from adapters.http.auth import HOME_OF_ROLE
from ledger import errors
from ledger.access_log import AccessLogUnavailable
from schemas.api import ErrorOut, FieldError
from ledger.messages import english, said
from ledger.validation import explain

log = logging.getLogger("fraction_ledger.http")

DESCRIPTIONS = {
    400: "Invalid input: each bad field and why; nothing was written.",
    401: "No token, or a token that is unknown or revoked.",
    403: "The account's role or centre does not allow this.",
    404: "No such course, fraction or account.",
    409: "Refused by a rule or by the current state; `conflict` holds the record in the way.",
    413: "The request body is too large.",
    422: "This Idempotency-Key was already used for a different request.",
    503: "The ledger's storage is full or cannot be reached, or the access log could not be written (then the "
         "patient data read is not served); or the event log failed its integrity check (`conflict` names the "
         "event and what is wrong: nothing is written until it is restored, reads still answer). Nothing was "
         "written.",
}


def documented(*codes: int) -> dict[int, ResponseSpec]:
    return {code: ResponseSpec(data_container=ErrorOut, description=DESCRIPTIONS[code], generate_examples=False)
            for code in codes}


READ = (400, 401, 403, 404, 503)
WRITE = (400, 401, 403, 404, 409, 413, 422, 503)


class InvalidBody(errors.InvalidCommand):
    """Several bad fields at once: `problems` as (field, English reason) for programs, `said` as
    (field, message) for pages that say them in the reader's language."""

    def __init__(self, problems: list[tuple[str, dict]]):
        super().__init__(problems[0][0], problems[0][1]["code"], **problems[0][1]["params"])
        self.said_fields = problems
        self.problems = [(f, english(r)) for f, r in problems]
        self.message = "; ".join(f"{f}: {r}" for f, r in self.problems)


class TooLarge(errors.InvalidCommand):
    """An uploaded file beyond its limit (413); `limit` in bytes."""

    code = "too_large"

    def __init__(self, field: str, reason: str, limit: int):
        super().__init__(field, reason)
        self.limit = limit


def status_of(exc: errors.LedgerError) -> int:
    if isinstance(exc, TooLarge):
        return 413
    if isinstance(exc, AccessLogUnavailable):
        return 503
    if isinstance(exc, errors.InvalidCommand):
        return 400
    if isinstance(exc, errors.AccessDenied):
        return 403
    if isinstance(exc, errors.NotFound):
        return 404
    if isinstance(exc, errors.RequestIdReused):
        return 422
    if isinstance(exc, errors.LogCompromised):
        return 503
    return 409


def body_of(exc: errors.LedgerError) -> ErrorOut:
    fields = None
    if isinstance(exc, InvalidBody):
        fields = [FieldError(f, r) for f, r in exc.problems]
    elif isinstance(exc, errors.InvalidCommand):
        fields = [FieldError(exc.field, exc.reason)]
    conflict = msgspec.to_builtins(exc.conflict) if exc.conflict is not None else None
    return ErrorOut(error=exc.code, message=exc.message, fields=fields, conflict=conflict)


def ledger_error(request: Request, exc: errors.LedgerError) -> Response:
    if not request.url.path.startswith("/api"):
        if isinstance(exc, TooLarge):
            return too_large_page(request, exc.limit)
        if isinstance(exc, AccessLogUnavailable):  # a page says it in the reader's language
            from adapters.http.i18n import language_of, translator

            return error_page(request, 503, translator(language_of(request))("err_access_log_unavailable"))
        from adapters.http.i18n import language_of, words

        return error_page(request, status_of(exc), words(language_of(request)).say(exc))  # in the reader's language
    return Response(body_of(exc), status_code=status_of(exc))


def error_page(request: Request, status: int, message: str, heading: str | None = None) -> Response:
    """Errors on the pages are pages: sign in again on 401, else say what happened."""
    from litestar.response import Redirect

    from adapters.http.i18n import language_of, translator

    if status == 401:
        return Redirect("/")
    lang = language_of(request)
    t = translator(lang)
    who = request.scope.get("user")
    heading = heading or {403: t("forbidden"), 404: t("not_found"),
                          503: t("log_alarm_title") if log_alarm(request) else t("unavailable")}.get(status, t("err_other"))
    html = request.app.template_engine.get_template("error.html").render(
        t=t, lang=lang, languages=("en", "nl", "fr"), who=who, path=request.url.path, flash=None,
        alarm=log_alarm(request),
        home=HOME_OF_ROLE.get(who.role, "/") if who else "/", heading=heading, message=message)
    return Response(html, status_code=status, media_type="text/html")


def log_guard(request: Request) -> Any:
    """The ledger's `adapters.log_guard.LogGuard`, if the app has a ledger."""
    return getattr(getattr(getattr(request.app.state, "backend", None), "ledger", None), "guard", None)


def log_alarm(request: Request) -> dict | None:
    """What the log guard found wrong with the event log (every page shows it), or None."""
    guard = log_guard(request)
    if guard is None or guard.problem is None:
        return None
    return {**guard.problem, "last": guard.position}


def http_error(request: Request, exc: HTTPException) -> Response:
    """litestar's own refusals (routing, headers, path parameters, size) in our shape."""
    if exc.status_code == 413:
        limit = body_limit(request)
        if not request.url.path.startswith(("/api", "/schema")):
            return too_large_page(request, limit)
        return Response(ErrorOut(error="too_large", message=too_large_message(limit),
                                 fields=[FieldError("body", too_large_message(limit))]), status_code=413)
    if not request.url.path.startswith(("/api", "/schema")):
        return error_page(request, exc.status_code, str(exc.detail))
    fields = None
    if isinstance(exc, ValidationException) and isinstance(exc.extra, list):
        fields = [FieldError(str(e.get("key", "request")), str(e.get("message", ""))) for e in exc.extra
                  if isinstance(e, dict)]
    code = {400: "invalid", 401: "unauthorized", 403: "forbidden", 404: "not_found", 405: "method_not_allowed",
            413: "too_large", 429: "too_many_attempts"}.get(exc.status_code, "error")
    message = exc.detail
    if fields:
        message = "; ".join(f"{f.field}: {f.reason}" for f in fields)
    return Response(ErrorOut(error=code, message=message, fields=fields), status_code=exc.status_code,
                    headers=getattr(exc, "headers", None))


def body_limit(request: Request) -> int | None:
    try:
        return request.route_handler.resolve_request_max_body_size()
    except Exception:  # noqa: BLE001 - no route resolved (e.g. refused before routing)
        return None


def too_large_message(limit: int | None) -> str:
    most = f"at most {size_text(limit)}" if limit else "less"
    return f"The request is too large: this route accepts {most} in one request. Nothing was written."


def too_large_page(request: Request, limit: int | None) -> Response:
    from adapters.http.i18n import language_of, translator

    heading = translator(language_of(request))("too_large", limit=size_text(limit) if limit else "?")
    return error_page(request, 413, "", heading=heading)


def unexpected(request: Request, exc: Exception) -> Response:
    guard = log_guard(request)
    if guard is not None:
        # A stream with an event deleted or mangled cannot be loaded: say what is wrong with the log.
        try:
            guard.cover(None)
        except Exception:  # the store itself failing: the 500 below
            pass
        if guard.problem is not None:
            return ledger_error(request, guard.refusal())
    # Log the type and route, not the message: a message may carry a patient's name.
    log.error("unexpected %s on %s %s", type(exc).__name__, request.method, request.url.path, exc_info=exc)
    return Response(ErrorOut(error="internal", message="Internal error; nothing is known to be written."),
                    status_code=HTTP_500_INTERNAL_SERVER_ERROR)


STORAGE_FULL = ("disk is full", "no space left on device", "could not extend file", "disk quota exceeded")
STORAGE_MESSAGES = {
    "storage_full": "The ledger's storage is full: nothing was written; everything acknowledged before is kept. "
                    "Free disk space and send it again; reads still work.",
    "storage_unavailable": "The ledger's database cannot be reached: nothing was written; everything acknowledged "
                           "before is kept. Try again in a moment.",
}


def storage_problem(exc: BaseException) -> str | None:
    """'storage_full' for a full disk (SQLite's SQLITE_FULL, PostgreSQL's disk_full, ENOSPC), 'storage_unavailable'
    for a database that cannot be reached or used right now; None for anything else (a bug stays a 500)."""
    if isinstance(exc, OSError):
        return "storage_full" if exc.errno in (errno.ENOSPC, errno.EDQUOT) else None
    if any(words in str(exc).lower() for words in STORAGE_FULL):
        return "storage_full"
    return "storage_unavailable" if isinstance(exc, (OperationalError, InterfaceError)) else None


def storage_error(request: Request, exc: Exception) -> Response:
    """A write the storage could not take: 503, nothing written (the transaction rolled back), the
    server goes on serving reads and takes writes again once the storage does."""
    problem = storage_problem(exc)
    if problem is None:
        return unexpected(request, exc)
    log.error("%s (%s) on %s %s", problem, type(exc).__name__, request.method, request.url.path)
    if not request.url.path.startswith(("/api", "/schema")):
        from adapters.http.i18n import language_of, translator

        t = translator(language_of(request))
        response = error_page(request, 503, t("err_" + problem), heading=t("err_storage"))
    else:
        response = Response(ErrorOut(error=problem, message=STORAGE_MESSAGES[problem]),
                            status_code=HTTP_503_SERVICE_UNAVAILABLE)
    response.headers["Retry-After"] = "60"
    return response


def field_problems(exc: msgspec.ValidationError, prefix: str) -> tuple[str, dict]:
    return explain(str(exc), prefix)


def validate_body(kind: type[msgspec.Struct], raw: Any) -> None:
    """Check every field of a JSON body and name every bad one (msgspec stops at the first)."""
    if not isinstance(raw, dict):
        raise InvalidBody([("body", said("invalid.json_object"))])
    try:
        msgspec.convert(raw, kind, strict=False)
        return
    except msgspec.ValidationError as whole:
        first = field_problems(whole, "body")
    problems: list[tuple[str, dict]] = []
    fields = msgspec.structs.fields(kind)
    known = {f.encode_name for f in fields}
    forbid = getattr(kind, "__struct_config__").forbid_unknown_fields
    for key in raw:
        if key not in known and forbid:
            problems.append((key, said(HINTS[key]) if key in HINTS else
                                 said("invalid.unknown_field_expected", expected=", ".join(sorted(known)))))
    for f in fields:
        if f.encode_name not in raw:
            if f.required:
                problems.append((f.encode_name, said("invalid.required")))
            continue
        try:
            msgspec.convert(raw[f.encode_name], f.type, strict=False)
        except msgspec.ValidationError as exc:
            problems.append(field_problems(exc, f.encode_name))
    raise InvalidBody(problems or [first])


HINTS = {"centre": "invalid.centre_from_account", "operator": "invalid.operator_from_account",
         "by": "invalid.verifier_from_account"}


def handlers() -> dict[Any, Any]:
    return {errors.LedgerError: ledger_error, HTTPException: http_error, OperationalError: storage_error,
            InterfaceError: storage_error, sqlite3.OperationalError: storage_error, OSError: storage_error,
            Exception: unexpected}
