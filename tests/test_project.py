"""The README's promises: two commands first, and CI runs exactly the test command."""

from __future__ import annotations

import os
import re

from tests.conftest import ROOT


def readme_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    head = text.split("\n## ", 1)[0]
    return re.findall(r"```sh\n(.+?)\n```", head, flags=re.S)


def test_readme_opens_with_exactly_two_commands():
    commands = readme_commands()
    assert len(commands) == 2, commands
    run, test = commands
    assert "\n" not in run and "\n" not in test
    assert "fraction-ledger" in run and "pytest" in test


def test_ci_runs_the_readme_test_command_verbatim():
    ci = ROOT / ".ci" / "run"
    assert os.access(ci, os.X_OK)
    lines = [line.strip() for line in ci.read_text().splitlines()]
    assert readme_commands()[1] in lines
    assert "CI=true" in ci.read_text() and "apt-get update" in ci.read_text()


# ---- the test pyramid -----------------------------------------------------------------------
# Most tests are fast: the rules on an in-memory Course (test_course_unit.py), the service on the
# embedded store, the CLI in-process. Real processes, peers and PostgreSQL are the few, marked slow.

TESTS = ROOT / "tests"
# The smoke tests that run `fraction-ledger` as a real process (`cli_process`); everything else
# calls the commands in-process through CliRunner (`cli`).
MOST_CLI_PROCESSES = 8
# Where the store matters, a test runs on PostgreSQL too (`EACH_BACKEND`); nowhere else.
STORAGE_TESTS = {"test_core_race.py", "test_trust_chain.py", "test_trust_crash.py", "test_http_server.py",
                 "test_hl7_delivery.py", "test_partner_returns_trust.py", "test_aggregate_cache.py"}


def suite_files() -> list:
    return sorted(p for p in TESTS.glob("*.py") if p.name != "test_project.py")


def test_no_test_waits_a_fixed_time():
    """A test waits for a condition with a bound (`wait_for`, an Event, a barrier), never for a time."""
    for path in suite_files():
        text = path.read_text()
        allowed = 1 if path.name == "conftest.py" else 0  # the poll inside `wait_for` itself
        assert text.count("sleep(") <= allowed, path.name


def calls_in_tests(name: str) -> dict[str, int]:
    """Per test function (file::function), the calls of `name` in its body."""
    import ast

    found: dict[str, int] = {}
    for path in suite_files():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef):
                n = sum(1 for c in ast.walk(node) if isinstance(c, ast.Call) and getattr(c.func, "id", None) == name)
                if n:
                    found[f"{path.name}::{node.name}"] = n
    return found


def test_the_cli_runs_in_process_except_in_a_few_smoke_tests():
    processes = calls_in_tests("cli_process")
    assert processes, "the smoke tests run the real process"
    assert all(where.split("::")[1].startswith("test_smoke_") for where in processes), processes
    assert sum(processes.values()) <= MOST_CLI_PROCESSES, processes
    assert sum(calls_in_tests("cli").values()) > 100, "the commands are tested in-process"
    for path in suite_files():
        if path.name == "conftest.py":
            continue
        text = path.read_text()
        for start in (m.start() for m in re.finditer(r'"tools\.cli"', text)):
            # Only servers (`serve`, `listen`) are started as processes outside the smoke tests.
            assert re.search(r'"(serve|listen)"', text[start:start + 300]), \
                f"{path.name} starts `fraction-ledger` as a process: use `cli` (in-process) or a smoke test"


def test_postgresql_only_where_storage_matters():
    uses = {p.name for p in suite_files() if p.name != "conftest.py" and (
        "@EACH_BACKEND" in p.read_text() or "pytestmark = EACH_BACKEND" in p.read_text())}
    assert uses == STORAGE_TESTS
    conftest = (TESTS / "conftest.py").read_text()
    assert 'def backend() -> str:\n    return "sqlite"' in conftest, "the default store of a test is SQLite"


def peer_tests_not_marked_slow() -> list[str]:
    """Test functions that reach a real peer, a server process or PostgreSQL (in their body, or
    through a fixture, function or class of their module) without `@pytest.mark.slow` on the test
    or its module. (A test on `EACH_BACKEND` is slow on PostgreSQL only: the parameter is marked.)"""
    import ast

    peers = {"require_tool", "require_module", "running_server", "Popen", "postgres_url", "postgres_server",
             "Orthanc", "LoopbackStorescp", "storescu"}
    unmarked = []
    for path in suite_files():
        if not path.name.startswith("test_"):
            continue
        tree = ast.parse(path.read_text())
        module_slow = any(isinstance(n, ast.Assign) and any(getattr(t, "id", "") == "pytestmark" for t in n.targets)
                          and "pytest.mark.slow" in ast.unparse(n.value) for n in tree.body)
        defined = {n.name: ast.unparse(n) for n in tree.body if isinstance(n, (ast.FunctionDef, ast.ClassDef))}
        reaching = set(peers)
        while True:  # what reaches a peer, directly or through another helper of the module
            more = {name for name, text in defined.items() if name not in reaching and
                    not name.startswith("test_") and any(re.search(rf"\b{r}\b", text) for r in reaching)}
            if not more:
                break
            reaching |= more
        for node in tree.body:
            if not (isinstance(node, ast.FunctionDef) and node.name.startswith("test_")):
                continue
            text = ast.unparse(node)
            reaches = any(re.search(rf"\b{r}\b", text) for r in reaching)
            marked = module_slow or "pytest.mark.slow" in [ast.unparse(d) for d in node.decorator_list]
            if reaches and not marked:
                unmarked.append(f"{path.name}::{node.name}")
    return unmarked


def test_the_slow_tier_is_marked():
    """Tests on real peers, servers and PostgreSQL are marked slow, so `-m "not slow"` is the fast tier."""
    assert peer_tests_not_marked_slow() == []
