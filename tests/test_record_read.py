"""RT records read for the elements used (`adapters.dicom.elements.read_record`, issue 20): the
same facts as pydicom's whole dataset, in every encoding; a value that cannot be decoded in an
element a reader uses refuses that file by name (reconcile goes on, the import writes nothing);
one in an element no reader uses costs nothing."""

from __future__ import annotations

import re
import struct
from pathlib import Path

import pytest

from adapters.dicom import BadFile, iter_files
from adapters.dicom.baseline import Baseline, session_facts, summary_facts
from adapters.dicom.elements import read_record
from adapters.dicom.plans import read_dataset
from adapters.recovery import ois_side, run
from ledger.service import Actor
from tests.test_partner_returns_dicom import ENCODINGS, dcmconv, partner_ois
from tests.test_recovery import TZ, snapshot, world  # noqa: F401 - world is a fixture

CURRENT_FRACTION = struct.pack("<HH", 0x3008, 0x0022)  # CurrentFractionNumber, IS, in each beam's item
NUMBER_OF_WEDGES = struct.pack("<HH", 0x300A, 0x00D0)  # IS, in each beam's item; no reader asks for it


def facts(ds, path: Path) -> dict:
    return summary_facts(ds, TZ) if "summary" in path.name else session_facts(ds, TZ)


def edited(source: Path, target: Path, tag: bytes, vr: bytes, value: bytes) -> Path:
    """`source` with the (explicit VR, short) element `tag` given `vr` and a same-length `value`
    wherever it occurs."""
    data = bytearray(source.read_bytes())
    at = data.find(tag + b"IS")
    assert at > 0
    while at > 0:
        (length,) = struct.unpack_from("<H", data, at + 6)
        assert len(value) == length
        data[at + 4:at + 6] = vr
        data[at + 8:at + 8 + length] = value
        at = data.find(tag + b"IS", at + 8)
    target.write_bytes(bytes(data))
    return target


def test_a_record_read_for_its_facts_says_what_the_whole_dataset_says(world):
    ledger, courses, tmp = world
    ois = snapshot(ledger, tmp / "ois")
    files = list(iter_files([ois]))
    assert any("summary" in f.name for f in files) and any("record" in f.name for f in files)
    for path in files:
        assert facts(read_record(path), path) == facts(read_dataset(path), path), path


@pytest.mark.slow
def test_records_in_every_encoding_read_for_their_facts_as_written(tmp_path, monkeypatch):
    ois = partner_ois(tmp_path, monkeypatch)
    for name, options in ENCODINGS.items():
        for key, source in ois["files"].items():
            converted = dcmconv(source, tmp_path / f"{key}-{'_'.join(options)}.dcm", *options)
            read = summary_facts if key == "summary" else session_facts
            assert read(read_record(converted), TZ) == read(read_dataset(source), TZ), (name, key)


def test_a_value_a_reader_uses_that_cannot_be_decoded_refuses_that_file_by_name(world):
    ledger, courses, tmp = world
    ois = snapshot(ledger, tmp / "ois")
    record = next((ois / courses["P-A"]).glob("record_*f001*"))
    # A VR pydicom has no decoder for, then a number holding two values: neither can be used.
    edited(record, record.with_name("unknown-vr.dcm"), CURRENT_FRACTION, b"ZZ", b"1 ")
    edited(record, record.with_name("two-values.dcm"), CURRENT_FRACTION, b"IS", b"1\\")
    for name, reason in (("unknown-vr.dcm", "CurrentFractionNumber (3008,0022) cannot be decoded"),
                         ("two-values.dcm", "a value of the record cannot be read")):
        with pytest.raises(BadFile, match=re.escape(reason)):
            session_facts(read_record(record.with_name(name)), TZ)

    result = run(ledger, [ois], TZ)
    bad = {Path(p["file"]).name: p["error"] for p in result["unreadable_files"]}
    assert set(bad) == {"unknown-vr.dcm", "two-values.dcm"}
    assert "CurrentFractionNumber (3008,0022) cannot be decoded" in bad["unknown-vr.dcm"]
    assert result["totals"]["files_read"] == len(list(iter_files([ois])))
    assert not result["missing_in_ois"] and not result["unknown_to_ledger"] and not result["conflicts"]

    # The import names each file and writes nothing for it.
    events = len(list(ledger.app.recorder.select_notifications(1, 10_000)))
    baseline = Baseline(ledger, Actor("physicist", "HOME"))
    answers = list(baseline.import_files([record.with_name("unknown-vr.dcm"), record.with_name("two-values.dcm")]))
    assert [a["status"] for a in answers] == ["error", "error"]
    assert [Path(a["file"]).name for a in answers] == ["unknown-vr.dcm", "two-values.dcm"]
    assert "cannot be decoded" in answers[0]["error"] and "cannot be read" in answers[1]["error"]
    assert len(list(ledger.app.recorder.select_notifications(1, 10_000))) == events


def test_a_value_no_reader_uses_is_not_decoded(world):
    ledger, courses, tmp = world
    ois = snapshot(ledger, tmp / "ois")
    record = next((ois / courses["P-A"]).glob("record_*f001*"))
    odd = edited(record, tmp / "odd.dcm", NUMBER_OF_WEDGES, b"ZZ", b"0 ")
    with pytest.raises(BadFile, match="not a readable DICOM file"):
        read_dataset(odd)  # the whole dataset, every element decoded: refused
    assert session_facts(read_record(odd), TZ) == session_facts(read_record(record), TZ)
    sessions, problems, files = ois_side([odd], TZ)
    assert files == 1 and not problems and len(sessions) == 1


def test_hostile_files_are_refused_by_the_record_reader_as_by_the_whole_one(tmp_path):
    from pydicom.uid import ExplicitVRLittleEndian

    from adapters.files import DICOM_ELEMENTS
    from tests.test_security_files import UID, deflate_bomb, element, part10

    bomb = deflate_bomb(tmp_path / "bomb.dcm", 128)
    liar = tmp_path / "liar.dcm"
    liar.write_bytes(part10(ExplicitVRLittleEndian, element(0x0008, 0x0016, b"UI", UID)
                            + element(0x0009, 0x1010, b"OB", b"\1" * 64, declared=0xFFFFFFF0)))
    items = struct.pack("<HHI", 0xFFFE, 0xE000, 0) * (DICOM_ELEMENTS + 10)
    many = tmp_path / "many.dcm"
    many.write_bytes(part10(ExplicitVRLittleEndian, element(0x0008, 0x0016, b"UI", UID) + element(
        0x0009, 0x1020, b"SQ", items + struct.pack("<HHI", 0xFFFE, 0xE0DD, 0), declared=0xFFFFFFFF)))
    not_dicom = tmp_path / "notes.txt"
    not_dicom.write_text("the OIS export log\n" * 20)
    for path, reason in ((bomb, "too large: the deflated data set inflates past"),
                         (liar, "truncated: element (0009,1010) declares 4294967280 bytes but 64 are left"),
                         (many, f"too large: more than {DICOM_ELEMENTS} elements"),
                         (not_dicom, "")):
        with pytest.raises(BadFile) as whole:
            read_dataset(path)
        with pytest.raises(BadFile) as record:
            read_record(path)
        assert str(record.value) == str(whole.value) and reason in str(record.value), path
