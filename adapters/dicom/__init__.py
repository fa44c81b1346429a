"""DICOM in and out: RT Plans and OIS records read into the ledger's vocabulary, RT records
written from its events, and C-STORE to the home OIS. Translation only: every clinical
rule (a fraction twice, a fallback for another patient) is the ledger's.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any


class BadFile(ValueError):
    """A file that cannot be used: names the attribute and the reason. Like the ledger's
    refusals (`ledger.errors.LedgerError`), it carries a message code of `ledger.messages`
    and its values: `said`, rendered in the reader's language at the edge (`Words.say`);
    `str(exc)` and `message` are its English text. A text that is not a known code is kept
    as it is (`said` is None)."""

    def __init__(self, text: str, /, **params: Any):
        from ledger.messages import english, known, said

        self.said = said(text, **params) if known(text) else None
        self.message = english(self.said) if self.said else text
        super().__init__(self.message)


def said_of(exc: BaseException) -> dict[str, Any] | None:
    """The message (code and values) of a refusal of a file, for a result list
    (`"error_said"`); None when it has none (the English `error` is then shown)."""
    return getattr(exc, "said", None)


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
