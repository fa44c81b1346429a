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
