"""The reader's language: English, Dutch and French, from gettext catalogs (adapters/locale).

Three domains, each a `.po` file per language in `locale/<lang>/LC_MESSAGES/`:
- `messages`: the ledger's sentences (refusals, warnings, flags, incidents it registers), whose
  msgids are the English templates of `ledger/messages.py`; English is the source.
- `pages`: the pages' and reports' vocabulary, keyed by a short name (`t("worklist")`), English
  included.
- `drill`: the drill report's sentences, keyed by their English text.
- `cli`: what the `fraction-ledger` commands print for a person (not `--json`), keyed by a short
  name (`cli("course_registered")`), English included; the CLI's language is `cli_language()`.
- `reports`: the printable reports' words (the reconciliation report, the treatment summary
  PDF), keyed by a short name, English included; in the reader's language.
- `cli_help`: the `fraction-ledger --help` texts (docstrings, `help=`) and click's own words, keyed
  by their English text (en/cli_help.po lists them); shown in `cli_language()` (tools/cli_help.py).
The `.po` files are read and compiled in memory with Babel when first used (no build step), and
numbers and dates are written the way each language writes them (Babel's CLDR data; Belgian
conventions: `en` is written as in en_GB, `nl` as nl_BE, `fr` as fr_BE). README "Translations"
says how to extract new texts; tests/test_translations.py fails when one lacks a translation.
"""

from __future__ import annotations

import gettext
import os
import re
from collections.abc import Callable
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from functools import cache
from io import BytesIO
from pathlib import Path
from typing import Any

from babel import Locale
from babel.dates import format_date, format_datetime
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_decimal
from babel.support import Translations

from ledger.messages import PLURALS, TEXTS, render

LANGUAGES = ("en", "nl", "fr")
LOCALES = {"en": "en_GB", "nl": "nl_BE", "fr": "fr_BE"}
LOCALE_DIR = Path(__file__).resolve().parent / "locale"
DOMAINS = ("messages", "pages", "drill", "cli", "reports", "cli_help")
_ISO_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?([+-]\d{2}:\d{2}|Z)$")
_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_LONG_DECIMAL = re.compile(r"^-?\d+\.\d{3,}$")  # more decimals than a sentence needs


def po_path(lang: str, domain: str) -> Path:
    return LOCALE_DIR / lang / "LC_MESSAGES" / f"{domain}.po"


@cache
def catalog_of(lang: str, domain: str):
    """The Babel catalog of one language and domain (None when there is no file)."""
    path = po_path(lang, domain)
    if not path.exists():
        return None
    with path.open("rb") as f:
        return read_po(f, locale=LOCALES[lang].split("_")[0], domain=domain)


@cache
def translations(lang: str, domain: str) -> gettext.NullTranslations:
    found = catalog_of(lang, domain) if lang in LANGUAGES else None
    if found is None:
        return gettext.NullTranslations()
    compiled = BytesIO()
    write_mo(compiled, found)  # fuzzy entries are left out: an unchecked translation is not shown
    compiled.seek(0)
    return Translations(fp=compiled, domain=domain)


def language(value: str | None) -> str:
    """One of LANGUAGES from a tag such as 'fr', 'nl-BE' or 'fr_BE.UTF-8'; English otherwise."""
    tag = (value or "").split(".")[0].replace("_", "-").split("-")[0].lower()
    return tag if tag in LANGUAGES else "en"


def cli_language() -> str:
    """The CLI's language: FRACTION_LEDGER_LANG, else the locale's LC_ALL/LC_MESSAGES/LANG."""
    for name in ("FRACTION_LEDGER_LANG", "LC_ALL", "LC_MESSAGES", "LANG"):
        if os.environ.get(name):
            return language(os.environ[name])
    return "en"


class Words:
    """Everything one reader reads, in their language: `t` for page words, `say` for the
    ledger's messages, `number`/`money`/`when`/`day` for values."""

    def __init__(self, lang: str):
        self.lang = lang if lang in LANGUAGES else "en"
        self.locale = Locale.parse(LOCALES[self.lang])
        self._pages = translations(self.lang, "pages")
        self._english_pages = translations("en", "pages")
        self._messages = translations(self.lang, "messages")

    # -- page vocabulary
    def t(self, key: str, **values: object) -> str:
        text = self._pages.gettext(key)
        if text == key:
            text = self._english_pages.gettext(key)
        return text.format(**values) if values else text

    def tn(self, key: str, count: int, **values: object) -> str:
        """A page text with plural forms: msgid `key`, msgid_plural `key_plural`."""
        text = self._pages.ngettext(key, key + "_plural", count)
        if text in (key, key + "_plural"):
            text = self._english_pages.ngettext(key, key + "_plural", count)
        return text.format(count=self.number(count), **values)

    # -- the command line's and the reports' words (domains `cli` and `reports`)
    def word(self, domain: str, key: str, /, **values: object) -> str:
        text = translations(self.lang, domain).gettext(key)
        if text == key:
            text = translations("en", domain).gettext(key)
        return text.format(**values) if values else text

    def word_n(self, domain: str, key: str, count: int, /, **values: object) -> str:
        """A text with plural forms: msgid `key`, msgid_plural `key_plural`; {count} as the reader writes it."""
        text = translations(self.lang, domain).ngettext(key, key + "_plural", count)
        if text in (key, key + "_plural"):
            text = translations("en", domain).ngettext(key, key + "_plural", count)
        return text.format(count=self.number(count), **values)

    def cli(self, key: str, /, **values: object) -> str:
        return self.word("cli", key, **values)

    def report(self, key: str, /, **values: object) -> str:
        return self.word("reports", key, **values)

    # -- values
    def number(self, value: int | Decimal | float | str) -> str:
        try:
            return format_decimal(Decimal(str(value)), locale=self.locale, decimal_quantization=False)
        except ArithmeticError:
            return str(value)

    def money(self, value: Decimal | str) -> str:
        """An amount in EUR as the reader writes it (2.100,00 in NL/FR; 2,100.00 in EN)."""
        return format_decimal(Decimal(str(value)), format="#,##0.00", locale=self.locale)

    def mu(self, value: Decimal | str | float | None) -> str:
        """A meterset as people read it: one or two decimals (116.0 for 116.0036697, 95.15), per locale."""
        if value in (None, ""):
            return "-"
        try:
            return format_decimal(Decimal(str(value)), format="#,##0.0#", locale=self.locale)
        except ArithmeticError:
            return str(value)

    def amount(self, value: Decimal | str | None) -> str:
        """An amount on a page or statement: two decimals with the reader's decimal sign and no
        thousands separator (1200.00; 1200,00 in NL/FR), so that it is copied into a sheet as it is."""
        if value in (None, ""):
            return "–"
        return format_decimal(Decimal(str(value)), format="0.00", locale=self.locale)

    def when(self, value: datetime | str | None) -> str:
        """A time in its own offset (the centre's, as a delivery was told), as the reader writes it;
        a time the server recorded (in UTC) on the department's clock, never as a UTC wall time."""
        if value in (None, ""):
            return "-"
        at = datetime.fromisoformat(value.replace("Z", "+00:00")) if isinstance(value, str) else value
        pattern = f"{self._short_date} {self.locale.time_formats['short'].pattern}"
        if at.tzinfo is None:
            return format_datetime(at, pattern, locale=self.locale)
        if at.utcoffset() == timedelta(0):
            from adapters.runtime import department_zone  # here: the runtime opens ledgers, words need none

            at = at.astimezone(department_zone())
        return format_datetime(at, pattern, tzinfo=at.tzinfo, locale=self.locale)

    @property
    def _short_date(self) -> str:
        """The locale's short date with the year in full (29/03/2026, not 29/03/26): a course spans a new year."""
        return re.sub(r"(?<!y)yy(?!y)", "yyyy", self.locale.date_formats["short"].pattern)

    def day(self, value: date | str | None) -> str:
        if value in (None, ""):
            return "-"
        return format_date(date.fromisoformat(value) if isinstance(value, str) else value, "medium", locale=self.locale)

    def value(self, v: Any) -> str:
        if isinstance(v, bool) or v is None:
            return str(v)
        if isinstance(v, str) and _LONG_DECIMAL.match(v):
            v = Decimal(v)  # a stored Decimal (events keep them as text)
        if isinstance(v, Decimal) and v.is_finite() and v.as_tuple().exponent < -2:
            # a value in a sentence (a meterset, a tolerance) to two decimals: 116.0036697 MU is 116.00 MU
            return self.number(v.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))
        if isinstance(v, (int, Decimal, float)):
            return self.number(v)
        if isinstance(v, datetime):
            return self.when(v)
        if isinstance(v, date):
            return self.day(v)
        if isinstance(v, str) and _ISO_DATETIME.match(v):
            return self.when(v)
        if isinstance(v, str) and _ISO_DATE.match(v):
            return self.day(v)
        return str(v)

    # -- the ledger's messages
    def _template(self, code: str, params: dict[str, Any]) -> str:
        if code in PLURALS:
            singular, plural, count = PLURALS[code]
            return self._messages.ngettext(singular, plural, int(params.get(count, 0)))
        return self._messages.gettext(TEXTS[code])

    def say(self, message: Any) -> str:
        """A stored message (a code and its values), a refusal, or text written before codes."""
        said = getattr(message, "said", message)
        if said is None:
            return getattr(message, "message", "")
        if isinstance(message, Exception) and hasattr(message, "field") and said is not None:
            return f"{message.field}: {render(said, self._template, self.value)}"
        return render(said, self._template, self.value)

    def reason(self, error: Any) -> str:
        """The reason of a field error without its field name."""
        said = getattr(error, "said", None)
        return render(said, self._template, self.value) if said else getattr(error, "reason", str(error))


def mu_input(value: Decimal | str | float | None) -> str:
    """A meterset as a form field's value: rounded to 0.01 MU, at least one decimal ("112.4", "116.0")."""
    if value in (None, ""):
        return ""
    try:
        text = format(Decimal(str(value)).quantize(Decimal("0.01")).normalize(), "f")
    except ArithmeticError:
        return str(value)
    return text if "." in text else text + ".0"


def name_parts(pn: str | None) -> tuple[str, str]:
    """A DICOM person name (FAMILY^GIVEN^...) as (family name, given names); an all-capitals given
    name is written as a name ("AN" -> "An") so that the two are told apart at a glance."""
    parts = (pn or "").split("=")[0].split("^")
    family = parts[0].strip()
    given = " ".join(p.strip() for p in parts[1:3] if p.strip())
    if given.isupper():
        given = "-".join(" ".join(w.capitalize() for w in g.split(" ")) for g in given.split("-"))
    return family, given


@cache
def words(lang: str) -> Words:
    return Words(lang)


def translator(lang: str) -> Callable[..., str]:
    return words(lang).t


def catalog(lang: str, domain: str = "pages") -> dict[str, str]:
    """msgid -> msgstr of one language's domain (what the tests compare)."""
    found = catalog_of(lang, domain)
    return {} if found is None else {m.id: m.string for m in found if m.id and not isinstance(m.id, tuple)}
