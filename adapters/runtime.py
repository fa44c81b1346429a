"""Opening a ledger: the application on its storage, with its read model kept current."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from adapters.readmodel import ReadModel
from adapters.storage import Storage
from ledger.service import FractionLedger, utc_now


class Ledger:
    """What every entry point (CLI, server, bench) works with."""

    def __init__(self, db: str | None = None, clock: Callable[[], datetime] = utc_now):
        self.storage = Storage.from_option(db)
        self.app = FractionLedger(env=self.storage.event_store_env(), clock=clock)
        source = self.storage.url if self.storage.is_postgres else str(Path(self.storage.url).resolve())
        self.read = ReadModel(self.storage.read_model_path(), source=source)

    def fresh(self) -> ReadModel:
        """The read model, caught up with everything recorded so far."""
        self.read.catch_up(self.app)
        return self.read

    def close(self) -> None:
        self.read.close()
        self.app.close()

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
