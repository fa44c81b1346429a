"""English, Dutch and French for the pages: catalogs in i18n/*.json, the language from a
cookie set by the switch on every page, else from the browser's Accept-Language."""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import cache
from pathlib import Path

from litestar import Request

LANGUAGES = ("en", "nl", "fr")
COOKIE = "lang"


@cache
def catalog(lang: str) -> dict[str, str]:
    return json.loads((Path(__file__).parent / "i18n" / f"{lang}.json").read_text(encoding="utf-8"))


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


def translator(lang: str) -> Callable[..., str]:
    words, fallback = catalog(lang), catalog("en")

    def t(key: str, **values: object) -> str:
        text = words.get(key) or fallback.get(key) or key
        return text.format(**values) if values else text

    return t
