"""Who sends, who receives what, and the HL7 codes of centres.

Defaults fit a home centre with a billing system (charges), a HIS (summary documents) and
the cloud PACS that held the backup (the purge). A TOML/JSON file (`--config`) overrides:

    sending_application = "FRACTION-LEDGER"
    [destinations.billing]
    messages = ["DFT"]
    application = "BILLING"
    [centres]
    "Clinique Universitaire Saint-Luc" = "STLUC"   # HD.1 is at most 20 characters
"""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta, Struct

from adapters.files import CONFIG, read_input_text
from adapters.hl7.er7 import Hl7ValueError

Kind = Literal["DFT", "MDM", "ADT"]
Code20 = Annotated[str, Meta(min_length=1, max_length=20)]


class DestinationConfig(Struct, frozen=True, forbid_unknown_fields=True):
    messages: Annotated[list[Kind], Meta(min_length=1)]
    application: Code20
    facility: Code20 | None = None  # default: the course's home centre
    # Where the server (`fraction-ledger serve`) sends this destination's messages. The CLI
    # takes --host/--port instead; over HTTP only configured addresses are reached, never
    # one a user typed.
    host: Annotated[str, Meta(min_length=1, max_length=253)] | None = None
    port: Annotated[int, Meta(ge=1, le=65535)] | None = None
    timeout: Annotated[float, Meta(gt=0, le=300)] = 10.0  # seconds to wait for each ACK
    attempts: Annotated[int, Meta(ge=1, le=20)] = 3  # tries per message before giving up


DEFAULT_DESTINATIONS = {
    "billing": DestinationConfig(messages=["DFT"], application="BILLING"),
    "his": DestinationConfig(messages=["MDM"], application="HIS"),
    "pacs": DestinationConfig(messages=["ADT"], application="CLOUD-PACS"),
}


class Hl7Config(Struct, frozen=True, forbid_unknown_fields=True):
    sending_application: Code20 = "FRACTION-LEDGER"
    destinations: dict[str, DestinationConfig] = msgspec.field(default_factory=lambda: dict(DEFAULT_DESTINATIONS))
    centres: dict[str, Code20] = {}
    procedure_codes: str | None = None  # path of the procedure code mapping

    def __post_init__(self) -> None:
        seen: dict[str, str] = {}
        for name, d in self.destinations.items():
            for kind in d.messages:
                if kind in seen:
                    raise ValueError(f"destinations.{name}.messages: {kind} already goes to {seen[kind]}")
                seen[kind] = name

    @classmethod
    def load(cls, path: Path | str | None) -> Hl7Config:
        if path is None:
            return cls()
        path = Path(path)
        try:
            text = read_input_text(path, CONFIG, "--config")
            raw: Any = json.loads(text) if path.suffix == ".json" else tomllib.loads(text)
            return msgspec.convert(raw, cls)
        except FileNotFoundError:
            raise ValueError(f"--config: {path} does not exist") from None
        except (tomllib.TOMLDecodeError, json.JSONDecodeError, msgspec.ValidationError) as exc:
            raise ValueError(f"--config: {path}: {exc}") from None

    def destination_of(self, kind: str) -> str | None:
        return next((name for name, d in self.destinations.items() if kind in d.messages), None)

    def centre_code(self, centre: str) -> str:
        code = self.centres.get(centre, centre)
        if len(code) > 20:
            raise Hl7ValueError(
                "centre", f"{centre!r} is longer than the 20 characters HL7 allows for a facility: "
                f"give it a code under [centres] in the HL7 config")
        return code
