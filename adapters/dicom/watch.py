"""A watch folder, for systems that only write files (a linac in file mode, an export job).

`Watcher.scan()` looks at every file under the folder (sub-folders included, hidden and
`.part`/`.tmp` files left alone). A file is taken once it is complete: its size and time
have not changed since the previous scan, and it reads as a whole DICOM object (the same
completeness check as every import). A file that is still short after `settle` without
changing is refused as truncated. A taken file goes through exactly the import path of
the listener (`import_object`: `import plan` / `import records`), leaves a receipt, and is
moved out of the way: to `imported/` when the ledger took it (or had it already), to
`refused/` with a `.reason.txt` beside it when it did not. So each file is imported once,
and what was refused waits, with its reason, for a person.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from adapters.dicom.listen import ACCEPTED_CLASSES, import_object
from adapters.dicom.pull import ORDER
from adapters.dicom.plans import SOP_NAMES, BadFile, read_dataset
from adapters.runtime import Ledger
from ledger.messages import english, said
from ledger.receipts import record_receipt
from ledger.service import Actor

log = logging.getLogger("fraction_ledger.watch")

IMPORTED, REFUSED = "imported", "refused"
SKIPPED_SUFFIXES = (".part", ".tmp", ".partial", ".reason.txt")


class Watcher:
    def __init__(self, ledger: Ledger, folder: Path, centre: str, source: str | None = None,
                 user: str = "watch-folder", deviation_reason: str | None = None, settle: float = 60,
                 now: Callable[[], float] = time.monotonic):
        self.ledger = ledger
        self.folder = Path(folder)
        self.centre = centre
        self.source = source or f"watch:{self.folder.name}"
        self.user = user
        self.deviation_reason = deviation_reason
        self.settle = settle
        self.now = now
        self.seen: dict[Path, tuple[int, int, float]] = {}  # path -> size, mtime, when it last changed

    def candidates(self) -> list[Path]:
        out = []
        for root, dirs, files in os.walk(self.folder):
            here = Path(root)
            if here == self.folder:
                dirs[:] = [d for d in dirs if d not in (IMPORTED, REFUSED)]
            dirs[:] = [d for d in dirs if not d.startswith(".")]
            out += [here / f for f in files if not f.startswith(".") and not f.endswith(SKIPPED_SUFFIXES)]
        return sorted(out)

    def scan(self, all_complete: bool = False) -> list[dict]:
        """One look at the folder; an answer per file taken. `all_complete`: the files are known to
        be whole (a folder copied in before the scan), so none waits for a second look. Plans
        are taken before records and sessions before summaries, whatever the files' names."""
        ready: list[tuple[Path, bool]] = []
        present = set()
        for path in self.candidates():
            present.add(path)
            try:
                st = path.stat()
            except FileNotFoundError:
                continue
            now = self.now()
            known = self.seen.get(path)
            if known is None or known[:2] != (st.st_size, st.st_mtime_ns):
                self.seen[path] = (st.st_size, st.st_mtime_ns, now)
                if not all_complete:
                    continue  # still being written, perhaps: look again next time
            ready.append((path, all_complete or now - self.seen[path][2] >= self.settle))
        for gone in set(self.seen) - present:
            del self.seen[gone]
        read = []
        for path, settled in ready:
            try:
                ds, problem = read_dataset(path), None
            except BadFile as exc:
                if not settled:
                    continue  # short still: the writer may not be done
                ds, problem = None, exc
            read.append((ORDER.get(str(ds.SOPClassUID), 9) if ds is not None else 9, path, ds, problem))
        answers = []
        for _, path, ds, problem in sorted(read, key=lambda r: (r[0], r[1])):
            answers.append(self.take(path, ds, problem))
            self.seen.pop(path, None)
        return answers

    def take(self, path: Path, ds: Any, problem: BadFile | None) -> dict:
        if ds is None:
            return self.refuse(path, {"file": str(path), "kind": "file", "sop_instance_uid": "", "status": "error",
                                      "error": str(problem), "error_said": problem.said})
        sop_class = str(ds.SOPClassUID)
        uid = str(ds.get("SOPInstanceUID", ""))
        if sop_class not in ACCEPTED_CLASSES:
            why = said("bad_file.not_taken")
            return self.refuse(path, {"file": str(path), "kind": "object", "sop_instance_uid": uid, "status": "error",
                                      "error": english(why), "error_said": why})
        answer = import_object(self.ledger, path, sop_class, self.source, self.centre, self.user,
                               self.deviation_reason)
        answer.update(file=str(path), sop_instance_uid=uid, record=answer.pop("kind", None),
                      kind=SOP_NAMES.get(sop_class, sop_class))
        self.receipt(answer)
        if answer.get("status") == "error":
            return self.refuse(path, answer, receipt=False)
        answer["moved_to"] = str(move(path, self.folder / IMPORTED, self.folder))
        return answer

    def refuse(self, path: Path, answer: dict, receipt: bool = True) -> dict:
        if receipt:
            self.receipt(answer)
        target = move(path, self.folder / REFUSED, self.folder)
        target.with_name(target.name + ".reason.txt").write_text((answer.get("error") or "refused") + "\n",
                                                                 encoding="utf-8")
        answer["moved_to"] = str(target)
        return answer

    def receipt(self, answer: dict) -> None:
        try:
            record_receipt(self.ledger.app, self.source, "watch", answer["kind"], answer["sop_instance_uid"],
                           answer.get("course_id"), answer.get("status", "error"), Actor(user=self.user, centre="-"))
        except Exception:  # noqa: BLE001 - the file's own answer does not depend on its receipt
            log.exception("could not record the receipt of %s", answer["file"])


def move(path: Path, into: Path, base: Path) -> Path:
    """Move `path` under `into`, keeping its place relative to `base`; never over another file."""
    target = into / path.relative_to(base)
    target.parent.mkdir(parents=True, exist_ok=True)
    k = 1
    while target.exists():
        target = target.with_name(f"{path.stem}.{k}{path.suffix}")
        k += 1
    os.replace(path, target)
    return target


def summary(answers: list[dict]) -> dict[str, Any]:
    return {"taken": len(answers), "imported": sum(a.get("status") in ("imported", "registered") for a in answers),
            "unchanged": sum(a.get("status") == "unchanged" for a in answers),
            "refused": sum(a.get("status") == "error" for a in answers)}
