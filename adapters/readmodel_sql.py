"""The read model's projection statements: prepared SQL on the connection, with values stored as
sqlite-utils would store them, so that rows are the same whichever wrote them. sqlite-utils builds
the schema and serves the reads; per-row sqlite-utils calls introspect the table every time (a
dozen statements per event), which the projection cannot afford."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from operator import itemgetter
from typing import Any

from sqlite_utils.db import jsonify_if_needed


def insert_sql(table: str, columns: Iterable[str], upsert_on: tuple[str, ...] = ()) -> str:
    """A prepared INSERT of every column in `columns` order; with `upsert_on` (the primary key),
    an existing row gets the other columns instead (and keeps its rowid), as sqlite-utils upserts."""
    names = list(columns)
    sql = (f"INSERT INTO [{table}] ({', '.join(f'[{c}]' for c in names)}) "
           f"VALUES ({', '.join('?' * len(names))})")
    if upsert_on:
        rest = [c for c in names if c not in upsert_on]
        sql += (f" ON CONFLICT({', '.join(f'[{c}]' for c in upsert_on)}) DO UPDATE SET "
                + ", ".join(f"[{c}]=excluded.[{c}]" for c in rest))
    return sql


PLAIN = frozenset({str, int, float, bool, bytes, type(None)})


def cell(value: Any) -> Any:
    """A value as sqlite-utils would store it (a date as ISO text, a list as JSON, ...)."""
    return value if value.__class__ in PLAIN else jsonify_if_needed(value)


def plain(values: tuple) -> tuple:
    """`values` as sqlite-utils would store them (the check runs in C: most rows are plain already)."""
    return values if PLAIN.issuperset(map(type, values)) else tuple(map(cell, values))


def row_of(columns: Iterable[str]) -> Callable[[dict], tuple]:
    """The parameters of an `insert_sql` row from a dict, in column order (taken in C when the dict
    names every column; a column it does not name is NULL)."""
    names = tuple(columns)
    getter = itemgetter(*names)

    def row(values: dict) -> tuple:
        try:
            return plain(getter(values))
        except KeyError:
            return plain(tuple(values.get(c) for c in names))

    return row


def cells(row: dict, columns: Iterable[str]) -> tuple:
    """The parameters of a statement, `row`'s values in `columns` order (missing ones NULL)."""
    return plain(tuple(row.get(c) for c in columns))
