"""`fraction-ledger --help` in the CLI's language (FRACTION_LEDGER_LANG, else the locale).

The help texts stay in English in the code (docstrings, `help=`); they are the msgids of the
gettext domain `cli_help` (adapters/locale/<lang>/LC_MESSAGES/cli_help.po), looked up when help
is shown, never at import:

- every command and group of the tree is a `Translated` command: `TranslatedGroup` gives its
  subcommands (`@group.command`, `@group.group`, `add_command`) the translating class of their own
  class, so that no command module has to name a class; their options and arguments likewise;
- click's own words ("Usage:", "Options", "Show this message and exit.", "Missing option ...",
  "No such command ...") are click's gettext msgids: click calls the `_`/`ngettext` it imported
  from `gettext` in each of its modules; `install_click_words()` binds those names to this
  domain in the CLI's language (click has no other hook for it), so its English msgids are
  translated in `cli_help.po` like ours.

README "Translations" says how to list what a language lacks; tests/test_cli_help_language.py fails
when a help text has no Dutch or French translation.
"""

from __future__ import annotations

import contextlib
import copy
import gettext
import importlib
import inspect
from collections.abc import Iterator
from functools import cache

import click
from click.formatting import HelpFormatter

from adapters.i18n import cli_language, translations

DOMAIN = "cli_help"
# click's modules that say something through `_`/`ngettext` (imported from gettext)
CLICK_MODULES = ("core", "decorators", "exceptions", "formatting", "parser", "types", "termui", "utils",
                 "shell_completion")
_english_only = False  # while click builds an object whose text it keeps (the cached --help option)


def help_msgid(text: str) -> str:
    """A help text as its msgid: as click shows it (dedented, cut at a form feed)."""
    return inspect.cleandoc(text).partition("\f")[0]


def help_in(lang: str, text: str | None) -> str | None:
    """A help text of the code in `lang` (itself when there is no translation)."""
    if not text or lang == "en":
        return text
    found = translations(lang, DOMAIN).gettext(help_msgid(text))
    return text if found == help_msgid(text) else found


def shown_help(text: str | None) -> str | None:
    return help_in(cli_language(), text)


def click_gettext(message: str) -> str:
    if _english_only:
        return message
    lang = cli_language()
    return message if lang == "en" else translations(lang, DOMAIN).gettext(message)


def click_ngettext(singular: str, plural: str, n: int) -> str:
    if _english_only:
        return singular if n == 1 else plural
    lang = cli_language()
    if lang == "en":
        return singular if n == 1 else plural
    return translations(lang, DOMAIN).ngettext(singular, plural, n)


@contextlib.contextmanager
def english() -> Iterator[None]:
    global _english_only
    before, _english_only = _english_only, True
    try:
        yield
    finally:
        _english_only = before


def install_click_words() -> None:
    """click's own words through this domain, in the CLI's language when they are said."""
    for name in CLICK_MODULES:
        module = importlib.import_module(f"click.{name}")
        if getattr(module, "_", None) is gettext.gettext:
            module._ = click_gettext
        if getattr(module, "ngettext", None) is gettext.ngettext:
            module.ngettext = click_ngettext


class TranslatedFormatter(HelpFormatter):
    def write_heading(self, heading: str) -> None:
        # "Options:" in English and Dutch, "Options :" in French
        self.write(f"{'':>{self.current_indent}}{click_gettext('{heading}:').format(heading=heading)}\n")


class TranslatedContext(click.Context):
    formatter_class = TranslatedFormatter


class TranslatedParameter:
    """Marks an option or argument whose help (and `show_default` text) is shown in the CLI's language."""


class Translated:
    """Marks a command whose help, short help and options' help are shown in the CLI's language."""


def _shown_param(param: click.Parameter) -> click.Parameter:
    shown = copy.copy(param)
    shown.help = shown_help(param.help)
    if isinstance(getattr(param, "show_default", None), str):
        shown.show_default = shown_help(param.show_default)
    return shown


def _shown_command(command: click.Command) -> click.Command:
    shown = copy.copy(command)
    shown.help, shown.short_help, shown.epilog = (shown_help(command.help), shown_help(command.short_help),
                                                  shown_help(command.epilog))
    return shown


@cache
def translating_class(cls: type) -> type:
    """`cls` showing its texts in the CLI's language: each method below calls `cls`'s own on a copy
    holding the translated texts (the marker class comes last: an object's class can then become it)."""
    if issubclass(cls, click.Parameter):
        def get_help_record(self, ctx):
            return cls.get_help_record(self if cli_language() == "en" else _shown_param(self), ctx)

        return type(f"Translated{cls.__name__}", (cls, TranslatedParameter), {"get_help_record": get_help_record})

    def shown(self):
        return self if cli_language() == "en" else _shown_command(self)

    def get_short_help_str(self, limit: int = 45) -> str:
        return cls.get_short_help_str(shown(self), limit)

    def format_help_text(self, ctx: click.Context, formatter: HelpFormatter) -> None:
        cls.format_help_text(shown(self), ctx, formatter)

    def format_epilog(self, ctx: click.Context, formatter: HelpFormatter) -> None:
        cls.format_epilog(shown(self), ctx, formatter)

    def get_help_option(self, ctx: click.Context):
        with english():  # click keeps the option: it keeps the English msgid, translated when shown
            option = cls.get_help_option(self, ctx)
        return option if option is None else translating_param(option)

    methods = {"context_class": TranslatedContext, "get_short_help_str": get_short_help_str,
               "format_help_text": format_help_text, "format_epilog": format_epilog,
               "get_help_option": get_help_option}
    if issubclass(cls, click.Group):
        def add_command(self, cmd: click.Command, name: str | None = None) -> None:
            cls.add_command(self, translating(cmd), name)

        methods.update(add_command=add_command, command_class=translating_class(click.Command),
                       group_class=type)  # subgroups of their group's class
    return type(f"Translated{cls.__name__}", (cls, Translated), methods)


def translating_param(param: click.Parameter) -> click.Parameter:
    if not isinstance(param, TranslatedParameter):
        param.__class__ = translating_class(type(param))
    return param


def translating(command: click.Command) -> click.Command:
    """The command (and, for a group, its subcommands) shown in the CLI's language, whatever class
    its module made it with: its class becomes the translating subclass of that class."""
    if not isinstance(command, Translated):
        command.__class__ = translating_class(type(command))
    for param in command.params:
        translating_param(param)
    if isinstance(command, click.Group):
        for sub in command.commands.values():
            translating(sub)
    return command


TranslatedCommand = translating_class(click.Command)
# A group whose every subcommand, however it is added (`@group.command`, `add_command`), is shown
# in the CLI's language.
TranslatedGroup = translating_class(click.Group)


def help_texts(command: click.Command, path: str = "fraction-ledger") -> Iterator[tuple[str, str]]:
    """(where, msgid) of every help text of a command tree (`path`: the command's own): what
    cli_help.po translates."""
    for text in (command.help, command.short_help, command.epilog):
        if text and help_msgid(text):
            yield path, help_msgid(text)
    for param in command.params:
        for text in (getattr(param, "help", None), getattr(param, "show_default", None)):
            if isinstance(text, str) and help_msgid(text):
                yield f"{path} {param.opts[0] if param.opts else param.name}", help_msgid(text)
    lazy = getattr(command, "lazy_module", None)
    if lazy:  # a benchmark whose own command is loaded when it runs
        yield from help_texts(importlib.import_module(lazy).main, path)
    if isinstance(command, click.Group):
        for name, sub in command.commands.items():
            yield from help_texts(sub, f"{path} {name}")
