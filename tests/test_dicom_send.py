"""`send dicom`: C-STORE to a real dcmtk storescp and to a real Orthanc, with the answers
remembered per destination (resume, refusals with their DIMSE status)."""

from __future__ import annotations

import json
import socket
import subprocess
import threading
import urllib.request
from pathlib import Path

import pytest
from pydicom import dcmread

from adapters.runtime import Ledger
from tests.conftest import cli, free_port, require_tool, wait_for
from tests.dicom_support import build_history, dataset_bytes


class LoopbackStorescp:
    """dcmtk's storescp, reached only through 127.0.0.1: storescp cannot bind to one address,
    so this listens on loopback and hands each association to `storescp --inetd`."""

    def __init__(self, out: Path, aet: str = "OIS", extra: tuple[str, ...] = (), port: int = 0,
                 associations: int | None = None):
        self.exe = require_tool("storescp")
        self.associations = associations  # stop listening after this many (the OIS is down)
        self.out, self.aet, self.extra = out, aet, extra
        out.mkdir(parents=True, exist_ok=True)
        self.sock = socket.create_server(("127.0.0.1", port))
        self.port = self.sock.getsockname()[1]
        self.children: list[subprocess.Popen] = []
        threading.Thread(target=self.serve, daemon=True).start()

    def serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                child = subprocess.Popen([self.exe, "--inetd", "-aet", self.aet, "-od", str(self.out), *self.extra],
                                         stdin=conn, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                self.children.append(child)
            child.wait(timeout=60)
            if self.associations is not None:
                self.associations -= 1
                if self.associations <= 0:
                    self.sock.close()
                    return

    def received(self) -> dict[str, Path]:
        return {str(dcmread(p, stop_before_pixels=True).SOPInstanceUID): p for p in self.out.iterdir() if p.is_file()}

    def close(self) -> None:
        try:
            self.sock.shutdown(socket.SHUT_RDWR)  # wakes the accepting thread (close alone does not)
        except OSError:
            pass
        self.sock.close()
        for child in self.children:
            if child.poll() is None:
                child.kill()
                child.wait(timeout=10)


@pytest.fixture
def db(tmp_path, monkeypatch):
    path = tmp_path / "ledger.sqlite3"
    with Ledger(str(path)) as ledger:
        build_history(ledger.app, tmp_path / "plans")
    return path


def send(db, port, *extra):
    proc = cli("send", "dicom", "--host", "127.0.0.1", "--port", str(port), "--called-aet", "OIS", "--timeout", "5", "--json",
               *extra, db=db)
    return proc.returncode, json.loads(proc.stdout)


@pytest.mark.slow
def test_storescp_receives_the_exported_files_and_a_second_send_sends_nothing(db, tmp_path):
    server = LoopbackStorescp(tmp_path / "received")
    try:
        out = tmp_path / "sent"
        code, report = send(db, server.port, "--out", str(out))
        assert code == 0, report
        assert (report["sent"], report["accepted"], report["refused"], report["error"]) == (10, 10, [], None)
        exported = {str(dcmread(p).SOPInstanceUID): p for p in out.rglob("*.dcm")}
        received = server.received()
        assert set(received) == set(exported) and len(exported) == 10
        for uid, path in exported.items():
            assert dataset_bytes(received[uid]) == dataset_bytes(path), path.name
        code, again = send(db, server.port)
        assert code == 0 and (again["sent"], again["already_accepted"]) == (0, 10)
        status = json.loads(cli("send", "status", "--host", "127.0.0.1", "--port", str(server.port),
                                "--called-aet", "OIS", "--json", db=db, check=True).stdout)
        assert (status["accepted"], status["refused"]) == (10, [])
    finally:
        server.close()


@pytest.mark.slow
def test_interrupted_send_resumes(db, tmp_path):
    received = tmp_path / "received"
    received.mkdir()
    # The OIS crashes right after answering the third instance and stays down.
    crash = f"test $(ls {received} | wc -l) -ge 3 && kill -9 $PPID"
    server = LoopbackStorescp(received, extra=("--exec-sync", "--exec-on-reception", crash), associations=1)
    try:
        code, first = send(db, server.port)
        assert code == 1 and first["error"], first
        assert (first["sent"], first["accepted"]) == (3, 3)
    finally:
        server.close()
    server = LoopbackStorescp(received, port=server.port)  # the same destination, back up
    try:
        code, second = send(db, server.port)
        assert code == 0, second
        assert (second["already_accepted"], second["sent"]) == (3, 7)
        assert len(server.received()) == 10
    finally:
        server.close()


@pytest.mark.slow
def test_unreachable_destination_then_limit_then_rest(db, tmp_path):
    port = free_port()
    code, report = send(db, port)
    assert code == 1 and "no association" in report["error"] and report["sent"] == 0
    server = LoopbackStorescp(tmp_path / "received", port=port)
    try:
        code, part = send(db, port, "--limit", "4")
        assert code == 0 and part["sent"] == 4
        code, rest = send(db, port)
        assert (rest["already_accepted"], rest["sent"]) == (4, 6)
        assert len(server.received()) == 10
    finally:
        server.close()


# ---- Orthanc --------------------------------------------------------------------------------


class Orthanc:
    def __init__(self, folder: Path, max_patients: int = 0):
        self.exe = require_tool("Orthanc")
        self.folder = folder
        self.dicom_port, self.http_port = free_port(), free_port()
        folder.mkdir(parents=True, exist_ok=True)
        self.start(max_patients)

    def start(self, max_patients: int) -> None:
        config = {
            "Name": "ledger-test", "StorageDirectory": str(self.folder / "db"), "IndexDirectory": str(self.folder / "db"),
            "DicomAet": "OIS", "DicomPort": self.dicom_port, "HttpPort": self.http_port,
            "RemoteAccessAllowed": False, "AuthenticationEnabled": False, "DicomCheckCalledAet": True,
            "MaximumPatientCount": max_patients, "Plugins": [], "LuaScripts": [],
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


@pytest.mark.slow
def test_orthanc_accepts_refuses_with_status_and_the_refused_are_sent_again(db, tmp_path):
    # Room for one patient, and that one protected: Orthanc refuses the second patient's
    # instances with 0xA700 (out of resources), as a full OIS store would.
    orthanc = Orthanc(tmp_path / "orthanc", max_patients=1)
    try:
        courses = {c["patient_id"]: c["id"] for c in json.loads(cli("course", "list", "--json", db=db).stdout)}
        code, first = send(db, orthanc.dicom_port, "--course", courses["PAT-1"])
        assert code == 0 and first["accepted"] == 6  # 4 sessions, the summary, the fallback plan
        [patient] = orthanc.get("/patients")
        orthanc.put(f"/patients/{patient}/protected", b"1")
        code, second = send(db, orthanc.dicom_port)
        assert code == 1
        assert (second["already_accepted"], second["sent"], second["accepted"]) == (6, 4, 0)
        assert {(r["course_id"], r["status"]) for r in second["refused"]} == {(courses["PAT-2"], "0xA700")}
        assert all("Out of Resources" in r["reason"] for r in second["refused"])
        refused = {r["uid"] for r in second["refused"]}
        status = json.loads(cli("send", "status", "--host", "127.0.0.1", "--port", str(orthanc.dicom_port),
                                "--called-aet", "OIS", "--json", db=db, check=True).stdout)
        assert {r["uid"]: r["status"] for r in status["refused"]} == {uid: "0xA700" for uid in refused}
        orthanc.stop()
        orthanc.start(max_patients=0)
        code, third = send(db, orthanc.dicom_port)
        assert code == 0 and (third["already_accepted"], third["sent"], third["accepted"]) == (6, 4, 4)
        stored = orthanc.sop_instance_uids()
        status = json.loads(cli("send", "status", "--host", "127.0.0.1", "--port", str(orthanc.dicom_port),
                                "--called-aet", "OIS", "--json", db=db, check=True).stdout)
        assert (status["accepted"], status["refused"]) == (10, [])
        assert refused <= stored and len(stored) == 10
    finally:
        orthanc.stop()


def test_tools_are_on_the_ci_list():
    listed = (Path(__file__).resolve().parent.parent / ".ci" / "apt-packages").read_text().split()
    assert {"dcmtk", "dicom3tools", "orthanc"} <= set(listed)
