"""`fraction-ledger serve` and `fraction-ledger user ...`: the HTTP server and its accounts."""

from __future__ import annotations

import os
import secrets
import sys
from pathlib import Path

from typing import Any

import click
import msgspec

from adapters.files import KEY_FILE, read_input_text, write_private
from tools.cli_common import tr

Context = Any  # tools.cli.Context (not imported: tools.cli imports this module)


def emit(value: Any, as_json: bool, text: str | None = None) -> None:
    if as_json:
        click.echo(msgspec.json.encode(value).decode())
    elif text is not None:
        click.echo(text)

DEMO_ACCOUNTS = [
    # name, role, centre: the people of tools/demo.py
    ("rtt.partner.a", "rtt", "PARTNER-RT"),
    ("rtt.partner.b", "rtt", "PARTNER-RT"),
    ("rtt.home.a", "rtt", "AZ-HOME"),
    ("physicist.home", "physicist", "AZ-HOME"),
    ("finance.home", "finance", "AZ-HOME"),
    ("admin", "admin", "AZ-HOME"),
    ("oncologist.home.a", "oncologist", "AZ-HOME"),  # prescribes; a second one countersigns
    ("oncologist.home.b", "oncologist", "AZ-HOME"),
]


def new_token() -> str:
    from adapters.http.api_system import new_token as make

    return make()


def server_files(storage: Any) -> Path | None:
    """Where the server keeps its CSRF secret and sessions (`NAME.secret`, `NAME.sessions`): beside
    the read model's file, else beside the log's file; None when neither is on disk (an encrypted
    ledger on PostgreSQL, a log in memory): then both stay in memory, nothing is written to the
    working directory."""
    read_db = storage.read_model_path()
    if str(read_db) != ":memory:":
        return read_db.resolve()
    if not storage.is_postgres and not storage.in_memory:
        return Path(storage.url).resolve()
    return None


def server_secret(base: Path | None) -> str:
    """A secret for CSRF tokens that survives restarts (a form open in a browser keeps working);
    without a file for it, one for the life of this process."""
    if base is None:
        return secrets.token_urlsafe(32)
    path = base.with_name(base.name + ".secret")
    if not path.exists():
        write_private(path, secrets.token_urlsafe(32))
    return read_input_text(path, KEY_FILE, "server secret").strip()


def check_certificate(certfile: str, keyfile: str | None) -> None:
    """Refuse, before anything starts, a certificate and key that TLS cannot use (uvicorn would
    stop with a traceback, or ask on the terminal for the password of an encrypted key)."""
    import ssl

    try:
        ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(certfile, keyfile, password="")
    except (ssl.SSLError, OSError) as exc:
        raise click.BadParameter(
            tr("bad_certificate", files=str(certfile) + (tr("with_key", key=keyfile) if keyfile else ""),
               error=exc.strerror or exc),
            param_hint="--ssl-certfile") from None


def demo_accounts(obj: Context) -> list[tuple[str, str, str, str]]:
    """Create (or give a new token to) the demo accounts; returns (name, role, centre, token)."""
    from ledger import errors
    from ledger.accounts import add_account, hash_token, rotate_token

    out = []
    for name, role, centre in DEMO_ACCOUNTS:
        token = new_token()
        try:
            add_account(obj.ledger.app, {"name": name, "role": role, "centre": centre}, hash_token(token), obj.actor())
        except errors.AccountConflict:
            rotate_token(obj.ledger.app, name, hash_token(token), obj.actor())
        out.append((name, role, centre, token))
    return out


def register(main: click.Group) -> None:
    @main.command("serve")
    @click.option("--host", default="127.0.0.1", show_default=True)
    @click.option("--port", type=int, default=8000, show_default=True)
    @click.option("--demo", is_flag=True, help="Seed centres, accounts (tokens printed) and courses first.")
    @click.option("--log-level", default="info", show_default=True)
    @click.option("--hl7-config", default=None, type=click.Path(dir_okay=False, exists=True),
                  help="HL7 configuration (TOML/JSON): destinations with host and port for sends.")
    @click.option("--dicom-config", default=None, type=click.Path(dir_okay=False, exists=True),
                  help="DICOM destinations (TOML): [destinations.NAME] host, port, called_aet.")
    @click.option("--send-deadline", type=click.FloatRange(1, 3600), default=120.0, show_default=True,
                  help="Seconds a send started from the pages or the API may take in all.")
    @click.option("--ssl-certfile", default=None, type=click.Path(dir_okay=False, exists=True),
                  help="Serve over HTTPS with this certificate (PEM; the chain after it).")
    @click.option("--ssl-keyfile", default=None, type=click.Path(dir_okay=False, exists=True),
                  help="The certificate's private key (PEM), unless it is in --ssl-certfile.")
    @click.option("--secure-cookies/--no-secure-cookies", default=None,
                  help="Send the session and CSRF cookies over HTTPS only. Default: on when serving over "
                       "HTTPS (--ssl-certfile); turn it on behind a TLS proxy.")
    @click.option("--verify-all", is_flag=True,
                  help="Verify the hash chain from the first event at start, not from the head verified last time.")
    @click.pass_obj
    def serve(obj: Context, host: str, port: int, demo: bool, log_level: str, hl7_config: str | None,
              dicom_config: str | None, send_deadline: float, ssl_certfile: str | None, ssl_keyfile: str | None,
              secure_cookies: bool | None, verify_all: bool) -> None:
        """Serve the JSON API (OpenAPI at /schema) and the pages for RTTs, physicists and finance.

        The hash chain is verified before the first request (from the head verified last time) and
        before every batch the read model projects; a log that fails refuses writes (see /ready)."""
        import uvicorn

        from adapters.http import create_app
        from tools.demo import run_demo

        if ssl_keyfile and not ssl_certfile:
            raise click.BadParameter(tr("key_without_certificate"),
                                     param_hint="--ssl-keyfile")
        if ssl_certfile:
            check_certificate(ssl_certfile, ssl_keyfile)
        secure = bool(ssl_certfile) if secure_cookies is None else secure_cookies
        obj.verify_all = verify_all
        ledger = obj.ledger
        if demo:
            run_demo(ledger, echo=click.echo)
            click.echo(tr("demo_accounts"))
            for name, role, centre, token in demo_accounts(obj):
                click.echo(f"  {name:<16} {role:<10} {centre:<11} {token}")
        base = server_files(ledger.storage)
        try:
            app = create_app(ledger, session_dir=base.with_name(base.name + ".sessions") if base else None,
                             secret=os.environ.get("FRACTION_LEDGER_SECRET") or server_secret(base),
                             hl7_config=hl7_config, send_deadline=send_deadline, dicom_config=dicom_config,
                             secure_cookies=secure)
        except ValueError as exc:  # a bad HL7/DICOM configuration or procedure code file
            raise click.BadParameter(str(exc)) from None
        scheme = "https" if ssl_certfile else "http"
        click.echo(tr("serving", url=f"{scheme}://{host}:{port}/", docs=f"{scheme}://{host}:{port}/schema")
                   + ("" if secure else tr("cookies_not_secure")))
        if ledger.app.outage.registry() is None:
            click.echo(tr("no_centre_registered"), err=True)
        sys.stdout.flush()  # the tokens must be readable now, not when a buffer fills
        # One process: the read model is a local SQLite file kept current by this server.
        uvicorn.run(app, host=host, port=port, log_level=log_level, access_log=True,
                    limit_concurrency=512, timeout_graceful_shutdown=5,
                    ssl_certfile=ssl_certfile, ssl_keyfile=ssl_keyfile)

    @main.group("user")
    def user() -> None:
        """Accounts: add (prints the token once), list, revoke, rotate."""

    @user.command("add")
    @click.argument("name")
    @click.option("--role", type=click.Choice(["rtt", "physicist", "finance", "admin", "privacy", "oncologist"]), required=True)
    @click.option("--centre", required=True)
    @click.option("--json", "as_json", is_flag=True)
    @click.pass_obj
    def user_add(obj: Context, name: str, role: str, centre: str, as_json: bool) -> None:
        """Create an account and print its token (only a hash is kept: it cannot be shown again)."""
        from ledger.accounts import add_account, hash_token

        token = new_token()
        account = add_account(obj.ledger.app, {"name": name, "role": role, "centre": centre}, hash_token(token),
                              obj.actor())
        emit({"token": token, "name": account["name"], "role": account["role"], "centre": account["centre"]},
             as_json, tr("account_added", name=name, role=role, centre=centre, token=token))

    @user.command("list")
    @click.option("--json", "as_json", is_flag=True)
    @click.pass_obj
    def user_list(obj: Context, as_json: bool) -> None:
        """Every account, active and revoked."""
        from ledger.accounts import list_accounts

        accounts = list_accounts(obj.ledger.app)
        if as_json:
            emit(msgspec.to_builtins(accounts), True)
            return
        for a in accounts:
            click.echo(f"{a.name:<20} {a.role:<10} {a.centre:<12} "
                       + (tr("account_active") if a.active else tr("account_revoked", at=a.revoked_at or "")))

    @user.command("revoke")
    @click.argument("name")
    @click.option("--json", "as_json", is_flag=True)
    @click.pass_obj
    def user_revoke(obj: Context, name: str, as_json: bool) -> None:
        """Revoke an account: its token and sessions stop working at once."""
        from ledger.accounts import revoke_account

        emit(revoke_account(obj.ledger.app, name, obj.actor()), as_json, tr("revoked_account", name=name))

    @user.command("rotate")
    @click.argument("name")
    @click.option("--json", "as_json", is_flag=True)
    @click.pass_obj
    def user_rotate(obj: Context, name: str, as_json: bool) -> None:
        """Give an account a new token (the old one stops working); printed once."""
        from ledger.accounts import hash_token, rotate_token

        token = new_token()
        rotate_token(obj.ledger.app, name, hash_token(token), obj.actor())
        emit({"token": token, "name": name}, as_json, tr("new_token", name=name, token=token))
