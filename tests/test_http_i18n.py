"""Every string the pages show exists in English, Dutch and French, with the same placeholders."""

from __future__ import annotations

import re
import typing
import string
from pathlib import Path

from adapters.chain import PROBLEM_KINDS
from adapters.http.i18n import LANGUAGES, catalog
from adapters.http.pages import INCIDENT_CATEGORIES
from ledger.receipts import CHANNELS
from schemas.billing import NEAR_MISS, SEVERITIES
from adapters.http.pages_finance import RULES
from adapters.http.pages_physicist import DONE, IMPORT_STATUSES
from ledger import day
from ledger.access import ROLES

HTTP = Path(__file__).resolve().parent.parent / "adapters" / "http"
# keys built in a template from a value: prefix + every value it can take
from schemas.course import Site  # noqa: E402
from schemas.prescription import KINDS  # noqa: E402
from schemas.outage import TECHNIQUES  # noqa: E402

DYNAMIC = {"cat_": (*INCIDENT_CATEGORIES, NEAR_MISS), "sev_": SEVERITIES, "incident_": ("open", "closed"),
           "channel_": CHANNELS,
           "log_alarm_": PROBLEM_KINDS,
           # outage pages (issue 18)
           "alias_": ("institution", "station", "aet"), "call_": ("called", "not_reached"),
           "unit_": ("patients", "slots"), "day_status_": ("expected", "delivered", "missing", "unexpected"),
           # issue 17: the gap category's meaning, an amendment's kind, a treatment site
           "gap_category_": ("1", "2", "3"), "kind_": KINDS, "site_": typing.get_args(Site),
           # issue 21
           "day_": (day.DUE, day.TREATED, day.NOT_DUE), "deviation_": ("over", "under"),
           "deviation_beam_": ("over", "under"), "done_": DONE, "import_": IMPORT_STATUSES, "role_": ROLES,
           "rule_": RULES, "technique_": TECHNIQUES}


def used_keys() -> set[str]:
    keys: set[str] = set()
    for path in [*HTTP.glob("templates/*.html"), *HTTP.glob("*.py")]:
        keys |= set(re.findall(r"""\bt\(["']([a-z_0-9]+)["']""", path.read_text(encoding="utf-8")))
    for prefix, values in DYNAMIC.items():
        assert prefix in keys, prefix
        keys.discard(prefix)
        keys |= {prefix + v for v in values}
    keys.discard("err_")  # refusal headlines: err_<code>, with err_other when a code has none
    return keys


def placeholders(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


def test_every_page_string_is_in_every_language():
    keys = used_keys()
    assert len(keys) > 100
    for lang in LANGUAGES:
        missing = sorted(keys - set(catalog(lang)))
        assert missing == [], (lang, missing)
    for key in keys:
        assert placeholders(catalog("nl")[key]) == placeholders(catalog("en")[key]) == placeholders(catalog("fr")[key]), key
