"""Every sentence a user reads exists in English, Dutch and French (gettext catalogs, Babel).

The ledger stores and raises message codes with values (ledger/messages.py); the edge renders
them in the reader's language (adapters/i18n.py). These tests fail when a message lacks a
translation, when a translation loses or invents a placeholder, and when code raises or stores
a sentence that is not a known message code."""

from __future__ import annotations

import ast
import string
from decimal import Decimal
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir

from adapters.i18n import LANGUAGES, Words, catalog_of
from ledger import errors
from ledger.messages import PLURALS, TEXTS, english, said

ROOT = Path(__file__).resolve().parent.parent
ERROR_CLASSES = {name for name in dir(errors) if isinstance(getattr(errors, name), type)
                 and issubclass(getattr(errors, name), errors.LedgerError)}


def placeholders(text: str) -> list[str]:
    return sorted(name for _, name, _, _ in string.Formatter().parse(text) if name)


def extracted_messages() -> list[str | tuple[str, str]]:
    """What Babel extracts from the ledger's code with the keywords README 'Translations' gives."""
    found = extract_from_dir(str(ROOT / "ledger"), method_map=[("**.py", "python")],
                             keywords={"N_": None, "Np_": (1, 2)})
    return [message for _, _, message, _, _ in found]


def test_babel_extracts_every_message_of_the_ledger():
    extracted = extracted_messages()
    singular = {m for m in extracted if isinstance(m, str)}
    plural = {m for m in extracted if isinstance(m, tuple)}
    assert set(TEXTS.values()) <= singular
    assert {(s, p) for s, p, _ in PLURALS.values()} <= plural
    assert len(extracted) >= 150


@pytest.mark.parametrize("lang", [lang for lang in LANGUAGES if lang != "en"])
def test_every_message_is_translated_with_the_same_placeholders(lang):
    translated = {m.id: m for m in catalog_of(lang, "messages") if m.id}
    for message in extracted_messages():
        entry = translated.get(message)
        assert entry is not None, (lang, "missing", message)
        assert not entry.fuzzy, (lang, "fuzzy", message)
        sources = message if isinstance(message, tuple) else (message,)
        strings = entry.string if isinstance(entry.string, tuple) else (entry.string,)
        assert all(strings), (lang, "empty", message)
        for text in strings:
            assert placeholders(text) == placeholders(sources[-1]), (lang, message, text)


def code_arguments(tree: ast.AST):
    """(line, node) of every message code given to a refusal or to `said`/`check_active`/`check_open`."""
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        f = node.func
        name = f.attr if isinstance(f, ast.Attribute) else getattr(f, "id", None)
        if name in ERROR_CLASSES and name != "LogCompromised":
            index = 1 if name == "InvalidCommand" else 0
        elif name in ("said", "check_active", "check_open"):
            index = 0
        else:
            continue
        if len(node.args) > index:
            yield node.lineno, node.args[index]


def test_refusals_and_stored_messages_are_codes_never_prose():
    known = set(TEXTS) | set(PLURALS)
    prefixes = {code.split(".")[0] + "." for code in known}
    problems = []
    for path in [*ROOT.glob("ledger/*.py"), *ROOT.glob("adapters/**/*.py"), *ROOT.glob("tools/*.py")]:
        for line, arg in code_arguments(ast.parse(path.read_text(encoding="utf-8"))):
            where = f"{path.relative_to(ROOT)}:{line}"
            if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                if arg.value not in known:
                    problems.append((where, arg.value))
            elif isinstance(arg, ast.JoinedStr):  # f"status.{...}": a family of codes
                head = arg.values[0]
                if not (isinstance(head, ast.Constant) and head.value in prefixes):
                    problems.append((where, ast.unparse(arg)))
    assert problems == []


def test_a_french_rtt_reads_ne_pas_traiter_and_a_dutch_one_niet_behandelen():
    refusal = errors.FractionOutOfRange(
        "fraction_out_of_range.fraction_outside_prescription_course", number=26, course="BREAST",
        patient_id="P1", fractions_planned=25, number2=1, delivered=25)
    assert "Do not treat" in refusal.message  # the source text, what programs and logs read
    assert "Ne pas traiter" in Words("fr").say(refusal)
    assert "Niet behandelen" in Words("nl").say(refusal)
    assert "Do not treat" not in Words("fr").say(refusal) + Words("nl").say(refusal)


def test_nested_messages_plural_forms_numbers_dates_and_money_per_locale():
    one = said("warning.earlier_not_recorded", n=1, numbers="3")
    many = said("warning.earlier_not_recorded", n=2, numbers="3, 4")
    assert english(one) == "An earlier fraction is not recorded: 3."
    assert english(many) == "Earlier fractions are not recorded: 3, 4."
    assert Words("nl").say(one) != Words("nl").say(many)
    where = said("warning.short_interval", hours=6, number=1, record=said(
        "record.where", centre="PARTNER", machine="TB2", at="2026-03-29T09:30+02:00", operator="rtt.b"))
    assert "29/03/2026" in Words("fr").say(where) and "09:30" in Words("fr").say(where)  # in its own offset
    assert "29/03/2026" in Words("nl").say(where) or "29-03-2026" in Words("nl").say(where)
    assert Words("nl").money(Decimal("2100")) == "2.100,00"
    assert Words("fr").money(Decimal("2100.5")).replace("\u202f", " ").replace("\xa0", " ") == "2 100,50"
    assert Words("en").money(Decimal("2100")) == "2,100.00"
    assert Words("fr").number(Decimal("116.0036697")) == "116,0036697"


def test_page_words_are_extracted_from_templates_and_code_and_exist_in_every_language():
    keys = set()
    for _, _, message, _, _ in extract_from_dir(
            str(ROOT / "adapters" / "http"), keywords={"t": None},
            method_map=[("templates/**.html", "jinja2.ext:babel_extract"), ("**.py", "python")]):
        keys.add(message)
    keys = {k for k in keys if not k.endswith("_")}  # a prefix completed at run time (tests/test_http_i18n.py)
    assert len(keys) > 100
    for lang in LANGUAGES:
        have = {m.id for m in catalog_of(lang, "pages") if m.id and m.string}
        assert sorted(keys - have) == [], lang
