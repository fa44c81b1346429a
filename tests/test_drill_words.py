"""Every sentence the drill's report shows (its checks, phases, counts and skipped peers) is in
Dutch and French, with the same placeholders as the English it is keyed by."""

from __future__ import annotations

import re
import string
from pathlib import Path

from tools.drill_report import localize, say, sentences

TOOLS = Path(__file__).resolve().parent.parent / "tools"
CALLS = [r'\.check\(\s*"([^"]+)",\s*"((?:[^"\\]|\\.)*)"', r'\.refused\(\s*"([^"]+)",\s*"((?:[^"\\]|\\.)*)"']


def used() -> set[str]:
    found: set[str] = set()
    for path in (TOOLS / "drill.py", TOOLS / "drill_recovery.py"):
        text = path.read_text(encoding="utf-8")
        for pattern in CALLS:
            for m in re.finditer(pattern, text):
                found |= {m.group(1), m.group(2)}
        found |= set(re.findall(r'counts\["([^"]+)"\]', text))
        found |= set(re.findall(r'self\.phase\("([^"]+)"\)', text))
        found |= set(re.findall(r'"text": "([^"]+)"', text))
    return found


def placeholders(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


def test_every_drill_sentence_is_in_dutch_and_french():
    keys = used()
    assert len(keys) > 70
    for lang in ("nl", "fr"):
        missing = sorted(keys - set(sentences(lang)))
        assert missing == [], (lang, missing)
        for key in keys:
            assert placeholders(sentences(lang)[key]) == placeholders(key), (lang, key)


def test_the_report_renders_a_check_in_the_readers_language():
    r = {"checks": [{"phase": "2 outage", "check": "x", "name": "{patient}: a fraction logged twice is refused",
                     "params": {"patient": "P-7"}, "expected": 1, "found": 1, "ok": True}],
         "timeline": [{"phase": "5 verify the chain", "started": "", "seconds": 0.1}],
         "counts": {"courses completed": 2}, "skipped": [{"text": "{peer}: not installed, skipped",
                                                          "params": {"peer": "storescp"}}]}
    fr = localize(r, "fr")
    assert fr["checks"][0]["check"] == "P-7 : une fraction enregistrée deux fois est refusée"
    assert (fr["checks"][0]["phase"], fr["timeline"][0]["phase"]) == ("2 panne", "5 vérifier la chaîne")
    assert fr["counts"] == {"traitements terminés": 2} and fr["skipped"] == ["storescp : non installé, ignoré"]
    assert say("en", "{patient}: a fraction logged twice is refused", {"patient": "P-7"}) == \
        "P-7: a fraction logged twice is refused"
