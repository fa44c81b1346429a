"""What was wrong with an input, in the ledger's words: msgspec's validation errors turned into
the field's path and a reason that is a message code (ledger.messages), so that the edge says
it in the reader's language."""

from __future__ import annotations

import re

from ledger.messages import english, said
from schemas.text import REASONS

_FIELD_PREFIX = re.compile(r"^([A-Za-z_][\w.\[\]]*): (.*)$", re.S)
# What msgspec says, as message codes of ledger.messages (the reader's language at the edge).
_MSGSPEC = [
    (re.compile(r"^Expected `str` of length <= (?P<n>\d+)$"), "invalid.too_long"),
    (re.compile(r"^Expected `str` of length >= (?P<n>\d+)$"), "invalid.too_short"),
    (re.compile(r"^Expected `array` of length <= (?P<n>\d+)$"), "invalid.too_many"),
    (re.compile(r"^Expected `array` of length >= (?P<n>\d+)$"), "invalid.too_few"),
    (re.compile(r"^Expected `(?:int|float|decimal)` >= (?P<n>[-\d.]+)$"), "invalid.at_least"),
    (re.compile(r"^Expected `(?:int|float|decimal)` <= (?P<n>[-\d.]+)$"), "invalid.at_most"),
    (re.compile(r"^Expected `(?:int|float|decimal)` > (?P<n>[-\d.]+)$"), "invalid.more_than"),
    (re.compile(r"^Object missing required field `(?P<name>[^`]+)`$"), "invalid.missing_field"),
    (re.compile(r"^Object contains unknown field `(?P<name>[^`]+)`$"), "invalid.unknown_field"),
    (re.compile(r"^Invalid enum value (?P<value>.+)$"), "invalid.enum_value"),
    (re.compile(r"^Invalid decimal string$"), "invalid.decimal"),
    (re.compile(r"^Invalid RFC3339 encoded datetime$"), "invalid.datetime"),
    (re.compile(r"^Invalid RFC3339 encoded date$"), "invalid.date"),
    (re.compile(r"^Expected `datetime`, got `(?P<got>[^`]+)`$"), "invalid.datetime"),
    (re.compile(r"^Expected `(?P<expected>[^`]+)`, got `(?P<got>[^`]+)`$"), "invalid.expected_type"),
]


def explain(message: str, prefix: str = "") -> tuple[str, dict]:
    """A msgspec ValidationError message as (field, reason): the path msgspec gives, plus the
    field a `__post_init__` check names, and the reason as a message of ledger.messages."""
    field, text = prefix, message
    if " - at `$" in text:
        text, _, path = text.rpartition(" - at `$")
        field = prefix + path.rstrip("`")
    named = _FIELD_PREFIX.match(text)
    if named and not text.startswith("Expected"):
        field = f"{field}.{named.group(1)}" if field and field != "body" else named.group(1)
        text = named.group(2)
    for pattern, code in REASONS.items():
        if f"matching regex {pattern!r}" in text:
            return field.lstrip("."), said(code)
    for pattern, code in _MSGSPEC:
        found = pattern.match(text)
        if found:
            if code == "invalid.too_short" and found.group("n") == "1":
                return field.lstrip("."), said("invalid.required")  # an empty text where one is needed
            return field.lstrip("."), said(code, **found.groupdict())
    return field.lstrip("."), said("invalid.detail", detail=text)


def describe(message: str, prefix: str = "") -> tuple[str, str]:
    """`explain`, with the reason in English."""
    field, reason = explain(message, prefix)
    return field, english(reason)
