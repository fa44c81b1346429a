"""Sessions of the pages: made at sign-in only, a new id at every sign-in and sign-out, and
kept no longer than their lifetime on the ledger's clock.

litestar's own server-side sessions adopt whatever id the browser's cookie holds and write a
session (a file) on every response, `/health` and Bearer API calls included. Here an id is
taken from a cookie only when the store holds a live session under it (an id the client made
up is never adopted), nothing is written while the session is empty, an unchanged session is
not written again, and a session given a new id (`rotate`) leaves its old id dead at once.
Expiry is read from the ledger's clock, so a drill or a test moves it like every other time;
expired sessions are removed when met, at start-up and every `PURGE_EVERY` seconds.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from litestar.connection import ASGIConnection
from litestar.datastructures import Cookie, MutableScopeHeaders
from litestar.middleware.session.server_side import ServerSideSessionBackend, ServerSideSessionConfig
from litestar.stores.base import Store
from litestar.types import Empty, Message, ScopeSession
from litestar.utils.dataclass import extract_dataclass_items

LIFETIME = 12 * 3600  # seconds: one working day; a session is not extended by use
PURGE_EVERY = 600.0  # seconds between two sweeps of expired sessions
# Routes that never carry a page session: the API (Bearer tokens), probes, assets, the OpenAPI document.
NO_SESSION = [r"^/api(/|$)", r"^/health$", r"^/ready$", r"^/static/", r"^/schema(/|$)"]
LOADED = "fraction_ledger.session"  # scope key: (id, stored bytes) of the live session the request came with


class SessionStore(Store):
    """One file per session under `folder` (mode 0700, files 0600), or a dict when `folder` is
    None. A file is named by the SHA-256 of its session id (a listing of the folder gives no
    usable id, and no cookie value can name a path); its first line is its expiry time."""

    def __init__(self, folder: Path | None, clock: Callable[[], datetime]):
        self.folder, self.clock = folder, clock
        self.memory: dict[str, tuple[datetime, bytes]] = {}
        self.lock = threading.Lock()
        if folder is not None:
            folder.mkdir(parents=True, exist_ok=True, mode=0o700)
            folder.chmod(0o700)

    def _file(self, key: str) -> Path:
        assert self.folder is not None
        return self.folder / hashlib.sha256(key.encode()).hexdigest()

    def _read(self, key: str) -> tuple[datetime, bytes] | None:
        if self.folder is None:
            return self.memory.get(key)
        try:
            raw = self._file(key).read_bytes()
        except (FileNotFoundError, NotADirectoryError):
            return None
        return parse_entry(raw)

    def _write(self, key: str, expires_at: datetime, value: bytes) -> None:
        if self.folder is None:
            self.memory[key] = (expires_at, value)
            return
        target = self._file(key)
        partial = target.with_name(f".tmp-{target.name}-{threading.get_ident()}")
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(expires_at.isoformat().encode() + b"\n" + value)
        os.replace(partial, target)

    def _remove(self, key: str) -> None:
        if self.folder is None:
            self.memory.pop(key, None)
        else:
            self._file(key).unlink(missing_ok=True)

    async def set(self, key: str, value: str | bytes, expires_in: int | timedelta | None = None) -> None:
        seconds = expires_in.total_seconds() if isinstance(expires_in, timedelta) else (expires_in or LIFETIME)
        data = value.encode() if isinstance(value, str) else value
        with self.lock:
            self._write(key, self.clock() + timedelta(seconds=seconds), data)

    async def get(self, key: str, renew_for: int | timedelta | None = None) -> bytes | None:
        with self.lock:
            entry = self._read(key)
            if entry is None:
                return None
            if entry[0] <= self.clock():
                self._remove(key)
                return None
            return entry[1]

    async def delete(self, key: str) -> None:
        with self.lock:
            self._remove(key)

    async def delete_all(self) -> None:
        with self.lock:
            self.memory.clear()
            if self.folder is not None:
                for path in self.folder.iterdir():
                    path.unlink(missing_ok=True)

    async def exists(self, key: str) -> bool:
        return await self.get(key) is not None

    async def expires_in(self, key: str) -> int | None:
        with self.lock:
            entry = self._read(key)
        return None if entry is None else max(0, int((entry[0] - self.clock()).total_seconds()))

    def purge_expired(self) -> int:
        """Remove every expired (or unreadable) session; returns how many went."""
        now, removed = self.clock(), 0
        with self.lock:
            if self.folder is None:
                for key in [k for k, (expires_at, _) in self.memory.items() if expires_at <= now]:
                    del self.memory[key]
                    removed += 1
                return removed
            for path in self.folder.iterdir():
                if path.name.startswith(".tmp-"):
                    continue
                try:
                    entry = parse_entry(path.read_bytes())
                except OSError:
                    continue
                if entry is None or entry[0] <= now:
                    path.unlink(missing_ok=True)
                    removed += 1
        return removed

    def count(self) -> int:
        """How many sessions are stored (live or not yet swept)."""
        if self.folder is None:
            return len(self.memory)
        return sum(1 for p in self.folder.iterdir() if not p.name.startswith(".tmp-"))


def parse_entry(raw: bytes) -> tuple[datetime, bytes] | None:
    head, newline, value = raw.partition(b"\n")
    try:
        expires_at = datetime.fromisoformat(head.decode())
    except (UnicodeDecodeError, ValueError):
        return None
    return (expires_at, value) if newline and expires_at.tzinfo else None


class PageSessionBackend(ServerSideSessionBackend):
    async def load_from_connection(self, connection: ASGIConnection) -> dict[str, Any]:
        session_id = connection.cookies.get(self.config.key)
        if session_id:
            data = await self.get(session_id, store=self.config.get_store_from_app(connection.scope["app"]))
            if data is not None:
                connection.scope[LOADED] = (session_id, data)  # type: ignore[literal-required]
                connection._connection_state.session_id = session_id  # adopted: the store knows it
                return self.deserialize_data(data)
        return {}

    def get_session_id(self, connection: ASGIConnection) -> str:
        """The live session's id, else (none, or cleared by `rotate`/sign-out) a new one; never
        an id only the browser's cookie names."""
        return connection.get_session_id() or self.generate_session_id()

    async def store_in_message(self, scope_session: ScopeSession, message: Message,
                               connection: ASGIConnection) -> None:
        store = self.config.get_store_from_app(connection.scope["app"])
        loaded = connection.scope.get(LOADED)  # type: ignore[misc]
        headers = MutableScopeHeaders.from_message(message)
        params = dict(extract_dataclass_items(self.config, exclude_none=True, include=Cookie.__dict__.keys()))
        if scope_session is Empty or not scope_session:
            if loaded is not None:
                await self.delete(loaded[0], store=store)
            if loaded is not None or connection.cookies.get(self.config.key):
                # The browser forgets a session that ended, expired or never existed here.
                headers.add("Set-Cookie", Cookie(value="null", key=self.config.key, expires=0,
                                                 **params).to_header(header=""))
            return
        session_id = self.get_session_id(connection)
        data = self.serialize_data(scope_session, connection.scope)
        if loaded is not None and loaded[0] != session_id:
            await self.delete(loaded[0], store=store)  # rotated: the old id stops working now
        elif loaded is not None:
            if loaded[1] == data:
                return  # unchanged: nothing to write, the cookie the browser has is still right
            # Changed (a flash message): kept until the end it already had, not extended by use.
            params["max_age"] = await store.expires_in(session_id) or 1
        await store.set(session_id, data, expires_in=params["max_age"])
        headers.add("Set-Cookie", Cookie(value=session_id, key=self.config.key, **params).to_header(header=""))


@dataclass
class PageSessionConfig(ServerSideSessionConfig):
    _backend_class = PageSessionBackend


def session_config(secure: bool) -> PageSessionConfig:
    return PageSessionConfig(samesite="strict", httponly=True, secure=secure, max_age=LIFETIME, exclude=NO_SESSION)


def rotate(connection: ASGIConnection, value: dict[str, Any]) -> None:
    """Replace the session by `value` under a new id (sign-in): an id known before, to the
    browser or to whoever planted it there, no longer opens anything."""
    connection.clear_session()
    connection.set_session(value)


async def keep_purging(store: SessionStore, every: float = PURGE_EVERY,
                       wait: Callable[[float], Awaitable[Any]] = asyncio.sleep) -> None:
    """Sweep expired sessions every `every` seconds, until cancelled (at shutdown)."""
    while True:
        await wait(every)
        await asyncio.to_thread(store.purge_expired)
