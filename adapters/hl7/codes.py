"""The procedure code of a charge: configurable by technique and delivering centre. Which
technique a fraction is billed as is the ledger's decision (`ledger.billing.technique`).

The mapping is a TOML (or JSON) file; `procedure_codes.toml` beside this module is the
default. A file that does not fit is refused with the field and the reason.
"""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Annotated, Any

import msgspec
from msgspec import Meta, Struct

from adapters.files import CONFIG, read_input_text

DEFAULT_FILE = Path(__file__).with_name("procedure_codes.toml")
ANY = "*"


class Code(Struct, frozen=True, forbid_unknown_fields=True):
    code: Annotated[str, Meta(min_length=1, max_length=199)]
    text: Annotated[str, Meta(max_length=199)] = ""


class CodeFile(Struct, frozen=True, forbid_unknown_fields=True):
    coding_system: Annotated[str, Meta(min_length=1, max_length=20)]
    default: dict[str, Code]
    centres: dict[str, dict[str, Code]] = {}


class ProcedureCodes:
    def __init__(self, data: CodeFile):
        self.data = data
        if ANY not in data.default:
            raise ValueError('procedure codes: [default] needs a "*" entry (used when no technique matches)')

    @classmethod
    def load(cls, path: Path | str | None = None) -> ProcedureCodes:
        path = Path(path) if path is not None else DEFAULT_FILE
        try:
            text = read_input_text(path, CONFIG, "procedure codes")
            raw: Any = json.loads(text) if path.suffix == ".json" else tomllib.loads(text)
            return cls(msgspec.convert(raw, CodeFile))
        except FileNotFoundError:
            raise ValueError(f"procedure codes: {path} does not exist") from None
        except (tomllib.TOMLDecodeError, json.JSONDecodeError) as exc:
            raise ValueError(f"procedure codes: {path} is not valid: {exc}") from None
        except msgspec.ValidationError as exc:
            raise ValueError(f"procedure codes: {path}: {exc}") from None

    @property
    def coding_system(self) -> str:
        return self.data.coding_system

    def code_for(self, technique: str, centre: str) -> Code:
        own = self.data.centres.get(centre, {})
        for table in (own, self.data.default):
            if technique in table:
                return table[technique]
        return own.get(ANY) or self.data.default[ANY]

