"""What every `fraction-ledger` command module shares: the context (database, who acts), output,
refusals and time parsing. Command modules import from here, never from `tools.cli`, which
imports them all."""

from __future__ import annotations

import sys
from datetime import date, datetime, time
from typing import Any

import click
import msgspec

from adapters.i18n import cli_language, words
from adapters.runtime import Ledger
from ledger.errors import LedgerError
from ledger.service import Actor


class Context:
    def __init__(self, db: str | None, user: str, centre: str, cipher_key_file: str | None = None):
        self.db = db
        self.cipher_key_file = cipher_key_file
        self.user = user
        self.centre = centre
        self._ledger: Ledger | None = None
        self.verify_all = False  # `serve --verify-all`: check the hash chain from the first event at open

    @property
    def ledger(self) -> Ledger:
        if self._ledger is None:
            self._ledger = Ledger(self.db, cipher_key_file=self.cipher_key_file, verify_all=self.verify_all)
            if self._ledger.guard.problem is not None:  # reads go on; writes are refused with this
                click.echo(tr("alarm", problem=say(self._ledger.guard.refusal())), err=True)
        return self._ledger

    def log_guard(self) -> Any:
        """The opened ledger's guard (after verifying what was appended since), or None."""
        if self._ledger is None:
            return None
        try:
            self._ledger.guard.cover(None)
        except Exception:
            pass
        return self._ledger.guard

    def actor(self, centre: str | None = None) -> Actor:
        return Actor(user=self.user, centre=centre or self.centre)

    def close(self) -> None:
        if self._ledger is not None:
            self._ledger.close()


def emit(value: Any, as_json: bool, text: str | None = None) -> None:
    if as_json:
        click.echo(msgspec.json.encode(value).decode())
    elif text is not None:
        click.echo(text)


def refuse(exc: Exception) -> None:
    """A refusal on stderr in the operator's language (FRACTION_LEDGER_LANG or the locale), exit 1."""
    w = words(cli_language())
    click.echo(f"{w.t('cli_refused')}: {w.say(exc) if isinstance(exc, LedgerError) else exc}", err=True)
    sys.exit(1)


def say(message: object) -> str:
    """A stored message (a warning, a flag) in the operator's language."""
    return words(cli_language()).say(message)


def file_error(answer: dict) -> str:
    """Why an importer refused a file or a line, in the operator's language (`error_said`), else
    its English text (`error`); "" when it was not refused."""
    said = answer.get("error_said")
    return say(said) if said else answer.get("error") or ""


def file_warning(answer: dict) -> str:
    """What an importer says beside a file it took, in the operator's language (`warning_said`),
    else its English text (`warning`); "" when it says nothing."""
    said = answer.get("warning_said")
    return say(said) if said else answer.get("warning") or ""


# Statuses a command's result carries (`result["status"]`), said in the CLI's language.
STATUS_WORDS = ("acknowledged", "active", "added", "changed", "closed", "completed", "declared", "error", "imported", "open",
                "registered", "removed", "set", "settled", "suspended", "unchanged", "unsettled")


def tr(key: str, /, **values: object) -> str:
    """A line the command prints for a person, in the CLI's language (domain `cli`, README
    "Languages of the command line and reports"); `--json` output never goes through here."""
    return words(cli_language()).cli(key, **values)


def warn_if_no_registry(app: Any, *centres: str) -> None:
    """Until a centre is registered, the ledger accepts any centre code: say so on stderr when a
    command names one, so that a mistyped partner is seen (README "Outage operations")."""
    named = [c for c in centres if c]
    if named and app.outage.registry() is None:
        click.echo(tr("no_registry_unchecked", centres=", ".join(named)), err=True)


def tr_n(key: str, count: int, /, **values: object) -> str:
    return words(cli_language()).word_n("cli", key, count, **values)


def status_word(value: str | None) -> str:
    """A result's status word (`registered`, `unchanged`, ...) in the CLI's language."""
    if value in STATUS_WORDS:
        return tr(f"status_{value}")
    return str(value)


def shown(value: object) -> str:
    """A number, date or time as the CLI's reader writes it; in English as it always printed
    (ISO times, plain numbers), which scripts reading the English lines rely on."""
    lang = cli_language()
    if lang == "en" or value is None:
        return str(value)
    return words(lang).value(value)


def money(value: object) -> str:
    lang = cli_language()
    if lang == "en" or value in (None, ""):
        return str(value)
    return words(lang).money(value)


def parse_time(text: str, option: str = "--at") -> datetime:
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise click.BadParameter(tr("bad_datetime", text=repr(text)), param_hint=option) from None
    if value.tzinfo is None:
        raise click.BadParameter(tr("no_offset", text=repr(text)), param_hint=option)
    return value


def parse_since(text: str | None) -> datetime | None:
    """--since: a date (from its start in the department's zone: the day people there mean) or a
    date and time with an offset."""
    if text is None:
        return None
    if len(text) == 10:
        from adapters.runtime import department_zone

        try:
            return datetime.combine(date.fromisoformat(text), time(0), department_zone())
        except ValueError:
            raise click.BadParameter(tr("bad_date", text=repr(text)), param_hint="--since") from None
    return parse_time(text, "--since")


def offset_zone(utc_offset: str | None):
    """--utc-offset +01:00 as a tzinfo; without it, the department's named zone (DST on each date)."""
    if not utc_offset:
        from adapters.runtime import department_zone

        return department_zone()
    return parse_time(f"2000-01-01T00:00{utc_offset}", "--utc-offset").tzinfo


def group_named(main: click.Group, name: str, help_text: str) -> click.Group:
    """A group several areas add subcommands to (`import`, `export`, `send`): made by the first."""
    found = main.commands.get(name)
    if isinstance(found, click.Group):
        return found
    group = click.Group(name, help=help_text)
    main.add_command(group)
    return group
