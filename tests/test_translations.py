"""Every sentence a user reads exists in English, Dutch and French (gettext catalogs, Babel).

The ledger stores and raises message codes with values (ledger/messages.py); the edge renders
them in the reader's language (adapters/i18n.py). These tests fail when a message lacks a
translation, when a translation loses or invents a placeholder, and when code raises or stores
a sentence that is not a known message code."""

from __future__ import annotations

import ast
import string
from decimal import Decimal
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir

from adapters.i18n import LANGUAGES, Words, catalog_of
from ledger import errors
from ledger.messages import PLURALS, TEXTS, english, said

ROOT = Path(__file__).resolve().parent.parent
ERROR_CLASSES = {name for name in dir(errors) if isinstance(getattr(errors, name), type)
                 and issubclass(getattr(errors, name), errors.LedgerError)}
# A file the importers refuse (adapters.dicom.BadFile) is said with a code too.
ERROR_CLASSES.add("BadFile")


def placeholders(text: str) -> list[str]:
    return sorted(name for _, name, _, _ in string.Formatter().parse(text) if name)


def extracted_messages() -> list[str | tuple[str, str]]:
    """What Babel extracts from the ledger's code with the keywords README 'Translations' gives."""
    found = extract_from_dir(str(ROOT / "ledger"), method_map=[("**.py", "python")],
                             keywords={"N_": None, "Np_": (1, 2)})
    return [message for _, _, message, _, _ in found]


def test_babel_extracts_every_message_of_the_ledger():
    extracted = extracted_messages()
    singular = {m for m in extracted if isinstance(m, str)}
    plural = {m for m in extracted if isinstance(m, tuple)}
    assert set(TEXTS.values()) <= singular
    assert {(s, p) for s, p, _ in PLURALS.values()} <= plural
    assert len(extracted) >= 150


@pytest.mark.parametrize("lang", [lang for lang in LANGUAGES if lang != "en"])
def test_every_message_is_translated_with_the_same_placeholders(lang):
    translated = {m.id: m for m in catalog_of(lang, "messages") if m.id}
    for message in extracted_messages():
        entry = translated.get(message)
        assert entry is not None, (lang, "missing", message)
        assert not entry.fuzzy, (lang, "fuzzy", message)
        sources = message if isinstance(message, tuple) else (message,)
        strings = entry.string if isinstance(entry.string, tuple) else (entry.string,)
        assert all(strings), (lang, "empty", message)
        for text in strings:
            assert placeholders(text) == placeholders(sources[-1]), (lang, message, text)


def code_arguments(tree: ast.AST):
    """(line, node) of every message code given to a refusal or to `said`/`check_active`/`check_open`."""
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        f = node.func
        name = f.attr if isinstance(f, ast.Attribute) else getattr(f, "id", None)
        if name in ERROR_CLASSES and name != "LogCompromised":
            index = 1 if name == "InvalidCommand" else 0
        elif name in ("said", "check_active", "check_open"):
            index = 0
        else:
            continue
        if len(node.args) > index:
            yield node.lineno, node.args[index]


def test_refusals_and_stored_messages_are_codes_never_prose():
    known = set(TEXTS) | set(PLURALS)
    prefixes = {code.split(".")[0] + "." for code in known}
    problems = []
    for path in [*ROOT.glob("ledger/*.py"), *ROOT.glob("adapters/**/*.py"), *ROOT.glob("tools/*.py")]:
        for line, arg in code_arguments(ast.parse(path.read_text(encoding="utf-8"))):
            where = f"{path.relative_to(ROOT)}:{line}"
            if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                if arg.value not in known:
                    problems.append((where, arg.value))
            elif isinstance(arg, ast.JoinedStr):  # f"status.{...}": a family of codes
                head = arg.values[0]
                if not (isinstance(head, ast.Constant) and head.value in prefixes):
                    problems.append((where, ast.unparse(arg)))
    assert problems == []


def test_a_french_rtt_reads_ne_pas_traiter_and_a_dutch_one_niet_behandelen():
    refusal = errors.FractionOutOfRange(
        "fraction_out_of_range.fraction_outside_prescription_course", number=26, course="BREAST",
        patient_id="P1", fractions_planned=25, number2=1, delivered=25)
    assert "Do not treat" in refusal.message  # the source text, what programs and logs read
    assert "Ne pas traiter" in Words("fr").say(refusal)
    assert "Niet behandelen" in Words("nl").say(refusal)
    assert "Do not treat" not in Words("fr").say(refusal) + Words("nl").say(refusal)


def test_nested_messages_plural_forms_numbers_dates_and_money_per_locale():
    one = said("warning.earlier_not_recorded", n=1, numbers="3")
    many = said("warning.earlier_not_recorded", n=2, numbers="3, 4")
    assert english(one) == "An earlier fraction is not recorded: 3."
    assert english(many) == "Earlier fractions are not recorded: 3, 4."
    assert Words("nl").say(one) != Words("nl").say(many)
    where = said("warning.short_interval", hours=6, number=1, record=said(
        "record.where", centre="PARTNER", machine="TB2", at="2026-03-29T09:30+02:00", operator="rtt.b"))
    assert "29/03/2026" in Words("fr").say(where) and "09:30" in Words("fr").say(where)  # in its own offset
    assert "29/03/2026" in Words("nl").say(where) or "29-03-2026" in Words("nl").say(where)
    assert Words("nl").money(Decimal("2100")) == "2.100,00"
    assert Words("fr").money(Decimal("2100.5")).replace("\u202f", " ").replace("\xa0", " ") == "2 100,50"
    assert Words("en").money(Decimal("2100")) == "2,100.00"
    assert Words("fr").number(Decimal("116.0036697")) == "116,0036697"


def test_page_words_are_extracted_from_templates_and_code_and_exist_in_every_language():
    keys = set()
    for _, _, message, _, _ in extract_from_dir(
            str(ROOT / "adapters" / "http"), keywords={"t": None},
            method_map=[("templates/**.html", "jinja2.ext:babel_extract"), ("**.py", "python")]):
        keys.add(message)
    keys = {k for k in keys if not k.endswith("_")}  # a prefix completed at run time (tests/test_http_i18n.py)
    assert len(keys) > 100
    for lang in LANGUAGES:
        have = {m.id for m in catalog_of(lang, "pages") if m.id and m.string}
        assert sorted(keys - have) == [], lang


# ---- the command line's words and the printable reports' words (domains `cli` and `reports`) -------

# The modules whose printed lines go through `tr` (tools/cli_common.py). The drill (domain `drill`)
# and the benchmarks print on their own.
CLI_MODULES = ["cli.py", "cli_access.py", "cli_billing.py", "cli_common.py", "cli_dicom.py", "cli_gaps.py", "cli_hl7.py",
               "cli_outage.py", "demo.py",
               "cli_recovery.py", "cli_serve.py", "cli_trust.py"]


def extracted_keys(paths: list[Path], keywords: dict) -> dict[str, list[str]]:
    """key -> where, as Babel extracts them (Python, or the report template with Jinja's extractor)."""
    from babel.messages.extract import extract_from_file

    found: dict[str, list[str]] = {}
    for path in paths:
        method = "jinja2.ext:babel_extract" if path.suffix == ".html" else "python"
        for line, message, _, _ in extract_from_file(method, str(path), keywords=keywords):
            key = message if isinstance(message, str) else message[0]
            found.setdefault(key, []).append(f"{path.relative_to(ROOT)}:{line}")
    return found


def cli_keys() -> dict[str, list[str]]:
    from tools.cli_common import STATUS_WORDS

    keys = extracted_keys([ROOT / "tools" / name for name in CLI_MODULES], {"tr": None, "tr_n": (1,)})
    keys.update({f"status_{s}": ["tools/cli_common.py STATUS_WORDS"] for s in STATUS_WORDS})
    return keys


def report_keys() -> dict[str, list[str]]:
    keys = extracted_keys([ROOT / "adapters" / "hl7" / "pdf.py"], {"r": None, "report": None})
    keys.update(extracted_keys([ROOT / "adapters" / "http" / "api_recovery.py"], {"report": None}))
    keys.update(extracted_keys([ROOT / "adapters" / "templates" / "reconcile.html"], {"t": None}))
    keys.update({f"pdf_status_{s}": ["adapters/hl7/pdf.py"] for s in ("active", "suspended", "completed")})
    return keys


@pytest.mark.parametrize("domain,keys", [("cli", cli_keys), ("reports", report_keys)])
def test_every_cli_and_report_text_exists_in_every_language_with_the_same_placeholders(domain, keys):
    wanted = keys()
    assert len(wanted) > (100 if domain == "cli" else 60)
    def key_of(m):
        return m.id[0] if isinstance(m.id, tuple) else m.id

    english = {key_of(m): m.string for m in catalog_of("en", domain) if m.id}
    for lang in LANGUAGES:
        have = {key_of(m): m for m in catalog_of(lang, domain) if m.id}
        missing = sorted((key, where[0]) for key, where in wanted.items() if key not in have or not have[key].string)
        assert missing == [], (lang, domain, "missing")
        assert [k for k in wanted if have[k].fuzzy] == [], (lang, domain, "fuzzy")
        for key in wanted:
            source = english[key][-1] if isinstance(english[key], tuple) else english[key]
            for text in have[key].string if isinstance(have[key].string, tuple) else (have[key].string,):
                assert text and placeholders(text) == placeholders(source), (lang, key, text)


def prose_pieces(node: ast.AST):
    """The literal text of a string, an f-string or a concatenation of them."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        yield node.value
    elif isinstance(node, ast.JoinedStr):
        for part in node.values:
            yield from prose_pieces(part)
    elif isinstance(node, ast.BinOp):
        yield from prose_pieces(node.left)
        yield from prose_pieces(node.right)
    elif isinstance(node, ast.IfExp):
        yield from prose_pieces(node.body)
        yield from prose_pieces(node.orelse)


def test_the_command_line_prints_no_english_sentence_of_its_own():
    """What a command prints for a person (echo, the text of emit, a bad-option message) is a `tr`
    key, never English written in the code: a word of three letters or more in a literal fails."""
    import re

    problems = []
    for name in CLI_MODULES:
        path = ROOT / "tools" / name
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.Call):
                continue
            f = node.func
            called = f.attr if isinstance(f, ast.Attribute) else getattr(f, "id", None)
            if called == "echo" or called in ("BadParameter", "UsageError", "ClickException", "ValueError"):
                texts = node.args[:1]
            elif called == "emit":
                texts = node.args[2:3]
            else:
                continue
            for text in texts:
                for piece in prose_pieces(text):
                    if re.search(r"[A-Za-z]{3,}", piece):
                        problems.append((f"tools/{name}:{node.lineno}", piece))
    assert problems == []


def test_the_command_line_speaks_french_and_dutch_and_its_json_stays_the_same(tmp_path):
    from tests.conftest import cli

    db = tmp_path / "ledger.sqlite3"
    fr, nl = {"FRACTION_LEDGER_LANG": "fr"}, {"FRACTION_LEDGER_LANG": "nl", "LANG": "fr_BE.UTF-8"}
    made = cli("course", "register", "--patient-id", "P-1", "--patient-name", "PEETERS^AN",
               "--plan-uid", "1.2.826.0.1.3680043.10.9", "--plan-label", "Breast", "--fractions", "15",
               "--home-centre", "HOME", "--beam", "1=110.5", db=db, env=fr, check=True)
    assert made.stdout.startswith("enregistré : traitement ")
    cid = made.stdout.split()[-1]
    logged = cli("fraction", "log", cid, "--number", "1", "--centre", "HOME", "--machine", "L1", "--operator", "rtt.a",
                 "--at", "2026-11-02T09:00:00+01:00", db=db, env=nl, check=True)
    assert logged.stdout.startswith("aanvaard: fractie 1 in HOME")  # FRACTION_LEDGER_LANG before LANG

    shown_fr = cli("course", "show", cid, db=db, env=fr, check=True).stdout
    assert "Traitement " + cid in shown_fr and "centre d'origine HOME" in shown_fr
    assert "2/11/2026 09:00" in shown_fr and "NON VÉRIFIÉE" in shown_fr and "tête du journal" in shown_fr
    assert "Course" not in shown_fr and "NOT VERIFIED" not in shown_fr
    shown_nl = cli("course", "show", cid, db=db, env=nl, check=True).stdout
    assert "Behandelreeks " + cid in shown_nl and "NIET GECONTROLEERD" in shown_nl and "thuiscentrum HOME" in shown_nl
    shown_en = cli("course", "show", cid, db=db, env={"FRACTION_LEDGER_LANG": "en"}, check=True).stdout
    assert "NOT VERIFIED" in shown_en and "2026-11-02T09:00:00+01:00" in shown_en  # English as it always printed
    listed = cli("course", "list", db=db, env={"FRACTION_LEDGER_LANG": None, "LC_ALL": "nl_BE.UTF-8"}, check=True).stdout
    assert "actief" in listed and "thuis HOME" in listed

    # --json is for programs: the same bytes in every language (but the log's head, which each
    # read moves on: reading a course is recorded in the access log).
    import re

    for args in (("course", "show", cid, "--json"), ("course", "list", "--json"), ("incident", "list", "--json")):
        outputs = {re.sub(r'"log_head":"[0-9a-f]+"', "", cli(*args, db=db, env={"FRACTION_LEDGER_LANG": lang},
                                                             check=True).stdout) for lang in LANGUAGES}
        assert len(outputs) == 1, args

    refused = cli("fraction", "void", cid, "--number", "9", "--reason", "x", "--by", "b", db=db, env=fr)
    assert refused.returncode == 1 and refused.stderr.startswith("refusé: La fraction 9")  # the refusal in French
    bad = cli("fraction", "log", cid, "--number", "2", "--centre", "HOME", "--machine", "L1", "--operator", "x",
              "--at", "2026-11-03T09:00", db=db, env=fr)
    assert bad.returncode == 2 and "n'a pas de décalage horaire" in bad.stderr
    rebuilt = cli("rebuild", db=db, env=nl, check=True).stdout
    assert rebuilt.startswith("leesmodellen opnieuw opgebouwd uit ")


def test_statement_and_reconciliation_lines_write_amounts_and_dates_the_readers_way(tmp_path):
    from tests.conftest import cli

    db = tmp_path / "ledger.sqlite3"
    cli("billing", "agree", "--billing-centre", "HOME", "--partner", "PARTNER", "--rule", "per-fraction",
        "--fee-per-fraction", "1250.50", "--course-amount", "4200", "--valid-from", "2026-01-01",
        db=db, check=True)
    line = cli("billing", "agreements", db=db, env={"FRACTION_LEDGER_LANG": "fr"}, check=True).stdout
    assert "1 250,50" in line.replace("\u202f", " ").replace("\xa0", " ") and "du 1 janv. 2026" in line
    line_nl = cli("billing", "agreements", db=db, env={"FRACTION_LEDGER_LANG": "nl"}, check=True).stdout
    assert "1.250,50" in line_nl and "vergoeding" in line_nl
    assert "fee 1250.50" in cli("billing", "agreements", db=db, check=True).stdout  # English unchanged


def test_plural_forms_of_the_command_line_follow_each_language():
    from adapters.i18n import Words

    assert Words("nl").word_n("cli", "centre_replaced_keys", 1) == " (1 eerdere sleutel vervangen)"
    assert Words("nl").word_n("cli", "centre_replaced_keys", 2) == " (2 eerdere sleutels vervangen)"
    assert Words("fr").word_n("cli", "centre_replaced_keys", 1) == " (1 clé antérieure remplacée)"
    assert Words("fr").word_n("cli", "centre_replaced_keys", 3) == " (3 clés antérieures remplacées)"
    assert Words("en").word_n("cli", "centre_replaced_keys", 1) == " (replaced 1 earlier key(s))"


def reconcile_result() -> dict:
    return {
        "totals": {"courses": 1, "ledger_fractions": 1200, "ois_fractions": 1, "missing_in_ois": 1, "unknown_to_ledger": 0,
                   "conflicts": 0, "courses_only_in_ois": 0, "unreadable_files": 0},
        "missing_in_ois": [{"course_id": "c1", "fraction_number": 2, "group": 1, "delivered_at": "2026-11-02T08:30:00+01:00",
                            "centre": "HOME", "machine": "L1", "mu": {1: "95.1"}, "acknowledged": None,
                            "ois_has_summary_only": False, "after_restore_point": True}],
        "unknown_to_ledger": [], "conflicts": [], "courses_only_in_ois": [], "courses_only_in_ledger": [],
        "courses": [{"course_id": "c1", "patient_id": "P-1", "plan_label": "Breast", "ledger_fractions": 1200,
                     "ois_fractions": 1, "missing": 1, "unknown": 0, "conflicts": 0}],
        "unreadable_files": [], "restore_point": None, "mu_tolerance": "0.5", "log_head": "head",
    }


def test_the_reconciliation_report_is_written_in_the_readers_language():
    from datetime import datetime, timezone

    from adapters.recovery import render_report

    made = datetime(2026, 11, 5, 9, 0, tzinfo=timezone.utc)
    english = render_report(reconcile_result(), "ois", made)
    assert '<html lang="en">' in english and "Missing in the OIS" in english and ">1200<" in english
    assert "2026-11-02T08:30:00+01:00" in english and "after the restore point" in english
    french = render_report(reconcile_result(), "ois", made, "fr")
    assert '<html lang="fr">' in french and "Manquantes dans l&#39;OIS" in french
    assert "2/11/2026 08:30" in french and "faisceau 1 : 95,1" in french and "après le point de restauration" in french
    assert "Missing" not in french and "Checked by" not in french
    dutch = render_report(reconcile_result(), "ois", made, "nl")
    assert "Ontbreekt in het OIS" in dutch and "1.200" in dutch and "Gecontroleerd door:" in dutch


def test_the_gaps_and_outage_commands_speak_french_and_dutch_and_their_json_stays_the_same(tmp_path):
    """`gaps`, `course show`'s gap and amendments, `plan-assignments`, `day-list`, `centre list` and
    `capacity show` in the CLI's language; their --json the same bytes in every language."""
    import json
    import re

    from tests.conftest import cli

    db = tmp_path / "outage.sqlite3"
    base = {"FRACTION_LEDGER_CLOCK": "2026-11-17T07:00:00+01:00", "FRACTION_LEDGER_READ_DB": str(tmp_path / "r.sqlite3")}
    fr, nl, en = ({**base, "FRACTION_LEDGER_LANG": lang} for lang in ("fr", "nl", "en"))
    made = cli("centre", "register", "HOME", "--name", "Home", "--machine", "L1=TrueBeam:static,VMAT", db=db, env=fr,
               check=True)
    assert made.stdout == "enregistré : centre HOME (Home, Europe/Brussels)\n"
    cli("centre", "register", "PARTNER", "--name", "Partner", "--machine", "P1=TrueBeam:static,VMAT", db=db, env=en,
        check=True)
    declared = cli("capacity", "declare", "PARTNER", "--per-day", "1", "--from", "2026-11-01", "--machine", "P1",
                   db=db, env=nl, check=True)
    assert declared.stdout == "aangegeven: capaciteit van PARTNER versie 1\n"
    course = json.loads(cli("course", "register", "--patient-id", "HN-9", "--patient-name", "PEETERS^AN",
                            "--plan-uid", "1.2.3.9", "--plan-label", "H&N", "--fractions", "35", "--home-centre", "HOME",
                            "--beam", "1=200", "--triage", "1", "--json", db=db, env=en, check=True).stdout)["id"]
    cli("course", "register", "--patient-id", "HN-10", "--patient-name", "JANSSENS^EVA", "--plan-uid", "1.2.3.10",
        "--plan-label", "Lung", "--fractions", "20", "--home-centre", "HOME", "--beam", "1=180", "--triage", "1",
        db=db, env=en, check=True)  # partner full: unplaceable, with a reason
    scheduled = cli("course", "schedule", course, "--start", "2026-11-02", "--site", "head_and_neck", db=db, env=fr,
                    check=True)
    assert scheduled.stdout == f"traitement {course} : calendrier fixé\n"
    for n, day in enumerate((2, 3, 4), start=1):
        cli("fraction", "log", course, "--number", str(n), "--centre", "HOME", "--machine", "L1", "--operator", "rtt.an",
            "--at", f"2026-11-0{day}T09:00+01:00", db=db, env=en, check=True)
    proposed = cli("--user", "onc.a", "course", "amend", course, "--kind", "extra_fractions", "--fractions", "2",
                   "--reason", "lost days", db=db, env=nl, check=True)
    assert proposed.stdout.startswith("voorgesteld: wijziging ") and "wacht op medeondertekening" in proposed.stdout

    gaps_fr = cli("gaps", db=db, env=fr, check=True).stdout
    assert gaps_fr.startswith("ALARME ") and "manquées" in gaps_fr and "prochaine 1/4 le " in gaps_fr
    assert "1 modification à contresigner" in gaps_fr and "missed" not in gaps_fr and "countersign" not in gaps_fr
    gaps_nl = cli("gaps", db=db, env=nl, check=True).stdout
    assert "gemist" in gaps_nl and "verlengd" in gaps_nl and "1 wijziging mede te ondertekenen" in gaps_nl
    gaps_en = cli("gaps", db=db, env=en, check=True).stdout
    assert "missed" in gaps_en and "next 1/4 on 2026-11-" in gaps_en and "1 amendment to countersign" in gaps_en
    shown_fr = cli("course", "show", course, db=db, env=fr, check=True).stdout
    assert "catégorie d'interruption 1 (site head_and_neck)" in shown_fr and "NON CONTRESIGNÉE" in shown_fr
    assert "prescription d'origine groupe 1 : 35" in shown_fr and "ALARME" in shown_fr
    shown_nl = cli("course", "show", course, db=db, env=nl, check=True).stdout
    assert "onderbrekingscategorie 1 (locatie head_and_neck)" in shown_nl and "NIET MEDEONDERTEKEND" in shown_nl
    assert "oorspronkelijk voorschrift groep 1: 35" in shown_nl and "gap category" not in shown_nl

    plan_fr = cli("plan-assignments", "--home", "HOME", "--day", "2026-11-17", db=db, env=fr, check=True).stdout
    assert "Plan d'attribution" in plan_fr and "HN-9" in plan_fr and "HN-10" in plan_fr
    plan_nl = cli("plan-assignments", "--home", "HOME", "--day", "2026-11-17", db=db, env=nl, check=True).stdout
    assert "Toewijzingsplan" in plan_nl and "HN-9" in plan_nl
    unknown = cli("plan-assignments", "--home", "HOME", "--day", "2026-11-17", "--accept", "nope", db=db, env=fr)
    assert unknown.returncode == 2 and "non proposé : nope" in unknown.stderr
    bad_day = cli("day-list", "--for-centre", "HOME", "--day", "17/11", db=db, env=nl)
    assert bad_day.returncode == 2 and "verwacht een dag JJJJ-MM-DD" in bad_day.stderr
    day_fr = cli("day-list", "--for-centre", "HOME", "--day", "2026-11-16", db=db, env=fr, check=True).stdout
    assert "ABSENT" in day_fr and "HN-9" in day_fr
    day_nl = cli("day-list", "--for-centre", "HOME", "--day", "2026-11-16", db=db, env=nl, check=True).stdout
    assert "ONTBREEKT" in day_nl and "missing" not in day_nl
    assert "HOME" in cli("centre", "list", db=db, env=fr, check=True).stdout
    capacity_fr = cli("capacity", "show", "PARTNER", db=db, env=fr, check=True).stdout
    assert capacity_fr == "v1 1 patient/jour 07:00-19:00 1 nov. 2026.. sur P1 (par root)\n"
    assert "v1 1 patiënt/dag 07:00-19:00" in cli("capacity", "show", "PARTNER", db=db, env=nl, check=True).stdout

    for args in (("gaps", "--json"), ("plan-assignments", "--home", "HOME", "--day", "2026-11-17", "--json"),
                 ("day-list", "--for-centre", "HOME", "--day", "2026-11-16", "--json"), ("centre", "list", "--json"),
                 ("capacity", "show", "PARTNER", "--json"), ("course", "show", course, "--json")):
        outputs = {re.sub(r'"log_head":"[0-9a-f]+"', "", cli(*args, db=db, env=env, check=True).stdout)
                   for env in (en, fr, nl)}
        assert len(outputs) == 1, args
    plan = json.loads(cli("plan-assignments", "--home", "HOME", "--day", "2026-11-17", "--json", db=db, env=fr).stdout)
    assert plan["unplaceable"] and "full" in plan["unplaceable"][0]["reason"]  # a reason in English, its code in "said"
