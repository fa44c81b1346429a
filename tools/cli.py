"""The `fraction-ledger` command: every capability of the ledger from a terminal or a script.

A refusal exits with status 1 and the reason on stderr; nothing is written then.
`--json` prints machine-readable output on every command that prints, the same in every language.
The lines printed for a person are in the CLI's language (FRACTION_LEDGER_LANG, else the locale):
`tr("key", ...)` of tools/cli_common.py, words in adapters/locale/<lang>/LC_MESSAGES/cli.po.
"""

from __future__ import annotations

import getpass
import importlib.metadata
from decimal import Decimal, InvalidOperation
from typing import Any

import click
import msgspec

from adapters.files import private_umask
from adapters.runtime import local_text
from ledger import errors
from tools.cli_access import log_read
from tools.cli_common import Context, emit, parse_time, refuse, say, shown, status_word, tr, warn_if_no_registry
from tools.cli_help import TranslatedGroup, click_gettext, install_click_words, translating


class LedgerGroup(TranslatedGroup):
    """Turns a ledger refusal into a message on stderr and exit status 1. Its help, and every
    subcommand's, is shown in the CLI's language (tools/cli_help.py)."""

    group_class = TranslatedGroup

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except errors.LedgerError as exc:
            refuse(exc)
        except ValueError as exc:  # configuration (e.g. a --db folder that does not exist)
            refuse(exc)
        except Exception:
            # A stream with an event deleted or mangled cannot be loaded: say what is wrong with the log.
            guard = ctx.obj.log_guard() if isinstance(ctx.obj, Context) else None
            if guard is None or guard.problem is None:
                raise
            refuse(guard.refusal())


def show_version(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    """`--version`, said in the CLI's language when it is asked for (click's own option fixes its words
    when the command is defined)."""
    if not value or ctx.resilient_parsing:
        return
    click.echo(click_gettext("%(prog)s, version %(version)s") % {
        "prog": ctx.find_root().info_name, "version": importlib.metadata.version("fraction-ledger")})
    ctx.exit()


@click.group(cls=LedgerGroup)
@click.option("--db", envvar="FRACTION_LEDGER_DB", help="SQLite file or postgresql:// URL [default: ./fraction-ledger.sqlite3]")
@click.option("--user", envvar="FRACTION_LEDGER_USER", default=lambda: getpass.getuser(), show_default="login name",
              help="Who is acting (recorded on every event).")
@click.option("--centre", "actor_centre", envvar="FRACTION_LEDGER_CENTRE", default="-",
              help="The centre acting, where a command does not name one.")
@click.option("--cipher-key-file", envvar="FRACTION_LEDGER_CIPHER_KEY_FILE", default=None,
              help="Encryption at rest: the AES key file (`keygen-cipher`); or the key in FRACTION_LEDGER_CIPHER_KEY.")
@click.option("--version", is_flag=True, expose_value=False, is_eager=True, callback=show_version,
              help="Show the version and exit.")
@click.pass_context
def main(ctx: click.Context, db: str | None, user: str, actor_centre: str, cipher_key_file: str | None) -> None:
    """fraction-ledger: the append-only ledger of radiotherapy fractions during an IT outage."""
    private_umask()  # every file it writes (log, exports, bundles, reports, keys) is the owner's only
    ctx.obj = Context(db, user, actor_centre, cipher_key_file)
    ctx.call_on_close(ctx.obj.close)


# ---- parsing helpers -----------------------------------------------------------------------


def parse_planned_beam(text: str) -> dict:
    """NUMBER=MU, e.g. 1=120.5"""
    number, sep, mu = text.partition("=")
    try:
        if not sep:
            raise ValueError
        return {"number": int(number), "meterset": str(Decimal(mu))}
    except (ValueError, InvalidOperation):
        raise click.BadParameter(tr("bad_planned_beam", text=repr(text)), param_hint="--beam") from None


def parse_delivered_beam(text: str) -> dict:
    """NUMBER=MU[:STATUS], e.g. 2=80:MACHINE"""
    head, _, status = text.partition(":")
    number, sep, mu = head.partition("=")
    try:
        if not sep:
            raise ValueError
        beam = {"number": int(number), "delivered_mu": str(Decimal(mu))}
    except (ValueError, InvalidOperation):
        raise click.BadParameter(tr("bad_delivered_beam", text=repr(text)), param_hint="--beam") from None
    if status:
        beam["termination"] = status.upper()
    return beam


# ---- course --------------------------------------------------------------------------------


@main.group()
def course() -> None:
    """Courses: register, list, show, assign, lifecycle."""


@course.command("register")
@click.option("--patient-id", required=True)
@click.option("--patient-name", required=True, help="DICOM style: FAMILY^GIVEN")
@click.option("--birth-date", type=click.DateTime(["%Y-%m-%d"]), default=None)
@click.option("--sex", type=click.Choice(["M", "F", "O"]), default=None)
@click.option("--plan-uid", required=True)
@click.option("--plan-label", required=True)
@click.option("--fractions", type=int, required=True, help="Fractions planned (one fraction group).")
@click.option("--home-centre", required=True)
@click.option("--machine", default="", help="Treatment machine the plan was made for.")
@click.option("--beam", "beams", multiple=True, help="NUMBER=MU per fraction; repeat per beam.")
@click.option("--triage", type=int, default=None, help="Triage code 1 (urgent) .. 5.")
@click.option("--assign", "assigned", multiple=True, help="Centre the course is assigned to; repeatable.")
@click.option("--dose", default=None, help="Prescribed dose per fraction in Gy.")
@click.option("--start", default=None, help="First treatment day, YYYY-MM-DD [default: the first fraction's day].")
@click.option("--weekdays", default=None, help="ISO weekdays treated, e.g. 1,2,3,4,5 [default: Monday to Friday].")
@click.option("--site", default=None, help="Treatment site: gives the gap category's default (README 'Treatment gaps').")
@click.option("--technique", type=click.Choice(["static", "IMRT", "VMAT", "SRS", "electrons"]), default=None,
              help="The technique the plan needs (else read from its beams): where it can be treated.")
@click.option("--request-id", default=None)
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def course_register(obj: Context, patient_id, patient_name, birth_date, sex, plan_uid, plan_label, fractions,
                    home_centre, machine, beams, triage, assigned, dose, start, weekdays, site, technique,
                    request_id, as_json) -> None:
    """Register a course (registering the same course again changes nothing)."""
    data = {
        "patient": {"id": patient_id, "name": patient_name, "sex": sex,
                    "birth_date": birth_date.date() if birth_date else None},
        "home_centre": home_centre,
        "plan": {
            "uid": plan_uid, "label": plan_label, "machine": machine, "centre": home_centre,
            "fraction_groups": [{"number": 1, "fractions_planned": fractions, "dose_gy": dose,
                                 "beams": [parse_planned_beam(b) | {"machine": machine} for b in beams]}],
            **({"source": {"technique": technique}} if technique else {}),
        },
        "triage": triage,
        "assigned_centres": list(assigned),
    }
    if start is not None or weekdays is not None:
        from tools.cli_gaps import weekdays_of

        data["schedule"] = {"start": start, **({"weekdays": weekdays_of(weekdays)} if weekdays else {})}
    if site is not None:
        data["site"] = site
    result = obj.ledger.app.register_course(data, obj.actor(home_centre), request_id=request_id)
    warn_if_no_registry(obj.ledger.app, home_centre, *data.get("assigned_centres", ()))
    emit(result, as_json, tr("course_registered", status=status_word(result["status"]), id=result["id"]))


@course.command("list")
@click.option("--for-centre", "for_centre", default=None, help="Only courses this centre may see.")
@click.option("--status", type=click.Choice(["active", "suspended", "completed"]), default=None)
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def course_list(obj: Context, for_centre, status, as_json) -> None:
    """List courses."""
    rows = obj.ledger.fresh().courses(centre=for_centre, status=status)
    log_read(obj, "courses.list", rows)
    if as_json:
        emit(rows, True)
        return
    for c in rows:
        click.echo(tr("course_line", id=c["id"], patient_id=c["patient_id"], patient_name=c["patient_name"],
                      plan_label=c["plan_label"], delivered=c["fractions_delivered"], planned=c["fractions_planned"],
                      status=status_word(c["status"]), triage=c["triage"] or "-", home=c["home_centre"]))


@course.command("show")
@click.argument("course_id")
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def course_show(obj: Context, course_id, as_json) -> None:
    """A course with its whole fraction history across centres."""
    c = obj.ledger.fresh().course(course_id)
    if c is None:
        raise errors.CourseNotFound("course_not_found.no_course_with_id", course_id=course_id)
    log_read(obj, "courses.read", [c])
    from adapters.chain import head_hash

    c["log_head"] = head_hash(obj.ledger.app)  # printed, it anchors the log (`verify --head`)
    if as_json:
        from tools.cli_gaps import gap_of_course

        emit({**c, "gap": gap_of_course(obj, course_id)}, True)
        return
    click.echo(tr("course_head", id=c["id"], patient_id=c["patient_id"], patient_name=c["patient_name"],
                  home=c["home_centre"]))
    click.echo(tr("course_plan", label=c["plan_label"], uid=c["plan_uid"], status=status_word(c["status"]),
                  triage=c["triage"] or "-", assigned=", ".join(c["assigned_centres"]) or "-"))
    course = obj.ledger.app.get_course(course_id)
    for plan in course.plans[1:]:
        starts = ", ".join(tr("replan_group_from", group=g, number=n)
                           for g, n in course.plan_starts.get(plan.uid, {}).items())
        waits = tr("replan_awaits_approval") if plan.uid in course.awaiting_approval else ""
        click.echo(tr("replan_line", label=plan.label, uid=plan.uid, centre=plan.centre or "-",
                      starts=starts or tr("replan_from_first"), waits=waits))
    for centre, pid in course.patient_ids.items():
        click.echo(tr("patient_known_at", centre=centre, patient_id=pid))
    click.echo(tr("course_fractions", delivered=c["fractions_delivered"], planned=c["fractions_planned"],
                  awaiting=c["awaiting_verification"]))
    from tools.cli_gaps import show_prescription

    show_prescription(obj, course)
    own = {r.record_id: r.plan_number for r in course.records if r.plan_number}
    for f in c["fractions"]:
        flags = tr("fraction_voided", reason=f["void_reason"] or "") if f["voided"] else ""
        check = tr("verified_by", by=f["verified_by"]) if f["verified_by"] else tr("not_verified")
        replan = tr("replans_number", number=own[f["record_id"]]) if f["record_id"] in own else ""
        mu = " ".join(f"{b['number']}:{shown(b['delivered_mu'])}" for b in f["beams"])
        click.echo(tr("fraction_line", number=f["number"], at=shown(f["delivered_at"]), centre=f["centre"],
                      machine=f["machine"], type=f["delivery_type"], mu=mu, operator=f["operator"], check=check,
                      flags=flags, replan=replan))
        for w in f["warnings"]:
            click.echo(tr("fraction_warning", warning=say(w)))
    for i in c.get("incidents", []):
        click.echo(tr("course_incident", at=local_text(i["registered_at"]), category=i["category"],
                      severity=i["severity"], status=status_word(i["status"]), centre=i["centre"],
                      description=i["description"]))
    for flag in c.get("flags") or []:
        click.echo(tr("course_flagged", at=local_text(flag["at"]), kind=flag["kind"], reason=say(flag["reason"])))
    click.echo(tr("course_log_head", head=c["log_head"]))


def course_change(name: str, method: str, doc: str, reason: bool = False):
    @click.argument("course_id")
    @click.option("--request-id", default=None)
    @click.option("--json", "as_json", is_flag=True)
    @click.pass_obj
    def command(obj: Context, course_id, request_id, as_json, **kw) -> None:
        result = getattr(obj.ledger.app, method)(course_id, *kw.values(), obj.actor(), request_id=request_id)
        emit(result, as_json, tr("course_status", id=result["id"], status=status_word(result["status"])))

    command.__doc__ = doc
    if reason:
        command = click.option("--reason", default="", help="Why (recorded).")(command)
    return course.command(name)(command)


course_change("suspend", "suspend_course", "Suspend a course: no fraction is accepted until it resumes.", reason=True)
course_change("resume", "resume_course", "Resume a suspended course.")
course_change("complete", "complete_course", "Complete a course: no further fraction is accepted.", reason=True)


@course.command("assign")
@click.argument("course_id")
@click.option("--centre", required=True)
@click.option("--remove", is_flag=True, help="Take the assignment away instead.")
@click.option("--request-id", default=None)
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def course_assign(obj: Context, course_id, centre, remove, request_id, as_json) -> None:
    """Assign a course to a (partner) centre."""
    app = obj.ledger.app
    change = app.unassign_centre if remove else app.assign_centre
    result = change(course_id, centre, obj.actor(), request_id=request_id)
    warn_if_no_registry(app, centre)
    emit(result, as_json, (tr("course_unassigned", id=result["id"], centre=centre) if remove
                           else tr("course_assigned", id=result["id"], centre=centre))
         + ("" if result["changed"] else tr("already_so")))


@course.command("identity")
@click.argument("course_id")
@click.option("--centre", required=True, help="The centre that knows the patient under another id.")
@click.option("--patient-id", required=True, help="That centre's id of the patient.")
@click.option("--name", required=True, help="The patient's name as that centre has it (FAMILY^GIVEN): checked.")
@click.option("--birth-date", required=True, help="YYYY-MM-DD, as that centre has it: checked.")
@click.option("--request-id", default=None)
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def course_identity(obj: Context, course_id, centre, patient_id, name, birth_date, request_id, as_json) -> None:
    """Map a partner's patient id to this course, once name and birth date match (its records then import)."""
    result = obj.ledger.app.map_patient_id(course_id, centre, patient_id, name, birth_date, obj.actor(),
                                           request_id=request_id)
    said = {"centre": centre, "course_id": course_id, "patient_id": patient_id}
    emit(result, as_json, tr("identity_mapped", **said) if result["changed"] else tr("identity_unchanged", **said))


@course.command("triage")
@click.argument("course_id")
@click.option("--code", type=int, required=True, help="1 (urgent) .. 5 (alternatives available)")
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def course_triage(obj: Context, course_id, code, as_json) -> None:
    """Set a course's triage code."""
    result = obj.ledger.app.set_triage(course_id, code, obj.actor())
    emit(result, as_json, tr("course_triage", id=result["id"], code=code))


@course.command("approve-plan")
@click.argument("course_id")
@click.option("--plan-uid", required=True, help="The fallback plan that waits for approval.")
@click.option("--request-id", default=None)
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def course_approve_plan(obj: Context, course_id, plan_uid, request_id, as_json) -> None:
    """Approve a partner's re-plan that departs from the prescription (a physicist of the home centre: --centre)."""
    result = obj.ledger.app.approve_fallback_plan(course_id, plan_uid, obj.actor(), request_id=request_id)
    emit(result, as_json, tr("plan_approved", id=result["id"], plan_uid=plan_uid) if result["changed"]
         else tr("plan_needs_no_approval", id=result["id"], plan_uid=plan_uid))


# ---- fraction ------------------------------------------------------------------------------


@main.group()
def fraction() -> None:
    """Fractions: log, verify, void."""


@fraction.command("log")
@click.argument("course_id")
@click.option("--number", type=int, required=True)
@click.option("--group", type=int, default=None, help="Fraction group (needed when the plan has several).")
@click.option("--centre", required=True, help="Centre where it was delivered.")
@click.option("--machine", required=True)
@click.option("--operator", required=True)
@click.option("--at", "at", required=True, help="Delivered at, ISO-8601 with offset.")
@click.option("--plan-uid", default=None, help="Plan used [default: the centre's fallback plan, else the original].")
@click.option("--beam", "beams", multiple=True, help="NUMBER=MU[:STATUS] as delivered; repeat per beam. "
              "Without --beam every planned beam is taken as delivered in full (NORMAL).")
@click.option("--type", "delivery_type", type=click.Choice(["TREATMENT", "CONTINUATION"]), default="TREATMENT")
@click.option("--note", default="")
@click.option("--deviation-reason", default=None,
              help="Confirms metersets beyond tolerance (2%, at least 1 MU): recorded as a dose deviation.")
@click.option("--request-id", default=None, help="Retrying with the same id writes nothing new.")
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def fraction_log(obj: Context, course_id, number, group, centre, machine, operator, at, plan_uid, beams,
                 delivery_type, note, deviation_reason, request_id, as_json) -> None:
    """Log a delivered fraction (or a continuation of an interrupted one)."""
    data = {
        "number": number, "group": group, "centre": centre, "machine": machine, "operator": operator,
        "delivered_at": parse_time(at), "plan_uid": plan_uid, "delivery_type": delivery_type, "note": note,
        "beams": [parse_delivered_beam(b) for b in beams] if beams else None, "deviation_reason": deviation_reason,
    }
    record = obj.ledger.app.log_fraction(course_id, data, obj.actor(centre), request_id=request_id)
    warn_if_no_registry(obj.ledger.app, centre)
    text = tr("fraction_accepted", number=record["number"], centre=record["centre"], record_id=record["record_id"])
    for w in record["warnings"]:
        text += "\n" + tr("warning", warning=say(w))
    emit(record, as_json, text)


@fraction.command("verify")
@click.argument("course_id")
@click.option("--number", type=int, required=True)
@click.option("--group", type=int, default=None)
@click.option("--by", required=True, help="The second person (never the operator).")
@click.option("--request-id", default=None)
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def fraction_verify(obj: Context, course_id, number, group, by, request_id, as_json) -> None:
    """Double-check a fraction."""
    records = obj.ledger.app.verify_fraction(course_id, number, by, obj.actor(), group=group, request_id=request_id)
    emit(records, as_json, tr("fraction_verified", number=number, by=by))


@fraction.command("void")
@click.argument("course_id")
@click.option("--number", type=int, required=True)
@click.option("--group", type=int, default=None)
@click.option("--reason", required=True)
@click.option("--by", required=True)
@click.option("--request-id", default=None)
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def fraction_void(obj: Context, course_id, number, group, reason, by, request_id, as_json) -> None:
    """Void a fraction record (it stays in the log, marked void with the reason)."""
    records = obj.ledger.app.void_fraction(course_id, number, reason, by, obj.actor(), group=group, request_id=request_id)
    emit(records, as_json, tr("fraction_voided_done", number=number, reason=reason))


# ---- log and read models -----------------------------------------------------------------


@main.command("events")
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def events(obj: Context, as_json) -> None:
    """The whole event log, in order."""
    from adapters.readmodel import iter_events

    log_read(obj, "events.read", obj.ledger.fresh().courses())  # the whole log: every course
    items = iter_events(obj.ledger.app)
    if as_json:
        # Stream a JSON array so that memory stays flat on a long log.
        click.echo("[", nl=False)
        for i, item in enumerate(items):
            click.echo(("," if i else "") + msgspec.json.encode(item).decode(), nl=False)
        click.echo("]")
        return
    for item in items:
        click.echo(tr("event_line", position=item["position"], at=shown(item["timestamp"].isoformat(timespec="seconds")),
                      type=item["type"], stream=item["stream"]))


@main.command("rebuild")
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def rebuild(obj: Context, as_json) -> None:
    """Drop the read models and rebuild them from the event log."""
    n = obj.ledger.read.rebuild(obj.ledger.app)
    emit({"events": n}, as_json, tr("rebuilt", events=shown(n)))


@main.group("samples")
def samples() -> None:
    """Sample files to rehearse with (made here, deterministic for a given clock)."""


@samples.command("partner-returns")
@click.argument("out", type=click.Path(file_okay=False))
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def samples_partner_returns(obj: Context, out, as_json) -> None:
    """A 35-fraction course, the home OIS's records of 1-10, a partner's re-plan of the remaining 25 and
    the records its OIS writes (its patient id, its numbering 1..25, a file per beam, no UTC offset)."""
    from pathlib import Path

    from tools.partner_samples import default_days, write_samples

    paths = write_samples(Path(out), *default_days(obj.ledger.app.clock()))
    shown = {k: str(v) for k, v in paths.items()}
    emit(shown, as_json, "\n".join(f"{k:<16} {v}" for k, v in shown.items()))


@main.command("demo")
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def demo(obj: Context, as_json) -> None:
    """Register a sample course and log fractions at home and at a partner, showing a refusal."""
    from tools.demo import run_demo

    run_demo(obj.ledger, echo=(lambda s: None) if as_json else click.echo)
    if as_json:
        emit(obj.ledger.fresh().courses(), True)


@main.group("bench")
def bench() -> None:
    """Benchmarks: each prints its figures next to a baseline measured in the same run."""


@bench.command("core")
@click.option("--fractions", "n", type=int, default=2000, show_default=True)
@click.option("--clients", type=click.IntRange(1, 256), default=1, show_default=True,
              help="Threads logging at once, each on its own courses (their saves are group-committed).")
@click.option("--rounds", type=click.IntRange(1, 20), default=3, show_default=True)
@click.option("--backend", type=click.Choice(["sqlite", "postgres"]), default="sqlite", show_default=True,
              help="postgres: a PostgreSQL server the bench starts on 127.0.0.1 (fsync on) and stops.")
@click.option("--compare", is_flag=True,
              help="Also the ledger without its aggregate cache and with one save per transaction.")
@click.option("--json", "as_json", is_flag=True)
def bench_core(n, clients, rounds, backend, compare, as_json) -> None:
    """Fractions logged per second, durable, next to bare eventsourcing appends."""
    from tools.bench import run_bench

    run_bench(n, as_json, rounds=rounds, clients=clients, backend=backend, compare=compare)


def lazy_benchmark(name: str, module: str, doc: str) -> None:
    """A benchmark whose module (and its heavy imports) loads only when it runs."""

    @bench.command(name, context_settings={"ignore_unknown_options": True, "allow_extra_args": True,
                                           "help_option_names": []}, help=doc)
    @click.pass_context
    def command(ctx: click.Context) -> None:
        import importlib

        translating(importlib.import_module(module).main).main(args=ctx.args, prog_name=f"fraction-ledger bench {name}")

    bench.commands[name].lazy_module = module  # its help texts (tests/test_cli_help_language.py)


lazy_benchmark("hl7", "tools.bench_hl7", "HL7 export rate next to hl7apy per-message build+validate (--help for options).")
lazy_benchmark("trust", "tools.bench_trust", "What the hash chain and encryption at rest cost per append; verify speed.")
lazy_benchmark("http", "tools.bench_http", "Fractions over HTTP with concurrent clients next to in-process (--help for options).")
lazy_benchmark("billing", "tools.bench_billing", "Settlement statement from tables next to loading every split (--help for options).")
lazy_benchmark("dicom", "tools.bench_dicom", "DICOM record export rate and memory; import memory at two sizes (--help for options).")
lazy_benchmark("listen", "tools.bench_listen", "DICOM records received per second (1 and 4 associations) next to storescp; lag to the course.")
lazy_benchmark("start", "tools.bench_start", "Opening a ledger ready to serve: incremental hash-chain check next to a full one.")
lazy_benchmark("readmodel", "tools.bench_readmodel", "Read-model rebuild next to the raw read rate; catch-up after one event; encrypted start.")
lazy_benchmark("gaps", "tools.bench_gaps", "The gaps worklist of N active courses from the read model (--help for options).")
lazy_benchmark("recovery", "tools.bench_recovery", "Reconcile a year of a network against an OIS missing 5% of its records: time, memory, growth.")
lazy_benchmark("lists", "tools.bench_lists", "The worklist, /api/courses, incidents and statement at N courses over a real server: time, memory.")
lazy_benchmark("reconcile-read", "tools.bench_reconcile_read", "The reconciliation's OIS file rate next to pydicom.dcmread of the same files, in turns.")


def register_areas() -> None:
    """Each area's commands live in their own module; their `register` adds them here."""
    import importlib

    for area in ("cli_hl7", "cli_serve", "cli_trust", "cli_billing", "cli_dicom", "cli_recovery", "cli_access",
                 "cli_gaps", "cli_outage", "drill"):
        importlib.import_module(f"tools.{area}").register(main)


register_areas()
translating(main)  # main's own options, and any command an area put in place without add_command
install_click_words()

if __name__ == "__main__":
    main()
