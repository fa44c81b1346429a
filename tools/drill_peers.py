"""The home systems a drill sends to, on 127.0.0.1 only: dcmtk's storescp (the OIS's DICOM store)
and an MLLP receiver built on python-hl7 (billing, HIS, PACS), each independent of the ledger's code."""

from __future__ import annotations

import asyncio
import shutil
import threading
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


class MllpReceiver:
    """Accepts every message with AA; remembers the control ids it received."""

    def __init__(self) -> None:
        self.received: list[str] = []
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    def __enter__(self) -> MllpReceiver:
        from hl7.mllp import start_hl7_server

        self.thread.start()
        self.server = asyncio.run_coroutine_threadsafe(
            start_hl7_server(self.handle, "127.0.0.1", 0, limit=64 * 1024 * 1024, encoding="utf-8"), self.loop
        ).result(timeout=30)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    def __exit__(self, *exc: object) -> None:
        async def stop() -> None:
            self.server.close()
            for task in [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]:
                task.cancel()

        asyncio.run_coroutine_threadsafe(stop(), self.loop).result(timeout=30)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=30)

    async def handle(self, reader, writer) -> None:
        try:
            while True:
                message = await reader.readmessage()
                self.received.append(str(message.segment("MSH")[10]))
                ack = str(message.create_ack("AA", message_id=f"ACK{len(self.received)}"))
                writer.writeblock((ack.rstrip("\r") + "\r").encode("utf-8"))
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.CancelledError):
            pass
        finally:
            writer.close()
