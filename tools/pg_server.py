"""A throw-away PostgreSQL server on 127.0.0.1 for benchmarks: initdb in a temporary folder,
`pg_ctl start` on a free port with fsync on (durable commits, like a real server), a fresh
database per run, and `pg_ctl stop` at the end whatever happens. Under root the server runs
as the `postgres` user (PostgreSQL refuses to run as root)."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

from tools.serverproc import free_port


def pg_bindir() -> Path:
    found = shutil.which("pg_ctl")
    if found:
        return Path(found).resolve().parent
    candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"))
    if not candidates:
        raise RuntimeError("PostgreSQL is not installed here (no pg_ctl): install the postgresql package")
    return candidates[-1].parent


class TemporaryPostgres:
    def __init__(self) -> None:
        self.bindir = pg_bindir()
        # Not under a private temp folder of root's: the server runs as `postgres`.
        self.folder = Path(tempfile.mkdtemp(prefix="fraction-ledger-bench-pg-"))
        self.folder.chmod(0o777)
        self.data = self.folder / "pgdata"
        self.port = free_port()
        self.as_root = os.geteuid() == 0
        self.run("initdb", "-D", str(self.data), "-U", "ledger", "--auth=trust", "-E", "UTF8", "--no-sync")
        self.run("pg_ctl", "-D", str(self.data), "-w", "-t", "60", "-l", str(self.folder / "pg.log"), "-o",
                 f"-h 127.0.0.1 -p {self.port} -k {self.folder} -c fsync=on -c max_connections=200", "start")

    def run(self, tool: str, *args: str) -> None:
        cmd = [str(self.bindir / tool), *args]
        if self.as_root:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        subprocess.run(cmd, check=True, capture_output=True, timeout=120)

    def new_database(self) -> str:
        import psycopg

        name = "b" + uuid.uuid4().hex[:12]
        with psycopg.connect(f"host=127.0.0.1 port={self.port} user=ledger dbname=postgres", autocommit=True) as c:
            c.execute(f'CREATE DATABASE "{name}"')
        return f"postgresql://ledger@127.0.0.1:{self.port}/{name}"

    def stop(self) -> None:
        try:
            self.run("pg_ctl", "-D", str(self.data), "-m", "fast", "stop")
        except subprocess.SubprocessError:
            pass
        shutil.rmtree(self.folder, ignore_errors=True)


@contextlib.contextmanager
def temporary_postgres() -> Iterator[TemporaryPostgres]:
    server = TemporaryPostgres()
    try:
        yield server
    finally:
        server.stop()
