"""The home systems a drill sends to, on 127.0.0.1 only: dcmtk's storescp (the OIS's DICOM store)
and an MLLP receiver built on python-hl7 (billing, HIS, PACS), each independent of the ledger's code."""

from __future__ import annotations

import shutil
from pathlib import Path


def storescp_installed() -> bool:
    return shutil.which("storescp") is not None


class StoreSCP:
    """dcmtk's storescp behind a loopback socket (it cannot bind one address by itself)."""

    def __init__(self, out: Path):
        from tools.storescp import LoopbackStorescp

        self.out = out
        self.peer = LoopbackStorescp(out, aet="STORESCP")
        self.port = self.peer.port

    def files(self) -> list[Path]:
        return sorted(p for p in self.out.rglob("*") if p.is_file())

    def close(self) -> None:
        self.peer.close()


def MllpReceiver():  # noqa: N802 - the receiver a drill sends HL7 to
    """python-hl7's MLLP server on 127.0.0.1, answering every message AA (`tools/hl7_receiver.py`)."""
    from tools.hl7_receiver import Receiver

    return Receiver()
