"""Where the event log lives: an embedded SQLite file by default, PostgreSQL by configuration.

`--db PATH` (or `FRACTION_LEDGER_DB`) names either a file path or a
`postgresql://user:pass@host:port/dbname` URL; the same code runs on both. The read
models live in a local SQLite file beside the log (they are disposable); with encryption at
rest on they live in memory instead, so that no patient name reaches the disk in clear (between
runs they are kept as a snapshot encrypted with the ledger's key: `adapters.readmodel_snapshot`).

Every event is hash-chained by the recorders of `adapters.chain`. Encryption at rest
(opt-in): `FRACTION_LEDGER_CIPHER_KEY` (base64 AES key) or a key file named by
`--cipher-key-file` / `FRACTION_LEDGER_CIPHER_KEY_FILE` (see `adapters.keys`).
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from eventsourcing.persistence import ConnectionUnavailableError
from eventsourcing.sqlite import SQLiteConnectionPool, SQLiteFactory

from adapters.files import create_private

DEFAULT_DB = "fraction-ledger.sqlite3"
CONNECT_TIMEOUT_ENV = "FRACTION_LEDGER_DB_CONNECT_TIMEOUT"
DEFAULT_CONNECT_TIMEOUT = 5


def connect_timeout() -> int:
    """Seconds to wait for the PostgreSQL server to answer before giving up (whole seconds: libpq's unit)."""
    text = os.environ.get(CONNECT_TIMEOUT_ENV, "").strip()
    if not text:
        return DEFAULT_CONNECT_TIMEOUT
    try:
        value = int(text)
    except ValueError:
        value = 0
    if not 1 <= value <= 600:
        raise ValueError(f"{CONNECT_TIMEOUT_ENV}: {text!r} is not a number of seconds from 1 to 600")
    return value


CHAINED_RECORDERS = {"sqlite": "adapters.chain:ChainedSQLiteRecorder", "postgres": "adapters.chain:ChainedPostgresRecorder"}


@dataclass(frozen=True)
class Storage:
    url: str
    cipher_key: str | None = field(default=None, repr=False)

    @classmethod
    def from_option(cls, db: str | None, cipher_key_file: str | None = None) -> Storage:
        from adapters.keys import cipher_key_from_env

        return cls(db or os.environ.get("FRACTION_LEDGER_DB") or DEFAULT_DB, cipher_key_from_env(cipher_key_file))

    @property
    def encrypted(self) -> bool:
        return self.cipher_key is not None

    def cipher_env(self) -> dict[str, str]:
        """eventsourcing's AES-GCM cipher (after zlib compression) when a key is configured."""
        if self.cipher_key is None:
            return {}
        return {
            "CIPHER_TOPIC": "eventsourcing.cryptography:AESCipher",
            "CIPHER_KEY": self.cipher_key,
            "COMPRESSOR_TOPIC": "eventsourcing.compressor:ZlibCompressor",
        }

    @property
    def in_memory(self) -> bool:
        """An SQLite log in memory (`:memory:`, `file::memory:...`): a drill or a test; nothing on disk."""
        return not self.is_postgres and (":memory:" in self.url or "mode=memory" in self.url)

    @property
    def is_postgres(self) -> bool:
        return self.url.startswith(("postgresql://", "postgres://"))

    def event_store_env(self) -> dict[str, str]:
        """The `eventsourcing` environment for this storage."""
        env: dict[str, str] = self.cipher_env()
        if not self.is_postgres:
            path = Path(self.url)
            if not self.in_memory and path.parent and not path.parent.exists():
                raise ValueError(f"--db: folder {path.parent} does not exist")
            create_private(path)  # the log holds patient data: 0600, and so its -wal/-shm
            return env | {
                "PERSISTENCE_MODULE": "adapters.storage:SQLiteStore" if not self.in_memory else "eventsourcing.sqlite",
                "SQLITE_DBNAME": str(path),
                "SQLITE_LOCK_TIMEOUT": "30",
                "APPLICATION_RECORDER_TOPIC": CHAINED_RECORDERS["sqlite"],
            }
        u = urlparse(self.url)
        dbname = u.path.lstrip("/")
        if not dbname:
            raise ValueError("--db: a PostgreSQL URL needs a database name, e.g. postgresql://user@host/ledger")
        return env | {
            "PERSISTENCE_MODULE": "eventsourcing.postgres",
            "POSTGRES_DBNAME": dbname,
            "POSTGRES_HOST": u.hostname or "127.0.0.1",
            "POSTGRES_PORT": str(u.port or 5432),
            "POSTGRES_USER": unquote(u.username or "postgres"),
            "POSTGRES_PASSWORD": unquote(u.password or ""),
            "POSTGRES_LOCK_TIMEOUT": "30",
            "POSTGRES_CONNECT_TIMEOUT": str(connect_timeout()),
            "POSTGRES_POOL_SIZE": "4",
            "APPLICATION_RECORDER_TOPIC": CHAINED_RECORDERS["postgres"],
        }

    def check_reachable(self) -> None:
        """Fail fast, naming the server, when PostgreSQL does not answer: without this an unreachable
        host is retried for minutes by the connection pool before anything is said."""
        if not self.is_postgres:
            return
        import psycopg

        env = self.event_store_env()
        host, port, seconds = env["POSTGRES_HOST"], env["POSTGRES_PORT"], connect_timeout()
        try:
            psycopg.connect(host=host, port=port, dbname=env["POSTGRES_DBNAME"], user=env["POSTGRES_USER"],
                            password=env["POSTGRES_PASSWORD"], connect_timeout=seconds).close()
        except psycopg.OperationalError as exc:
            reason = " ".join(str(exc).split())  # libpq's words; they never hold the password
            raise ValueError(f"cannot reach the PostgreSQL server at {host}:{port} (database "
                             f"{env['POSTGRES_DBNAME']}) within {seconds} s ({reason}); check the host, port and "
                             f"credentials of --db ({CONNECT_TIMEOUT_ENV} sets the timeout)") from None

    def read_snapshot_path(self) -> Path | None:
        """Where an encrypted ledger keeps its in-memory read model between runs, encrypted with the
        ledger's key (`adapters.readmodel_snapshot`): `FRACTION_LEDGER_READ_SNAPSHOT`, else beside the
        log file (`NAME.snapshot`). None without encryption (the read model is its own file), for a
        log in memory, and for PostgreSQL unless named (nothing is written to the working directory)."""
        if not self.encrypted or self.in_memory:
            return None
        named = os.environ.get("FRACTION_LEDGER_READ_SNAPSHOT")
        if named:
            return Path(named)
        if self.is_postgres:
            return None
        path = Path(self.url)
        return path.with_name(path.stem + ".snapshot")

    def read_model_path(self) -> Path:
        """A local SQLite file for the read models: beside the log file, or named by
        `FRACTION_LEDGER_READ_DB` (default ./fraction-ledger-read.sqlite3 for PostgreSQL).
        Encrypted ledgers keep it in memory (restored at open from their encrypted snapshot, else
        rebuilt): it holds patient names in clear; so does a ledger whose log is in memory."""
        if self.encrypted or self.in_memory:
            return Path(":memory:")
        named = os.environ.get("FRACTION_LEDGER_READ_DB")
        if named:
            return Path(named)
        if self.is_postgres:
            return Path("fraction-ledger-read.sqlite3")
        path = Path(self.url)
        return path.with_name(path.stem + ".read.sqlite3")


# ---- SQLite: reads never wait for a write -----------------------------------------------------


class ReadsPassWritesPool(SQLiteConnectionPool):
    """eventsourcing's pool hands out connections in arrival order through one queue, and a writer
    waits IN that queue for the writer before it (which may be in its commit's fsync): every read
    that arrives after it waits too. Here writers wait for each other at their own gate, outside
    the queue, so a read is handed a connection at once (WAL: it sees the last commit while a
    writer writes)."""

    def __init__(self, **kwargs: Any):
        super().__init__(**kwargs)
        self._writers_gate = threading.Lock()

    def get_connection(self, timeout: float | None = None, *, is_writer: bool | None = None) -> Any:
        if is_writer is not True:
            return super().get_connection(timeout, is_writer=is_writer)
        if not self._writers_gate.acquire(timeout=self.pool_timeout if timeout is None else timeout):
            raise ConnectionUnavailableError("Timed out waiting for the writer before")
        try:
            return super().get_connection(timeout, is_writer=True)
        except BaseException:
            self._writers_gate.release()
            raise

    def put_connection(self, conn: Any) -> None:
        writer = conn.is_writer is True
        try:
            super().put_connection(conn)
        finally:
            if writer:
                self._writers_gate.release()


class SQLiteStore(SQLiteFactory):
    """eventsourcing's SQLite store with `ReadsPassWritesPool`, holding enough connections for
    a server's request threads to read at once (PERSISTENCE_MODULE of a ledger file)."""

    POOL_SIZE, MAX_OVERFLOW = 8, 56

    def __init__(self, env: Any):
        super().__init__(env)
        old = self.datastore.pool
        self.datastore.pool = ReadsPassWritesPool(
            db_name=old.db_name, lock_timeout=old.lock_timeout, pool_size=self.POOL_SIZE,
            max_overflow=self.MAX_OVERFLOW, pool_timeout=old.pool_timeout, max_age=old.max_age, pre_ping=old.pre_ping)
        old.close()
