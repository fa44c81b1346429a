"""Running `fraction-ledger serve` as a separate process on loopback: for benchmarks, drills and tests."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stop_process(proc: subprocess.Popen, grace: float = 15) -> None:
    """Ask a child process to stop (SIGTERM); kill it if it has not within `grace` seconds."""
    proc.terminate()
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)


def wait_up(proc: subprocess.Popen, base: str, within: float = 60, log: Path | None = None) -> None:
    """Until the server at `base` answers /health with 200; refused when it exits or takes longer than `within` s."""
    deadline = time.monotonic() + within
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}" + (f": {log.read_text()}" if log else ""))
        try:
            if httpx.get(base + "/health", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"server did not come up within {within:.0f} s")
        time.sleep(0.1)


@contextlib.contextmanager
def running_server(db: str, port: int, env: dict | None = None, log: Path | None = None,
                   extra: tuple[str, ...] = ()) -> Iterator[str]:
    """`fraction-ledger serve` in its own process on 127.0.0.1; stopped at the end, whatever happens."""
    full_env = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    out = open(log, "w") if log else subprocess.DEVNULL
    proc = subprocess.Popen([sys.executable, "-m", "tools.cli", "--db", db, "serve", "--host", "127.0.0.1",
                             "--port", str(port), *extra], env=full_env, stdout=out, stderr=subprocess.STDOUT,
                            cwd=str(ROOT))
    base = f"http://127.0.0.1:{port}"
    try:
        wait_up(proc, base, 60, log)
        yield base
    finally:
        stop_process(proc)
        if log:
            out.close()
