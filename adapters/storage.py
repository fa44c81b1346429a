"""Where the event log lives: an embedded SQLite file by default, PostgreSQL by configuration.

`--db PATH` (or `FRACTION_LEDGER_DB`) names either a file path or a
`postgresql://user:pass@host:port/dbname` URL; the same code runs on both. The read
models always live in a local SQLite file beside the log (they are disposable).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlparse

DEFAULT_DB = "fraction-ledger.sqlite3"


@dataclass(frozen=True)
class Storage:
    url: str

    @classmethod
    def from_option(cls, db: str | None) -> Storage:
        return cls(db or os.environ.get("FRACTION_LEDGER_DB") or DEFAULT_DB)

    @property
    def is_postgres(self) -> bool:
        return self.url.startswith(("postgresql://", "postgres://"))

    def event_store_env(self) -> dict[str, str]:
        """The `eventsourcing` environment for this storage."""
        env: dict[str, str] = {}
        if not self.is_postgres:
            path = Path(self.url)
            if path.parent and not path.parent.exists():
                raise ValueError(f"--db: folder {path.parent} does not exist")
            return env | {
                "PERSISTENCE_MODULE": "eventsourcing.sqlite",
                "SQLITE_DBNAME": str(path),
                "SQLITE_LOCK_TIMEOUT": "30",
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
            "POSTGRES_POOL_SIZE": "4",
        }

    def read_model_path(self) -> Path:
        """A local SQLite file for the read models: beside the log file, or named by
        `FRACTION_LEDGER_READ_DB` (default ./fraction-ledger-read.sqlite3 for PostgreSQL)."""
        named = os.environ.get("FRACTION_LEDGER_READ_DB")
        if named:
            return Path(named)
        if self.is_postgres:
            return Path("fraction-ledger-read.sqlite3")
        path = Path(self.url)
        return path.with_name(path.stem + ".read.sqlite3")
