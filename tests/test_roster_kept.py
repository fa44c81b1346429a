"""The roster is kept in memory for the requests that read it, and loaded again as soon as the
log holds a newer version: a token revoked by another process is refused on the next request."""

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
