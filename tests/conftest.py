"""Shared fixtures: a ledger on each real backend, real peers, and the rule for missing tools.

A test that needs a real peer (PostgreSQL, storescp, dciodvfy, chromium, ...) skips on a
developer's machine that lacks it, but under CI (`CI=true`) a missing peer is a failure.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# No test depends on today's date: every ledger opened here, in-process or as a server or CLI
# process, runs on a clock that starts at this instant (a Sunday of a DST change in Brussels).
# Set FRACTION_LEDGER_CLOCK yourself to run the suite at another date.
os.environ.setdefault("FRACTION_LEDGER_CLOCK", "2027-03-28T00:30:00+00:00")
CLOCK_START = datetime.fromisoformat(os.environ["FRACTION_LEDGER_CLOCK"])
# The tests read the command line's English lines whatever the machine's locale (LANG=nl_BE...);
# tests/test_translations.py sets the language per command.
os.environ.setdefault("FRACTION_LEDGER_LANG", "en")


def month_of(moment: datetime, zone: str = "Europe/Brussels") -> tuple[date, date]:
    """The first and last day of the month of `moment` in the department's zone."""
    day = moment.astimezone(ZoneInfo(zone)).date()
    following = (day.replace(day=28) + timedelta(days=4)).replace(day=1)
    return day.replace(day=1), following - timedelta(days=1)


# Statements are by completion date: courses completed by the tests' ledgers fall in this month.
CLOCK_MONTH = month_of(CLOCK_START)
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def missing_peer(what: str) -> None:
    """Skip (laptop) or fail (CI) for a peer that is not installed."""
    if IN_CI:
        pytest.fail(f"{what} is required under CI but is not installed")
    pytest.skip(f"{what} not installed (under CI=true this is a failure, above)")


def require_tool(name: str, *fallbacks: str) -> str:
    """The path of a command-line peer, e.g. require_tool('storescp')."""
    for candidate in (name, *fallbacks):
        found = shutil.which(candidate)
        if found:
            return found
    missing_peer(name)
    raise AssertionError("unreachable")


def require_module(name: str) -> None:
    """A Python package a peer is driven with (e.g. playwright): skip on a laptop, fail under CI."""
    import importlib

    try:
        importlib.import_module(name)
    except ImportError:
        missing_peer(f"the Python package {name}")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class CliResult:
    """What a run of `fraction-ledger` gives back: exit status and the two streams."""

    def __init__(self, args: list[str], returncode: int, stdout: str, stderr: str):
        self.args, self.returncode, self.stdout, self.stderr = args, returncode, stdout, stderr


def cli(*args: str, db: str | Path | None = None, env: dict | None = None, check: bool = False,
        input: str | None = None, timeout: float = 120) -> CliResult:
    """Run `fraction-ledger ARGS` in this process with click's CliRunner: the same command, options,
    exit status, stdout and stderr as a user's terminal, without a fresh interpreter per call
    (a few smoke tests run the real process: `cli_process`). `timeout` is the process's alone.
    An exception the command does not turn into an exit status is raised, not hidden in status 1."""
    from click.testing import CliRunner

    from tools.cli import main

    full = (["--db", str(db)] if db is not None else []) + list(args)
    result = CliRunner().invoke(main, full, input=input, env=env, catch_exceptions=False,
                                prog_name="fraction-ledger")
    if check and result.exit_code != 0:
        raise AssertionError(f"fraction-ledger {' '.join(args)} failed ({result.exit_code}):\n{result.stderr}")
    return CliResult(full, result.exit_code, result.stdout, result.stderr)


def cli_process(*args: str, db: str | Path | None = None, env: dict | None = None, check: bool = False,
                input: str | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    """Run `fraction-ledger ARGS` as a user would, in a fresh process (smoke tests and benchmarks only:
    tests/test_project.py keeps the list short)."""
    full_env = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    cmd = [sys.executable, "-m", "tools.cli"]
    if db is not None:
        cmd += ["--db", str(db)]
    proc = subprocess.run(cmd + list(args), capture_output=True, text=True, env=full_env, input=input,
                          timeout=timeout, cwd=str(ROOT))
    if check and proc.returncode != 0:
        raise AssertionError(f"fraction-ledger {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr}")
    return proc


def wait_for(condition, what: str, seconds: float = 30, every: float = 0.05):
    """Poll `condition` until it returns something true (which is returned), at most `seconds`:
    the one way tests wait for another process or thread; a fixed sleep is never a wait."""
    deadline = time.monotonic() + seconds
    while True:
        found = condition()
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {seconds} s")
        time.sleep(every)


# ---- PostgreSQL, started for real -------------------------------------------------------


def _pg_bindir() -> Path | None:
    found = shutil.which("pg_ctl")
    if found:
        return Path(found).resolve().parent
    candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"))
    return candidates[-1].parent if candidates else None


class PostgresServer:
    def __init__(self, tmp: Path):
        bindir = _pg_bindir()
        if bindir is None:
            missing_peer("PostgreSQL (pg_ctl)")
        self.bindir = bindir
        self.data = tmp / "pgdata"
        self.port = free_port()
        self.as_root = os.geteuid() == 0
        tmp.chmod(0o777)
        if self.as_root:
            # pytest makes its temp folders 0700; the postgres user must be able to pass through them.
            for parent in tmp.parents:
                if parent == Path("/") or parent.stat().st_uid != 0 or parent.stat().st_mode & 0o001:
                    break
                parent.chmod(parent.stat().st_mode | 0o011)
        self.run("initdb", "-D", str(self.data), "-U", "ledger", "--auth=trust", "-E", "UTF8", "--no-sync")
        self.run("pg_ctl", "-D", str(self.data), "-w", "-t", "60", "-l", str(tmp / "pg.log"), "-o",
                 f"-h 127.0.0.1 -p {self.port} -k {tmp} -c fsync=on -c max_connections=200", "start")

    def run(self, tool: str, *args: str) -> None:
        cmd = [str(self.bindir / tool), *args]
        if self.as_root:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        subprocess.run(cmd, check=True, capture_output=True, timeout=120)

    def stop(self) -> None:
        try:
            self.run("pg_ctl", "-D", str(self.data), "-m", "immediate", "stop")
        except subprocess.SubprocessError:
            pass

    def new_database(self) -> str:
        import psycopg

        name = "l" + uuid.uuid4().hex[:12]
        with psycopg.connect(f"host=127.0.0.1 port={self.port} user=ledger dbname=postgres", autocommit=True) as c:
            c.execute(f'CREATE DATABASE "{name}"')
        return f"postgresql://ledger@127.0.0.1:{self.port}/{name}"


@pytest.fixture(scope="session")
def postgres_server():
    # Not under pytest's tmp dir: that is private to root, and the server runs as `postgres`.
    tmp = Path(tempfile.mkdtemp(prefix="fraction-ledger-pg-"))
    server = PostgresServer(tmp)
    yield server
    server.stop()
    shutil.rmtree(tmp, ignore_errors=True)


@pytest.fixture
def postgres_url(postgres_server) -> str:
    return postgres_server.new_database()


# Where storage matters (races, the hash chain, a crash, what survives a restart), a test runs on
# each backend: `@EACH_BACKEND` (or `pytestmark = EACH_BACKEND`) parametrizes the `backend`
# fixture below. Everywhere else the rules do not depend on the store: the embedded SQLite default.
EACH_BACKEND = pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("postgres", marks=[pytest.mark.postgres, pytest.mark.slow])]
)


@pytest.fixture
def backend() -> str:
    return "sqlite"


@pytest.fixture
def db_url(request, backend, tmp_path) -> str:
    """A fresh event store on the test's backend (SQLite unless the test asks for `EACH_BACKEND`)."""
    if backend == "sqlite":
        return str(tmp_path / "ledger.sqlite3")
    return request.getfixturevalue("postgres_url")


@pytest.fixture
def ledger(db_url, tmp_path, monkeypatch):
    """A `Ledger` (application + read model) on a fresh store, with a clock tests can move."""
    from adapters.runtime import Ledger

    monkeypatch.setenv("FRACTION_LEDGER_READ_DB", str(tmp_path / "read.sqlite3"))
    clock = Clock()
    with Ledger(db_url, clock=clock) as opened:
        opened.clock = clock
        yield opened


class Clock:
    """Server time as a value the tests control."""

    def __init__(self, start: datetime | None = None):
        self.now = start or CLOCK_START

    def __call__(self) -> datetime:
        self.now += timedelta(seconds=1)
        return self.now
