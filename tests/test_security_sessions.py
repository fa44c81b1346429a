"""Issue 15, point 3: sessions and sign-in, tried as an attacker would.

A session id planted before sign-in must not open the account after it; API calls, probes and
assets must not make sessions; expired sessions must go; cookies must be Secure when asked
(and by default over TLS); guessing tokens must lock the guesser out; the account behind a
token is found by its hash in an index, not by comparing with every account's.
"""

from __future__ import annotations

import asyncio
import re
import stat
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from litestar.testing import TestClient

from adapters.http import create_app
from adapters.runtime import Ledger
from ledger.accounts import Roster, add_account, hash_token, principal_for_token, principal_named, revoke_account, \
    roster, rotate_token
from ledger.service import Actor
from tests.conftest import ROOT, Clock, free_port, require_tool, wait_for
from tools.serverproc import stop_process
from tests.http_support import account_name, auth, running_server, seed_accounts, token_of

RTT = account_name("rtt", "PARTNER")
PHYSICIST = account_name("physicist", "HOME")
PLANTED = "a1" * 32  # what an attacker puts in the victim's browser before the victim signs in
# The lockout policy (adapters/http/throttle.py): 5 failures within WINDOW lock for LOCKOUT.
WINDOW, LOCKOUT = timedelta(minutes=5), timedelta(minutes=15)


@pytest.fixture
def site(tmp_path, monkeypatch):
    """A ledger with one account per role and centre, on a clock the test moves."""
    monkeypatch.setenv("FRACTION_LEDGER_READ_DB", str(tmp_path / "read.sqlite3"))
    clock = Clock()
    with Ledger(str(tmp_path / "ledger.sqlite3"), clock=clock) as ledger:
        ledger.clock = clock
        seed_accounts(ledger.app)
        yield ledger


def session_files(folder: Path) -> list[Path]:
    return [p for p in folder.iterdir()] if folder.exists() else []


def csrf_of(client: TestClient) -> str:
    return re.search(r'name="_csrf_token" value="([^"]+)"', client.get("/").text).group(1)


def sign_in(client: TestClient, token: str, name: str = "") -> httpx.Response:
    form = {"token": token, "_csrf_token": csrf_of(client), **({"name": name} if name else {})}
    return client.post("/", data=form, follow_redirects=False)


def session_cookies(response: httpx.Response) -> list[str]:
    return [h for h in response.headers.get_list("set-cookie") if h.startswith("session=")]


def opens_worklist(client: TestClient, session_id: str) -> bool:
    client.cookies.delete("session")
    client.cookies.set("session", session_id, domain="testserver.local")
    answer = client.get("/worklist", follow_redirects=False)
    assert answer.status_code in (200, 302), answer.text
    return answer.status_code == 200


# ---- (a) session fixation --------------------------------------------------------------------


def test_a_session_id_planted_before_sign_in_opens_nothing_after_it(site, tmp_path):
    folder = tmp_path / "sessions"
    with TestClient(create_app(site, session_dir=folder)) as victim:
        victim.cookies.set("session", PLANTED, domain="testserver.local")
        signed_in = sign_in(victim, token_of(RTT))
        assert signed_in.status_code == 302 and signed_in.headers["location"] == "/worklist"
        given = victim.cookies.get("session")
        assert given and given != PLANTED  # a new id, chosen by the server
        assert victim.get("/worklist").status_code == 200
        assert len(session_files(folder)) == 1
        # The attacker, with the id they planted, is sent to sign in.
        assert not opens_worklist(victim, PLANTED)
        assert opens_worklist(victim, given)


def test_a_new_sign_in_and_a_sign_out_each_end_the_previous_session_id(site, tmp_path):
    folder = tmp_path / "sessions"
    with TestClient(create_app(site, session_dir=folder)) as browser:
        assert sign_in(browser, token_of(RTT)).status_code == 302
        first = browser.cookies.get("session")
        # Someone else signs in on the same browser without signing out: a new id, the old one is dead.
        assert sign_in(browser, token_of(account_name("rtt", "PARTNER", 2))).status_code == 302
        second = browser.cookies.get("session")
        assert second != first
        assert not opens_worklist(browser, first)
        assert opens_worklist(browser, second)
        assert len(session_files(folder)) == 1
        out = browser.post("/sign-out", data={"_csrf_token": csrf_of(browser)}, follow_redirects=False)
        assert out.status_code == 302
        assert session_files(folder) == []
        assert not opens_worklist(browser, second)


# ---- (b) no session for the API, probes, assets or the sign-in page ---------------------------


def test_api_calls_probes_assets_and_the_sign_in_page_write_no_session(site, tmp_path):
    folder = tmp_path / "sessions"
    static = next(p.name for p in (ROOT / "adapters" / "http" / "static").iterdir() if p.is_file())
    with TestClient(create_app(site, session_dir=folder)) as client:
        for n in range(10):
            wrong = {"Authorization": "Bearer wrong"} if n < 3 else {}  # below the lockout's limit
            answers = [client.get("/api/courses", headers=auth(PHYSICIST)), client.get("/api/me", headers=auth(RTT)),
                       client.get("/api/courses", headers=wrong),
                       client.get("/health"), client.get("/ready"), client.get(f"/static/{static}"),
                       client.get("/"), client.get("/lang/nl", follow_redirects=False)]
            assert [a.status_code for a in answers] == [200, 200, 401, 200, 200, 200, 200, 302]
            assert not any(session_cookies(a) for a in answers)
        # Nor with a session cookie the browser holds (made up, or a page session of its own).
        client.cookies.set("session", PLANTED, domain="testserver.local")
        assert client.get("/api/courses", headers=auth(PHYSICIST)).status_code == 200
        assert client.get("/health").status_code == 200
        assert session_files(folder) == []


def test_a_signed_in_page_view_does_not_rewrite_its_session(site, tmp_path):
    folder = tmp_path / "sessions"
    with TestClient(create_app(site, session_dir=folder)) as client:
        sign_in(client, token_of(RTT))
        [stored] = session_files(folder)
        written = stored.read_bytes()
        for _ in range(5):
            answer = client.get("/worklist")
            assert answer.status_code == 200 and not session_cookies(answer)
        assert session_files(folder) == [stored] and stored.read_bytes() == written


# ---- (c) expired sessions are removed ---------------------------------------------------------


def test_an_expired_session_is_removed_at_start_up_when_met_and_by_the_periodic_sweep(site, tmp_path):
    folder = tmp_path / "sessions"
    with TestClient(create_app(site, session_dir=folder)) as client:
        sign_in(client, token_of(RTT))
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700
        [stored] = session_files(folder)
        assert stat.S_IMODE(stored.stat().st_mode) == 0o600
        assert PLANTED not in stored.name and client.cookies.get("session") not in stored.name
    site.clock.now += timedelta(hours=12, seconds=1)
    # At start-up: the server that was down while it expired removes it.
    with TestClient(create_app(site, session_dir=folder)) as client:
        assert session_files(folder) == []
        # Met with its cookie: refused and removed, the browser told to forget it.
        sign_in(client, token_of(RTT))
        assert len(session_files(folder)) == 1
        site.clock.now += timedelta(hours=12, seconds=1)
        answer = client.get("/worklist", follow_redirects=False)
        assert answer.status_code == 302 and answer.headers["location"] == "/"
        assert any("session=null" in c for c in session_cookies(answer))
        assert session_files(folder) == []


def test_the_periodic_sweep_removes_what_expired_since_the_last_one(tmp_path):
    from adapters.http.sessions import SessionStore, keep_purging

    clock = Clock()
    store = SessionStore(tmp_path / "sessions", clock)
    asyncio.run(store.set("short", b"{}", expires_in=60))
    asyncio.run(store.set("long", b"{}", expires_in=7200))
    rounds = []

    async def wait(seconds: float) -> None:  # instead of sleeping, the clock moves on
        rounds.append(store.count())
        if len(rounds) == 3:
            raise asyncio.CancelledError
        clock.now += timedelta(minutes=30)

    with pytest.raises(asyncio.CancelledError):
        asyncio.run(keep_purging(store, every=600, wait=wait))
    assert rounds == [2, 1, 1]  # after 30 minutes the short one is gone, the long one still there
    assert asyncio.run(store.get("long")) == b"{}" and asyncio.run(store.get("short")) is None


# ---- (d) Secure cookies -----------------------------------------------------------------------


def cookie_headers(response: httpx.Response, name: str) -> list[str]:
    return [h for h in response.headers.get_list("set-cookie") if h.startswith(name + "=")]


def test_secure_cookies_option_marks_the_session_and_csrf_cookies(site):
    with TestClient(create_app(site, secure_cookies=True), base_url="https://testserver.local") as client:
        [csrf] = cookie_headers(client.get("/"), "csrftoken")
        assert "secure" in csrf.lower()
        [session] = session_cookies(sign_in(client, token_of(RTT)))
        assert "secure" in session.lower().split("; ")
        assert client.get("/worklist").status_code == 200  # the browser sends it back over HTTPS
    with TestClient(create_app(site)) as client:
        [csrf] = cookie_headers(client.get("/"), "csrftoken")
        [session] = session_cookies(sign_in(client, token_of(RTT)))
        assert "secure" not in csrf.lower().split("; ") and "secure" not in session.lower().split("; ")


def server_up(base: str, proc: subprocess.Popen) -> None:
    def up() -> bool:
        if proc.poll() is not None:
            raise AssertionError(f"server exited with {proc.returncode}: {proc.stdout.read()}")
        try:
            return httpx.get(base + "/health", timeout=1, verify=False).status_code == 200
        except httpx.HTTPError:
            return False

    wait_for(up, "the server coming up", seconds=60, every=0.1)


@pytest.mark.slow
def test_serve_over_tls_marks_cookies_secure_by_default(site, tmp_path):
    openssl = require_tool("openssl")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run([openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
                    "-days", "2", "-subj", "/CN=127.0.0.1"], check=True, capture_output=True, timeout=60)
    db = str(site.storage.url)
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "tools.cli", "--db", db, "serve", "--host", "127.0.0.1",
                             "--port", str(port), "--ssl-certfile", str(cert), "--ssl-keyfile", str(key)],
                            cwd=str(ROOT), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**__import__("os").environ, "PYTHONPATH": str(ROOT)})
    try:
        base = f"https://127.0.0.1:{port}"
        server_up(base, proc)
        answer = httpx.get(base + "/", verify=False, timeout=10)
        [csrf] = cookie_headers(answer, "csrftoken")
        assert "secure" in csrf.lower().split("; ")
    finally:
        stop_process(proc)
    # Behind a TLS proxy, plain HTTP on loopback: asked for explicitly.
    with running_server(db, free_port(), extra=("--secure-cookies",)) as plain:
        [csrf] = cookie_headers(httpx.get(plain + "/", timeout=10), "csrftoken")
        assert "secure" in csrf.lower().split("; ")


def test_serve_refuses_a_key_without_its_certificate(site, tmp_path):
    key = tmp_path / "key.pem"
    key.write_text("not used")
    from tests.conftest import cli

    refused = cli("serve", "--port", str(free_port()), "--ssl-keyfile", str(key), db=site.storage.url)
    assert refused.returncode != 0 and "--ssl-certfile" in refused.stderr
    garbage = cli("serve", "--port", str(free_port()), "--ssl-certfile", str(key), db=site.storage.url)
    assert garbage.returncode == 2 and "--ssl-certfile" in garbage.stderr and "cannot be used for TLS" in garbage.stderr
    assert "Traceback" not in garbage.stderr


# ---- (e) lockout after failed sign-ins and bad tokens ------------------------------------------


def from_addresses(app):
    """Each request comes from the address in its X-Test-Address header (TestClient has only one)."""
    inner = app.asgi_handler

    async def handler(scope, receive, send):
        for key, value in scope.get("headers", []):
            if key == b"x-test-address":
                scope["client"] = (value.decode(), 40000)
        await inner(scope, receive, send)

    app.asgi_handler = handler
    return app


def test_bad_tokens_lock_the_address_out_even_for_a_correct_token_until_the_lockout_ends(site):
    with TestClient(from_addresses(create_app(site))) as api:
        here = {"X-Test-Address": "10.0.0.7"}
        for n in range(5):
            bad = api.get("/api/courses", headers={**here, "Authorization": f"Bearer guess-{n}"})
            assert bad.status_code == 401
        locked = api.get("/api/courses", headers={**here, **auth(PHYSICIST), "Accept-Language": "nl"})
        assert locked.status_code == 429
        assert 0 < int(locked.headers["retry-after"]) <= LOCKOUT.total_seconds()
        assert locked.json()["error"] == "too_many_attempts"
        assert "probeer het over 15 minuten opnieuw" in locked.json()["message"]
        assert "Try again" not in locked.json()["message"]
        # Another address is not locked; no token at all is simply 401.
        assert api.get("/api/courses", headers={"X-Test-Address": "10.0.0.8", **auth(PHYSICIST)}).status_code == 200
        assert api.get("/api/courses", headers=here).status_code == 401
        site.clock.now += LOCKOUT
        assert api.get("/api/courses", headers={**here, **auth(PHYSICIST)}).status_code == 200
        # Counting starts again from zero.
        for n in range(4):
            assert api.get("/api/courses", headers={**here, "Authorization": f"Bearer again-{n}"}).status_code == 401
        assert api.get("/api/courses", headers={**here, **auth(PHYSICIST)}).status_code == 200


def test_failures_spread_over_more_than_the_window_do_not_lock(site):
    with TestClient(from_addresses(create_app(site))) as api:
        here = {"X-Test-Address": "10.0.0.9"}
        for n in range(8):
            assert api.get("/api/me", headers={**here, "Authorization": f"Bearer slow-{n}"}).status_code == 401
            site.clock.now += WINDOW / 4  # four failures at most in any window
        assert api.get("/api/me", headers={**here, **auth(RTT)}).status_code == 200


def test_failed_sign_ins_lock_the_address_with_a_page_in_the_users_language(site, tmp_path):
    folder = tmp_path / "sessions"
    with TestClient(from_addresses(create_app(site, session_dir=folder))) as browser:
        here = {"X-Test-Address": "192.0.2.10", "Accept-Language": "fr"}
        for n in range(5):
            answer = browser.post("/", data={"token": f"guess-{n}", "_csrf_token": csrf_of(browser)}, headers=here)
            assert answer.status_code == 401
        locked = browser.post("/", data={"token": token_of(RTT), "_csrf_token": csrf_of(browser)}, headers=here,
                              follow_redirects=False)
        assert locked.status_code == 429 and 0 < int(locked.headers["retry-after"]) <= LOCKOUT.total_seconds()
        assert "réessayez dans 15 minutes" in locked.text
        assert not session_cookies(locked) and session_files(folder) == []
        site.clock.now += LOCKOUT
        opened = browser.post("/", data={"token": token_of(RTT), "_csrf_token": csrf_of(browser)}, headers=here,
                              follow_redirects=False)
        assert opened.status_code == 302 and len(session_files(folder)) == 1


def test_failed_sign_ins_for_an_account_lock_that_account_from_every_address(site):
    with TestClient(from_addresses(create_app(site))) as browser:
        for n in range(5):  # five addresses, one guess each: no address is locked, the account is
            answer = browser.post("/", data={"name": PHYSICIST, "token": f"guess-{n}", "_csrf_token": csrf_of(browser)},
                                  headers={"X-Test-Address": f"198.51.100.{n}"})
            assert answer.status_code == 401
        # Even the account's own token, named or not, from an address that never failed.
        fresh = {"X-Test-Address": "203.0.113.5", "Accept-Language": "en"}
        for form in ({"name": PHYSICIST}, {}):
            locked = browser.post("/", data={**form, "token": token_of(PHYSICIST), "_csrf_token": csrf_of(browser)},
                                  headers=fresh, follow_redirects=False)
            assert locked.status_code == 429 and "try again in 15 minutes" in locked.text
        # Other accounts sign in from there; a token of another account under this name is a failure.
        assert browser.post("/", data={"token": token_of(RTT), "_csrf_token": csrf_of(browser)}, headers=fresh,
                            follow_redirects=False).status_code == 302
        mismatched = browser.post("/", data={"name": RTT, "token": token_of(PHYSICIST),
                                             "_csrf_token": csrf_of(browser)}, headers=fresh, follow_redirects=False)
        assert mismatched.status_code == 401
        site.clock.now += LOCKOUT
        assert browser.post("/", data={"name": PHYSICIST, "token": token_of(PHYSICIST), "_csrf_token": csrf_of(browser)},
                            headers=fresh, follow_redirects=False).status_code == 302


# ---- (f) the account behind a token: a hash index ---------------------------------------------


class CountingHash(str):
    """A token hash that counts how often it is compared with a stored one."""

    compared = 0

    def __eq__(self, other: object) -> bool:
        CountingHash.compared += 1
        return str.__eq__(self, other)

    __hash__ = str.__hash__


def test_many_accounts_each_token_finds_its_own_account_revoked_and_old_tokens_refused(site):
    admin = Actor("setup", "-")
    names = [f"rtt{n:03d}.many" for n in range(120)]
    for name in names:
        add_account(site.app, {"name": name, "role": "rtt", "centre": "MANY"}, hash_token(token_of(name)), admin)
    for name in names:
        who = principal_for_token(site.app, token_of(name))
        assert who is not None and (who.user, who.role, who.centre) == (name, "rtt", "MANY")
    revoke_account(site.app, names[7], admin)
    rotate_token(site.app, names[8], hash_token("a new token"), admin)
    assert principal_for_token(site.app, token_of(names[7])) is None
    assert principal_named(site.app, names[7], hash_token(token_of(names[7]))) is None
    assert principal_for_token(site.app, token_of(names[8])) is None
    assert principal_for_token(site.app, "a new token").user == names[8]
    assert principal_named(site.app, names[8], hash_token("a new token")).user == names[8]
    assert principal_named(site.app, names[8], hash_token(token_of(names[8]))) is None
    assert principal_for_token(site.app, "never issued") is None
    with TestClient(create_app(site)) as api:
        assert api.get("/api/me", headers=auth(names[7])).status_code == 401
        assert api.get("/api/me", headers=auth(names[119])).json()["user"] == names[119]

    book: Roster = roster(site.app)
    CountingHash.compared = 0
    assert book.principal_for(CountingHash(hash_token(token_of(names[100])))).user == names[100]
    assert book.principal_for(CountingHash(hash_token("never issued"))) is None
    assert CountingHash.compared <= 1  # one index look-up, not a comparison with each of 130 accounts
    assert len(book.names_by_hash) == len(book.token_hashes) == len([a for a in book.accounts.values() if a.active])
