"""Accounts: who may use the ledger, with which role and for which centre.

All accounts live in one stream (the roster), so that listing them and finding the
account behind a token is one small read, and adding two accounts with the same name at
once gives one account and one refusal (the stream's version decides). Only a SHA-256
of each token is kept: a token is shown once, when the account is made. The account behind
a token is found through an index from hash to name (one dict look-up, however many
accounts), never by comparing the presented hash with every stored one.
"""

from __future__ import annotations

import hashlib
import hmac
import uuid
from typing import Annotated, Any, Literal

import msgspec
from eventsourcing.application import AggregateNotFoundError
from eventsourcing.domain import Aggregate, event
from msgspec import Meta

from ledger import errors
from ledger.access import Principal
from ledger.course import NAMESPACE
from ledger.service import Actor, FractionLedger, parse

ROSTER_ID = uuid.uuid5(NAMESPACE, "accounts")
Name = Annotated[str, Meta(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9._@-]*$")]
CentreName = Annotated[str, Meta(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9 ._-]*$")]
Role = Literal["rtt", "physicist", "finance", "admin", "privacy", "oncologist"]


class NewAccount(msgspec.Struct, frozen=True, kw_only=True):
    name: Name
    role: Role
    centre: CentreName


class Account(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    role: str
    centre: str
    active: bool = True
    created_by: str = ""
    created_at: str = ""
    revoked_by: str | None = None
    revoked_at: str | None = None


def hash_token(token: str) -> str:
    """Tokens are long random strings, so a plain SHA-256 is enough (no password stretching)."""
    return hashlib.sha256(token.encode()).hexdigest()


class Roster(Aggregate):
    @staticmethod
    def create_id(**_: Any) -> uuid.UUID:
        return ROSTER_ID

    @event("Opened")
    def __init__(self, meta: dict):
        self.accounts: dict[str, Account] = {}
        self.token_hashes: dict[str, str] = {}  # name -> hash of its current token
        self.names_by_hash: dict[str, str] = {}  # hash of a current token -> name (the look-up index)

    def check_new(self, name: str) -> None:
        if name in self.accounts:
            known = self.accounts[name]
            raise errors.AccountConflict(
                "account_conflict.account_already_exists_nothing", name=name, role=known.role, centre=known.centre, value='active' if known.active else 'revoked',
                conflict=msgspec.to_builtins(known),
            )

    def account(self, name: str) -> Account:
        if name not in self.accounts:
            raise errors.AccountNotFound("account_not_found.no_account_named", name=name)
        return self.accounts[name]

    def add(self, new: NewAccount, token_hash: str, meta: dict) -> Account:
        self.check_new(new.name)
        self._added(name=new.name, role=new.role, centre=new.centre, token_hash=token_hash, meta=meta)
        return self.accounts[new.name]

    def revoke(self, name: str, meta: dict) -> Account:
        if not self.account(name).active:
            return self.accounts[name]
        self._revoked(name=name, meta=meta)
        return self.accounts[name]

    def rotate(self, name: str, token_hash: str, meta: dict) -> Account:
        """A new token for an active account (a lost token); the old one stops working."""
        if not self.account(name).active:
            raise errors.AccountConflict("account_conflict.account_revoked_make_new", name=name)
        self._rotated(name=name, token_hash=token_hash, meta=meta)
        return self.accounts[name]

    def principal_for(self, token_hash: str) -> Principal | None:
        name = self.names_by_hash.get(token_hash)
        if name is None:
            return None
        account = self.accounts[name]
        return Principal(account.name, account.role, account.centre) if account.active else None

    def holds(self, name: str, token_hash: str) -> bool:
        """Whether `token_hash` is the current token of `name` (compared in constant time)."""
        known = self.token_hashes.get(name)
        return known is not None and hmac.compare_digest(known.encode(), token_hash.encode())

    @event("AccountAdded")
    def _added(self, name: str, role: str, centre: str, token_hash: str, meta: dict) -> None:
        self.accounts[name] = Account(name=name, role=role, centre=centre, created_by=meta["user"],
                                      created_at=meta["recorded_at"].isoformat())
        self._index(name, token_hash)

    @event("TokenRotated")
    def _rotated(self, name: str, token_hash: str, meta: dict) -> None:
        self._index(name, token_hash)

    def _index(self, name: str, token_hash: str | None) -> None:
        """`name` now holds `token_hash` (None: no token); its previous token leaves the index."""
        previous = self.token_hashes.pop(name, None)
        if previous is not None and self.names_by_hash.get(previous) == name:
            del self.names_by_hash[previous]
        if token_hash is not None:
            self.token_hashes[name] = token_hash
            self.names_by_hash[token_hash] = name

    @event("AccountRevoked")
    def _revoked(self, name: str, meta: dict) -> None:
        self.accounts[name] = msgspec.structs.replace(
            self.accounts[name], active=False, revoked_by=meta["user"], revoked_at=meta["recorded_at"].isoformat()
        )
        self._index(name, None)


def roster(app: FractionLedger) -> Roster | None:
    """The roster, loaded from the log: what a command that changes it decides on."""
    try:
        return app.repository.get(ROSTER_ID)
    except AggregateNotFoundError:
        return None


def current_roster(app: FractionLedger) -> Roster | None:
    """The roster for reading (who holds a token, which accounts exist), kept in memory and loaded
    again only when the log holds a newer version of it: every request asks, so a revocation by
    any process is seen on the next request, at the cost of one indexed query, not a replay."""
    latest = app.recorder.select_events(ROSTER_ID, desc=True, limit=1)
    version = latest[0].originator_version if latest else None
    kept = getattr(app, "_roster_kept", None)
    if kept is None or kept[0] != version:
        kept = (version, roster(app) if version is not None else None)
        app._roster_kept = kept  # replaced whole: a reader never sees half of it
    return kept[1]


def add_account(app: FractionLedger, data: Any, token_hash: str, actor: Actor, request_id: str | None = None) -> dict:
    new = parse(NewAccount, data)
    app.outage.check_centres_known(("centre", new.centre))

    def act(meta: dict) -> tuple[list[Any], Any]:
        book = roster(app) or Roster(meta=meta)
        return [book], msgspec.to_builtins(book.add(new, token_hash, meta))

    return app.uow.run("add_account", {**msgspec.to_builtins(new), "token_hash": token_hash}, actor, request_id, act)


def revoke_account(app: FractionLedger, name: str, actor: Actor, request_id: str | None = None) -> dict:
    def act(meta: dict) -> tuple[list[Any], Any]:
        book = roster(app)
        if book is None:
            raise errors.AccountNotFound("account_not_found.no_account_named", name=name)
        return [book], msgspec.to_builtins(book.revoke(name, meta))

    return app.uow.run("revoke_account", {"name": name}, actor, request_id, act)


def rotate_token(app: FractionLedger, name: str, token_hash: str, actor: Actor, request_id: str | None = None) -> dict:
    def act(meta: dict) -> tuple[list[Any], Any]:
        book = roster(app)
        if book is None:
            raise errors.AccountNotFound("account_not_found.no_account_named", name=name)
        return [book], msgspec.to_builtins(book.rotate(name, token_hash, meta))

    return app.uow.run("rotate_token", {"name": name, "token_hash": token_hash}, actor, request_id, act)


def list_accounts(app: FractionLedger) -> list[Account]:
    book = current_roster(app)
    return sorted(book.accounts.values(), key=lambda a: a.name) if book else []


def principal_for_token(app: FractionLedger, token: str) -> Principal | None:
    """The active account holding this token, or None."""
    book = current_roster(app)
    return book.principal_for(hash_token(token)) if book else None


def principal_named(app: FractionLedger, name: str, token_hash: str) -> Principal | None:
    """The account of a session, if it is still active and its token unchanged."""
    book = current_roster(app)
    if book is None or not book.holds(name, token_hash):
        return None
    account = book.accounts[name]
    return Principal(account.name, account.role, account.centre) if account.active else None
