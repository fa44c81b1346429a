"""How current the baseline is: per source the last object received and an alarm when a source has
been silent longer than the limit of working time; per course when and from where it last came."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from litestar.testing import TestClient

from adapters.http import create_app
from ledger.receipts import WorkingTime, parse_duration, record_receipt, silence
from ledger.service import Actor
from tests.http_support import HOME, PARTNER, account_name, auth, seed_accounts, seed_course, token_of

BXL = ZoneInfo("Europe/Brussels")
HOURS = WorkingTime()  # Mon-Fri 07:00-19:00
LIMIT = timedelta(minutes=30)


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=BXL)


# ---- the rule -----------------------------------------------------------------------------------


def test_only_working_time_counts_as_silence():
    friday_evening = at("2027-03-26T18:50")
    assert silence(friday_evening, at("2027-03-27T12:00"), LIMIT, HOURS, BXL) is None  # Saturday: no one treats
    assert silence(friday_evening, at("2027-03-29T07:15"), LIMIT, HOURS, BXL) is None  # 10 + 15 minutes
    assert silence(friday_evening, at("2027-03-29T07:25"), LIMIT, HOURS, BXL) == timedelta(minutes=35)
    tuesday = at("2027-03-30T09:00")
    assert silence(tuesday, tuesday + timedelta(minutes=30), LIMIT, HOURS, BXL) is None
    assert silence(tuesday, tuesday + timedelta(minutes=31), LIMIT, HOURS, BXL) == timedelta(minutes=31)


def test_working_hours_are_counted_in_the_zone_across_the_change_to_summer_time():
    # Sunday 28 March 2027 the clocks go forward; Monday 07:00 CEST is 05:00 UTC, not 06:00.
    hours = WorkingTime.parse("Mon-Fri 07:00-19:00")
    since = datetime.fromisoformat("2027-03-26T17:50:00+00:00")  # Friday 18:50 CET
    assert hours.between(since, datetime.fromisoformat("2027-03-29T05:20:00+00:00"), BXL) == timedelta(minutes=30)
    every_day = WorkingTime.parse("Mon-Sun 00:00-24:00")
    assert every_day.between(at("2027-03-27T12:00"), at("2027-03-27T13:00"), BXL) == timedelta(hours=1)


@pytest.mark.parametrize("text, problem", [("Mon-Fri", "expected DAYS HOURS"), ("Mo-Xy 07:00-19:00", "days are"),
                                           ("Mon-Fri 19:00-07:00", "after their start"),
                                           ("Mon-Fri 7h-19h", "HH:MM")])
def test_bad_working_hours_name_the_part(text, problem):
    with pytest.raises(ValueError, match=problem):
        WorkingTime.parse(text)


@pytest.mark.parametrize("text", ["30", "m", "0m", "-5m", "1w"])
def test_bad_durations_are_refused(text):
    with pytest.raises(ValueError, match="a duration like"):
        parse_duration(text)


# ---- the pages and /health ------------------------------------------------------------------------


@pytest.fixture
def api(ledger, monkeypatch):
    monkeypatch.setenv("FRACTION_LEDGER_SOURCE_SILENCE", "30m")
    monkeypatch.setenv("FRACTION_LEDGER_WORKING_HOURS", "Mon-Sun 00:00-24:00")
    seed_accounts(ledger.app)
    ledger.course_id = seed_course(ledger.app)
    with TestClient(create_app(ledger)) as client:
        client.ledger = ledger
        yield client


def sign_in(client, name: str) -> None:
    csrf = re.search(r'name="_csrf_token" value="([^"]+)"', client.get("/").text).group(1)
    assert client.post("/", data={"token": token_of(name), "_csrf_token": csrf}).status_code == 200


def test_health_and_the_pages_show_each_source_and_an_alarm_once_one_is_silent(api):
    ledger = api.ledger
    assert api.get("/health").json()["sources"] == []
    record_receipt(ledger.app, "HOME-OIS", "listen", "RT Beams Treatment Record", "1.2.3", ledger.course_id,
                   "imported", Actor("dicom-listener", "-"))
    record_receipt(ledger.app, "ARCHIVE", "pull", "RT Plan", "1.2.4", None, "unchanged", Actor("dicom-pull", "-"))
    health = api.get("/health").json()
    assert health["status"] == "ok" and health["detail"] == ""
    assert {s["name"]: (s["channel"], s["objects"], s["silent_minutes"]) for s in health["sources"]} == {
        "HOME-OIS": ("listen", 1, None), "ARCHIVE": ("pull", 1, None)}

    ledger.clock.now += timedelta(minutes=20)
    record_receipt(ledger.app, "ARCHIVE", "pull", "RT Plan", "1.2.5", None, "imported", Actor("dicom-pull", "-"))
    ledger.clock.now += timedelta(minutes=15)  # HOME-OIS: 35 minutes; ARCHIVE: 15
    health = api.get("/health").json()
    assert {s["name"]: s["silent_minutes"] for s in health["sources"]} == {"HOME-OIS": 35, "ARCHIVE": None}
    assert health["detail"] == "HOME-OIS silent for 35 working minutes"

    sign_in(api, account_name("rtt", PARTNER))
    page = api.get("/worklist", headers={"Accept-Language": "fr"}).text
    assert 'id="sources-alarm"' in page and "silencieuse depuis 35 minutes ouvrées" in page
    course = api.get(f"/courses/{ledger.course_id}", headers={"Accept-Language": "fr"}).text
    assert re.search(r'id="last-received">[^<]*HOME-OIS \(envoyé \(DICOM\)\)', course)
    detail = api.get(f"/api/courses/{ledger.course_id}", headers=auth(account_name("physicist", HOME))).json()
    assert detail["last_received"]["source"] == "HOME-OIS" and detail["last_received"]["channel"] == "listen"


def test_a_bad_freshness_setting_is_named(api, monkeypatch):
    monkeypatch.setenv("FRACTION_LEDGER_SOURCE_SILENCE", "half an hour")
    health = api.get("/health").json()
    assert health["status"] == "ok"
    assert health["detail"].startswith("sources unknown: FRACTION_LEDGER_SOURCE_SILENCE: 'half an hour'")
