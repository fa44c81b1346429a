"""Outage commands: the centre registry, capacity, `plan-assignments`, contacts and call lists, sheets.

`centre register|machine|list`, `capacity declare|show`, `plan-assignments`, `contact set|show`,
`calls list|record`, `day-list`, `export sheets`. The rules are in ledger/; see adapters/outage.py.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import click

from adapters.i18n import cli_language, words
from adapters.outage import (
    call_list, call_list_csv, call_list_pdf, home_course_ids, plan_dict, plan_text, today_at,
)
from tools.cli_access import log_read
from tools.cli_common import emit, shown, status_word, tr, tr_n


def parse_machine(text: str) -> dict:
    """NAME=MODEL:TECHNIQUE,TECHNIQUE, e.g. TB2=TrueBeam:static,VMAT,SRS"""
    name, sep, rest = text.partition("=")
    model, sep2, techniques = rest.partition(":")
    if not (sep and sep2 and name and model and techniques):
        raise click.BadParameter(tr("bad_machine", text=repr(text)), param_hint="--machine")
    return {"name": name, "model": model, "techniques": [t.strip() for t in techniques.split(",") if t.strip()]}


def day_option(value: str | None) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(tr("bad_day_option", text=repr(value)), param_hint="--day") from None


# ---- the registry ------------------------------------------------------------------------------


@click.command("register")
@click.argument("code")
@click.option("--name", required=True, help="The centre's name, e.g. 'AZ Partner Radiotherapy'.")
@click.option("--zone", default="Europe/Brussels", show_default=True, help="Its IANA time zone.")
@click.option("--machine", "machines", multiple=True, help="NAME=MODEL:TECHNIQUE,... (static, IMRT, VMAT, SRS, electrons).")
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def centre_register(obj, code, name, zone, machines, as_json) -> None:
    """Register a centre of the network (code, name, zone, machines); again: rename, set machines."""
    result = obj.ledger.app.outage.register_centre(
        {"code": code, "name": name, "zone": zone, "machines": [parse_machine(m) for m in machines]}, obj.actor())
    emit(result, as_json, tr("centre_registered", status=status_word(result["status"]), code=code, name=name, zone=zone))


@click.command("machine")
@click.argument("code")
@click.argument("name")
@click.option("--model", default=None, help="The machine's model, e.g. TrueBeam, Agility, Halcyon.")
@click.option("--technique", "techniques", multiple=True, help="A technique it delivers (repeat).")
@click.option("--remove", is_flag=True, help="Take the machine out of the registry.")
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def centre_machine(obj, code, name, model, techniques, remove, as_json) -> None:
    """Set (or remove) one machine of a registered centre."""
    app = obj.ledger.app
    if remove:
        result = app.outage.remove_machine(code, name, obj.actor())
    else:
        if model is None or not techniques:
            raise click.UsageError(tr("machine_needs_model"))
        result = app.outage.set_machine(code, {"name": name, "model": model, "techniques": list(techniques)}, obj.actor())
    emit(result, as_json, tr("machine_set", status=status_word(result["status"]), name=name, code=code))


@click.command("list")
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def centre_list(obj, as_json) -> None:
    """The registry: every centre with its zone, aliases and machines."""
    centres = obj.ledger.app.outage.centres()
    if as_json:
        emit(centres, True)
        return
    for c in centres:
        click.echo(f"{c['code']:<12} {c['name']:<32} {c['zone'] or '-'}")
        for m in c["machines"]:
            click.echo(f"    {m['name']:<16} {m['model']:<12} {', '.join(m['techniques'])}")
        for a in c["aliases"]:
            click.echo(tr("centre_list_alias", kind=a["kind"], value=a["value"]))


# ---- capacity ------------------------------------------------------------------------------------


@click.group("capacity")
def capacity() -> None:
    """What partners offer during an outage; each declaration or amendment is a new version."""


@capacity.command("declare")
@click.argument("centre")
@click.option("--per-day", type=int, required=True, help="Patients (or slots) a day.")
@click.option("--unit", type=click.Choice(["patients", "slots"]), default="patients", show_default=True)
@click.option("--window", default="07:00-19:00", show_default=True, help="HH:MM-HH:MM in the centre's zone.")
@click.option("--from", "valid_from", required=True, help="First day (YYYY-MM-DD).")
@click.option("--until", "valid_until", default=None, help="Last day (YYYY-MM-DD); open-ended if left out.")
@click.option("--machine", "machines", multiple=True, required=True, help="A machine of the centre it offers (repeat).")
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def capacity_declare(obj, centre, per_day, unit, window, valid_from, valid_until, machines, as_json) -> None:
    """Declare (or amend) what CENTRE offers."""
    start, _, end = window.partition("-")
    result = obj.ledger.app.outage.declare_capacity(
        {"centre": centre, "per_day": per_day, "unit": unit, "window_start": start, "window_end": end,
         "valid_from": valid_from, "valid_until": valid_until, "machines": list(machines)}, obj.actor())
    emit(result, as_json, tr("capacity_declared", status=status_word(result["status"]), centre=centre,
                             version=result["version"]))


@capacity.command("show")
@click.argument("centre")
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def capacity_show(obj, centre, as_json) -> None:
    """Every version CENTRE declared."""
    found = obj.ledger.app.outage.capacity_of(centre)
    versions = [{**v, "valid_from": v["valid_from"].isoformat(),
                 "valid_until": v["valid_until"].isoformat() if v["valid_until"] else None,
                 "at": v["at"].isoformat()} for v in (found.versions if found else [])]
    if as_json:
        emit(versions, True)
        return
    for v in versions:
        values = dict(version=v["version"], start=v["window_start"], end=v["window_end"],
                      valid_from=shown(v["valid_from"]), valid_until=shown(v["valid_until"]) if v["valid_until"] else "",
                      machines=", ".join(v["machines"]), by=v["by"])
        click.echo(tr_n("capacity_line_slots", v["per_day"], **values) if v["unit"] == "slots"
                   else tr_n("capacity_line_patients", v["per_day"], **values))


# ---- the assignment plan -----------------------------------------------------------------------


@click.command("plan-assignments")
@click.option("--capacity-lost", type=click.IntRange(0, 100), default=50, show_default=True,
              help="Share of the home centre's normal capacity lost (%): the triage codes decide who must be treated.")
@click.option("--home", default=None, help="The home centre whose courses are planned [default: --centre].")
@click.option("--day", default=None, help="The day whose capacity declarations apply [default: today in the centre's zone].")
@click.option("--accept", "accept", multiple=True,
              help="Accept proposals: 'all', or a course id (repeat). Without it nothing is assigned.")
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def plan_assignments(obj, capacity_lost, home, day, accept, as_json) -> None:
    """Propose where every course that must still be treated goes; record only what you --accept."""
    ledger = obj.ledger
    home = home or obj.centre
    if home in (None, "", "-"):
        raise click.UsageError(tr("plan_home_needed"))
    day = day_option(day) or today_at(ledger.app, home)
    w = words(cli_language())
    ids = home_course_ids(ledger.fresh(), home)
    # --json is the same in every language (a reason in English, its code in "said"); the lines are the reader's
    plan = plan_dict(ledger.app.outage.plan_assignments(ids, capacity_lost, day), words("en") if as_json else w)
    log_read(obj, "courses.assign", ids)
    if accept:
        chosen = [(p["course"], p["centre"]) for p in plan["proposals"] if "all" in accept or p["course"] in accept]
        unknown = set(accept) - {"all"} - {p["course"] for p in plan["proposals"]}
        if unknown:
            raise click.BadParameter(tr("not_proposed", courses=", ".join(sorted(unknown))), param_hint="--accept")
        result = ledger.app.outage.accept_assignments(ids, chosen, capacity_lost, day, obj.actor(home))
        plan["accepted"] = result["accepted"]
        plan["assigned"] = True
    if as_json:
        emit(plan, True)
        return
    click.echo(plan_text(plan, w))
    if plan["assigned"]:
        click.echo(w.t("plan_accepted", n=len(plan["accepted"])))
    else:
        click.echo(w.t("plan_nothing_assigned"))


# ---- contacts and calls ------------------------------------------------------------------------


@click.group("contact")
def contact() -> None:
    """How to reach a patient (phones, a contact person): kept in the log only, never in the read model."""


@contact.command("set")
@click.argument("course_id")
@click.option("--phone", "phones", multiple=True, required=True, help="A phone number (repeat, at most 4).")
@click.option("--contact-person", default=None, help="FAMILY^GIVEN of a person to call.")
@click.option("--contact-phone", default=None, help="That person's phone.")
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def contact_set(obj, course_id, phones, contact_person, contact_phone, as_json) -> None:
    """Register the contact details of the patient of COURSE_ID."""
    app = obj.ledger.app
    course = app.get_course(course_id)
    result = app.outage.set_contact(course.home_centre, course.patient["id"],
                             {"phones": list(phones), "contact_person": contact_person, "contact_phone": contact_phone},
                             obj.actor())
    emit(result, as_json, tr("contact_set", status=status_word(result["status"]), patient_id=course.patient["id"]))


@contact.command("show")
@click.argument("course_id")
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def contact_show(obj, course_id, as_json) -> None:
    app = obj.ledger.app
    course = app.get_course(course_id)
    log_read(obj, "contacts.read", [course_id])
    found = app.outage.contact(course.home_centre, course.patient["id"])
    details = (found.details if found else None) or {}
    emit(details, as_json, "\n".join([" / ".join(details.get("phones", [])) or "-",
                                      f"{details.get('contact_person') or '-'} {details.get('contact_phone') or ''}"]))


@click.group("calls")
def calls() -> None:
    """Whom to call on a day, and why; what came of each call."""


@calls.command("list")
@click.option("--for-centre", "centre", required=True, help="The centre whose courses (home or assigned) are listed.")
@click.option("--day", default=None, help="YYYY-MM-DD [default: today in the centre's zone].")
@click.option("--csv", "as_csv", is_flag=True)
@click.option("--pdf", "pdf_out", type=click.Path(dir_okay=False, path_type=Path), default=None, help="Write the printable list.")
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def calls_list(obj, centre, day, as_csv, pdf_out, as_json) -> None:
    ledger = obj.ledger
    day = day_option(day) or today_at(ledger.app, centre)
    w = words(cli_language())
    rows = call_list(ledger.app, ledger.fresh(), centre, day, w)
    log_read(obj, "contacts.read", [r["course"] for r in rows])
    if pdf_out is not None:
        pdf_out.write_bytes(call_list_pdf(rows, centre, day, w, ledger.app.clock()))
    if as_json:  # the same in every language: the reasons in English, their codes in "said"
        emit(rows if w.lang == "en" else call_list(ledger.app, ledger.fresh(), centre, day, words("en")), True)
    elif as_csv:
        click.echo(call_list_csv(rows, w), nl=False)
    else:
        for r in rows:
            click.echo(f"{r['patient_id']:<12} {r['name']:<24} {' / '.join(r['phones']) or '-':<28} {'; '.join(r['why'])}")
        if pdf_out is not None:
            click.echo(tr("wrote_list", file=pdf_out))


@calls.command("record")
@click.argument("course_id")
@click.option("--day", required=True, help="The day of the call list (YYYY-MM-DD).")
@click.option("--outcome", type=click.Choice(["called", "not_reached"]), required=True)
@click.option("--note", default="")
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def calls_record(obj, course_id, day, outcome, note, as_json) -> None:
    result = obj.ledger.app.outage.record_call({"course_id": course_id, "day": day, "outcome": outcome, "note": note},
                                        obj.actor())
    said = tr("call_called") if outcome == "called" else tr("call_not_reached")
    emit(result, as_json, tr("call_recorded", outcome=said, course_id=course_id, day=shown(day)))


# ---- the day list ----------------------------------------------------------------------------------


@click.command("day-list")
@click.option("--for-centre", "centre", required=True)
@click.option("--day", default=None, help="YYYY-MM-DD [default: today in the centre's zone].")
@click.option("--pdf", "pdf_out", type=click.Path(dir_okay=False, path_type=Path), default=None, help="Write the printable list.")
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def day_list_command(obj, centre, day, pdf_out, as_json) -> None:
    """A centre's patients on a day: expected (assignments and schedules), delivered, missing."""
    from adapters.outage import day_list, day_list_pdf

    ledger = obj.ledger
    day = day_option(day) or today_at(ledger.app, centre)
    w = words(cli_language())
    rows = day_list(ledger.app, ledger.fresh(), centre, day)
    log_read(obj, "day_list.read", [r["course"] for r in rows])
    if pdf_out is not None:
        pdf_out.write_bytes(day_list_pdf(rows, centre, day, w, ledger.app.clock()))
    if as_json:
        emit(rows, True)
        return
    for r in rows:
        given = ", ".join(str(d["number"]) for d in r["delivered"]) or "-"
        click.echo(f"{w.t('day_status_' + r['status']):<14} {r['patient_id']:<12} {r['name']:<24} {r['plan']:<20} {given}")
    if pdf_out is not None:
        click.echo(tr("wrote_list", file=pdf_out))


# ---- the emergency sheets ------------------------------------------------------------------------


@click.command("sheets")
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path))
@click.option("--dicom", is_flag=True, help="Also write each as a DICOM Encapsulated PDF (for the cloud PACS).")
@click.option("--course", "course_id", default=None, help="Only this course.")
@click.option("--lang", default=None, help="en, nl or fr [default: the CLI's language].")
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def export_sheets(obj, out, dicom, course_id, lang, as_json) -> None:
    """One emergency sheet (PDF) per active course; with --dicom, one Encapsulated PDF per patient too."""
    from adapters.dicom.sheets import write_sheets

    ledger = obj.ledger
    rows = [r for r in ledger.fresh().courses(status="active") if course_id in (None, r["id"])]
    log_read(obj, "exports", rows)
    written = write_sheets(ledger.app, [r["id"] for r in rows], out, words(lang or cli_language()), dicom)
    dicom_text = tr_n("sheets_dicom", len(written["dicom"])) if dicom else ""
    emit(written, as_json, tr_n("sheets_written", len(written["pdf"]), dicom=dicom_text, folder=out))


@click.command("sheets")
@click.argument("folder", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--host", required=True)
@click.option("--port", type=int, required=True)
@click.option("--called-aet", required=True, help="The PACS's AE title.")
@click.option("--aet", "calling_aet", default="LEDGER", show_default=True)
@click.option("--json", "as_json", is_flag=True)
def send_sheets(folder, host, port, called_aet, calling_aet, as_json) -> None:
    """C-STORE the Encapsulated PDFs `export sheets --dicom` wrote (FOLDER/dicom) to the cloud PACS."""
    from adapters.dicom.sheets import store_sheets

    paths = sorted((folder / "dicom").glob("*.dcm")) or sorted(folder.glob("*.dcm"))
    answers = store_sheets(paths, host, port, called_aet, calling_aet)
    stored = sum(1 for a in answers if a["stored"])
    emit(answers, as_json, tr_n("sheets_stored", len(answers), aet=called_aet, host=host, port=port, stored=stored))
    if stored != len(answers):
        raise SystemExit(1)


def register(main: click.Group) -> None:
    centre = main.commands["centre"]
    for command in (centre_register, centre_machine, centre_list):
        centre.add_command(command)
    for command in (capacity, plan_assignments, contact, calls, day_list_command):
        main.add_command(command)
    main.commands["export"].add_command(export_sheets)
    main.commands["send"].add_command(send_sheets)
