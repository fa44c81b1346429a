"""Trust commands: verify the hash chain, centres and their keys, signed bundles, the cipher key."""

from __future__ import annotations

import sys
from pathlib import Path

import click
import msgspec

from adapters import chain
from adapters.bundle import export_bundle, read_bundle
from adapters.files import BUNDLE, read_input, write_private
from adapters.keys import fingerprint, generate_centre_key, new_cipher_key, read_public_key, write_secret
from adapters.runtime import open_application
from adapters.storage import Storage
from ledger.service import utc_now

# Refusals (LedgerError) and configuration errors (ValueError, e.g. KeyFileError) raised here are
# turned into "refused: ..." on stderr and exit status 1 by tools.cli.LedgerGroup.
from tools.cli_access import log_read  # noqa: E402
from tools.cli_common import Context, emit, parse_time, say, shown, status_word, tr, tr_n  # noqa: E402,F401


@click.command("verify")
@click.option("--head", "anchor", default=None, help="A head hash printed earlier: check it is still on the chain.")
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def verify(obj, anchor, as_json) -> None:
    """Recompute the hash chain over the whole log; name the first event that does not match.

    Exit status 0 when the chain holds (and --head is on it), 1 otherwise."""
    if anchor is not None and (len(anchor) != 64 or any(c not in "0123456789abcdef" for c in anchor)):
        raise click.BadParameter(tr("bad_head"), param_hint="--head")
    # The chain covers the stored bytes: no cipher key and no read model are needed to check it.
    storage = Storage.from_option(obj.db, obj.cipher_key_file)
    if not storage.is_postgres and not Path(storage.url).exists():
        raise ValueError(tr("no_ledger_at", url=storage.url))
    app = open_application(storage, utc_now)
    try:
        verdict = chain.verify(app, anchor=anchor)
    finally:
        app.close()
    if as_json:
        emit(verdict.to_dict(), True)
    else:
        if verdict.problem:
            click.echo(tr("chain_tampered", problem=say(verdict.problem.get("said") or verdict.problem["message"])))
            click.echo(tr("chain_holds_to", event=verdict.head_event, head=verdict.head))
        else:
            click.echo(tr("chain_ok", events=shown(verdict.events)))
            click.echo(tr("chain_head", head=verdict.head, event=verdict.head_event))
        if verdict.anchor is not None:
            a = verdict.anchor
            click.echo(tr("chain_anchored", head=anchor, event=a["event"]) if a["on_chain"]
                       else tr("chain_not_anchored", problem=say(a.get("said") or a["message"])))
    sys.exit(0 if verdict.ok else 1)


@click.command("keygen-cipher")
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Key file to create (mode 0600; never overwritten).")
def keygen_cipher(out: Path) -> None:
    """Create an AES-256 key for encryption at rest. Keep a copy offline: without it the log is unreadable."""
    write_secret(out, (new_cipher_key() + "\n").encode())
    click.echo(tr("cipher_key_written", file=out))


# ---- centres ----------------------------------------------------------------------------------


@click.group("centre")
def centre() -> None:
    """Centres of the network and the public keys their bundles are signed with."""


@centre.command("add")
@click.argument("name")
@click.option("--public-key", "public_key_file", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="The centre's Ed25519 public key (base64 raw, as `centre keygen` writes, or PEM).")
@click.option("--replace-key", is_flag=True, help="Replace a key already recorded for this centre.")
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def centre_add(obj, name, public_key_file, replace_key, as_json) -> None:
    """Add a centre (or record its key)."""
    key = read_public_key(public_key_file) if public_key_file else None
    result = obj.ledger.app.trust.add_centre(name, key, obj.actor(), replace_key=replace_key)
    key = fingerprint(result["public_key"]) if result["public_key"] else tr("no_key")
    emit(result, as_json, tr("centre_added", status=status_word(result["status"]), name=name, key=key))


@centre.group("alias")
def centre_alias() -> None:
    """What partners' systems call a centre (institution, station, AE title): records are attributed by it."""


@centre_alias.command("add")
@click.argument("name")
@click.option("--institution", default=None, help="An InstitutionName its records carry, e.g. 'Partner Hospital RT'.")
@click.option("--station", default=None, help="A StationName its records carry.")
@click.option("--aet", default=None, help="An AE title it sends from.")
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def centre_alias_add(obj, name, institution, station, aet, as_json) -> None:
    """Declare a name a centre's systems use; one name means one centre."""
    given = [(k, v) for k, v in (("institution", institution), ("station", station), ("aet", aet)) if v is not None]
    if len(given) != 1:
        raise click.UsageError(tr("one_alias"))
    result = obj.ledger.app.trust.add_centre_alias(name, *given[0], obj.actor())
    emit(result, as_json, tr("centre_alias", status=status_word(result["status"]), kind=result["kind"],
                             value=repr(result["value"]), name=name))


@centre.command("zone")
@click.argument("name")
@click.argument("zone")
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def centre_zone(obj, name, zone, as_json) -> None:
    """A centre's IANA time zone (e.g. Europe/Brussels): its records' times without an offset are read in it."""
    result = obj.ledger.app.trust.set_centre_zone(name, zone, obj.actor())
    emit(result, as_json, tr("centre_zone", status=status_word(result["status"]), name=name, zone=zone))


@centre.command("keygen")
@click.argument("name")
@click.option("--out", "out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Private key file [default: ./NAME.ed25519]; the public key goes to OUT.pub.")
@click.option("--replace-key", is_flag=True, help="Replace a key already recorded for this centre.")
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def centre_keygen(obj, name, out, replace_key, as_json) -> None:
    """Make this centre's signing key pair; record the public key in the ledger (the private key stays in the file)."""
    out = out or Path(f"{name}.ed25519")
    public, pub_path = generate_centre_key(out)
    result = obj.ledger.app.trust.add_centre(name, public, obj.actor(), replace_key=replace_key)
    result = {**result, "private_key_file": str(out), "public_key_file": str(pub_path)}
    emit(result, as_json, tr("centre_added", status=status_word(result["status"]), name=name, key=fingerprint(public))
         + "\n" + tr("centre_key_files", private=out, public=pub_path))


@centre.command("show")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def centre_show(obj, name, as_json) -> None:
    """A centre's current key and its fingerprint."""
    c = obj.ledger.app.trust.get_centre(name)
    result = {"centre": c.name, "public_key": c.public_key, "fingerprint": fingerprint(c.public_key) if c.public_key else None,
              "previous_keys": c.previous_keys}
    emit(result, as_json, tr("centre_key", name=c.name, key=result["fingerprint"] or tr("no_key"))
         + (tr_n("centre_replaced_keys", len(c.previous_keys)) if c.previous_keys else ""))


# ---- bundles ----------------------------------------------------------------------------------


@click.group("bundle")
def bundle() -> None:
    """Signed bundles of fraction registrations between centres."""


@bundle.command("export")
@click.option("--centre", "centre_name", required=True, help="The centre whose records to export (this ledger's centre).")
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--since", default=None, help="Only events recorded at or after this ISO-8601 time (with offset).")
@click.option("--key", "key", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="The centre's private key [default: ./CENTRE.ed25519].")
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def bundle_export(obj, centre_name, out, since, key, as_json) -> None:
    """Write the events recorded at a centre as one signed, hash-chained file."""
    when = parse_time(since, "--since") if since else None
    if out.exists():
        raise ValueError(tr("exists_already", file=out))
    data, summary = export_bundle(obj.ledger.app, centre_name, key or Path(f"{centre_name}.ed25519"), when)
    exported = msgspec.json.decode(data.split(b"\n", 1)[0])["courses"]  # the body, then the signature line
    log_read(obj, "bundles.export", [{"id": c["id"], "patient_id": c["registration"]["patient"]["id"],
                                      "home_centre": c["registration"]["home_centre"]} for c in exported])
    write_private(out, data, exclusive=True)
    summary["file"] = str(out)
    emit(summary, as_json, tr("bundle_written", file=out, events=shown(summary["events"]),
                              courses=shown(summary["courses"]), centre=centre_name, key=summary["key"])
         + "\n" + tr("log_head", head=summary["source_head"]))


@bundle.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def bundle_import(obj, file, as_json) -> None:
    """Check a bundle's signature and chain and apply it whole (again: nothing changes), or refuse it whole."""
    app = obj.ledger.app
    summary = app.trust.import_bundle(read_bundle(app, read_input(file, BUNDLE, "bundle")), obj.actor())
    head = chain.head_hash(app)
    text = tr("bundle_imported", file=file, centre=summary.centre, applied=shown(summary.applied),
              already=shown(summary.already_imported), registered=shown(summary.courses_registered))
    for c in summary.collisions:
        text += "\n" + tr("bundle_collision", course=c["course"], incident=c["incident"], message=say(c["message"]))
    text += "\n" + tr("log_head", head=head)
    emit({**msgspec.to_builtins(summary), "head": head}, as_json, text)


def register(main: click.Group) -> None:
    for command in (verify, keygen_cipher, centre, bundle):
        main.add_command(command)
