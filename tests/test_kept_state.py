"""What a request keeps instead of loading again, and why it stays right: the roster is kept in
memory and loaded again as soon as the log holds a newer version (a token revoked by another
process is refused on the next request); the course an HTTP route loaded for its access check is
decided on once, and again from the log if another writer got in first."""

from __future__ import annotations

from adapters.runtime import Ledger
from ledger.accounts import add_account, current_roster, hash_token, principal_for_token, revoke_account
from ledger.service import Actor

ADMIN = Actor("admin", "HOME")


def test_a_revocation_by_another_process_is_seen_on_the_next_request(tmp_path):
    db = str(tmp_path / "ledger.sqlite3")
    with Ledger(db, read_db=str(tmp_path / "a.sqlite3")) as server, \
            Ledger(db, read_db=str(tmp_path / "b.sqlite3")) as cli:
        add_account(server.app, {"name": "rtt.a", "role": "rtt", "centre": "HOME"}, hash_token("tok-a"), ADMIN)
        assert principal_for_token(server.app, "tok-a").user == "rtt.a"
        kept = current_roster(server.app)
        assert current_roster(server.app) is kept  # nothing new: the same roster, not loaded again
        revoke_account(cli.app, "rtt.a", ADMIN)  # another process (the CLI) revokes it
        assert principal_for_token(server.app, "tok-a") is None
        assert current_roster(server.app) is not kept
        add_account(cli.app, {"name": "rtt.b", "role": "rtt", "centre": "HOME"}, hash_token("tok-b"), ADMIN)
        assert principal_for_token(server.app, "tok-b").user == "rtt.b"


def test_a_ledger_without_accounts_has_no_roster(tmp_path):
    with Ledger(str(tmp_path / "ledger.sqlite3")) as ledger:
        assert current_roster(ledger.app) is None and principal_for_token(ledger.app, "x") is None


def test_a_course_loaded_before_another_writer_got_in_is_decided_again_on_its_state(tmp_path):
    """The HTTP route hands its access check's course to `log_fraction` (one load per request);
    when that course is stale by the time it is saved, the save conflicts and the fraction is
    decided again on the winner's state: the same fraction twice is still refused."""
    from datetime import datetime, timezone

    import pytest

    from ledger import errors
    from tests.http_support import course_body

    with Ledger(str(tmp_path / "ledger.sqlite3")) as ledger:
        app = ledger.app
        cid = app.register_course(course_body("P-1", "1.2.3.4.1"), ADMIN)["id"]
        stale = app.get_course(cid)
        fraction = {"number": 1, "centre": "HOME", "machine": "L1", "operator": "rtt",
                    "delivered_at": datetime(2026, 11, 2, 9, tzinfo=timezone.utc)}
        app.log_fraction(cid, fraction, ADMIN)  # another writer, after `stale` was loaded
        with pytest.raises(errors.FractionAlreadyDelivered):
            app.log_fraction(cid, {**fraction, "operator": "rtt.b"}, ADMIN, loaded=stale)
        assert len(app.get_course(cid).active_records(1, 1)) == 1
