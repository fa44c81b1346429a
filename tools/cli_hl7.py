"""`fraction-ledger export hl7`, `send hl7` and `deliveries`: the HL7 side of recovery.

    fraction-ledger export hl7 --out DIR [--course ID] [--since 2026-11-02T00:00+01:00]
    fraction-ledger send hl7 --host billing.local --port 2575 [--destination billing]
    fraction-ledger deliveries
"""

from __future__ import annotations

import sys
from pathlib import Path


import click

from tools.cli_access import log_read  # noqa: E402
from adapters.i18n import cli_language  # noqa: E402
from tools.cli_common import Context, emit, group_named, parse_since, shown, tr  # noqa: E402,F401


def builder_for(config_path: str | None, codes_path: str | None):
    from adapters.hl7.codes import ProcedureCodes
    from adapters.hl7.config import Hl7Config
    from adapters.hl7.messages import MessageBuilder

    config = Hl7Config.load(config_path)
    return MessageBuilder(config, ProcedureCodes.load(codes_path or config.procedure_codes))


config_option = click.option("--config", "config_path", default=None, type=click.Path(dir_okay=False),
                             help="HL7 configuration (TOML/JSON): sender, destinations, centre codes.")
codes_option = click.option("--codes", "codes_path", default=None, type=click.Path(dir_okay=False),
                            help="Procedure code mapping (TOML/JSON) [default: adapters/hl7/procedure_codes.toml].")


@click.command("hl7")
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Folder to write the messages to.")
@click.option("--course", "course_id", default=None, help="Only this course.")
@click.option("--since", default=None, help="Only facts recorded at or after this ISO-8601 time.")
@config_option
@codes_option
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def export_hl7(obj: Context, out, course_id, since, config_path, codes_path, as_json) -> None:
    """Write HL7 v2.5 messages: DFT^P03 charges (and credits), MDM^T02 summaries, ADT^A23 purges.

    Each message goes to OUT/<destination>/<control id>.hl7 and is recorded as exported, so
    that a fraction voided later gets a credit."""
    from adapters.hl7.replay import course_messages, export_to

    builder = builder_for(config_path, codes_path)
    log_read(obj, "exports", [course_id] if course_id else obj.ledger.fresh().courses())
    messages = course_messages(obj.ledger, builder, course_id, parse_since(since), lang=cli_language())
    counts = export_to(obj.ledger, messages, Path(out), obj.actor())
    total = sum(counts.values())
    emit({"out": str(out), "messages": total, "by_kind": counts}, as_json,
         tr("hl7_exported", total=shown(total), folder=out,
            kinds=", ".join(f"{shown(n)} {k}" for k, n in sorted(counts.items())) or tr("none")))


@click.command("hl7")
@click.option("--host", required=True)
@click.option("--port", required=True, type=click.IntRange(1, 65535))
@click.option("--destination", "destinations", multiple=True,
              help="Only the messages of this destination (billing, his, pacs, or as configured); repeatable "
                   "[default: all, over this one connection].")
@click.option("--course", "course_id", default=None)
@click.option("--since", default=None)
@click.option("--timeout", type=float, default=10.0, show_default=True, help="Seconds to wait for each ACK.")
@click.option("--attempts", type=click.IntRange(1, 20), default=5, show_default=True,
              help="Tries per message (reconnecting, with a growing pause) before giving up.")
@config_option
@codes_option
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def send_hl7(obj: Context, host, port, destinations, course_id, since, timeout, attempts, config_path, codes_path,
             as_json) -> None:
    """Send over MLLP every message its destination has not accepted yet; record each ACK."""
    from adapters.hl7.mllp import MllpSender, SendFailed
    from adapters.hl7.replay import send_pending

    builder = builder_for(config_path, codes_path)
    unknown = set(destinations) - set(builder.config.destinations)
    if unknown:
        raise click.BadParameter(tr("unknown_destination", names=", ".join(sorted(unknown)),
                                    known=", ".join(builder.config.destinations)), param_hint="--destination")
    sender = MllpSender(host, port, timeout=timeout, attempts=attempts)
    failure = None
    report: dict = {}
    try:
        report = send_pending(obj.ledger, builder, sender, obj.actor(), set(destinations) or None, course_id,
                              parse_since(since), lang=cli_language())
    except SendFailed as exc:
        failure = str(exc)
    if failure:
        click.echo(tr("hl7_send_failed", failure=failure), err=True)
        sys.exit(1)
    report["connections"] = sender.connections
    lines = [tr("hl7_sent", sent=shown(report["sent"]), host=host, port=port, accepted=shown(report["accepted"]),
                refused=shown(len(report["refused"])), skipped=shown(report["skipped"]))]
    lines += [tr("hl7_refused", code=r["code"], kind=r["kind"], control_id=r["control_id"], course=r["course"],
                 text=r["text"] or tr("no_reason")) for r in report["refused"]]
    emit(report, as_json, "\n".join(lines))


@click.command("deliveries")
@click.option("--destination", "destinations", multiple=True, help="Only these destinations.")
@config_option
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def deliveries(obj: Context, destinations, config_path, as_json) -> None:
    """What each destination accepted, refused (with its reason) or was given in a file."""
    from adapters.hl7.config import Hl7Config

    names = list(destinations) or list(Hl7Config.load(config_path).destinations)
    rows = []
    for name in names:
        d = obj.ledger.app.destinations.destination(name)
        rows.append({
            "destination": name,
            "accepted": len(d.accepted) if d else 0,
            "exported": len(d.exported) if d else 0,
            "refused": [{"control_id": k, **v} for k, v in sorted(d.refused.items())] if d else [],
        })
    if as_json:
        emit(rows, True)
        return
    for r in rows:
        click.echo(tr("hl7_destination", destination=r["destination"], accepted=shown(r["accepted"]),
                      refused=shown(len(r["refused"])), exported=shown(r["exported"])))
        for x in r["refused"]:
            click.echo(tr("hl7_refused_at", code=x["code"], control_id=x["control_id"], at=shown(x["at"]),
                          text=x["text"] or tr("no_reason")))


def register(main: click.Group) -> None:
    group_named(main, "export", "Replay the log into the formats the home systems import.").add_command(export_hl7)
    group_named(main, "send", "Deliver replayed records to the home systems.").add_command(send_hl7)
    main.add_command(deliveries)
