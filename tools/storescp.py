"""dcmtk's storescp, reached only through 127.0.0.1, as the home OIS a send or a bench talks to.

storescp cannot bind one address, so this listens on loopback itself and hands each
association to a `storescp --inetd` of its own (several at once)."""

from __future__ import annotations

import shutil
import socket
import subprocess
import threading
from pathlib import Path

from pydicom import dcmread


class LoopbackStorescp:
    def __init__(self, out: Path, aet: str = "OIS", extra: tuple[str, ...] = (), port: int = 0,
                 associations: int | None = None, exe: str | None = None):
        """`associations`: stop listening once this many were taken (the OIS goes down)."""
        self.exe = exe or shutil.which("storescp")
        if self.exe is None:
            raise FileNotFoundError("storescp (dcmtk) is not installed: apt-get install dcmtk")
        self.associations = associations
        self.out, self.aet, self.extra = out, aet, extra
        out.mkdir(parents=True, exist_ok=True)
        self.sock = socket.create_server(("127.0.0.1", port))
        self.port = self.sock.getsockname()[1]
        self.children: list[subprocess.Popen] = []
        threading.Thread(target=self.serve, daemon=True).start()

    def serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self.one, args=(conn,), daemon=True).start()
            if self.associations is not None:
                self.associations -= 1
                if self.associations <= 0:
                    self.sock.close()
                    return

    def one(self, conn: socket.socket) -> None:
        with conn:
            child = subprocess.Popen([self.exe, "--inetd", "-aet", self.aet, "-od", str(self.out), *self.extra],
                                     stdin=conn, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            self.children.append(child)
        try:
            child.wait(timeout=300)
        except subprocess.TimeoutExpired:
            child.kill()

    def received(self) -> dict[str, Path]:
        return {str(dcmread(p, stop_before_pixels=True).SOPInstanceUID): p for p in self.out.iterdir() if p.is_file()}

    def close(self) -> None:
        try:
            self.sock.shutdown(socket.SHUT_RDWR)  # wakes the accepting thread (close alone does not)
        except OSError:
            pass
        self.sock.close()
        for child in self.children:
            if child.poll() is None:
                child.kill()
                child.wait(timeout=10)
