"""Property-based: random command sequences never break a rule, and the read model rebuilt
from the log equals the one built incrementally."""

from __future__ import annotations

import pytest

from datetime import datetime, timedelta, timezone

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters.runtime import Ledger
from ledger import errors
from ledger.service import Actor

CENTRES = ["HOME", "PARTNER", "THIRD"]
PEOPLE = ["anna", "bert", "carl"]
T0 = datetime(2026, 10, 1, 8, 0, tzinfo=timezone.utc)

command = st.one_of(
    st.tuples(st.just("log"), st.integers(0, 2), st.integers(-1, 8), st.sampled_from(CENTRES),
              st.sampled_from(PEOPLE), st.integers(0, 400), st.booleans()),
    st.tuples(st.just("verify"), st.integers(0, 2), st.integers(1, 7), st.sampled_from(PEOPLE)),
    st.tuples(st.just("void"), st.integers(0, 2), st.integers(1, 7)),
    st.tuples(st.just("status"), st.integers(0, 2), st.sampled_from(["suspend", "resume", "complete"])),
    # issue 17: prescription amendments, proposed and countersigned (by anyone, the prescriber included)
    st.tuples(st.just("amend"), st.integers(0, 2), st.sampled_from(["fractions", "extra_fractions"]),
              st.integers(1, 8), st.sampled_from(PEOPLE)),
    st.tuples(st.just("countersign"), st.integers(0, 2), st.sampled_from(PEOPLE)),
)


def registered(ledger: Ledger) -> list[str]:
    ids = []
    for k, planned in enumerate((3, 5, 6)):
        ids.append(ledger.app.register_course(
            {"patient": {"id": f"P{k}", "name": f"PATIENT^{k}"}, "home_centre": "HOME",
             "plan": {"uid": f"1.2.3.{k}", "label": f"plan {k}",
                      "fraction_groups": [{"number": 1, "fractions_planned": planned,
                                           "beams": [{"number": 1, "meterset": "100"}, {"number": 2, "meterset": "50"}]}]}},
            Actor("physicist", "HOME"))["id"])
    return ids


def apply(ledger: Ledger, ids: list[str], cmd: tuple) -> None:
    app = ledger.app
    kind, idx = cmd[0], cmd[1]
    course = ids[idx]
    try:
        if kind == "log":
            _, _, number, centre, who, hours, partial = cmd
            beams = [{"number": 1, "delivered_mu": "100"}, {"number": 2, "delivered_mu": "20", "termination": "MACHINE"}] if partial else None
            delivery = "CONTINUATION" if partial and number % 2 else "TREATMENT"
            if delivery == "CONTINUATION":
                beams = [{"number": 2, "delivered_mu": "30"}]
            app.log_fraction(course, {"number": number, "centre": centre, "machine": "L", "operator": who,
                                      "delivered_at": T0 + timedelta(hours=hours), "beams": beams,
                                      "delivery_type": delivery}, Actor(who, centre))
        elif kind == "verify":
            app.verify_fraction(course, cmd[2], cmd[3], Actor(cmd[3], "HOME"))
        elif kind == "void":
            app.void_fraction(course, cmd[2], "test", "physicist", Actor("physicist", "HOME"))
        elif kind == "amend":
            app.gaps.amend_prescription(course, {"kind": cmd[2], "fractions": cmd[3], "reason": "test"}, Actor(cmd[4], "HOME"))
        elif kind == "countersign":
            pending = app.get_course(course).pending_amendments()
            if pending:
                app.gaps.countersign_amendment(course, pending[-1].id, Actor(cmd[2], "HOME"))
        else:
            getattr(app, f"{cmd[2]}_course")(course, *(["why"] if cmd[2] != "resume" else []), Actor("physicist", "HOME"))
    except errors.LedgerError:
        pass


def check_invariants(ledger: Ledger, ids: list[str]) -> None:
    for course_id in ids:
        course = ledger.app.get_course(course_id)
        for group in course.prescription.fraction_groups:  # as amended (countersigned)
            active = course.active_records(group.number)
            numbers = [r.number for r in active if r.delivery_type == "TREATMENT"]
            assert len(numbers) == len(set(numbers)), "a fraction number delivered twice"
            assert all(1 <= n <= group.fractions_planned for n in numbers), "a fraction outside the prescription"
            assert len(course.delivered_numbers(group.number)) <= group.fractions_planned
            for r in active:
                if r.delivery_type == "CONTINUATION":
                    assert any(o.delivery_type == "TREATMENT" and o.number == r.number for o in active)
                if r.verified_by is not None:
                    assert r.verified_by != r.operator, "verified by its own operator"
        view = ledger.fresh().course(course_id)
        assert view["fractions_delivered"] == course.fractions_delivered()
        assert view["status"] == course.status
        assert view["fractions_planned"] == course.fractions_planned()
        assert all(a.countersigned_by != a.by for a in course.amendments), "an amendment under two eyes"


@pytest.mark.slow
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(commands=st.lists(command, min_size=1, max_size=40))
def test_random_commands_never_break_a_rule_and_rebuild_matches(tmp_path_factory, commands):
    tmp = tmp_path_factory.mktemp("prop")
    import os

    os.environ["FRACTION_LEDGER_READ_DB"] = str(tmp / "read.sqlite3")
    try:
        with Ledger(str(tmp / "ledger.sqlite3")) as ledger:
            ids = registered(ledger)
            for i, cmd in enumerate(commands):
                apply(ledger, ids, cmd)
                if i % 7 == 0:
                    ledger.fresh()  # interleave incremental catch-ups with the writes
            check_invariants(ledger, ids)
            incremental = ledger.fresh().dump()
            ledger.read.rebuild(ledger.app)
            assert ledger.read.dump() == incremental
    finally:
        del os.environ["FRACTION_LEDGER_READ_DB"]
