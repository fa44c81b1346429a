"""The pages' language: from a cookie set by the switch on every page, else from the browser's
Accept-Language. The words themselves are in adapters/i18n.py (gettext catalogs)."""

from __future__ import annotations

from litestar import Request

from adapters.i18n import LANGUAGES, Words, catalog, translator, words  # noqa: F401  (the pages' words)

COOKIE = "lang"


def language_of(request: Request) -> str:
    chosen = request.cookies.get(COOKIE)
    if chosen in LANGUAGES:
        return chosen
    ranked = []
    for part in request.headers.get("accept-language", "").split(","):
        tag, _, q = part.strip().partition(";q=")
        try:
            ranked.append((float(q) if q else 1.0, tag.split("-")[0].lower()))
        except ValueError:
            continue
    for _, tag in sorted(ranked, reverse=True):
        if tag in LANGUAGES:
            return tag
    return "en"
