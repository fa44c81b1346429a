"""An API call authenticated by its Bearer token never touches the page-session store: no read,
no write, whatever session cookie the client also sends (adapters/http/sessions.py NO_SESSION)."""

from __future__ import annotations

from litestar.testing import TestClient

from adapters.http import create_app
from tests.http_support import auth, token_of
from tests.test_security_sessions import PHYSICIST, RTT, PLANTED, csrf_of, site  # noqa: F401 - the fixture


def test_api_calls_neither_read_nor_write_the_session_store(site, tmp_path):  # noqa: F811
    app = create_app(site, session_dir=tmp_path / "sessions")
    store = app.state.sessions
    touched: list[str] = []
    for name in ("get", "set", "delete", "exists", "expires_in"):
        real = getattr(store, name)

        async def spy(*args, _real=real, _name=name, **kwargs):
            touched.append(_name)
            return await _real(*args, **kwargs)

        setattr(store, name, spy)
    with TestClient(app) as client:
        form = {"token": token_of(PHYSICIST), "_csrf_token": csrf_of(client)}
        assert client.post("/", data=form, follow_redirects=False).status_code == 302  # a page session
        assert "set" in touched
        touched.clear()
        for cookie in (client.cookies.get("session"), PLANTED):
            client.cookies.set("session", cookie, domain="testserver.local")
            answers = [client.get("/api/courses", headers=auth(PHYSICIST)), client.get("/api/me", headers=auth(RTT)),
                       client.get("/api/courses", headers={"Authorization": "Bearer wrong"})]
            assert [a.status_code for a in answers] == [200, 200, 401]
        assert touched == []
        assert client.get("/worklist").status_code in (200, 302) and touched  # the pages do use it
