"""DICOM in and out: RT Plans and OIS records read into the ledger's vocabulary, RT records
written from its events, and C-STORE to the home OIS. Translation only: every clinical
rule (a fraction twice, a fallback for another patient) is the ledger's.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path


class BadFile(ValueError):
    """A file that cannot be used: the message names the attribute and the reason."""


def iter_files(paths: Iterable[str | Path]) -> Iterator[Path]:
    """Every file named or under a named folder, in a stable order. Only names are held;
    each file is opened when its turn comes, so memory does not grow with the folder."""
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            for sub in sorted(path.iterdir()):
                if sub.name.startswith("."):
                    continue
                yield from iter_files([sub]) if sub.is_dir() else [sub]
        else:
            yield path


def count_files(paths: Iterable[str | Path]) -> int:
    return sum(1 for _ in iter_files(paths))
