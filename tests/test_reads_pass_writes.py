"""A read of the log never queues behind a write (adapters/storage.py `ReadsPassWritesPool`):
while one writer holds the SQLite write connection (as during its commit's fsync) and another
writer waits for it, a read is answered."""

from __future__ import annotations

import threading

from ledger.service import Actor
from tests.conftest import wait_for


def test_a_read_is_answered_while_a_writer_writes_and_another_waits(ledger):
    app = ledger.app
    course = app.register_course(
        {"patient": {"id": "R1", "name": "READ^ONE"}, "home_centre": "HOME",
         "plan": {"uid": "1.2.826.0.1.88.1", "label": "read",
                  "fraction_groups": [{"number": 1, "fractions_planned": 5, "beams": [{"number": 1, "meterset": "100"}]}]}},
        Actor("physicist", "HOME"))["id"]
    pool = app.recorder.datastore.pool
    writing = pool.get_connection(is_writer=True)  # a write in progress
    second = threading.Thread(target=lambda: pool.put_connection(pool.get_connection(is_writer=True)), daemon=True)
    second.start()  # the next writer, waiting for the first
    wait_for(lambda: pool._writers_gate.locked(), "the second writer waits")
    answered: list = []
    reader = threading.Thread(target=lambda: answered.append(app.get_course(course)), daemon=True)
    reader.start()
    try:
        wait_for(lambda: answered, "the read answered while both writers hold or wait")
        assert second.is_alive()  # still waiting: the read went past it
        assert answered[0].patient["id"] == "R1"
    finally:
        pool.put_connection(writing)
        second.join(10)
        reader.join(10)
    assert not second.is_alive()
