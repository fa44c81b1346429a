"""Who is calling: a Bearer token on the API, a session cookie on the pages.

The guard runs before anything else of a route: it finds the account (401 when none),
checks that its role may take the route's action at all (403), and leaves the
`Principal` on the connection. Which course a centre may touch is checked by the route,
once it has loaded the course (`Backend.course_for`). A bad token counts against the
client's address (`throttle.py`); while that address is locked out, every token is refused
with 429, a correct one too.
"""

from __future__ import annotations

from typing import Any

from litestar.connection import ASGIConnection
from litestar.exceptions import NotAuthorizedException
from litestar.handlers.base import BaseRouteHandler

from adapters.http.i18n import language_of, translator
from adapters.http.throttle import TooManyAttempts, address_key, minutes
from ledger import access, errors
from ledger.access import Principal
from ledger.accounts import principal_for_token, principal_named

PUBLIC = "public"
SESSION_USER, SESSION_TOKEN = "user", "token_hash"

# Where each role's work starts: the page after signing in, and the way back from an error.
HOME_OF_ROLE = {"rtt": "/worklist", "physicist": "/physicist", "finance": "/finance", "admin": "/admin",
                "privacy": "/access-log", "oncologist": "/gaps"}


def is_page(connection: ASGIConnection) -> bool:
    return not connection.url.path.startswith("/api")


def principal_of(connection: ASGIConnection) -> Principal | None:
    app = connection.app.state.backend.app
    if is_page(connection):
        session: dict[str, Any] = connection.scope.get("session") or {}
        if SESSION_USER in session:
            return principal_named(app, session[SESSION_USER], session.get(SESSION_TOKEN, ""))
        return None
    scheme, _, token = connection.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    address = address_of(connection)
    refuse_while_locked(connection, address)
    principal = principal_for_token(app, token.strip())
    if principal is None:
        connection.app.state.throttle.failed(address)
    return principal


def address_of(connection: ASGIConnection) -> str:
    """The throttle's key for the client's address (behind a proxy: the proxy's)."""
    return address_key(connection.client.host if connection.client else None)


def refuse_while_locked(connection: ASGIConnection, *keys: str) -> None:
    """429 with Retry-After, in the client's language, while any of `keys` is locked out."""
    wait = connection.app.state.throttle.retry_after(*keys)
    if wait is not None:
        t = translator(language_of(connection))  # type: ignore[arg-type]
        raise TooManyAttempts(t("too_many_attempts", minutes=minutes(wait)), wait)


def guard(connection: ASGIConnection, handler: BaseRouteHandler) -> None:
    action = handler.opt.get("action")
    if action == PUBLIC:
        return
    principal = principal_of(connection)
    if principal is None:
        raise NotAuthorizedException(
            "Sign in first." if is_page(connection) else "A valid token is required: Authorization: Bearer TOKEN",
            headers={} if is_page(connection) else {"WWW-Authenticate": 'Bearer realm="fraction-ledger"'},
        )
    connection.scope["user"] = principal  # signed in: an error page shows their menu
    if access.scope_of(principal, action) is None:
        # A refusal like any other: a code and its values, said in the reader's language.
        raise errors.AccessDenied("forbidden.may_not", user=principal.user, role=principal.role,
                                  centre=principal.centre, action=action,
                                  conflict={"user": principal.user, "role": principal.role,
                                            "centre": principal.centre, "action": action})


def current(connection: ASGIConnection) -> Principal:
    return connection.scope["user"]
