"""ER7 message templates, validated once by hl7apy, filled many times through HL7 escaping.

Building and validating every message with hl7apy's object model costs ~9 ms a message,
too slow for a bulk replay. A message *shape* (which segments, which fields hold what)
does not change from one fraction to the next; only the values do. So each shape is an
ER7 text with `{name}` slots. On first use the template is parsed with hl7apy (strict,
then `validate()`), once with worst-case values in every slot (every delimiter, non-ASCII,
the longest value each slot's datatype allows) and once with every optional slot empty.
A fill then only has to keep each value inside what hl7apy accepted for that slot: text is
escaped (so it cannot change the structure) and must fit the datatype's length; times,
dates and numbers are formatted by us in the one form hl7apy checked. The datatype of a
slot is looked up in hl7apy's own HL7 2.5 reference, not written by hand here.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from decimal import Decimal
from functools import cache
from typing import Any

from hl7apy import load_reference
from hl7apy.consts import VALIDATION_LEVEL
from hl7apy.parser import parse_message
from hl7apy.v2_5 import get_base_datatypes

VERSION = "2.5"
CHARSET = "UNICODE UTF-8"  # MSH-18: the bytes on the wire are UTF-8
SLOT = re.compile(r"\{([a-z_0-9]+)\}")
TEXT_TYPES = {"ST", "IS", "ID", "TX", "FT", "GTS"}
NUMBER_TYPES = {"NM", "SI"}
TIME_TYPES = {"DTM", "DT"}
# Empty trailing components and fields are left out (2.5, 2.5.5.3); escaped text never holds
# a raw ^ or &, so these only ever match delimiters (MSH-2's "\&" is kept by the lookbehind).
TRAILING_COMPONENTS = re.compile(r"(?<!\\)[\^&]+(?=[|\r])")
TRAILING_FIELDS = re.compile(r"\|+\r")


class Hl7ValueError(ValueError):
    """A value that cannot go into its HL7 field; names the field and the reason."""

    def __init__(self, field: str, reason: str):
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


# ---- values -------------------------------------------------------------------------------

# Every control character (C0, DEL, C1) as a hex escape `\Xhh\` of its UTF-8 bytes (2.5, 2.7.4;
# MSH-18 says UTF-8): the ledger refuses them at the edge (schemas/text.py), except LF in free
# text, but whatever reaches a message may never end a segment (CR) or hide in it.
_CONTROLS = {chr(c): "\\X" + chr(c).encode().hex().upper() + "\\" for c in (*range(0x20), *range(0x7F, 0xA0))}
_ESCAPES = str.maketrans({
    **_CONTROLS,
    "\\": "\\E\\", "|": "\\F\\", "^": "\\S\\", "&": "\\T\\", "~": "\\R\\",
})


def escape(text: str) -> str:
    """HL7 escaping (2.5, section 2.7.4) for the default delimiters `|^~\\&`; line breaks and
    every other control character as hex escapes so that text can never end a segment.
    One pass, so `\\` is escaped exactly once."""
    return text.translate(_ESCAPES)


def ts(value: datetime) -> str:
    """A TS/DTM to the second with its UTC offset, e.g. 20261102083000+0100."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise Hl7ValueError("time", f"{value.isoformat()} has no timezone")
    return value.strftime("%Y%m%d%H%M%S%z")


def dt(value: date) -> str:
    return value.strftime("%Y%m%d")


def number(value: Decimal | int) -> str:
    if isinstance(value, Decimal):
        return format(value.normalize(), "f") if value == value.to_integral() else format(value, "f")
    return str(int(value))


# ---- datatypes of slots, from hl7apy's reference -----------------------------------------


def _children(ref: Any) -> tuple:
    return ref[1] if ref[0] == "sequence" else ()


def leaf_type(segment: str, position: tuple[int, ...]) -> str:
    """The base datatype at (field, component, subcomponent) of a segment, per hl7apy."""
    ref = load_reference(segment, "Segment", VERSION)
    fields = ref[1]
    field_no, *rest = position
    node = fields[field_no - 1][1]
    for index in rest:
        kids = _children(node)
        if not kids:
            if index == 1:
                continue  # the first component of a primitive field is the field itself
            raise Hl7ValueError(f"{segment}-{field_no}", "has no components")
        node = kids[index - 1][1]
    while node[0] == "sequence":  # a slot on a composite fills its first leaf
        node = node[1][0][1]
    return node[2]


@cache
def max_length(datatype: str) -> int | None:
    cls = get_base_datatypes().get(datatype)
    if cls is None or datatype in TIME_TYPES:
        return None
    return cls(1 if datatype in NUMBER_TYPES else "x").max_length


def slot_positions(segments: list[str], types: dict[str, str]) -> dict[str, tuple[str, str, tuple[int, ...]]]:
    """name -> (HL7 position text, leaf datatype, position) for every slot of a template.
    `types` names the datatype where hl7apy cannot tell (inside OBX-5, which "varies")."""
    found: dict[str, tuple[str, str, tuple[int, ...]]] = {}
    for text in segments:
        name, fields = text[:3], text.split("|")
        for f_index, field in enumerate(fields[1:], start=1):
            field_no = f_index + 1 if name == "MSH" else f_index
            for c_index, comp in enumerate(field.split("^"), start=1):
                for s_index, sub in enumerate(comp.split("&"), start=1):
                    for slot in SLOT.findall(sub):
                        pos = (field_no, c_index, s_index)
                        where = f"{name}-{field_no}" + (f".{c_index}" if "^" in field else "") + (
                            f".{s_index}" if "&" in comp else "")
                        datatype = types.get(slot) or leaf_type(name, pos)
                        if slot in found and found[slot][1] != datatype:
                            raise ValueError(f"slot {slot} is {found[slot][1]} at {found[slot][0]} but {datatype} at {where}")
                        found.setdefault(slot, (where, datatype, pos))
    return found


# ---- templates ----------------------------------------------------------------------------


class Template:
    """One message shape. `required` slots may never be empty; `strict=False` is for shapes
    whose payload hl7apy's strict parser refuses by size (an embedded PDF in OBX-5)."""

    def __init__(self, structure: str, segments: list[str], *, required: set[str], strict: bool = True,
                 types: dict[str, str] | None = None):
        self.structure = structure
        self.segments = segments
        self.required = frozenset(required)
        self.strict = strict
        self.slots = slot_positions(segments, types or {})
        unknown = self.required - set(self.slots)
        if unknown:
            raise ValueError(f"required slots not in template {structure}: {sorted(unknown)}")
        self.text = "\r".join(segments) + "\r"
        self.checked = False

    def fill(self, **values: Any) -> str:
        if not self.checked:
            self.check()
        text = self.text.format_map({name: self.value(name, values.get(name)) for name in self.slots})
        return TRAILING_FIELDS.sub("\r", TRAILING_COMPONENTS.sub("", text))

    def value(self, name: str, raw: Any) -> str:
        where, datatype, _ = self.slots[name]
        if raw is None or raw == "":
            if name in self.required:
                raise Hl7ValueError(f"{where} ({name})", "is required")
            return ""
        if datatype in TIME_TYPES:
            if isinstance(raw, datetime):
                out = ts(raw) if datatype == "DTM" else dt(raw)
            elif isinstance(raw, date):
                out = dt(raw)
            else:
                raise Hl7ValueError(f"{where} ({name})", f"expected a date or time, got {raw!r}")
        elif datatype in NUMBER_TYPES:
            if not isinstance(raw, (int, Decimal)) or isinstance(raw, bool):
                raise Hl7ValueError(f"{where} ({name})", f"expected a number, got {raw!r}")
            out = number(raw)
        else:
            out = escape(str(raw))
        limit = max_length(datatype)
        if limit is not None and len(out) > limit:
            raise Hl7ValueError(f"{where} ({name})", f"{len(out)} characters once escaped, HL7 {datatype} allows {limit}")
        return out

    # ---- the one-time proof that the shape is valid ----------------------------------------

    def check(self) -> None:
        """Parse the shape with hl7apy (strict unless told) and validate it, filled with the
        worst values each slot can hold, and with every optional slot empty."""
        worst = {name: self.worst_value(datatype) for name, (_, datatype, _) in self.slots.items()}
        dates = {name: (v.date() if isinstance(v, datetime) else v) for name, v in worst.items()}
        least = {name: (worst[name] if name in self.required else "") for name in self.slots}
        self.checked = True
        try:
            for values in (worst, dates, least):
                validate(self.fill(**values), strict=self.strict)
        except Exception:
            self.checked = False
            raise

    @staticmethod
    def worst_value(datatype: str) -> Any:
        if datatype == "DTM":
            return datetime.fromisoformat("2026-12-31T23:59:59-09:30")
        if datatype == "DT":
            return date(2026, 12, 31)
        if datatype in NUMBER_TYPES:
            return 9999 if datatype == "SI" else Decimal("-123456.789")
        if datatype == "ID":
            return "A\\B"
        limit = min(max_length(datatype) or 199, 199)
        pattern = "Zoë|D'Hondt^Müller-Lefèvre&~\\"
        out = ""
        while len(escape(out + pattern[len(out) % len(pattern)])) <= limit:
            out += pattern[len(out) % len(pattern)]
        return out


def validate(message: str, strict: bool = True) -> Any:
    """hl7apy's verdict on one message: parse (strict or tolerant), then `validate()`.
    Raises on any error; returns the parsed message."""
    level = VALIDATION_LEVEL.STRICT if strict else VALIDATION_LEVEL.TOLERANT
    parsed = parse_message(message, validation_level=level)
    parsed.validate()
    return parsed
