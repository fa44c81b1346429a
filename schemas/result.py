"""The base of every command's answer (`schemas/results.py`, and the records a command returns).

An answer is a typed Struct: code reads it by attribute. The readers of an answer as JSON (the
CLI's `--json`, the HTTP API, a client) see its fields; for them, and for code written against
the JSON, an answer can also be read by key (`answer["status"]`), which reads the attribute.
"""

from __future__ import annotations

from typing import Any

from msgspec import Struct, structs


class Result(Struct, frozen=True, kw_only=True):
    def __getitem__(self, key: str) -> Any:
        if key not in self.__struct_fields__:
            raise KeyError(key)
        return getattr(self, key)

    def get(self, key: str, default: Any = None) -> Any:
        return getattr(self, key) if key in self.__struct_fields__ else default

    def __contains__(self, key: object) -> bool:
        """Whether the answer gives this field (a field it leaves out is None)."""
        return key in self.__struct_fields__ and getattr(self, key) is not None  # type: ignore[arg-type]

    def keys(self) -> list[str]:
        """The fields it gives (so that `{**answer}` and `dict(answer)` read it as its JSON would)."""
        return [k for k in self.__struct_fields__ if getattr(self, k) is not None]

    def replace(self, **changes: Any) -> Any:
        return structs.replace(self, **changes)
