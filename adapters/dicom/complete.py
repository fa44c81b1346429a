"""Is a DICOM file whole? pydicom does not notice a file cut short inside its last element: the
value is simply shorter than declared, or a sequence lacks its closing delimiter (a plan UID cut
in half would then pass). So the file's own structure is walked, in its transfer syntax:

- file meta (group 0002) is explicit VR little endian; the data set follows in the transfer
  syntax it names (implicit or explicit VR, little or big endian, or deflated explicit VR little
  endian: the walk runs over the inflated bytes, and the deflate stream itself must be complete);
- nothing is taken beyond the limits of `adapters.files`: a deflated data set is inflated in
  bounded steps and refused once it would pass `DICOM_DATASET` (a 0.5 MiB deflate bomb inflates
  to gigabytes), and a file of more than `DICOM_ELEMENTS` elements is refused before they are
  parsed;
- an element of defined length must fit in what is left;
- a sequence or item of undefined length must be closed by its delimitation item, at any depth
  (an undefined-length UN holds implicit VR little endian, PS3.5 6.2.2);
- the last element must end exactly where the data ends.

A file cut exactly between two top-level elements is whole by these rules; what the reading
needs of it is then checked by the readers (a missing attribute is named).
"""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path
from typing import Any

import pydicom

from adapters.dicom import BadFile
from adapters.files import DICOM_DATASET, DICOM_ELEMENTS, DICOM_FILE, InputTooLarge, read_input, size_text

UNDEFINED = 0xFFFFFFFF
ITEM, ITEM_END, SEQUENCE_END = 0xFFFEE000, 0xFFFEE00D, 0xFFFEE0DD
# Explicit VRs whose length is a 4-byte field after 2 reserved bytes (PS3.5 7.1.2).
LONG_VRS = {b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"SV", b"UC", b"UN", b"UR", b"UT", b"UV"}


class Walker:
    def __init__(self, data: bytes, implicit: bool, little: bool, max_elements: int = DICOM_ELEMENTS):
        self.data = data
        self.implicit = implicit
        self.order = "<" if little else ">"
        self.count, self.max_elements = 0, max_elements

    def fail(self, code: str, **params: Any) -> BadFile:
        """A truncated file: a `bad_file.truncated_*` message and its values."""
        return BadFile(code, **params)

    def header(self, pos: int, implicit: bool, order: str) -> tuple[int, bytes | None, int, int]:
        """(tag, VR or None, length, position of the value) of the element at `pos`."""
        data = self.data
        self.count += 1
        if self.count > self.max_elements:
            raise BadFile("bad_file.too_many_elements", limit=self.max_elements)
        if pos + 8 > len(data):
            raise self.fail("bad_file.truncated_in_header", size=len(data), pos=pos)
        group, element = struct.unpack_from(order + "HH", data, pos)
        tag = group << 16 | element
        if group == 0xFFFE or implicit:
            (length,) = struct.unpack_from(order + "I", data, pos + 4)
            return tag, None, length, pos + 8
        vr = data[pos + 4:pos + 6]
        if vr in LONG_VRS:
            if pos + 12 > len(data):
                raise self.fail("bad_file.truncated_in_header_of", size=len(data), tag=f"({group:04X},{element:04X})")
            (length,) = struct.unpack_from(order + "I", data, pos + 8)
            return tag, vr, length, pos + 12
        (length,) = struct.unpack_from(order + "H", data, pos + 6)
        return tag, vr, length, pos + 8

    def elements(self, pos: int, end: int | None, implicit: bool, order: str, closing: int | None) -> int:
        """Walk elements from `pos` up to `end` (defined length) or to the `closing` delimiter;
        returns the position after what was walked."""
        limit = len(self.data) if end is None else end
        while pos < limit:
            tag, vr, length, value = self.header(pos, implicit, order)
            if closing is not None and tag == closing:
                return value  # delimitation items have length 0
            if length == UNDEFINED:
                # A sequence (SQ, or an undefined-length UN/implicit element) or encapsulated pixel data.
                inner_implicit = True if vr == b"UN" else implicit
                inner_order = "<" if vr == b"UN" else order
                pos = self.items(value, inner_implicit, inner_order, (tag >> 16, tag & 0xFFFF))
            else:
                if value + length > limit:
                    raise self.fail("bad_file.truncated_element", tag=f"({tag >> 16:04X},{tag & 0xFFFF:04X})",
                                    length=length, left=max(limit - value, 0))
                pos = value + length
        if closing is not None:
            raise self.fail("bad_file.truncated_item_end", size=len(self.data))
        return pos

    def items(self, pos: int, implicit: bool, order: str, owner: tuple[int, int]) -> int:
        """The items of an undefined-length sequence, up to its sequence delimiter."""
        while True:
            if pos + 8 > len(self.data):
                raise self.fail("bad_file.truncated_sequence_open", sequence=f"({owner[0]:04X},{owner[1]:04X})",
                                size=len(self.data))
            tag, _, length, value = self.header(pos, True, order)
            if tag == SEQUENCE_END:
                return value
            if tag != ITEM:
                raise self.fail("bad_file.truncated_sequence_holds", sequence=f"({owner[0]:04X},{owner[1]:04X})",
                                tag=f"({tag >> 16:04X},{tag & 0xFFFF:04X})")
            if length == UNDEFINED:
                pos = self.elements(value, None, implicit, order, ITEM_END)
            else:
                if value + length > len(self.data):
                    raise self.fail("bad_file.truncated_item", sequence=f"({owner[0]:04X},{owner[1]:04X})",
                                    length=length, left=len(self.data) - value)
                pos = value + length


def meta_info(data: bytes) -> tuple[int, str | None]:
    """Where the data set starts (after the preamble and file meta, group 0002, when present) and
    the transfer syntax the file meta names (None without one)."""
    pos = 132 if data[128:132] == b"DICM" else 0
    walker = Walker(data, implicit=False, little=True)
    syntax = None
    while pos + 4 <= len(data) and struct.unpack_from("<H", data, pos)[0] == 0x0002:
        tag, _, length, value = walker.header(pos, False, "<")
        if length == UNDEFINED or value + length > len(data):
            raise BadFile("bad_file.meta_truncated", size=len(data))
        if tag == 0x00020010:
            syntax = data[value:value + length].rstrip(b"\0 ").decode("ascii", "replace")
        pos = value + length
    return pos, syntax


def meta_end(data: bytes) -> int:
    return meta_info(data)[0]


def inflate(body: bytes, limit: int = DICOM_DATASET) -> bytes:
    """A deflated data set inflated, at most `limit` bytes of it: BadFile beyond (a deflate
    bomb never takes more memory than the limit) or when the deflate stream is cut short."""
    inflater = zlib.decompressobj(-zlib.MAX_WBITS)
    try:
        out = inflater.decompress(body, limit + 1)
    except zlib.error as exc:
        raise BadFile("bad_file.deflate_broken", detail=str(exc)) from None
    if len(out) > limit or inflater.unconsumed_tail:
        raise BadFile("bad_file.inflates_too_large", limit=size_text(limit), size=len(body))
    if not inflater.eof:
        raise BadFile("bad_file.deflate_cut")
    return out


def check_body(body: bytes, implicit: bool, little: bool) -> None:
    """BadFile("truncated: ...") unless the (inflated) data set `body` is whole."""
    Walker(body, implicit, little).elements(0, None, implicit, "<" if little else ">", None)


def check_complete(data: bytes, implicit: bool, little: bool, deflated: bool) -> None:
    """BadFile("truncated: ...") unless the data set is whole (see the module's rules).
    `implicit`/`little`/`deflated`: the data set's encoding, as the transfer syntax (or,
    without file meta, pydicom's detection) says."""
    body = data[meta_end(data):]
    check_body(inflate(body) if deflated else body, implicit, little)


# ---- what both readers (adapters/dicom/plans.py read_dataset, elements.py read_record) do first ----


def read_file(path: Path) -> bytes:
    """A DICOM file's bytes, its size checked before it is read."""
    try:
        return read_input(path, DICOM_FILE, "DICOM file")
    except InputTooLarge as exc:
        raise BadFile("bad_file.too_large", detail=str(exc)) from None


def not_an_object(ds: Any) -> None:
    if "SOPClassUID" not in ds:
        raise BadFile("bad_file.no_sop_class")


def check_structure(data: bytes, body: bytes, implicit: bool, little: bool) -> None:
    """`check_body` of a file's data set; a file that is no DICOM object at all (then it has
    fewer elements than the limit, and reads as truncated) is named as such."""
    try:
        check_body(body, implicit, little)
    except BadFile as exc:
        if str(exc).startswith("truncated"):
            not_an_object(pydicom.dcmread(io.BytesIO(data), force=True, specific_tags=["SOPClassUID"]))
        raise
