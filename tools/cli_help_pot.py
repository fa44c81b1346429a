"""Write the template (.pot) of the command line's help texts: every help text of the command tree,
with its command path, and click's own words as listed in cli_help.po (for `pybabel update`).
Apart from tools/cli_help.py because it reads the whole tree, which imports that module.

    python -m tools.cli_help_pot /tmp/cli_help.pot
"""

from __future__ import annotations

from babel.messages.catalog import Catalog
from babel.messages.pofile import write_po

from adapters.i18n import catalog_of
from tools.cli import main
from tools.cli_help import DOMAIN, help_texts


def write_template(path: str) -> int:
    """A .pot of every help text of the tree and click's words in cli_help.po (for `pybabel update`)."""

    template = Catalog(domain=DOMAIN, project="fraction-ledger", version="1", fuzzy=False)
    for where, msgid in help_texts(main):
        if msgid in template:
            template[msgid].auto_comments.append(where)
        else:
            template.add(msgid, auto_comments=[where])
    for message in catalog_of("en", DOMAIN) or ():  # click's msgids, listed there once
        if message.id and message.id not in template:
            template.add(message.id, auto_comments=message.auto_comments)
    with open(path, "wb") as f:
        write_po(f, template, width=0, sort_output=False)
    return len(template)


if __name__ == "__main__":  # python -m tools.cli_help_pot /tmp/cli_help.pot
    import sys

    print(write_template(sys.argv[1] if len(sys.argv) > 1 else "cli_help.pot"))
