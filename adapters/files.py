"""Files the ledger reads from its users and writes for them.

Read: every input file (a DICOM object, a triage list, a bundle, a manifest, a configuration, a
key) has a size limit, checked before it is read, so that a hostile or mistaken file is refused
by name with the limit instead of filling the memory (`read_input`, `check_size`).

Written: everything the ledger writes holds patient data or secrets (exports, bundles, reports,
the databases, key files, session files), so it is private to the account that runs the ledger:
files 0600, folders the ledger creates 0700. The entry points (CLI, server) set the process
umask to 0o077 (`private_umask`), which covers every file a library creates for us (SQLite's
journal files, the session store); the writers below set the mode themselves, so that the
adapters used as a library are private too.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import BinaryIO

PRIVATE_FILE = 0o600
PRIVATE_DIR = 0o700
MIB = 1024 * 1024

# Limits of what is read. A DICOM RT Plan of a large VMAT course is a few MiB; an RT record far less.
DICOM_FILE = 32 * MIB  # a DICOM file as stored
DICOM_DATASET = 64 * MIB  # its data set once inflated (Deflated Explicit VR Little Endian)
DICOM_ELEMENTS = 500_000  # elements at any depth (each costs memory once parsed)
TRIAGE_LIST = 5 * MIB
BUNDLE = 256 * MIB
MANIFEST_SIZE = 16 * MIB
CONFIG = 1 * MIB  # TOML/JSON configurations and code tables
KEY_FILE = 64 * 1024  # cipher keys, PEM keys, public keys, secrets


class InputTooLarge(ValueError):
    """An input file beyond its limit; the message names the file and the limit."""


def size_text(n: int) -> str:
    return f"{n // MIB} MiB" if n >= MIB and n % MIB == 0 else f"{n // 1024} KiB" if n % 1024 == 0 else f"{n} bytes"


def check_size(path: Path, limit: int, what: str) -> int:
    """The file's size; InputTooLarge when it is beyond `limit`."""
    size = Path(path).stat().st_size
    if size > limit:
        raise InputTooLarge(f"{what} {path}: {size} bytes is more than the {size_text(limit)} accepted; "
                            "nothing was read")
    return size


def read_at_most(f: BinaryIO, limit: int, size_hint: int = 0) -> bytes | None:
    """At most `limit` bytes of an open file, in steps (never one buffer of `limit` bytes for a
    small file); None when it holds more."""
    chunks, total = [], 0
    step = min(max(size_hint, 0) + 1, limit + 1) if size_hint else MIB
    while True:
        chunk = f.read(min(step, limit + 1 - total))
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)
        total += len(chunk)
        if total > limit:
            return None
        step = MIB


def read_input(path: Path | str, limit: int, what: str) -> bytes:
    """The bytes of an input file of at most `limit` bytes (a file that grows while read is cut
    at the limit and refused too)."""
    path = Path(path)
    size = check_size(path, limit, what)
    with path.open("rb") as f:
        data = read_at_most(f, limit, size)
    if data is None:
        raise InputTooLarge(f"{what} {path}: more than the {size_text(limit)} accepted; nothing was read")
    return data


def read_input_text(path: Path | str, limit: int, what: str, encoding: str = "utf-8") -> str:
    return read_input(path, limit, what).decode(encoding)


def private_umask() -> None:
    """Files and folders this process creates are its owner's only (0600 / 0700)."""
    os.umask(0o077)


def open_private(path: Path | str, exclusive: bool = False) -> int:
    """A file descriptor for writing `path`, created (or truncated) with mode 0600; an existing
    file's mode is set to 0600 too."""
    flags = os.O_WRONLY | os.O_CREAT | (os.O_EXCL if exclusive else os.O_TRUNC)
    fd = os.open(path, flags, PRIVATE_FILE)
    os.fchmod(fd, PRIVATE_FILE)
    return fd


def write_private(path: Path | str, data: bytes | str, exclusive: bool = False) -> Path:
    """Write `data` (text as UTF-8) to `path`, mode 0600."""
    raw = data.encode("utf-8") if isinstance(data, str) else data
    with os.fdopen(open_private(path, exclusive), "wb") as f:
        f.write(raw)
    return Path(path)


def private_dir(path: Path | str) -> Path:
    """`path` as a folder; the folders created here are 0700 (an existing one is left as it is:
    it may be the user's own, e.g. `--out .`)."""
    path = Path(path)
    missing = [p for p in (path, *path.parents) if not p.exists()]
    for p in reversed(missing):
        p.mkdir(mode=PRIVATE_DIR, exist_ok=True)
        p.chmod(PRIVATE_DIR)  # mkdir's mode is masked by the umask
    return path


def create_private(path: Path | str) -> None:
    """Create `path` empty with mode 0600 unless it exists: a SQLite database made before SQLite
    opens it (SQLite gives its -wal and -shm files the database's mode). An existing file is
    left as it is."""
    name = str(path)
    if not name or name.startswith((":", "file:")):
        return  # in memory, or a URI SQLite resolves itself
    try:
        fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE)
    except FileExistsError:
        return
    os.fchmod(fd, PRIVATE_FILE)
    os.close(fd)


def make_private(path: Path | str) -> None:
    """A file or folder created by a library (a database, a session folder) made private."""
    path = Path(path)
    if path.exists():
        path.chmod(PRIVATE_DIR if path.is_dir() else PRIVATE_FILE)
