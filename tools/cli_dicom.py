"""`fraction-ledger import plan|records|triage`, `export dicom`, `send dicom`, `send status`, `listen`.

Imports answer per file (or per line) and go on after a bad one; the exit status is 1 when
any failed. Progress goes to stderr (rich: a live bar on a terminal, one final line when
stderr is a file or a pipe), results to stdout.
"""

from __future__ import annotations

import sys
import tempfile
from collections import Counter
from datetime import datetime
from pathlib import Path

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from tools.cli_access import log_read  # noqa: E402
from tools.cli_common import (  # noqa: F401
    Context, emit, file_error, file_warning, group_named, offset_zone, parse_time, shown, status_word, tr,
)


def progress_bar(label: str, total: int | None) -> Progress:
    console = Console(stderr=True)
    bar = Progress(TextColumn(label), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                   console=console, transient=console.is_terminal)
    bar.add_task(label, total=total)
    return bar


def finish(answers: list[dict], as_json: bool, line) -> None:
    if as_json:
        emit(answers, True)
    else:
        for a in answers:
            click.echo(line(a))
        counts = Counter(a["status"] for a in answers)
        click.echo(", ".join(f"{shown(n)} {status_word(s)}" for s, n in sorted(counts.items())) or tr("no_files"), err=True)
    if any(a["status"] == "error" for a in answers):
        sys.exit(1)


def centre_option(obj: Context, centre: str | None) -> str:
    chosen = centre or (obj.centre if obj.centre != "-" else None)
    if not chosen:
        raise click.UsageError(tr("plans_centre_needed"))
    return chosen


@click.command("plan")
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True))
@click.option("--centre", default=None, help="Home centre of the courses (for --fallback-for: the partner) "
              "[default: the global --centre].")
@click.option("--triage", type=click.IntRange(1, 5), default=None, help="Triage code for new courses.")
@click.option("--fallback-for", "fallback_for", default=None, metavar="COURSE",
              help="Attach these plans to COURSE as a partner's re-plan (same patient only).")
@click.option("--starts-at", "starts_at", type=click.IntRange(1, 10000), default=None, metavar="N",
              help="With --fallback-for: the course's fraction that is the re-plan's fraction 1 "
              "[default: the first fraction not yet delivered].")
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def import_plan(obj: Context, paths, centre, triage, fallback_for, starts_at, as_json) -> None:
    """Register courses from RT Plan files or folders (the same file twice changes nothing)."""
    from adapters.dicom import count_files, iter_files
    from adapters.dicom.plans import import_plan_file

    centre = centre_option(obj, centre)
    app, actor = obj.ledger.app, obj.actor(centre)
    answers = []
    with progress_bar(tr("progress_plans"), count_files(paths)) as bar:
        for path in iter_files(paths):
            answers.append(import_plan_file(app, path, actor, centre, triage, fallback_for, starts_at))
            bar.advance(bar.task_ids[0])
    finish(answers, as_json, lambda a: f"{status_word(a['status']):<10} {a['file']}  " + (a["course_id"] or "") +
           (f"  {file_error(a)}" if a["error"] else "") + (f"\n           {file_warning(a)}" if a.get("warning") else ""))


@click.command("records")
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True))
@click.option("--utc-offset", default=None, help="Offset of treatment times in records that carry none "
              "(TimezoneOffsetFromUTC), e.g. +01:00 [default: the delivering centre's zone (`centre zone`), else "
              "FRACTION_LEDGER_TZ, else Europe/Brussels, with the offset in force on each date].")
@click.option("--deviation-reason", default=None, help="Confirms records whose metersets differ from the plan "
              "beyond tolerance (refused without it): each is recorded as a dose deviation with this reason.")
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def import_records(obj: Context, paths, utc_offset, deviation_reason, as_json) -> None:
    """The pre-outage baseline: RT Beams Treatment and Treatment Summary Records from the OIS."""
    from adapters.dicom import count_files
    from adapters.dicom.baseline import Baseline

    tz = offset_zone(utc_offset) if utc_offset else None
    baseline = Baseline(obj.ledger, obj.actor(), tz, deviation_reason)
    answers = []
    with progress_bar(tr("progress_records"), count_files(paths)) as bar:
        for answer in baseline.import_files(paths, progress=lambda: bar.advance(bar.task_ids[0])):
            answers.append(answer)
    finish(answers, as_json, lambda a: f"{status_word(a['status']):<10} {a['file']}  " + (a.get("course_id") or "") +
           (f"  {file_error(a)}" if a.get("error") else ""))


@click.command("triage")
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def import_triage_list(obj: Context, path, as_json) -> None:
    """The triage list (CSV: patient_id,plan,triage,centre): codes and assigned centres."""
    from adapters.dicom.triage import import_triage

    answers = list(import_triage(obj.ledger, Path(path), obj.actor()))
    finish(answers, as_json, lambda a: tr("triage_line", line=a["line"], status=status_word(a["status"]),
                                          patient_id=a.get("patient_id", ""))
           + (f"  {file_error(a)}" if a.get("error") else ""))


def since_option(text: str | None) -> datetime | None:
    return parse_time(text) if text else None


@click.command("dicom")
@click.option("--out", "out", required=True, type=click.Path(file_okay=False), help="Folder to write into.")
@click.option("--course", "course_id", default=None, help="Only this course.")
@click.option("--since", default=None, help="Only fractions the ledger recorded at or after this time (ISO-8601).")
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def export_dicom(obj: Context, out, course_id, since, as_json) -> None:
    """RT Beams Treatment Records, Treatment Summary Records and the partners' fallback plans."""
    from adapters.dicom.export import export_all

    ledger = obj.ledger
    log_read(obj, "exports", [course_id] if course_id else ledger.fresh().courses())
    counts: Counter = Counter()
    for item in export_all(ledger.app, ledger.fresh(), Path(out), course_id, since_option(since)):
        counts[item.kind] += 1
    result = {"out": str(out), "records": counts["record"], "summaries": counts["summary"], "plans": counts["plan"]}
    emit(result, as_json, tr("dicom_exported", records=shown(result["records"]), summaries=shown(result["summaries"]),
                             plans=shown(result["plans"]), folder=out))


@click.command("dicom")
@click.option("--destination", default="ois", show_default=True,
              help="The destination's name: what it accepted is kept under it (a new host or port keeps it).")
@click.option("--host", required=True)
@click.option("--port", required=True, type=int)
@click.option("--called-aet", required=True, help="AE title of the home OIS's DICOM store.")
@click.option("--calling-aet", default="FRACTIONLEDGER", show_default=True)
@click.option("--course", "course_id", default=None)
@click.option("--since", default=None, help="Only fractions recorded at or after this time (ISO-8601).")
@click.option("--out", default=None, type=click.Path(file_okay=False),
              help="Keep the exported files here [default: a temporary folder].")
@click.option("--limit", type=int, default=None, help="Send at most this many instances now (the rest next time).")
@click.option("--timeout", type=float, default=30, show_default=True, help="Seconds to wait for the peer's answers.")
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def send_dicom(obj: Context, destination, host, port, called_aet, calling_aet, course_id, since, out, limit, timeout,
               as_json) -> None:
    """C-STORE every record not yet accepted by this destination; refusals show their DIMSE status."""
    from adapters.dicom.export import export_all
    from adapters.dicom.send import send_all

    ledger = obj.ledger
    with tempfile.TemporaryDirectory(prefix="fraction-ledger-send-") as tmp:
        folder = Path(out) if out else Path(tmp)
        items = export_all(ledger.app, ledger.fresh(), folder, course_id, since_option(since))
        report = send_all(ledger.app, items, destination, host, port, called_aet, calling_aet, obj.actor(), limit=limit,
                          timeout=timeout)
    result = report.to_dict()
    text = tr("dicom_sent", destination=report.destination, address=report.address, sent=shown(report.sent),
              accepted=shown(report.accepted), refused=shown(len(report.refused)),
              already=shown(report.already_accepted))
    for r in report.refused:
        text += "\n" + tr("dicom_refused", status=r["status"], reason=r["reason"], kind=r["kind"], uid=r["uid"],
                          course_id=r["course_id"])
    if report.error:
        text += "\n" + tr("dicom_stopped", error=report.error)
    emit(result, as_json, text)
    if report.refused or report.error:
        sys.exit(1)


@click.command("status")
@click.option("--destination", "name", default="ois", show_default=True, help="The DICOM destination's name.")
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def send_status(obj: Context, name, as_json) -> None:
    """What a DICOM destination has accepted and refused so far."""
    from adapters.dicom.send import stream_name

    dest = obj.ledger.app.destinations.destination(stream_name(name))
    refused = [{"uid": uid, "status": r["code"], "reason": r["text"], "at": r["at"]}
               for uid, r in sorted((dest.refused if dest else {}).items())]
    result = {"destination": name, "accepted": len(dest.accepted) if dest else 0, "refused": refused}
    text = tr("dicom_status", name=name, accepted=shown(result["accepted"]), refused=shown(len(refused)))
    for r in refused:
        text += "\n" + tr("dicom_refused_at", status=r["status"], reason=r["reason"], uid=r["uid"], at=shown(r["at"]))
    emit(result, as_json, text)


@click.command("listen")
@click.option("--port", type=click.IntRange(0, 65535), default=11112, show_default=True,
              help="TCP port to listen on (0: any free port, shown at start).")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--aet", default="LEDGER", show_default=True, help="The ledger's own AE title.")
@click.option("--allow", "allow", multiple=True, required=True, metavar="AET=CENTRE",
              help="A calling AE title that may store, and its centre (the home centre of courses its plans "
              "register); repeat for each. Any other calling AE title is rejected at association.")
@click.option("--deviation-reason", default=None, help="As for `import records`: confirms records whose metersets "
              "differ from the plan beyond tolerance (refused without it).")
@click.option("--timeout", type=float, default=30, show_default=True, help="Seconds of silence before an association "
              "is dropped.")
@click.option("--json", "as_json", is_flag=True, help="One JSON line per object received.")
@click.pass_obj
def listen(obj: Context, port, host, aet, allow, deviation_reason, timeout, as_json) -> None:
    """DICOM Storage SCP: RT Plans and RT records stored here (C-STORE) are imported as by
    `import plan` / `import records`; Success only once written. Stops on Ctrl-C or SIGTERM."""
    import signal
    import threading

    from adapters.dicom.listen import StorageSCP, parse_allow

    try:
        allowed = parse_allow(allow)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--allow") from None
    obj.ledger.app.outage.check_centres_known(*(("allow", c) for c in allowed.values()))  # not started for a typo

    def show(a: dict) -> None:
        if as_json:
            emit(a, True)
            return
        click.echo(f"{status_word(a.get('status', 'error')):<10} {a['dimse_status']} {a['aet']:<16} {a['kind']} "
                   f"{a['sop_instance_uid']}  {a.get('course_id') or ''}"
                   + (f"  {file_error(a)}" if a.get("error") else "")
                   + (f"  {file_warning(a)}" if a.get("warning") else ""))

    scp = StorageSCP(obj.ledger, allowed, aet=aet, host=host, port=port, user=obj.user,
                     deviation_reason=deviation_reason, on_answer=show, timeout=timeout)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    bound = scp.start()
    names = ", ".join(f"{k} ({v})" for k, v in allowed.items())
    click.echo(tr("dicom_listening", aet=aet, host=host, port=bound, names=names), err=True)
    try:
        while not stop.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        scp.stop()
    counts = Counter(a.get("status", "error") for a in scp.answers)
    click.echo(tr("dicom_listen_stopped", counts=", ".join(f"{shown(n)} {status_word(s)}" for s, n in sorted(counts.items()))
                  or tr("nothing_received")), err=True)


@click.command("pull")
@click.option("--host", required=True, help="The archive (OIS, RT-PACS, Orthanc) to query.")
@click.option("--port", type=click.IntRange(1, 65535), required=True, help="Its DICOM port.")
@click.option("--called-aet", required=True, help="Its AE title.")
@click.option("--aet", default="LEDGER", show_default=True, help="The ledger's own AE title (the archive must "
              "allow it to query and retrieve, C-FIND and C-GET).")
@click.option("--centre", required=True, help="The home centre of courses whose plans the archive holds.")
@click.option("--every", default=None, metavar="DURATION", help="Pull again after this long (e.g. 10m) until "
              "Ctrl-C or SIGTERM; without it, one pass.")
@click.option("--since", default=None, metavar="YYYY-MM-DD", help="Only studies of this date or later.")
@click.option("--deviation-reason", default=None, help="As for `import records`.")
@click.option("--timeout", type=float, default=30, show_default=True, help="Seconds of silence before giving up.")
@click.option("--json", "as_json", is_flag=True, help="One JSON line per pass.")
@click.pass_obj
def pull(obj: Context, host, port, called_aet, aet, centre, every, since, deviation_reason, timeout, as_json) -> None:
    """Query an archive that cannot push (C-FIND) and retrieve (C-GET) the RT Plans and RT records
    the ledger does not hold yet, imported as by `import plan` / `import records`. A pass that
    stopped half way is completed by the next: what the ledger holds is never asked for again."""
    import signal
    import threading
    from datetime import date

    from adapters.dicom.pull import Puller, PullError
    from ledger.receipts import parse_duration

    obj.ledger.app.outage.check_centres_known(("centre", centre))  # not started for a typo

    try:
        interval = parse_duration(every).total_seconds() if every else None
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--every") from None
    try:
        first_day = date.fromisoformat(since) if since else None
    except ValueError:
        raise click.BadParameter(tr("bad_day", text=repr(since)), param_hint="--since") from None
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    failed = False
    while True:
        puller = Puller(obj.ledger, host, port, called_aet, centre, aet=aet, user=obj.user,
                        deviation_reason=deviation_reason, timeout=timeout, since=first_day)
        try:
            result = puller.pass_once()
        except PullError as exc:
            failed = True
            click.echo(tr("pull_failed", error=exc), err=True)
        else:
            failed = bool(result["refused"])
            if as_json:
                emit({k: v for k, v in result.items() if k != "answers"}, True)
            else:
                click.echo(tr("dicom_pulled", aet=called_aet, found=shown(result["found"]), held=shown(result["held"]),
                              imported=shown(result["imported"]), unchanged=shown(result["unchanged"]),
                              refused=shown(len(result["refused"]))))
                for a in result["refused"]:
                    click.echo(tr("dicom_pull_refused", uid=a["sop_instance_uid"], error=a.get("error")))
        if interval is None:
            break
        try:
            if stop.wait(interval):
                break
        except KeyboardInterrupt:
            break
    if failed:
        sys.exit(1)


@click.command("watch")
@click.argument("folder", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--centre", required=True, help="The home centre of courses whose plans arrive here.")
@click.option("--source", default=None, help="The source's name for attribution and freshness "
              "[default: watch:FOLDER-NAME].")
@click.option("--every", default="5s", show_default=True, metavar="DURATION", help="How often to look.")
@click.option("--settle", default="60s", show_default=True, metavar="DURATION",
              help="A file still incomplete and unchanged this long is refused as truncated.")
@click.option("--once", is_flag=True, help="Take every file there now as complete, once, and stop.")
@click.option("--deviation-reason", default=None, help="As for `import records`.")
@click.option("--json", "as_json", is_flag=True, help="One JSON line per file taken.")
@click.pass_obj
def watch(obj: Context, folder, centre, source, every, settle, once, deviation_reason, as_json) -> None:
    """Import each new complete file written to FOLDER once (RT Plans and RT records, as by
    `import plan` / `import records`), then move it to FOLDER/imported/, or to FOLDER/refused/
    with the reason beside it. Stops on Ctrl-C or SIGTERM."""
    import signal
    import threading

    from adapters.dicom.watch import Watcher, summary
    from ledger.receipts import parse_duration

    obj.ledger.app.outage.check_centres_known(("centre", centre))  # not started for a typo

    durations = {}
    for name, value in (("--every", every), ("--settle", settle)):
        try:
            durations[name] = parse_duration(value).total_seconds()
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint=name) from None
    watcher = Watcher(obj.ledger, folder, centre, source=source, user=obj.user, deviation_reason=deviation_reason,
                      settle=durations["--settle"])

    def show(a: dict) -> None:
        if as_json:
            emit(a, True)
        else:
            click.echo(f"{status_word(a.get('status', 'error')):<10} {a['file']}  {a.get('course_id') or ''}"
                       + (f"  {file_error(a)}" if a.get("error") else ""))

    answers: list[dict] = []
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    if not once:
        click.echo(tr("dicom_watching", folder=folder, centre=centre, every=every), err=True)
    try:
        while True:
            for a in watcher.scan(all_complete=once):
                show(a)
                answers.append(a)
            if once or stop.wait(durations["--every"]):
                break
    except KeyboardInterrupt:
        pass
    counts = summary(answers)
    click.echo(", ".join(f"{shown(n)} {status_word(k)}" for k, n in counts.items()), err=True)
    if once and counts["refused"]:
        sys.exit(1)


def register(main: click.Group) -> None:
    imports = group_named(main, "import", "Bring plans, pre-outage records and the triage list into the ledger.")
    for command in (import_plan, import_records, import_triage_list):
        imports.add_command(command)
    group_named(main, "export", "Replay the ledger into files the home systems import.").add_command(export_dicom)
    sends = group_named(main, "send", "Replay the ledger to the home systems over the network.")
    sends.add_command(send_dicom)
    sends.add_command(send_status)
    main.add_command(listen)
    main.add_command(pull)
    main.add_command(watch)
