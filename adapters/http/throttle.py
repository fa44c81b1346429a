"""Failed sign-ins and bad Bearer tokens: counted per client address and per account name;
`LIMIT` failures within `WINDOW` lock that address (or account) for `LOCKOUT`.

While locked, every credential from that address is refused with 429 and Retry-After, a
correct one too: an attacker who guesses right during a lockout learns nothing. The counts
live in this process's memory (a restart clears them; one server process serves a ledger),
and time is the ledger's clock, so a test moves it instead of waiting.
"""

from __future__ import annotations

import math
import threading
from collections import deque
from collections.abc import Callable
from datetime import datetime, timedelta

from litestar.exceptions import HTTPException

LIMIT = 5
WINDOW = timedelta(minutes=5)
LOCKOUT = timedelta(minutes=15)
MAX_KEYS = 10_000  # beyond this many addresses and names, the stale ones are dropped


def address_key(host: str | None) -> str:
    return f"address:{host or 'unknown'}"


def account_key(name: str) -> str:
    return f"account:{name}"


class TooManyAttempts(HTTPException):
    status_code = 429

    def __init__(self, message: str, retry_after: int):
        super().__init__(detail=message, status_code=429, headers={"Retry-After": str(retry_after)})
        self.retry_after = retry_after


class Throttle:
    def __init__(self, clock: Callable[[], datetime], limit: int = LIMIT, window: timedelta = WINDOW,
                 lockout: timedelta = LOCKOUT):
        self.clock, self.limit, self.window, self.lockout = clock, limit, window, lockout
        self.failures: dict[str, deque[datetime]] = {}
        self.locked_until: dict[str, datetime] = {}
        self.lock = threading.Lock()

    def retry_after(self, *keys: str) -> int | None:
        """Seconds until the last lock among `keys` ends (at least 1), or None when none is locked."""
        now = self.clock()
        with self.lock:
            ends = [self.locked_until[k] for k in keys if k in self.locked_until and self.locked_until[k] > now]
        if not ends:
            return None
        return max(1, math.ceil((max(ends) - now).total_seconds()))

    def failed(self, *keys: str) -> None:
        """One failure for each of `keys`; the one that reaches the limit starts the lockout."""
        now = self.clock()
        with self.lock:
            for key in keys:
                recent = self.failures.setdefault(key, deque())
                while recent and recent[0] <= now - self.window:
                    recent.popleft()
                recent.append(now)
                if len(recent) >= self.limit:
                    self.locked_until[key] = now + self.lockout
                    del self.failures[key]
            if len(self.failures) + len(self.locked_until) > MAX_KEYS:
                self._drop_stale(now)

    def _drop_stale(self, now: datetime) -> None:
        for key in [k for k, times in self.failures.items() if times[-1] <= now - self.window]:
            del self.failures[key]
        for key in [k for k, until in self.locked_until.items() if until <= now]:
            del self.locked_until[key]


def minutes(seconds: int) -> int:
    return max(1, math.ceil(seconds / 60))
