"""An encrypted ledger's read model between runs: a snapshot encrypted with the ledger's key.

With encryption at rest the read model lives in memory, so that no patient name reaches the disk
in clear. Rebuilding it from the whole log at every start costs seconds per ten thousand events,
so the ledger keeps its image (the SQLite database, `sqlite3.Connection.serialize`) in one file,
compressed and encrypted with AES-256-GCM under a key derived (HKDF-SHA256) from the ledger's own
cipher key, bound to the log it was projected from. The image holds its position and chain hash
like any read model, and the head the log guard verified: a start restores it and projects (and
verifies) only what was appended since. A snapshot that does not decrypt (another key, another
log, edited, cut short) is ignored: the start rebuilds and verifies from the first event, as
before. An older snapshot put back in its place is only older: the start catches up from it.

It is written when a batch of events was projected since the last one (in a background thread,
from an image taken under the caller's lock) and when the ledger closes; each write replaces the
file whole (a new file, fsynced, renamed over the old one).
"""

from __future__ import annotations

import base64
import os
import sqlite3
import threading
import zlib
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.hashes import SHA256
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from adapters.files import open_private

MAGIC = b"fraction-ledger read-model snapshot v1\n"
NONCE_BYTES = 12
EVERY = 1000  # events projected since the last snapshot before the next one is written


def snapshot_key(cipher_key: str) -> bytes:
    """The snapshot's own AES-256 key, derived from the ledger's cipher key (never the same key)."""
    return HKDF(algorithm=SHA256(), length=32, salt=None, info=MAGIC).derive(base64.b64decode(cipher_key))


class ReadSnapshot:
    def __init__(self, path: Path, cipher_key: str, source: str, every: int = EVERY):
        self.path = path
        self.aead = AESGCM(snapshot_key(cipher_key))
        self.associated = MAGIC + source.encode()  # a snapshot of another log does not decrypt here
        self.every = every
        self.state: tuple | None = None  # (position, verified head) of the last snapshot read or written
        self.unsaved = 0  # events projected since
        self.writer: threading.Thread | None = None
        self.lock = threading.Lock()  # one file write at a time
        self.problem: str | None = None  # why the snapshot found at open was not used, if it was not

    # ---- open --------------------------------------------------------------------------------

    def restore(self, read: Any) -> bool:
        """Put the snapshot's tables into `read` (an empty read model in memory); False when there
        is none, or it is not one of this log under this key (then `read` stays empty)."""
        try:
            sealed = self.path.read_bytes()
        except FileNotFoundError:
            return False
        try:
            if not sealed.startswith(MAGIC):
                raise ValueError("not a read-model snapshot")
            nonce = sealed[len(MAGIC):len(MAGIC) + NONCE_BYTES]
            image = zlib.decompress(self.aead.decrypt(nonce, sealed[len(MAGIC) + NONCE_BYTES:], self.associated))
            read.restore(image)
        except (InvalidTag, ValueError, zlib.error, sqlite3.Error) as exc:  # not ours, or not whole: rebuild
            self.problem = type(exc).__name__
            return False
        self.state = self.state_of(read)
        return True

    # ---- while running -------------------------------------------------------------------------

    def projected(self, read: Any, events: int) -> None:
        """`events` were just projected (caller holds the read model): every `every` events, write
        a snapshot in the background from an image taken now."""
        self.unsaved += events
        if self.unsaved < self.every or (self.writer is not None and self.writer.is_alive()):
            return
        image, state = read.image(), self.state_of(read)
        self.unsaved = 0
        self.writer = threading.Thread(target=self.write, args=(image, state), name="read-snapshot", daemon=True)
        self.writer.start()

    def close(self, read: Any) -> None:
        """Write the last snapshot if the tables moved since the last one (before `read` closes)."""
        if self.writer is not None:
            self.writer.join()
        state = self.state_of(read)
        if state != self.state:
            self.write(read.image(), state)

    # ---- the file ----------------------------------------------------------------------------------

    @staticmethod
    def state_of(read: Any) -> tuple:
        return read.position(), read.verified_head()

    def seal(self, image: bytes) -> bytes:
        nonce = os.urandom(NONCE_BYTES)
        return MAGIC + nonce + self.aead.encrypt(nonce, zlib.compress(image, 1), self.associated)

    def write(self, image: bytes, state: tuple) -> None:
        """Replace the snapshot file. A snapshot only saves time: one that cannot be written (a full
        disk) is left as it was, and the next start catches up from it (or rebuilds)."""
        sealed = self.seal(image)
        with self.lock:
            temporary = self.path.with_name(f"{self.path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
            fd = open_private(temporary)
            try:
                with os.fdopen(fd, "wb") as f:
                    f.write(sealed)
                    f.flush()
                    os.fsync(f.fileno())
                os.replace(temporary, self.path)
            except OSError as exc:
                temporary.unlink(missing_ok=True)
                self.problem = f"not written: {exc.strerror or exc}"
                return
            self.state = state
