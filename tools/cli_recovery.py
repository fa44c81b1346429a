"""`fraction-ledger reconcile`: the restored OIS against the ledger, the import set of what it
lacks, the printable report, and the acknowledgement once the OIS has imported the set."""

from __future__ import annotations

import sys
from decimal import Decimal, InvalidOperation
from pathlib import Path

import click

from adapters.files import write_private
from tools.cli_access import log_read  # noqa: E402
from adapters.i18n import cli_language
from tools.cli_common import Context, emit, file_error, offset_zone, parse_time, say, shown, status_word, tr


@click.group("reconcile", invoke_without_command=True)
@click.option("--ois", "ois", multiple=True, type=click.Path(exists=True), help="Folder (or files) of the OIS's "
              "RT Beams Treatment Records and RT Treatment Summary Records; repeatable.")
@click.option("--restore-point", default=None, help="When the OIS was restored to (ISO-8601 with offset).")
@click.option("--mu-tolerance", default=None, help="MU difference per beam still taken as equal [default: 0.5].")
@click.option("--utc-offset", default=None, help="Offset of OIS times that carry none, e.g. +01:00.")
@click.option("--report", "report", type=click.Path(dir_okay=False), default=None, help="Write the printable HTML report.")
@click.option("--export", "export_dir", type=click.Path(file_okay=False), default=None,
              help="Write the import set: exactly the records the OIS lacks, refreshed summaries, a manifest.")
@click.option("--hl7-config", default=None, help="With --export: also the charges of those fractions, as HL7.")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def reconcile(ctx: click.Context, ois, restore_point, mu_tolerance, utc_offset, report, export_dir, hl7_config,
              as_json) -> None:
    """Reconcile the restored OIS against the ledger: what it lacks, what it has that the ledger
    does not, and what conflicts."""
    if ctx.invoked_subcommand is not None:
        return
    if not ois:
        raise click.UsageError(tr("ois_required"))
    obj: Context = ctx.obj
    from adapters.dicom import count_files
    from adapters.recovery import export_import_set, render_report, run
    from tools.cli_dicom import progress_bar

    try:
        tolerance = Decimal(mu_tolerance) if mu_tolerance is not None else None
    except InvalidOperation:
        raise click.BadParameter(tr("bad_mu", text=repr(mu_tolerance)), param_hint="--mu-tolerance") from None
    point = parse_time(restore_point) if restore_point else None
    with progress_bar(tr("progress_ois_records"), count_files(ois)) as bar:
        result = run(obj.ledger, ois, offset_zone(utc_offset), point, tolerance,
                     progress=lambda: bar.advance(bar.task_ids[0]))
    log_read(obj, "reconcile", result["courses"], key="course_id")
    if export_dir:
        builder = None
        if hl7_config:
            from tools.cli_hl7 import builder_for

            builder = builder_for(hl7_config, None)
        result["import_set"] = export_import_set(obj.ledger, result, Path(export_dir), builder)
    if report:
        write_private(report, render_report(result, ", ".join(ois), obj.ledger.app.clock(), cli_language()))
    if as_json:
        emit(result, True)
        return
    t = result["totals"]
    n = {k: shown(v) for k, v in t.items()}
    click.echo(tr("reconcile_totals", courses=n["courses"], ledger=n["ledger_fractions"], ois=n["ois_fractions"],
                  files=n["files_read"]))
    click.echo(tr("reconcile_counts", missing=n["missing_in_ois"], unknown=n["unknown_to_ledger"],
                  conflicts=n["conflicts"], only_ois=n["courses_only_in_ois"], unreadable=n["unreadable_files"]))
    for m in result["missing_in_ois"]:
        click.echo(tr("reconcile_missing", patient_id=m["patient_id"], plan_label=m["plan_label"],
                      number=m["fraction_number"], at=shown(m["delivered_at"]), centre=m["centre"])
                   + (tr("reconcile_summary_only") if m["ois_has_summary_only"] else "")
                   + (tr("reconcile_acknowledged") if m["acknowledged"] else ""))
    for u in result["unknown_to_ledger"]:
        click.echo(tr("reconcile_unknown", patient_id=u["patient_id"], plan_label=u["plan_label"],
                      number=u["fraction_number"], at=shown(u["delivered_at"]), machine=u["machine"],
                      refs=", ".join(u["refs"])))
    for c in result["conflicts"]:
        click.echo(tr("reconcile_conflict", patient_id=c["patient_id"], plan_label=c["plan_label"],
                      number=c["fraction_number"], differences="; ".join(map(say, c["differences_said"]))))
    for p in result["unreadable_files"]:
        click.echo(tr("reconcile_unreadable", file=p["file"], error=file_error(p)))
    if export_dir:
        s = result["import_set"]
        click.echo(tr("reconcile_import_set", set_id=s["set_id"], folder=export_dir, records=shown(s["records"]),
                      summaries=shown(s["summaries"]), charges=shown(s["charges"])))
    if report:
        click.echo(tr("reconcile_report", file=report))
    click.echo(result["log_head"])


@reconcile.command("acknowledge")
@click.argument("import_set", type=click.Path(exists=True))
@click.option("--by", required=True, help="The physicist who checked the OIS imported the set.")
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def acknowledge(obj: Context, import_set, by, as_json) -> None:
    """Record that the OIS imported an import set (its folder or its import-set.json)."""
    from adapters.recovery import read_manifest

    try:
        manifest = read_manifest(Path(import_set))
    except ValueError as exc:
        click.echo(f"{tr('refused')}: {exc}", err=True)
        sys.exit(1)
    items = [{k: i[k] for k in ("course_id", "group", "number", "record_ids")} for i in manifest["items"]]
    result = obj.ledger.app.ois.acknowledge_import(manifest["set_id"], items, by, obj.actor())
    emit(result, as_json, tr("import_set_acknowledged", status=status_word(result["status"]), set_id=result["set_id"],
                             fractions=shown(result["fractions"]), by=result["by"]))


def register(main: click.Group) -> None:
    main.add_command(reconcile)
