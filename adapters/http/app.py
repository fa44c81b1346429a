"""The app factory: the JSON API, the pages, OpenAPI, sessions and CSRF on one litestar app.

Every route names its action in `opt={"action": ...}`; a route with an action the access
policy does not know stops the app from starting, so no route is served without a rule.
Adding an area (uploads, exports, billing) is one module with a `router`, listed in AREAS.
Sessions (pages only, a new id at sign-in and sign-out, expiry on the ledger's clock) are
`sessions.py`; the lockout after failed sign-ins and bad tokens is `throttle.py`.
"""

from __future__ import annotations

import asyncio
import importlib
import secrets
from pathlib import Path
from typing import Any

import msgspec
from litestar import Litestar, Request
from litestar.config.csrf import CSRFConfig
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import JsonRenderPlugin
from litestar.static_files import create_static_files_router
from litestar.template.config import TemplateConfig

from adapters.http import access_log
from adapters.http.auth import PUBLIC, guard
from adapters.http.backend import Backend
from adapters.http.errors import handlers, validate_body
from adapters.http.sessions import SessionStore, keep_purging, session_config
from adapters.http.throttle import Throttle
from adapters.http.security import SWAGGER_ASSETS, LocalSwagger, security_headers, swagger_ui_directory, too_deep
from adapters.runtime import Ledger
from ledger.access import RULES
from ledger.messages import said

HERE = Path(__file__).parent
# One module per area, each with a `router`. New areas (DICOM, HL7, billing) add a line here.
AREAS = [
    "adapters.http.api_courses",
    "adapters.http.api_fractions",
    "adapters.http.api_system",
    "adapters.http.api_incidents",
    "adapters.http.api_billing",
    "adapters.http.api_exports",
    "adapters.http.api_dicom",
    "adapters.http.api_recovery",
    "adapters.http.pages",
    "adapters.http.pages_day",
    "adapters.http.pages_physicist",
    "adapters.http.pages_exports",
    "adapters.http.pages_dicom",
    "adapters.http.pages_recovery",
    "adapters.http.pages_finance",
    "adapters.http.pages_incidents",
    "adapters.http.api_access_log",
    "adapters.http.api_gaps",
    "adapters.http.pages_gaps",
    "adapters.http.pages_outage",
]
MAX_BODY = 1_000_000  # JSON bodies; upload routes set their own limit


async def validate_request_body(request: Request) -> None:
    """Name every bad field of a JSON body before litestar's own parse (which stops at the first).
    Every JSON body, of any route, is decoded here once: one nested too deep is refused (400)
    before any decoder recurses into it."""
    if request.method not in ("POST", "PUT", "PATCH"):
        return None
    if "json" not in request.headers.get("content-type", "application/json"):
        return None  # forms of the pages are checked by their handlers
    kind = request.route_handler.opt.get("body")
    from adapters.http.errors import InvalidBody
    from adapters.http.security import MAX_JSON_DEPTH

    body = await request.body()
    if not body.strip():
        raw: Any = {}
    else:
        try:
            raw = msgspec.json.decode(body)
            deep = too_deep(raw)
        except msgspec.DecodeError as exc:
            raise InvalidBody([("body", said("invalid.not_json", detail=str(exc)))]) from None
        except RecursionError:  # deeper than msgspec decodes, so far deeper than we accept
            deep = True
        if deep:
            raise InvalidBody([("body", said("invalid.nested_too_deep", depth=MAX_JSON_DEPTH))])
    if kind is not None:
        validate_body(kind, raw)
    return None


def check_rules(app: Litestar) -> None:
    """Refuse to start with a route that has no access rule."""
    for route in app.routes:
        for handler in getattr(route, "route_handlers", []):
            if getattr(handler, "http_methods", None) == {"OPTIONS"}:
                handler.opt.setdefault("action", PUBLIC)  # litestar's automatic OPTIONS answer
            if route.path == "/schema" or route.path.startswith("/schema/"):
                handler.opt.setdefault("action", PUBLIC)  # the OpenAPI document and its viewer
            action = handler.opt.get("action")
            if action != PUBLIC and action not in RULES:
                raise RuntimeError(f"route {route.path} {handler} has no access rule (opt={handler.opt!r})")


def create_app(ledger: Ledger, *, session_dir: Path | None = None, secret: str | None = None,
               debug: bool = False, hl7_config: Path | str | None = None,
               send_deadline: float | None = None, dicom_config: Path | str | None = None,
               secure_cookies: bool = False) -> Litestar:
    """`secure_cookies`: the session and CSRF cookies are sent over HTTPS only (serving over TLS)."""
    areas = [importlib.import_module(name) for name in AREAS]
    store = SessionStore(session_dir, clock=ledger.app.clock)

    async def start_purging(app: Litestar) -> None:
        await asyncio.to_thread(store.purge_expired)  # what expired while the server was down
        app.state.purging = asyncio.create_task(keep_purging(store))

    async def stop_purging(app: Litestar) -> None:
        task = app.state.get("purging")
        if task is not None:
            task.cancel()
    app = Litestar(
        route_handlers=[area.router for area in areas]
        + [create_static_files_router(SWAGGER_ASSETS, directories=[swagger_ui_directory()], opt={"action": PUBLIC},
                                      include_in_schema=False),
           create_static_files_router("/static", directories=[HERE / "static"], opt={"action": PUBLIC},
                                      include_in_schema=False)],
        guards=[guard],
        before_request=validate_request_body,
        before_send=[security_headers()],
        after_request=access_log.after_request,  # every read of patient data logged before it is sent
        exception_handlers=handlers(),
        request_max_body_size=MAX_BODY,
        openapi_config=OpenAPIConfig(
            title="fraction-ledger", version="0.1.0",
            description="The ledger of radiotherapy fractions during an IT outage. Authenticate with "
                        "`Authorization: Bearer TOKEN` (tokens from `fraction-ledger user add`).",
            path="/schema", render_plugins=[LocalSwagger(), JsonRenderPlugin()],
        ),
        middleware=[access_log.middleware, session_config(secure_cookies).middleware],
        stores={"sessions": store},
        on_startup=[start_purging],
        on_shutdown=[stop_purging],
        csrf_config=CSRFConfig(secret=secret or secrets.token_urlsafe(32), cookie_httponly=True,
                               cookie_samesite="strict", cookie_secure=secure_cookies, exclude=["/api/", "/schema"]),
        template_config=TemplateConfig(directory=HERE / "templates", engine=JinjaTemplateEngine),
        debug=debug,
    )
    app.state.backend = Backend(ledger)
    app.state.sessions = store
    app.state.throttle = Throttle(ledger.app.clock)
    app.state.secure_cookies = secure_cookies
    from adapters.http.api_exports import SEND_DEADLINE, Hl7Settings

    app.state.hl7 = Hl7Settings(hl7_config, send_deadline or SEND_DEADLINE)
    from adapters.http.api_dicom import DicomConfig

    app.state.dicom = DicomConfig.load(dicom_config)
    check_rules(app)
    return app
