"""`fraction-ledger --help` in English, Dutch and French (gettext domain `cli_help`, tools/cli_help.py).

Every help text of the command tree (docstrings, `help=`, `show_default` texts, the lazily loaded
benchmarks' own options) must have its Dutch and French in adapters/locale/<lang>/LC_MESSAGES/
cli_help.po: a new command fails here until its texts are translated. click's own words are its
gettext msgids, translated in the same domain."""

from __future__ import annotations

import re
import string
from pathlib import Path

import click
import pytest
from babel.messages.extract import extract_from_dir
from click.testing import CliRunner

from adapters.i18n import catalog
from tools.cli import main
from tools.cli_help import DOMAIN, Translated, TranslatedParameter, help_texts

NO_LANGUAGE = {"FRACTION_LEDGER_LANG": None, "LC_ALL": None, "LC_MESSAGES": None, "LANG": None}
# what a translation keeps as it is: `commands`, option names, %(placeholders)s, {placeholders}
KEPT = re.compile(r"`[^`]+`|(?<![\w-])--[a-z][a-z0-9-]*|%\(\w+\)s")
# click's words a person meets in --help and in a usage error
CLICK_WORDS = ("Usage:", "Options", "Commands", "Show this message and exit.", "Show the version and exit.",
               "Error: {message}", "Try '{command} {option}' for help.", "Missing option", "Missing argument",
               "No such command {name!r}.", "No such option {name!r}.", "Invalid value for {param_hint}: {message}",
               "default: {default}", "env var: {var}", "required")


def every_command(command: click.Command, path: tuple[str, ...] = ()):
    yield path, command
    if isinstance(command, click.Group):
        for name, sub in command.commands.items():
            yield from every_command(sub, (*path, name))


def run(args: list[str], lang: str | None):
    env = dict(NO_LANGUAGE, FRACTION_LEDGER_LANG=lang) if lang else NO_LANGUAGE
    return CliRunner().invoke(main, args, env=env, prog_name="fraction-ledger")


def flat(text: str) -> str:
    """Help as one line: where click wraps it depends on the terminal's width."""
    return " ".join(text.split())


def kept(text: str) -> list[str]:
    return sorted(KEPT.findall(text))


def fields(text: str) -> list[str]:
    return sorted(name for _, name, _, _ in string.Formatter().parse(text) if name)


@pytest.mark.parametrize("lang", ["nl", "fr"])
def test_every_help_text_of_the_command_tree_has_its_translation(lang):
    words = catalog(lang, DOMAIN)
    texts = dict((msgid, where) for where, msgid in help_texts(main))
    assert len(texts) > 250  # the whole tree, the lazily loaded benchmarks included
    missing = [f"{where}: {msgid!r}" for msgid, where in texts.items() if not words.get(msgid)]
    assert not missing, f"{len(missing)} help texts lack a {lang} translation in {lang}/LC_MESSAGES/{DOMAIN}.po:\n" \
                        + "\n".join(missing)
    changed = [f"{msgid!r} -> {words[msgid]!r}" for msgid in texts if kept(words[msgid]) != kept(msgid)]
    assert not changed, "a translation lost or changed a command, option name or placeholder:\n" + "\n".join(changed)


def test_every_command_and_option_shows_its_help_through_the_catalog():
    for path, command in every_command(main):
        assert isinstance(command, Translated), path
        for param in command.params:
            assert isinstance(param, TranslatedParameter), (path, param.name)


@pytest.mark.parametrize("lang", ["en", "nl", "fr"])
def test_clicks_own_words_are_its_msgids_and_are_translated(lang):
    found = extract_from_dir(str(Path(click.__file__).parent), method_map=[("**.py", "python")],
                             keywords={"_": None, "ngettext": (1, 2)})
    msgids = {m if isinstance(m, str) else m[0] for _, _, m, _, _ in found} | {"required"}  # `_(extra["required"])`
    words = catalog(lang, DOMAIN)
    for msgid in CLICK_WORDS:
        assert msgid in msgids, f"click no longer says {msgid!r}"
        assert msgid in words, msgid
        if lang != "en":
            assert words[msgid] and fields(words[msgid]) == fields(msgid), msgid


def test_a_french_rtt_reads_the_help_and_the_usage_errors_in_french():
    shown = run(["fraction", "log", "--help"], "fr")
    assert shown.exit_code == 0, shown.output
    assert shown.output.startswith("Utilisation : fraction-ledger fraction log [OPTIONS] COURSE_ID")
    assert "Enregistre une fraction délivrée (ou la suite d'une fraction interrompue)." in shown.output
    assert "Options :" in shown.output and "Affiche ce message et quitte." in shown.output
    assert "Confirme des UM hors tolérance (2 %, au moins 1 UM)" in flat(shown.output)
    assert "Centre où elle a été délivrée. [obligatoire]" in flat(shown.output)
    assert "Log a delivered fraction" not in shown.output and "Show this message" not in shown.output

    group = run(["fraction", "--help"], "fr")
    assert "Commandes :" in group.output and "Enregistre une fraction délivrée" in group.output

    missing = run(["fraction", "log", "C1"], "fr")
    assert missing.exit_code == 2 and "Erreur : Option manquante '--number'." in missing.output
    assert "Essayez 'fraction-ledger fraction log --help' pour l'aide." in missing.output
    unknown = run(["fraction", "lgo"], "fr")
    assert unknown.exit_code == 2 and "Commande inconnue 'lgo'." in unknown.output
    invalid = run(["course", "triage", "C1", "--code", "x"], "fr")
    assert invalid.exit_code == 2 and "Valeur non valide pour" in invalid.output

    benchmark = run(["bench", "hl7", "--help"], "fr")  # a benchmark's own command, loaded when it runs
    assert "revalide chaque N-ième message exporté [par défaut : 100]" in flat(benchmark.output)


def test_a_dutch_rtt_reads_the_help_in_dutch():
    shown = run(["--help"], "nl")
    assert shown.exit_code == 0, shown.output
    assert shown.output.startswith("Gebruik: fraction-ledger [OPTIONS] COMMAND [ARGS]...")
    assert "Opties:" in shown.output and "Commando's:" in shown.output
    assert "Wie handelt (bij elke gebeurtenis vastgelegd). [standaard: (loginnaam)]" in flat(shown.output)
    fraction = run(["fraction", "--help"], "nl")
    assert "Registreer een gegeven fractie" in fraction.output and "Toon dit bericht en stop." in fraction.output
    assert "Fout: Optie ontbreekt '--number'." in run(["fraction", "log", "C1"], "nl").output
    assert run(["--version"], "nl").output.startswith("fraction-ledger, versie "), "--version in Dutch too"
    assert run(["--version"], None).output.startswith("fraction-ledger, version ")


@pytest.mark.parametrize("lang", ["nl", "fr"])
def test_every_commands_help_is_shown_in_the_language(lang):
    words = catalog(lang, DOMAIN)
    for path, command in every_command(main):
        if getattr(command, "lazy_module", None):
            continue  # its --help is the benchmark's own (above)
        shown = run([*path, "--help"], lang)
        assert shown.exit_code == 0, (path, shown.output)
        english = command.help and command.help.split("\n")[0]
        if english and words.get(english.strip()) and words[english.strip()] != english.strip():
            assert english.strip() not in shown.output, path


def test_without_a_language_the_help_stays_english():
    shown = run(["fraction", "log", "--help"], None)
    assert shown.output.startswith("Usage: fraction-ledger fraction log [OPTIONS] COURSE_ID")
    assert "  Log a delivered fraction (or a continuation of an interrupted one).\n\nOptions:\n" in shown.output
    assert "Fraction group (needed when the plan has\n" in shown.output and "[required]" in shown.output
    assert "  --help                          Show this message and exit.\n" in shown.output
    assert "Commands:\n" in run(["fraction", "--help"], None).output
    missing = run(["fraction", "log", "C1"], None)
    assert "Error: Missing option '--number'." in missing.output
    assert "Try 'fraction-ledger fraction log --help' for help." in missing.output
    # after French, English again: nothing of a language is kept on the commands
    run(["fraction", "log", "--help"], "fr")
    assert run(["fraction", "log", "--help"], None).output == shown.output
