"""The app factory: the JSON API, the pages, OpenAPI, sessions and CSRF on one litestar app.

Every route names its action in `opt={"action": ...}`; a route with an action the access
policy does not know stops the app from starting, so no route is served without a rule.
Adding an area (uploads, exports, billing) is one module with a `router`, listed in AREAS.
"""

from __future__ import annotations

import importlib
import secrets
from pathlib import Path
from typing import Any

import msgspec
from litestar import Litestar, Request
from litestar.config.csrf import CSRFConfig
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.middleware.session.server_side import ServerSideSessionConfig
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import JsonRenderPlugin, SwaggerRenderPlugin
from litestar.static_files import create_static_files_router
from litestar.stores.file import FileStore
from litestar.stores.memory import MemoryStore
from litestar.template.config import TemplateConfig

from adapters.files import make_private, private_dir
from adapters.http.auth import PUBLIC, guard
from adapters.http.backend import Backend
from adapters.http.errors import handlers, validate_body
from adapters.runtime import Ledger
from ledger.access import RULES

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
    "adapters.http.pages_physicist",
    "adapters.http.pages_exports",
    "adapters.http.pages_dicom",
    "adapters.http.pages_recovery",
    "adapters.http.pages_finance",
    "adapters.http.pages_incidents",
]
MAX_BODY = 1_000_000  # JSON bodies; upload routes set their own limit


async def validate_request_body(request: Request) -> None:
    """Name every bad field of a JSON body before litestar's own parse (which stops at the first)."""
    kind = request.route_handler.opt.get("body")
    if kind is None or request.method not in ("POST", "PUT", "PATCH"):
        return None
    if "json" not in request.headers.get("content-type", "application/json"):
        return None  # forms of the pages are checked by their handlers
    from adapters.http.errors import InvalidBody

    body = await request.body()
    if not body.strip():
        raw: Any = {}
    else:
        try:
            raw = msgspec.json.decode(body)
        except msgspec.DecodeError as exc:
            raise InvalidBody([("body", f"not valid JSON ({exc})")]) from None
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
               send_deadline: float | None = None, dicom_config: Path | str | None = None) -> Litestar:
    areas = [importlib.import_module(name) for name in AREAS]
    if session_dir:  # the sessions name who is signed in: the owner's only
        private_dir(session_dir)
        make_private(session_dir)
    store = FileStore(session_dir, create_directories=True) if session_dir else MemoryStore()
    app = Litestar(
        route_handlers=[area.router for area in areas]
        + [create_static_files_router("/static", directories=[HERE / "static"], opt={"action": PUBLIC},
                                      include_in_schema=False)],
        guards=[guard],
        before_request=validate_request_body,
        exception_handlers=handlers(),
        request_max_body_size=MAX_BODY,
        openapi_config=OpenAPIConfig(
            title="fraction-ledger", version="0.1.0",
            description="The ledger of radiotherapy fractions during an IT outage. Authenticate with "
                        "`Authorization: Bearer TOKEN` (tokens from `fraction-ledger user add`).",
            path="/schema", render_plugins=[SwaggerRenderPlugin(), JsonRenderPlugin()],
        ),
        middleware=[
            ServerSideSessionConfig(samesite="strict", httponly=True, max_age=12 * 3600).middleware,
        ],
        stores={"sessions": store},
        csrf_config=CSRFConfig(secret=secret or secrets.token_urlsafe(32), cookie_httponly=True,
                               cookie_samesite="strict", exclude=["/api/", "/schema"]),
        template_config=TemplateConfig(directory=HERE / "templates", engine=JinjaTemplateEngine),
        debug=debug,
    )
    app.state.backend = Backend(ledger)
    from adapters.http.api_exports import SEND_DEADLINE, Hl7Settings

    app.state.hl7 = Hl7Settings(hl7_config, send_deadline or SEND_DEADLINE)
    from adapters.http.api_dicom import DicomConfig

    app.state.dicom = DicomConfig.load(dicom_config)
    check_rules(app)
    return app
