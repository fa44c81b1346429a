"""An RT record read for its facts: only the elements a reader asks for are decoded.

`read_dataset` (adapters.dicom.plans) builds pydicom's whole Dataset and decodes every element,
which a plan needs (it is stored and written back). A treatment record is read for a dozen
values (patient, plan, fraction, metersets, date): decoding all of its ~150 elements was 79% of
a reconciliation. `read_record` keeps every check of `read_dataset` that comes before decoding
(the file's size, a deflated data set inflated in bounded steps, the structural walk
`check_body`), then indexes the data set's elements by tag and decodes an element only when a
reader asks for it, with pydicom's own converters (`convert_raw_data_element`: character sets,
DS/IS, person names as pydicom reads them). A sequence's items are indexed when it is first
asked for.

`Elements` answers as much of pydicom's Dataset as the record readers use (`get`, attribute
access, `in`, `keys`), so `session_facts`/`summary_facts` read either alike. A value that cannot
be decoded raises BadFile naming the attribute, where it is asked for: the readers extract every
fact before anything is written, so such a file is refused whole, by name.
"""

from __future__ import annotations

import io
from collections.abc import Iterator, MutableSequence
from functools import lru_cache
from pathlib import Path
from typing import Any

import pydicom
from pydicom.charset import convert_encodings, default_encoding
from pydicom.datadict import dictionary_VR, tag_for_keyword
from pydicom.dataelem import RawDataElement, convert_raw_data_element
from pydicom.filereader import read_partial
from pydicom.tag import BaseTag
from pydicom.values import convert_value
from pydicom.uid import UID, DeflatedExplicitVRLittleEndian

from adapters.dicom import BadFile
from adapters.dicom.complete import (
    ITEM, ITEM_END, SEQUENCE_END, UNDEFINED, Walker, check_body, check_structure, inflate, meta_info, not_an_object,
    read_file,
)

CHARSET = 0x00080005
MISSING = object()


@lru_cache(maxsize=None)
def tag_of(keyword: str) -> int | None:
    return tag_for_keyword(keyword)


@lru_cache(maxsize=None)
def is_sequence(tag: int) -> bool:
    try:
        return dictionary_VR(tag) == "SQ"
    except KeyError:  # a private or unknown tag: no reader asks for one
        return False


@lru_cache(maxsize=None)
def dictionary_vr(tag: int) -> str | None:
    try:
        return dictionary_VR(tag)
    except KeyError:  # pydicom decides (private tags, group lengths)
        return None


# VRs whose value pydicom's `convert_value` decodes alone (no VR to resolve, no UN to replace).
PLAIN_VRS = frozenset({"AE", "AS", "CS", "DA", "DS", "DT", "IS", "LO", "LT", "PN", "SH", "ST", "TM", "UC", "UI",
                       "UR", "UT", "FL", "FD", "SL", "SS", "UL", "US", "AT"})


def attribute_name(tag: int) -> str:
    keyword = pydicom.datadict.keyword_for_tag(tag) or "element"
    return f"{keyword} ({tag >> 16:04X},{tag & 0xFFFF:04X})"


class Elements:
    """The elements of one data set (or sequence item): tag -> where its value lies. Decoded on
    first use and kept (a record's few used values, not its control points)."""

    __slots__ = ("walker", "implicit", "order", "index", "encoding", "values")

    def __init__(self, walker: Walker, implicit: bool, order: str, index: dict[int, tuple],
                 parent_encoding: str | MutableSequence[str]):
        self.walker, self.implicit, self.order, self.index = walker, implicit, order, index
        self.values: dict[int, Any] = {}
        self.encoding = parent_encoding
        if CHARSET in index:
            self.encoding = convert_encodings(self.decoded(CHARSET, None))

    # ---- pydicom's Dataset, as far as the record readers use it ----------------------------

    def get(self, keyword: str, default: Any = None) -> Any:
        tag = tag_of(keyword)
        if tag is None or tag not in self.index:
            return default
        value = self.values.get(tag, MISSING)
        if value is MISSING:
            value = self.values[tag] = self.decoded(tag, self.encoding)
        return value

    def __getattr__(self, keyword: str) -> Any:
        if keyword.startswith("_"):
            raise AttributeError(keyword)
        value = self.get(keyword, MISSING)
        if value is MISSING:
            raise AttributeError(f"the data set has no {keyword}")
        return value

    def __contains__(self, keyword: object) -> bool:
        tag = tag_of(keyword) if isinstance(keyword, str) else keyword
        return tag in self.index

    def keys(self) -> Iterator[int]:
        return iter(self.index)

    # ---- decoding -----------------------------------------------------------------------------

    def decoded(self, tag: int, encoding: str | MutableSequence[str] | None) -> Any:
        vr, pos, length, implicit, order = self.index[tag]
        try:
            if vr == b"SQ" or (vr is None and is_sequence(tag)) or (vr == b"UN" and (
                    length == UNDEFINED or is_sequence(tag))):
                # an SQ read as UN holds implicit VR little endian (PS3.5 6.2.2)
                return self.items(tag, pos, length, True if vr == b"UN" else implicit, "<" if vr == b"UN" else order)
            data = self.walker.data
            name = dictionary_vr(tag) if vr is None else vr.decode("ascii")
            raw = RawDataElement(BaseTag(tag), name, length, bytes(data[pos:pos + length]), pos, implicit,
                                 order == "<")
            if name in PLAIN_VRS:  # pydicom's converter of the VR, without building a DataElement
                return convert_value(name, raw, encoding)
            return convert_raw_data_element(raw, encoding=encoding).value
        except BadFile:
            raise
        except Exception as exc:  # noqa: BLE001 - whatever pydicom trips on, the value is unusable: say which
            raise BadFile("bad_file.value_undecodable", attribute=attribute_name(tag), detail=str(exc)) from None

    def items(self, tag: int, pos: int, length: int, implicit: bool, order: str) -> list[Elements]:
        walker, out = self.walker, []
        end = None if length == UNDEFINED else pos + length
        owner = (tag >> 16, tag & 0xFFFF)
        while end is None or pos < end:
            item, _, size, value = walker.header(pos, True, order)
            if end is None and item == SEQUENCE_END:
                break
            if item != ITEM:
                raise walker.fail(f"sequence ({owner[0]:04X},{owner[1]:04X}) holds ({item >> 16:04X},"
                                  f"{item & 0xFFFF:04X}) where an item is due")
            if size == UNDEFINED:
                index, pos = elements_of(walker, value, None, implicit, order, ITEM_END)
            else:
                limit = end if end is not None else len(walker.data)
                if value + size > limit:
                    raise walker.fail(f"an item of sequence ({owner[0]:04X},{owner[1]:04X}) declares {size} bytes "
                                      f"but {max(limit - value, 0)} are left")
                index, pos = elements_of(walker, value, value + size, implicit, order, None)
            out.append(Elements(walker, implicit, order, index, self.encoding))
        return out


def elements_of(walker: Walker, pos: int, end: int | None, implicit: bool, order: str,
                closing: int | None) -> tuple[dict[int, tuple], int]:
    """Tag -> (VR, value position, length, implicit, byte order) of the elements from `pos` up to
    `end` or the `closing` delimiter, and the position after them. Values are not looked at; an
    undefined-length element is passed over with the walker (its items are indexed when used)."""
    index: dict[int, tuple] = {}
    limit = len(walker.data) if end is None else end
    while pos < limit:
        tag, vr, length, value = walker.header(pos, implicit, order)
        if closing is not None and tag == closing:
            return index, value
        index[tag] = (vr, value, length, implicit, order)
        if length == UNDEFINED:
            pos = walker.items(value, True if vr == b"UN" else implicit, "<" if vr == b"UN" else order,
                               (tag >> 16, tag & 0xFFFF))
        elif value + length > limit:
            raise walker.fail(f"element ({tag >> 16:04X},{tag & 0xFFFF:04X}) declares {length} bytes but "
                              f"{max(limit - value, 0)} are left")
        else:
            pos = value + length
    if closing is not None:
        raise walker.fail(f"the file ends at byte {len(walker.data)} before the end of an item")
    return index, pos


def encoding_of(data: bytes, start: int, syntax: str | None) -> tuple[bool, bool]:
    """(implicit VR, little endian) of the data set: what its transfer syntax says, when pydicom
    knows the syntax and the first element agrees; otherwise pydicom's own judgement (it guesses
    for a file without file meta, and follows the data where the file meta is wrong)."""
    uid = UID(syntax) if syntax else None
    if uid is not None and uid.is_transfer_syntax:
        implicit, little = uid.is_implicit_VR, uid.is_little_endian
        vr = data[start + 4:start + 6]
        if len(vr) < 2 or (not (0x40 < vr[0] < 0x5B and 0x40 < vr[1] < 0x5B)) == implicit:
            return implicit, little
    head = read_partial(io.BytesIO(data), stop_when=lambda *_: True, force=True)
    implicit, little = head.original_encoding
    return bool(implicit), bool(little)


def read_record(path: Path) -> Elements:
    """An RT treatment record's elements, checked as `read_dataset` checks a file before it
    decodes anything (bounded size, bounded inflation, the whole structure walked); BadFile
    otherwise, or when it is no DICOM object."""
    data = read_file(path)
    try:
        start, syntax = meta_info(data)
        if syntax is not None and UID(syntax) == DeflatedExplicitVRLittleEndian:
            body, implicit, little = inflate(data[start:]), False, True
            check_body(body, implicit, little)
        else:
            implicit, little = encoding_of(data, start, syntax)
            body = data[start:]
            check_structure(data, body, implicit, little)
        walker = Walker(body, implicit, little)
        order = "<" if little else ">"
        index, _ = elements_of(walker, 0, None, implicit, order, None)
        ds = Elements(walker, implicit, order, index, default_encoding)
    except BadFile:
        raise
    except Exception as exc:  # noqa: BLE001 - whatever trips on it, the file is unusable: say so, by name
        raise BadFile("bad_file.unreadable", detail=str(exc)) from None
    not_an_object(ds)
    return ds
