"""Issue 15, point 7, tried as an attacker (or an outage) would: the HTTP layer's headers and small holes.

Security headers and a Content-Security-Policy without inline script on every answer (pages,
API, errors, static files), the pages and the Swagger UI still working under it in Chromium and
with no network beyond the server; JSON nested 1,000 deep refused with 400 on every JSON route;
page forms held to the API schema's limits with the field named in the reader's language; a full
disk answering 503 while reads go on and writes come back; an encrypted or in-memory ledger's
server writing nothing into the working directory; an unreachable PostgreSQL failing fast.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from litestar.testing import TestClient

from adapters.http import create_app
from adapters.http.security import MAX_JSON_DEPTH, content_security_policy
from tests.conftest import ROOT, cli, free_port, require_module, require_tool, wait_for
from tools.serverproc import stop_process
from tests.http_support import (
    HOME, PARTNER, ROLES, account_name, auth, fraction_body, seed_accounts, seed_course, seed_demo_site, token_of,
)

RTT, PHYS, ADMIN = account_name("rtt", PARTNER), account_name("physicist", HOME), account_name("admin", HOME)
HEADERS = {"x-frame-options": "DENY", "x-content-type-options": "nosniff", "referrer-policy": "no-referrer"}


@pytest.fixture
def api(tmp_path, monkeypatch):
    """The HTTP layer is the subject here: one backend (SQLite) is enough."""
    from adapters.runtime import Ledger
    from tests.conftest import Clock

    monkeypatch.setenv("FRACTION_LEDGER_READ_DB", str(tmp_path / "read.sqlite3"))
    with Ledger(str(tmp_path / "ledger.sqlite3"), clock=Clock()) as ledger:
        seed_accounts(ledger.app)
        ledger.course_id = seed_course(ledger.app)  # home HOME, assigned PARTNER
        with TestClient(create_app(ledger)) as client:
            client.ledger = ledger
            yield client


def events(client) -> int:
    """Events of the ledger's state: the access log's entries (every read leaves one) apart."""
    from ledger.access_log import TOPIC

    return sum(1 for n in client.ledger.app.recorder.select_notifications(0, 1_000_000) if n.topic != TOPIC)


def signed_in(client, name: str, lang: str = "en") -> str:
    """Sign in on the pages in a language; returns the CSRF token for the forms."""
    client.cookies.set("lang", lang)
    csrf = re.search(r'name="_csrf_token" value="([^"]+)"', client.get("/").text).group(1)
    assert client.post("/", data={"token": token_of(name), "_csrf_token": csrf}).status_code == 200
    return csrf


# ---- (a) headers on every answer -----------------------------------------------------------------


def check_headers(response, path: str) -> None:
    for name, value in HEADERS.items():
        assert response.headers.get(name) == value, (path, name, response.headers)
    csp = response.headers["content-security-policy"]
    directives = dict(d.strip().split(" ", 1) for d in csp.split(";"))
    assert directives["script-src"] == "'self'", csp  # no inline script, no eval, no other origin
    assert "'unsafe-inline'" not in csp and "'unsafe-eval'" not in csp and "http" not in csp
    assert directives["frame-ancestors"] == "'none'" and directives["object-src"] == "'none'"
    if not path.startswith("/static/"):
        assert response.headers["cache-control"] == "no-store", path


def test_every_answer_carries_the_security_headers(api):
    cid = api.ledger.course_id
    answers = {
        "/": api.get("/"),
        "/api/courses": api.get("/api/courses", headers=auth(PHYS)),
        "/api/courses/unknown": api.get("/api/courses/unknown", headers=auth(PHYS)),
        "/api/courses (no token)": api.get("/api/courses"),
        "/api/courses/{id}/fractions (bad JSON)": api.post(f"/api/courses/{cid}/fractions", headers=auth(RTT),
                                                           content=b"{"),
        "/health": api.get("/health"),
        "/no-such-page": api.get("/no-such-page"),
        "/static/style.css": api.get("/static/style.css"),
        "/schema/swagger": api.get("/schema/swagger"),
        "/schema/openapi.json": api.get("/schema/openapi.json"),
    }
    signed_in(api, RTT)
    answers["/worklist"] = api.get("/worklist")
    answers[f"/courses/{cid}"] = api.get(f"/courses/{cid}")
    for path, response in answers.items():
        check_headers(response, path)
    assert answers["/api/courses/unknown"].status_code == 404 and answers["/no-such-page"].status_code == 404


def test_over_tls_browsers_are_told_to_keep_to_https(api):
    assert "strict-transport-security" not in api.get("/").headers  # plain HTTP: the header would mean nothing
    with TestClient(api.app, base_url="https://testserver.local") as tls:
        answer = tls.get("/")
        check_headers(answer, "/")
        assert answer.headers["strict-transport-security"] == "max-age=31536000"


def inline_blocks(text: str, tag: str) -> list[str]:
    return re.findall(rf"<{tag}(?![^>]*\bsrc=)[^>]*>(.*?)</{tag}>", text, re.S)


def test_no_template_has_inline_script_and_each_inline_style_is_allowed_by_its_hash():
    templates = list((ROOT / "adapters").rglob("*.html"))
    assert len(templates) > 10
    csp = content_security_policy()
    for template in templates:
        text = template.read_text(encoding="utf-8")
        assert not inline_blocks(text, "script"), template  # scripts only from files
        assert not re.search(r"\son[a-z]+\s*=", text), template  # no onclick= & co.
        assert not re.search(r"\sstyle\s*=", text), template  # no style attributes
        assert "javascript:" not in text, template
        for block in inline_blocks(text, "style"):
            digest = base64.b64encode(hashlib.sha256(block.encode()).digest()).decode()
            assert f"'sha256-{digest}'" in csp, template


def test_the_printable_report_served_keeps_its_style_under_the_policy(api):
    r = api.post("/api/reconcile/report", headers=auth(PHYS), files={"files": ("x.dcm", b"not dicom", "application/dicom")})
    assert r.status_code == 200 and "text/html" in r.headers["content-type"]
    blocks = inline_blocks(r.text, "style")
    assert blocks
    for block in blocks:  # exactly the bytes served are allowed, so the browser applies them
        digest = base64.b64encode(hashlib.sha256(block.encode()).digest()).decode()
        assert f"'sha256-{digest}'" in r.headers["content-security-policy"]


# ---- (f) the Swagger UI from local files ---------------------------------------------------------


def test_schema_pages_reference_only_local_assets_and_they_are_served(api):
    for path in ("/schema", "/schema/swagger"):
        page = api.get(path)
        assert page.status_code == 200 and "text/html" in page.headers["content-type"]
        urls = re.findall(r"""(?:src|href)\s*=\s*["']([^"']+)["']""", page.text)
        assert any(u.endswith(".js") for u in urls) and any(u.endswith(".css") for u in urls)
        assert not inline_blocks(page.text, "script")
        for url in urls:
            assert url.startswith("/") and not url.startswith("//"), url  # this server, no CDN
            asset = api.get(url)
            assert asset.status_code == 200 and len(asset.content) > 0, url
        bundle = next(u for u in urls if u.endswith("swagger-ui-bundle.js"))
        assert b"SwaggerUIBundle" in api.get(bundle).content


# ---- (a, f) in a real browser, offline, under the policy --------------------------------------------


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    chromium = require_tool("chromium")
    require_module("playwright")
    from tests.conftest import free_port as port
    from tests.http_support import running_server

    tmp = tmp_path_factory.mktemp("sec-ui")
    db, env, ids, _ = seed_demo_site(tmp)
    with running_server(db, port(), env=env, log=tmp / "server.log") as base:
        yield {"base": base, "chromium": chromium, "demo": ids}


def offline_page(browser, base: str):
    """A page that can reach only the server under test (as in an outage), recording what it was refused."""
    context = browser.new_context(locale="en-GB")
    page = context.new_page()
    page.set_default_timeout(60000)
    seen = {"outside": [], "console": []}

    def only_local(route):
        if route.request.url.startswith(base):
            route.continue_()
        else:
            seen["outside"].append(route.request.url)
            route.abort()

    page.route("**/*", only_local)
    page.on("console", lambda m: seen["console"].append(m.text) if m.type == "error" else None)
    page.add_init_script("document.addEventListener('securitypolicyviolation', e => "
                         "(window.__csp = window.__csp || []).push(e.violatedDirective + ' ' + e.blockedURI));")
    return context, page, seen


def violations(page) -> list[str]:
    return page.evaluate("window.__csp || []")


@pytest.mark.slow
def test_pages_and_swagger_ui_work_offline_under_the_policy(site):
    from playwright.sync_api import sync_playwright

    from tests.test_ui_browser import LAUNCH_ARGS

    base = site["base"]
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=site["chromium"], args=LAUNCH_ARGS, headless=True)
        try:
            context, page, seen = offline_page(browser, base)
            page.goto(base + "/schema/swagger")
            page.wait_for_selector(".opblock")
            assert page.locator(".opblock").count() > 20
            assert "fraction-ledger" in page.locator(".info .title").inner_text()
            page.locator(".opblock-summary").first.click()  # the UI's own scripts run: it opens
            page.wait_for_selector(".opblock-body")
            assert violations(page) == [] and seen["outside"] == []
            page.goto(base + "/")
            page.fill("#token", token_of("rtt.partner.a"))
            page.press("#token", "Enter")
            page.wait_for_load_state()
            page.goto(f"{base}/courses/{site['demo'][1]}")
            assert page.locator("#log-form").is_visible()
            # the style sheet applies (a style from a file, allowed by the policy)
            assert page.evaluate("getComputedStyle(document.querySelector('header')).display") == "flex"
            assert violations(page) == [] and seen["outside"] == []
            assert not [m for m in seen["console"] if "Content Security Policy" in m]
            # an inline script an attacker slipped into a page would not run
            page.evaluate("""() => { const s = document.createElement('script');
                                     s.textContent = 'window.__ran = true'; document.body.appendChild(s); }""")
            assert page.evaluate("window.__ran === true") is False
            assert any("script-src" in v for v in violations(page))
            context.close()
        finally:
            browser.close()


# ---- (b) JSON nested too deep ----------------------------------------------------------------------


def json_write_routes(app) -> list[tuple[str, str]]:
    found = []
    for route in app.routes:
        if not route.path.startswith("/api/"):
            continue
        for handler in getattr(route, "route_handlers", []):
            for method in sorted(handler.http_methods & {"POST", "PUT", "PATCH"}):
                found.append((method, route.path))
    return found


@pytest.mark.parametrize("body", [b"[" * 1000 + b"]" * 1000, b'{"number": ' + b"[" * 1000 + b"]" * 1000 + b"}",
                                  b'{"a":' * 40 + b"1" + b"}" * 40])
def test_json_nested_deep_is_refused_with_400_on_every_json_route(api, body):
    cid = api.ledger.course_id
    routes = json_write_routes(api.app)
    assert len(routes) > 15
    before = events(api)
    for method, path in routes:
        url = re.sub(r"\{course_id:str\}", cid, path)
        url = re.sub(r"\{[a-z_]+:int\}", "1", url)
        url = re.sub(r"\{[a-z_]+:str\}", "x", url)
        answers = []
        for role in ROLES:  # the first role the route lets in: its body is what is judged
            r = api.request(method, url, content=body,
                            headers={**auth(account_name(role, HOME)), "content-type": "application/json"})
            answers.append(r.status_code)
            if r.status_code not in (401, 403):
                break
        assert r.status_code == 400, (method, path, answers, r.text)
        error = r.json()
        assert error["fields"][0]["field"] == "body" and f"deeper than {MAX_JSON_DEPTH}" in error["message"]
    assert events(api) == before


# ---- (c) page forms held to the API's limits -----------------------------------------------------------


def test_the_words_for_limits_and_storage_are_in_every_language():
    import string

    from adapters.http.errors import STORAGE_MESSAGES
    from adapters.http.i18n import LANGUAGES, catalog
    from ledger.messages import TEXTS

    keys = {"err_" + p for p in STORAGE_MESSAGES} | {"err_storage", "field_problem"}
    for key in keys:
        names = [{n for _, n, _, _ in string.Formatter().parse(catalog(lang)[key]) if n} for lang in LANGUAGES]
        assert names[0] == names[1] == names[2], key
    limits = [text for code, text in TEXTS.items() if code.startswith("invalid.")]  # the field reasons
    for text in limits:
        names = {n for _, n, _, _ in string.Formatter().parse(text) if n}
        for lang in ("nl", "fr"):
            translated = catalog(lang, "messages")[text]
            assert translated and {n for _, n, _, _ in string.Formatter().parse(translated) if n} == names, (lang, text)


def test_page_forms_apply_the_api_limits_name_the_field_in_the_readers_language_and_write_nothing(api, tmp_path):
    from tests.dicom_support import plan_files

    cid = api.ledger.course_id
    assert api.post(f"/api/courses/{cid}/fractions", headers=auth(RTT), json=fraction_body(1)).status_code == 201
    plan = plan_files(tmp_path / "plans")["breast"]
    too_long = "x" * 900_000
    cases = [  # (account, language, path, form, files, field, translated reason)
        (RTT, "nl", f"/courses/{cid}/fractions/1/void", {"reason": too_long, "confirm": "yes"}, None,
         "reason", "hoogstens 2000 tekens"),
        (RTT, "fr", f"/courses/{cid}/fractions/1/void", {"reason": "", "confirm": "yes"}, None,
         "reason", "obligatoire"),
        (RTT, "fr", f"/courses/{cid}/log", {"number": "2", "machine": "PARTNER-TB2", "delivered_at": "2026-11-25T09:00",
                                            "note": "n" * 1025}, None, "note", "au plus 1024 caractères"),
        (PHYS, "en", f"/physicist/courses/{cid}/suspend", {"reason": "r" * 2001}, None,
         "reason", "at most 2000 characters"),
        (PHYS, "nl", f"/physicist/courses/{cid}/assign", {"centre": "C" * 65}, None,
         "centre", "hoogstens 64 tekens"),
        (PHYS, "fr", f"/physicist/courses/{cid}/triage", {"triage": "9"}, None, "triage", "au plus 5"),
        (ADMIN, "nl", "/admin/accounts", {"name": "a" * 65, "role": "rtt", "centre": PARTNER}, None,
         "name", "hoogstens 64 tekens"),
        (PHYS, "en", "/physicist/sends/hl7", {"destination": "d" * 65}, None, "destinations", "at most 64 characters"),
        (PHYS, "fr", "/physicist/dicom/plans", {"triage": "9"},
         {"files": (plan.name, plan.read_bytes(), "application/dicom")}, "triage", "au plus 5"),
        (PHYS, "nl", "/physicist/dicom/records", {"deviation_reason": too_long},
         {"files": ("r.dcm", b"not dicom", "application/dicom")}, "deviation_reason", "hoogstens 2000 tekens"),
    ]
    for account, lang, path, form, files, field, reason in cases:
        api.cookies.clear()
        csrf = signed_in(api, account, lang)
        before = events(api)
        r = api.post(path, data={**form, "_csrf_token": csrf}, files=files)
        assert r.status_code == 400, (path, form.keys(), r.status_code)
        alert = re.search(r'class="refusal"[^>]*>(.*?)</section>', r.text, re.S)
        assert alert, path
        text = re.sub(r"\s+", " ", re.sub("<[^>]+>", " ", alert.group(1))).replace("&#39;", "'")
        assert f"{field}" in text and reason in text, (path, text[:300])
        assert too_long not in r.text  # the page does not echo the 900,000 characters back
        assert events(api) == before
    assert not api.ledger.app.get_course(cid).records[0].voided
    assert api.ledger.app.get_course(cid).status == "active"


# ---- (d) a full disk ----------------------------------------------------------------------------------


@pytest.fixture
def bounded_sqlite(monkeypatch):
    """Every SQLite connection the event store opens, so a test can cap the file's size like a full disk
    (`PRAGMA max_page_count`) and lift the cap again."""
    import eventsourcing.sqlite as es

    opened = []
    create = es.SQLiteConnectionPool._create_connection

    def remembered(self):
        connection = create(self)
        opened.append(connection)
        return connection

    monkeypatch.setattr(es.SQLiteConnectionPool, "_create_connection", remembered)

    def cap(pages: int | None) -> None:
        for connection in opened:
            raw = connection._sqlite_conn
            limit = pages or 1_073_741_823
            raw.execute(f"PRAGMA max_page_count = {limit}")

    return opened, cap


def test_a_full_disk_answers_503_and_accepts_writes_once_space_returns(bounded_sqlite, tmp_path, monkeypatch):
    from adapters.runtime import Ledger

    opened, cap = bounded_sqlite
    monkeypatch.setenv("FRACTION_LEDGER_READ_DB", str(tmp_path / "read.sqlite3"))
    with Ledger(str(tmp_path / "ledger.sqlite3")) as ledger:
        seed_accounts(ledger.app)
        cid = seed_course(ledger.app)
        with TestClient(create_app(ledger)) as api:
            api.ledger = ledger
            acknowledged = []
            for n in (1, 2):
                r = api.post(f"/api/courses/{cid}/fractions", headers=auth(RTT), json=fraction_body(n))
                assert r.status_code == 201
                acknowledged.append(r.json()["record_id"])
            csrf = signed_in(api, RTT, "fr")  # before the disk fills: a sign-in shows the worklist
            pages = opened[0]._sqlite_conn.execute("PRAGMA page_count").fetchone()[0]
            cap(pages)  # the disk fills up: no page beyond those the file has
            big = "long note " * 100
            answers = []
            for n in range(3, 40):  # the free room inside the last pages runs out within a few fractions
                r = api.post(f"/api/courses/{cid}/fractions", headers=auth(RTT), json=fraction_body(n, note=big))
                answers.append(r.status_code)
                if r.status_code == 201:
                    acknowledged.append(r.json()["record_id"])
                    continue
                assert r.status_code == 503, r.text
                assert r.json()["error"] == "storage_full" and "nothing was written" in r.json()["message"]
                assert r.headers["retry-after"]
                break
            assert answers[-1] == 503, answers
            full_at, before = n, events(api)
            again = api.post(f"/api/courses/{cid}/fractions", headers=auth(RTT), json=fraction_body(full_at, note=big))
            assert again.status_code == 503
            page = api.post(f"/courses/{cid}/log", data={"number": str(full_at), "machine": "PARTNER-TB2",
                                                          "delivered_at": "2026-11-20T09:00", "note": big,
                                                          "_csrf_token": csrf})
            assert page.status_code == 503 and "Le stockage du registre est plein" in page.text
            assert events(api) == before
            # Every read of patient data is logged first (NEN 7513): with no room for the entry, the read
            # is refused, saying why; what shows no patient is still answered.
            # (The last page may still hold a few entries: those reads are served, and logged, until it is full.)
            for _ in range(2000):
                view = api.get(f"/api/courses/{cid}", headers=auth(RTT))
                if view.status_code != 200:
                    break
            assert view.status_code == 503 and view.json()["error"] == "access_log_unavailable"
            assert api.get("/api/me", headers=auth(RTT)).status_code == 200
            assert api.get("/health").status_code == 200
            cap(None)  # space returns: the reads come back with every acknowledged fraction
            view = api.get(f"/api/courses/{cid}", headers=auth(RTT))
            assert view.status_code == 200
            assert {f["record_id"] for f in view.json()["fractions"]} == set(acknowledged)
            assert api.get(f"/courses/{cid}").status_code == 200
            r = api.post(f"/api/courses/{cid}/fractions", headers=auth(RTT), json=fraction_body(full_at, note=big))
            assert r.status_code == 201, r.text
            acknowledged.append(r.json()["record_id"])
    with Ledger(str(tmp_path / "ledger.sqlite3")) as reopened:  # nothing acknowledged was lost
        records = {r.record_id for r in reopened.app.get_course(cid).records}
        assert records == set(acknowledged)


# ---- (e) nothing in the working directory ----------------------------------------------------------------


def serve_in(cwd: Path, db: str, env: dict, log: Path) -> None:
    """`fraction-ledger serve` started in `cwd` until it answers /health, one sign-in page and one sign-in."""
    port = free_port()
    full_env = {**os.environ, "PYTHONPATH": str(ROOT), **env}
    with open(log, "w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "tools.cli", "--db", db, "serve", "--host", "127.0.0.1",
                                 "--port", str(port)], env=full_env, stdout=out, stderr=subprocess.STDOUT, cwd=cwd)
        try:
            base = f"http://127.0.0.1:{port}"
            with httpx.Client(base_url=base, timeout=5) as client:
                def up() -> bool:
                    if proc.poll() is not None:
                        raise AssertionError(f"server exited: {log.read_text()}")
                    try:
                        return client.get("/health").status_code == 200
                    except httpx.HTTPError:
                        return False

                wait_for(up, "the server coming up", seconds=60, every=0.1)
                assert client.get("/").status_code == 200  # a session and a CSRF token are made
        finally:
            stop_process(proc)


@pytest.mark.slow
def test_encrypted_and_in_memory_ledgers_write_nothing_into_the_working_directory(tmp_path):
    key = tmp_path / "keys" / "cipher.key"
    key.parent.mkdir()
    cli("keygen-cipher", "--out", str(key), check=True)
    store = tmp_path / "store"
    store.mkdir()
    for name, db, env in (("encrypted", str(store / "ledger.sqlite3"), {"FRACTION_LEDGER_CIPHER_KEY_FILE": str(key)}),
                          ("in-memory", ":memory:", {})):
        cwd = tmp_path / f"cwd-{name}"
        cwd.mkdir()
        serve_in(cwd, db, {**env, "FRACTION_LEDGER_READ_DB": ""}, tmp_path / f"{name}.log")
        assert sorted(p.name for p in cwd.iterdir()) == [], name
    # the encrypted ledger keeps its server files beside its own log, not in some working directory
    assert (store / "ledger.sqlite3.secret").exists()


# ---- (g) an unreachable PostgreSQL ------------------------------------------------------------------------


def test_an_unreachable_postgresql_fails_fast_naming_the_host():
    # A server that takes the TCP connection and then never answers: what a firewalled or hung host does.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)
        port = silent.getsockname()[1]
        # Bounded: the pool's own retries took minutes; the timeout of the call is what stops a regression.
        done = cli("course", "list", db=f"postgresql://ledger:secret-pw@127.0.0.1:{port}/ledger",
                   env={"FRACTION_LEDGER_DB_CONNECT_TIMEOUT": "2"}, timeout=60)
    assert done.returncode == 1
    assert f"cannot reach the PostgreSQL server at 127.0.0.1:{port}" in done.stderr and "within 2 s" in done.stderr
    assert "secret-pw" not in done.stderr
    closed = free_port()  # nothing listens there: refused at once
    done = cli("course", "list", db=f"postgresql://ledger@127.0.0.1:{closed}/ledger", timeout=60)
    assert done.returncode == 1 and f"127.0.0.1:{closed}" in done.stderr and "Connection refused" in done.stderr
    bad = cli("course", "list", db=f"postgresql://ledger@127.0.0.1:{closed}/ledger",
              env={"FRACTION_LEDGER_DB_CONNECT_TIMEOUT": "soon"}, timeout=60)
    assert bad.returncode == 1 and "FRACTION_LEDGER_DB_CONNECT_TIMEOUT" in bad.stderr
