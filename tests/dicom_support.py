"""Helpers for the DICOM tests: a course history with every kind of session, the dciodvfy
check, and the dataset part of a Part 10 file."""

from __future__ import annotations

import atexit
import json
import re
import shutil
import subprocess
import tempfile
import struct
import urllib.request
from datetime import datetime, timedelta, timezone
from pathlib import Path

from adapters.dicom.plans import import_plan_file
from ledger.service import Actor
from tests.conftest import free_port, require_tool, wait_for
from tools.dicom_samples import sample_plan, write_plan

HOME, PARTNER = "AZ-HOME", "PARTNER-RT"
START = datetime(2026, 11, 2, 8, 30, tzinfo=timezone(timedelta(hours=1)))
PHYSICIST = Actor("physicist.a", HOME)

# dicom3tools' table spells the Treatment Verification Status terms VERIFED / NOT_VERIFED
# (the documented quirk): the standard's VERIFIED / NOT_VERIFIED are reported as errors.
FALSE_POSITIVE = re.compile(
    r"^Error - Unrecognized enumerated value <(NOT_)?VERIFIED> for value 1 of attribute <Treatment Verification Status>$"
)


def dciodvfy_errors(path: Path, dciodvfy: str) -> list[str]:
    proc = subprocess.run([dciodvfy, str(path)], capture_output=True, text=True, timeout=60)
    lines = (proc.stdout + proc.stderr).splitlines()
    return [line for line in lines if line.startswith("Error") and not FALSE_POSITIVE.match(line)]


def dataset_bytes(path: Path) -> bytes:
    """The bytes after the preamble and the file meta group (what travelled over the network)."""
    data = path.read_bytes()
    assert data[128:132] == b"DICM", path
    # (0002,0000) UL group length: tag 4 + VR 2 + length 2, then the value.
    (group_length,) = struct.unpack("<I", data[140:144])
    return data[144 + group_length:]


_PLANS: dict[str, Path] = {}


def plan_files(folder: Path) -> dict[str, Path]:
    """A VMAT prescription with two fraction groups, the partner's re-plan of it, and a plain plan.
    Built once per test session (pydicom takes seconds over the control points), copied for each test."""
    if not _PLANS:
        cache = Path(tempfile.mkdtemp(prefix="fraction-ledger-plans-"))
        atexit.register(shutil.rmtree, cache, ignore_errors=True)
        _PLANS.update(_build_plan_files(cache))
    folder.mkdir(parents=True, exist_ok=True)
    return {name: Path(shutil.copyfile(path, folder / path.name)) for name, path in _PLANS.items()}


def _build_plan_files(folder: Path) -> dict[str, Path]:
    return {
        "vmat": write_plan(sample_plan("PAT-1", "PEETERS^AN", "Prostate VMAT", arc=True, control_points=91,
                                       groups=[(20, ["250.5", "248.1"]), (5, ["300"])]), folder / "vmat.dcm"),
        "fallback": write_plan(sample_plan("PAT-1", "PEETERS^AN", "VMAT TB2", arc=True, control_points=61,
                                           groups=[(20, ["251.5", "249.1"]), (5, ["301"])], machine="PARTNER-TB2"),
                               folder / "fallback.dcm"),
        "breast": write_plan(sample_plan("PAT-2", "JANSSENS^MARC", "Breast", groups=[(25, ["112.4", "109.8"])],
                                         file_meta=False), folder / "breast.dcm"),
        "other": write_plan(sample_plan("PAT-3", "OTHER^PATIENT", "Other"), folder / "other.dcm"),
    }


def build_history(app, folder: Path) -> dict:
    """Courses with: verified and unverified sessions, an interrupted fraction and its
    continuation at the partner on its fallback plan, a voided fraction, two fraction groups."""
    files = plan_files(folder)
    vmat = import_plan_file(app, files["vmat"], PHYSICIST, HOME)["course_id"]
    partner = Actor("physicist.p", PARTNER)
    assert import_plan_file(app, files["fallback"], partner, PARTNER, fallback_for=vmat)["status"] == "registered"
    app.assign_centre(vmat, PARTNER, PHYSICIST)
    breast = import_plan_file(app, files["breast"], PHYSICIST, HOME)["course_id"]

    def log(course, number, centre, machine, operator, day, **extra):
        return app.log_fraction(course, {"number": number, "centre": centre, "machine": machine, "operator": operator,
                                         "delivered_at": START + timedelta(days=day, hours=extra.pop("hours", 0)),
                                         **extra}, Actor(operator, centre))

    log(vmat, 1, HOME, "LINAC-1", "rtt.home.a", 0, group=1)
    app.verify_fraction(vmat, 1, "rtt.home.b", PHYSICIST, group=1)
    log(vmat, 2, PARTNER, "PARTNER-TB2", "rtt.partner.a", 1, group=1,
        beams=[{"number": 1, "delivered_mu": "120.25", "termination": "MACHINE"}])
    log(vmat, 2, PARTNER, "PARTNER-TB2", "rtt.partner.a", 1, hours=1, group=1, delivery_type="CONTINUATION",
        beams=[{"number": 1, "delivered_mu": "131.25"}, {"number": 2, "delivered_mu": "249.1"}])
    app.verify_fraction(vmat, 2, "rtt.partner.b", partner, group=1)
    log(vmat, 3, PARTNER, "PARTNER-TB2", "rtt.partner.a", 2, group=1)
    app.void_fraction(vmat, 3, "logged on the wrong patient", "rtt.partner.b", partner, group=1)
    log(vmat, 1, HOME, "LINAC-1", "rtt.home.a", 3, group=2)
    for k in range(1, 4):
        log(breast, k, HOME, "LINAC-1", "rtt.home.c", k - 1)
    return {"files": files, "vmat": vmat, "breast": breast}


class Orthanc:
    """A real Orthanc on loopback ports (its DICOM port binds every interface: Orthanc 1.10 cannot
    bind one), its REST API to load and list what it holds. `config`: more of Orthanc's settings."""

    def __init__(self, folder: Path, max_patients: int = 0, config: dict | None = None):
        self.exe = require_tool("Orthanc")
        self.folder = folder
        self.dicom_port, self.http_port = free_port(), free_port()
        folder.mkdir(parents=True, exist_ok=True)
        self.config = config or {}
        self.start(max_patients, self.config)

    def start(self, max_patients: int, extra: dict | None = None) -> None:
        config = {
            "Name": "ledger-test", "StorageDirectory": str(self.folder / "db"), "IndexDirectory": str(self.folder / "db"),
            "DicomAet": "OIS", "DicomPort": self.dicom_port, "HttpPort": self.http_port,
            "RemoteAccessAllowed": False, "AuthenticationEnabled": False, "DicomCheckCalledAet": True,
            "MaximumPatientCount": max_patients, "Plugins": [], "LuaScripts": [],
            **(self.config if extra is None else extra),
        }
        path = self.folder / "orthanc.json"
        path.write_text(json.dumps(config))
        self.log = (self.folder / "orthanc.log").open("ab")
        self.proc = subprocess.Popen([self.exe, str(path)], stdout=self.log, stderr=subprocess.STDOUT)
        try:
            wait_for(self.answers, "Orthanc starting", seconds=30, every=0.2)
        except AssertionError:
            self.stop()
            raise

    def answers(self) -> bool:
        try:
            self.get("/system")
            return True
        except OSError:
            return False

    def get(self, path: str):
        with urllib.request.urlopen(f"http://127.0.0.1:{self.http_port}{path}", timeout=10) as r:
            return json.loads(r.read())

    def put(self, path: str, body: bytes) -> None:
        urllib.request.urlopen(urllib.request.Request(f"http://127.0.0.1:{self.http_port}{path}", data=body,
                                                      method="PUT"), timeout=10).close()

    def upload(self, *paths: Path) -> None:
        """Store DICOM files in Orthanc through its REST API (as an OIS archive would hold them)."""
        for path in paths:
            request = urllib.request.Request(f"http://127.0.0.1:{self.http_port}/instances", data=path.read_bytes(),
                                             method="POST", headers={"Content-Type": "application/dicom"})
            urllib.request.urlopen(request, timeout=10).close()

    def sop_instance_uids(self) -> set[str]:
        return {self.get(f"/instances/{i}/simplified-tags")["SOPInstanceUID"] for i in self.get("/instances")}

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.log.close()
