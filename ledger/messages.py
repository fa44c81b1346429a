"""Every sentence the ledger says to a person, by code: refusals, warnings, flags.

The domain never stores or raises prose. A refusal is `errors.X("code", **params)` and a
warning is `said("code", **params)`: a code from `TEXTS` and the values it needs. The edge
(pages, API, CLI, PDFs, the drill report) renders it in the reader's language with the
gettext catalogs in `adapters/locale` (`adapters/i18n.py`); `english()` is the source text,
and what programs, logs and the CLI's default language read.

`N_` marks a template for extraction (`pybabel extract`, see README "Translations"); a
template's `{name}` fields are the params. A count that needs plural forms is a `PLURALS`
entry: (singular, plural, the param that counts).
"""

from __future__ import annotations

from typing import Any


def N_(text: str) -> str:
    """Marks a source text for extraction; it is translated where it is shown."""
    return text


TEXTS: dict[str, str] = {}

PLURALS: dict[str, tuple[str, str, str]] = {}


def known(code: str) -> bool:
    return code in TEXTS or code in PLURALS


def said(code: str, **params: Any) -> dict[str, Any]:
    """What a warning or flag stores: its code and its values (JSON-able)."""
    if not known(code):
        raise KeyError(f"no message {code!r} in ledger.messages")
    return {"code": code, "params": params}


def template(code: str, params: dict[str, Any]) -> str:
    if code in PLURALS:
        singular, plural, count = PLURALS[code]
        return singular if params.get(count) == 1 else plural
    return TEXTS[code]


def english(message: dict[str, Any] | str) -> str:
    """The English text of a stored message; a plain string (written before codes) as it is."""
    if isinstance(message, str):
        return message
    return template(message["code"], message["params"]).format(**message["params"])
