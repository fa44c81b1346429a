"""The per-destination delivery record lives in the event log, on every backend."""

from __future__ import annotations

import pytest

from adapters.readmodel import iter_events
from adapters.runtime import Ledger
from ledger import errors
from tests.conftest import EACH_BACKEND
from tests.hl7_scenario import PHYSICIST


@EACH_BACKEND
def test_answers_survive_a_restart_and_an_acceptance_clears_an_earlier_refusal(ledger, db_url):
    app = ledger.app
    assert app.destinations.destination("billing") is None
    assert app.destinations.record_export("billing", ["CG1", "CG2"], "/drop", PHYSICIST) == 2
    assert app.destinations.record_export("billing", ["CG2", "CG3"], "/drop", PHYSICIST) == 1  # only new ids
    app.destinations.record_answers("billing", ["CG1"], [{"id": "CG4", "code": "AE", "text": "Unknown patient"}], PHYSICIST)
    with Ledger(db_url) as reopened:
        d = reopened.app.destinations.destination("billing")
        assert d.is_accepted("CG1") and not d.is_accepted("CG4")
        assert d.refused["CG4"]["text"] == "Unknown patient" and d.refused["CG4"]["code"] == "AE"
        assert d.may_hold("CG3") and d.may_hold("CG1") and not d.may_hold("CG4")
        reopened.app.destinations.record_answers("billing", ["CG4"], [], PHYSICIST)
        assert reopened.app.destinations.destination("billing").refused == {}
        types = [e["type"] for e in iter_events(reopened.app) if e["type"].startswith("Destination.")]
    assert types == ["Destination.Opened", "Destination.MessagesExported",
                     "Destination.MessagesExported", "Destination.MessagesAcknowledged",
                     "Destination.MessagesAcknowledged", "Destination.MessagesAcknowledged"]


def test_a_destination_needs_a_name(ledger):
    with pytest.raises(errors.InvalidCommand, match="destination"):
        ledger.app.destinations.record_answers(" ", ["X"], [], PHYSICIST)
