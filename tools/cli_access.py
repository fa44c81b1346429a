"""The access log on the command line: `fraction-ledger access-log`, and `log_read`, which every
command that shows or exports patient data calls before it prints or writes anything.

The command line has no account: who is `--user` (or FRACTION_LEDGER_USER, else the login
name) with `--centre`, the role is "-", and where from is "cli" with the OS user and host.
Only the command's own options are recorded, never the group's (a --db URL may hold a password).
"""

from __future__ import annotations

import getpass
import socket
from collections.abc import Iterable
from typing import Any

import click

from adapters.runtime import local_text
from ledger.access_log import record_access
from tools.cli_common import Context, emit, tr

CLI_ROLE = "-"


def where_from() -> str:
    try:
        user = getpass.getuser()
    except Exception:  # no login name (a container without a passwd entry)
        user = "?"
    return f"{user}@{socket.gethostname()}"


def command_line() -> str:
    """The command with its own arguments and options, e.g. `fraction-ledger course show ID --json`."""
    ctx = click.get_current_context()
    shown = []
    for param in ctx.command.params:
        value = ctx.params.get(param.name)
        if value in (None, False, ()):
            continue
        if isinstance(param, click.Argument):
            shown.append(str(value))
        else:
            flag = max(param.opts, key=len)
            shown.append(flag if value is True else " ".join(f"{flag} {v}" for v in (
                value if isinstance(value, (list, tuple)) else [value])))
    names, at = [], ctx
    while at.parent is not None:  # the root's own name is however it was started (python -m ...)
        names.insert(0, at.info_name)
        at = at.parent
    return " ".join(["fraction-ledger", *names, *shown])


def log_read(obj: Context, action: str, courses: Iterable[Any], key: str = "id") -> None:
    """Record that this command shows (or exports) these courses: rows with `key` (and maybe
    patient_id, home_centre) or course ids. `AccessLogUnavailable` (exit 1) when it cannot be written."""
    found: dict[str, dict] = {}
    for c in courses:
        row = c if isinstance(c, dict) else {key: c}
        cid = row.get(key)
        if cid is not None:
            known = found.setdefault(str(cid), {"course_id": str(cid), "patient_id": None, "home_centre": None})
            known["patient_id"] = known["patient_id"] or row.get("patient_id")
            known["home_centre"] = known["home_centre"] or row.get("home_centre")
    unnamed = [cid for cid, c in found.items() if c["patient_id"] is None]
    if unnamed:
        for cid, named in obj.ledger.fresh().courses_named(unnamed).items():
            found[cid].update({k: v for k, v in named.items() if v is not None})
    record_access(obj.ledger.app, user=obj.user, role=CLI_ROLE, centre=obj.centre, channel="cli",
                  client=where_from(), action=action, path=command_line(), courses=list(found.values()))


@click.command("access-log")
@click.option("--patient", default=None, help="Only reads of this patient's data (patient id).")
@click.option("--user", "reader", default=None, help="Only reads by this user.")
@click.option("--course", default=None, help="Only reads of this course.")
@click.option("--limit", type=click.IntRange(1), default=None, help="At most this many rows (newest first).")
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def access_log(obj: Context, patient, reader, course, limit, as_json) -> None:
    """Who read which patient's data, when, what and from where (NEN 7513), newest first.
    Reading it is logged too; nothing can change an entry."""
    rows = obj.ledger.fresh().access_log(patient=patient, user=reader, course=course, limit=limit)
    log_read(obj, "access_log.read", rows, key="course_id")
    if as_json:
        emit(rows, True)
        return
    for r in rows:
        whom = f"{r['patient_id'] or '-'} {r['course_id'] or ''}".rstrip() if r["course_id"] else tr("no_patient_data")
        click.echo(f"{local_text(r['at']):<16}  {r['user']:<18} {r['role']:<9} {r['centre']:<10} {r['channel']} {r['client']:<22} "
                   f"{r['action']:<16} {whom}  {r['path']}")


def register(main: click.Group) -> None:
    main.add_command(access_log)
