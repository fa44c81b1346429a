"""Browser-facing hardening: security headers on every answer, the Swagger UI from local files
(the server is used when the network is down: no CDN), and a bound on how deep a JSON body nests.

The Content-Security-Policy allows scripts and styles from this server only: no inline script
anywhere. The one inline style block served (the printable reconciliation report, which must also
work as a stand-alone file) is allowed by its SHA-256 hash, computed from its template.
"""

from __future__ import annotations

import base64
import hashlib
import re
from pathlib import Path
from typing import Any

from litestar import Request
from litestar.openapi.plugins import SwaggerRenderPlugin
from litestar.types import Message, Scope

SWAGGER_ASSETS = "/static/swagger-ui"
REPORT_TEMPLATE = Path(__file__).parent.parent / "templates" / "reconcile.html"
MAX_JSON_DEPTH = 32  # no body of the API nests deeper than a few levels


def inline_style_hashes(template: Path) -> list[str]:
    """CSP source expressions for the <style> blocks of a template (static text only)."""
    hashes = []
    for block in re.findall(r"<style>(.*?)</style>", template.read_text(encoding="utf-8"), re.S):
        if "{{" in block or "{%" in block:
            raise ValueError(f"{template}: a <style> block must be static to be allowed by its hash")
        digest = base64.b64encode(hashlib.sha256(block.encode("utf-8")).digest()).decode()
        hashes.append(f"'sha256-{digest}'")
    return hashes


def content_security_policy() -> str:
    styles = " ".join(["'self'", *inline_style_hashes(REPORT_TEMPLATE)])
    return ("default-src 'self'; script-src 'self'; style-src " + styles + "; img-src 'self' data:; "
            "font-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
            "frame-ancestors 'none'")


def security_headers() -> Any:
    """A before-send hook adding the headers to every answer: pages, API, errors, static files."""
    fixed = [
        (b"content-security-policy", content_security_policy().encode()),
        (b"x-frame-options", b"DENY"),
        (b"x-content-type-options", b"nosniff"),
        (b"referrer-policy", b"no-referrer"),
        (b"cross-origin-opener-policy", b"same-origin"),
    ]

    async def add_headers(message: Message, scope: Scope) -> None:
        if message["type"] != "http.response.start":
            return
        headers = list(message.get("headers") or [])
        present = {name.lower() for name, _ in headers}
        headers += [(name, value) for name, value in fixed if name not in present]
        if scope.get("scheme") == "https":  # served over TLS: browsers keep to HTTPS for this host
            headers.append((b"strict-transport-security", b"max-age=31536000"))
        # Pages and API answers carry patients' data: never kept by a browser or proxy. The static
        # assets (style sheet, Swagger UI) hold none and may be cached.
        if not str(scope.get("path", "")).startswith("/static/"):
            headers = [(n, v) for n, v in headers if n.lower() != b"cache-control"] + [(b"cache-control", b"no-store")]
        message["headers"] = headers

    return add_headers


def swagger_ui_directory() -> Path:
    from swagger_ui_bundle import swagger_ui_path

    return Path(str(swagger_ui_path))


class LocalSwagger(SwaggerRenderPlugin):
    """Swagger UI from this server's own files, started by a static script (no inline script): the
    page works offline and under the Content-Security-Policy."""

    def __init__(self) -> None:
        super().__init__(js_url=f"{SWAGGER_ASSETS}/swagger-ui-bundle.js", css_url=f"{SWAGGER_ASSETS}/swagger-ui.css",
                         favicon=f"<link rel='icon' type='image/png' href='{SWAGGER_ASSETS}/favicon-32x32.png'>")

    def render(self, request: Request, openapi_schema: dict[str, Any]) -> bytes:
        from html import escape

        title = escape(str(openapi_schema.get("info", {}).get("title", "API")))
        spec = escape(request.app.openapi_config.path.rstrip("/") + "/openapi.json")  # type: ignore[union-attr]
        return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
{self.favicon}
<link rel="stylesheet" href="{self.css_url}">
<link rel="stylesheet" href="/static/swagger.css">
</head>
<body>
<div id="swagger-container" data-spec-url="{spec}"></div>
<script src="{self.js_url}"></script>
<script src="/static/swagger-init.js"></script>
</body>
</html>
""".encode()


def too_deep(value: Any, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether a decoded JSON value nests more than `limit` arrays/objects deep (no recursion)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))
    return False
