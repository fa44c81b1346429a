"""`fraction-ledger drill`: one command that rehearses a whole outage on a scratch network and
reports what held (issue 19).

Everything is played through the product's own interfaces: the DICOM listener (a separate
`listen` process fed over DICOM), the HTTP API of a separate `serve` process (RTTs, physicists and
finance with one account each), and the command line (click's runner) for what physicists do at a
terminal (bundles, reconcile, sends, billing, verify). Every process runs on one clock: the
instant in FRACTION_LEDGER_CLOCK (else now) plus the drill's elapsed time; every date of the
scenario is generated relative to it, and every choice from `--seed`, so a seed gives the same
checks and counts.

The story (see /work/shared/domain.md): the home OIS pushes its baseline, then goes down; the
courses are triaged and sent to partners, who log and double-check over HTTP, with the mistakes
the rules must refuse; one partner works offline and returns a signed bundle with its own
re-plan numbering; the OIS is restored from the day-before backup, losing a day of records
(FANC REX 3) and some sessions (St. Luc); then reconcile, import set, DICOM and HL7 to the home
systems, acknowledgement, billing between the centres, incidents home, and `verify`.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from datetime import time as clock_time
from pathlib import Path
from collections.abc import Callable
from typing import Any

import click

from tools.drill_recovery import HOME, INTERRUPTED, OFFLINE, RACE, REREGISTER, REX, TWICE, ZONE, Recovery

OIS_AET = "HOME-OIS"
BIRTH = "1961-03-14"  # tools.dicom_samples writes this birth date on every plan
FAMILIES = ["PEETERS", "JANSSENS", "MAES", "JACOBS", "MERTENS", "WILLEMS", "CLAES", "GOOSSENS", "WOUTERS",
            "DUBOIS", "LAMBERT", "DUPONT", "MARTIN", "SIMON", "LAURENT", "LEROY"]
GIVEN = ["AN", "MARC", "LIEVE", "JAN", "ELS", "LUC", "MARIE", "PIET", "SOFIE", "TOM", "INGE", "KOEN"]
TECHNIQUES = ["3D-CRT", "VMAT", "electron", "IMRT+setup"]
SHORT = {"3D-CRT": "3DCRT", "VMAT": "VMAT", "electron": "ELEC", "IMRT+setup": "IMRT"}


def rtt(centre: str, who: str) -> str:
    """The account of RTT `who` ("a" logs, "b" double-checks) at a centre."""
    return f"rtt.{'home' if centre == HOME else centre.lower()}.{who}"


@dataclass
class CourseSpec:
    index: int
    patient_id: str
    name: str
    label: str
    technique: str
    planned: int
    baseline: int            # fractions delivered at home before the outage (the last on the lost day)
    triage: int
    metersets: list[str]     # of the treatment beams, in beam order
    plan_beams: list         # as tools.dicom_samples.sample_plan takes them
    centre: str | None = None  # the partner it is assigned to
    outage: int = 0          # fractions the partner gives during the outage
    course_id: str = ""
    plan_path: Path | None = None
    records: dict[int, Path] = field(default_factory=dict)  # the home OIS's record per fraction


@dataclass
class Check:
    """One check: `name` is its sentence in English with {placeholders} for `params` (the report
    renders it in the reader's language: tools/drill_i18n)."""

    phase: str
    name: str
    expected: Any
    found: Any
    params: dict = field(default_factory=dict)

    def text(self, tr: Callable[[str], str] = str) -> str:
        return tr(self.name).format(**self.params)

    @property
    def ok(self) -> bool:
        return self.expected == self.found


def scenario(seed: int, courses: int, partners: list[str]) -> list[CourseSpec]:
    """The courses, their techniques, triage codes, baselines and assignments, from the seed alone."""
    rng = random.Random(seed)
    online, offline = partners[:-1], partners[-1]
    specs = []
    for i in range(courses):
        technique = "3D-CRT" if i in (INTERRUPTED, TWICE) else TECHNIQUES[rng.randrange(len(TECHNIQUES))]
        planned = rng.choice([5, 10, 15, 20, 25, 30])
        triage = rng.randint(1, 3) if i <= REREGISTER else rng.randint(1, 5)
        mu = lambda lo, hi: f"{rng.uniform(lo, hi):.1f}"  # noqa: E731
        if technique == "3D-CRT":
            metersets = [mu(80, 200) for _ in range(rng.randint(2, 4))]
            beams: list = list(metersets)
        elif technique == "VMAT":
            metersets = [mu(200, 320) for _ in range(2)]
            beams = list(metersets)
        elif technique == "electron":
            metersets = [mu(150, 260)]
            beams = [{"meterset": metersets[0], "radiation": "ELECTRON", "energy": "9",
                      "applicator": ("A10", "ELECTRON_SQUARE")}]
        else:
            metersets = [mu(60, 140) for _ in range(rng.randint(3, 5))]
            beams = [{"meterset": None, "setup": True}, *metersets]
        if i == REX:
            baseline = planned - 1          # the last home fraction (on the lost day) never reached the ledger
        elif i == OFFLINE:
            baseline = planned - 3          # the offline partner's re-plan gives the last three
        else:
            baseline = rng.randint(2, planned - 3)
        family, given = FAMILIES[i % len(FAMILIES)], GIVEN[(i * 7 + seed) % len(GIVEN)]
        # RTPlanLabel is a DICOM SH: at most 16 characters.
        spec = CourseSpec(i, f"DRILL-{i + 1:03d}", f"{family}^{given}", f"{SHORT[technique]} {planned}fx #{i + 1}",
                          technique, planned, baseline, triage, metersets, beams)
        if i == OFFLINE:
            spec.centre, spec.outage = offline, 3
        elif triage <= 3:
            spec.centre = online[i % len(online)]
            spec.outage = 1 if i == REX else min(rng.randint(1, 2), planned - baseline)
        specs.append(spec)
    return specs


def replan_beams(s: CourseSpec) -> list:
    """The partner's re-plan on its own linac: the same beams, 2% more MU (well within the 10% a
    re-plan may differ before the home physicist must approve it)."""
    beams: list = []
    for b in s.plan_beams:
        if isinstance(b, dict):
            beams.append(b if b.get("setup") else {**b, "meterset": f"{float(b['meterset']) * 1.02:.1f}"})
        else:
            beams.append(f"{float(b) * 1.02:.1f}")
    return beams


class Drill(Recovery):
    def __init__(self, out: Path, courses: int, partners: int, seed: int, peers: str, echo=click.echo):
        self.out, self.seed, self.peers, self.echo = out, seed, peers, echo
        self.partners = [f"PARTNER-{k}" for k in range(1, partners + 1)]
        self.online, self.offline = self.partners[:-1], self.partners[-1]
        self.specs = scenario(seed, courses, self.partners)
        clock = os.environ.get("FRACTION_LEDGER_CLOCK", "").strip()
        self.start = datetime.fromisoformat(clock) if clock else datetime.now(ZONE).replace(microsecond=0)
        if self.start.tzinfo is None:
            raise click.BadParameter(f"{clock!r} needs a UTC offset", param_hint="FRACTION_LEDGER_CLOCK")
        self.began = time.monotonic()
        today = self.start.astimezone(ZONE).date()
        self.outage_day = today - timedelta(days=4)   # the OIS went down the evening before
        self.lost_day = self.outage_day - timedelta(days=1)  # erased by the restore (REX 3)
        self.restore_point = datetime.combine(self.lost_day, clock_time(0, 0), tzinfo=ZONE)
        self.checks: list[Check] = []
        self.timeline: list[dict] = []
        self.counts: Counter = Counter()
        self.tokens: dict[str, str] = {}
        self.db = str(out / "home.sqlite3")
        self.skipped: list[dict] = []  # {"text": sentence, "params": {...}}
        self.delivered: dict[int, dict[int, str]] = {s.index: {} for s in self.specs}  # course -> number -> centre
        self.refusals: list[tuple[str, int]] = []  # (course id, fraction) of live attempts refused

    # ---- plumbing --------------------------------------------------------------------------

    def now(self) -> datetime:
        return self.start + timedelta(seconds=time.monotonic() - self.began)

    def env(self) -> dict[str, str]:
        """For a process started now: the drill's clock, this checkout importable, and English lines
        (the drill reads a listener's "listening as ..." line; its report has its own --lang)."""
        root = str(Path(__file__).resolve().parent.parent)
        path = os.environ.get("PYTHONPATH", "")
        return {"FRACTION_LEDGER_CLOCK": self.now().isoformat(), "PYTHONPATH": root + (os.pathsep + path if path else ""),
                "FRACTION_LEDGER_LANG": "en"}

    def check(self, phase: str, name: str, expected: Any, found: Any, **params: Any) -> bool:
        c = Check(phase, name, expected, found, params)
        self.checks.append(c)
        if not c.ok:
            self.echo(f"  FAIL {c.text()}: expected {expected}, found {found}", err=True)
        return c.ok

    @contextlib.contextmanager
    def phase(self, name: str):
        began, at = time.monotonic(), self.now()
        self.echo(f"{name} ...", err=True)
        try:
            yield name
        finally:
            self.timeline.append({"phase": name, "started": at.isoformat(timespec="seconds"),
                                  "seconds": round(time.monotonic() - began, 1)})

    def cli(self, *args: str, db: str | None = None, user: str = "physicist.home", centre: str = HOME,
            expect_ok: bool = True) -> Any:
        """A `fraction-ledger` command as a physicist types it (click's runner, in this process)."""
        from click.testing import CliRunner

        from tools.cli import main

        os.environ["FRACTION_LEDGER_CLOCK"] = self.now().isoformat()
        result = CliRunner().invoke(main, ["--db", db or self.db, "--user", user, "--centre", centre, *args],
                                    catch_exceptions=False, env={"FRACTION_LEDGER_LANG": "en"})  # it reads refusals
        if expect_ok and result.exit_code != 0:
            raise DrillError(f"fraction-ledger {' '.join(args)} failed ({result.exit_code}): {result.stderr.strip()}")
        return result

    def cli_json(self, *args: str, **kw) -> Any:
        return json.loads(self.cli(*args, "--json", **kw).stdout)

    def api(self, method: str, path: str, user: str, body: Any = None, key: str | None = None):
        headers = {"Authorization": f"Bearer {self.tokens[user]}"}
        if key:
            headers["Idempotency-Key"] = f"drill-{self.seed}-{key}"
        return self.http.request(method, path, headers=headers, json=body)

    # ---- the scratch network ---------------------------------------------------------------

    def build(self) -> None:
        """Plans of mixed techniques, and the records the home OIS holds of the baseline: written
        by one scratch ledger playing the OIS (as `tools.partner_samples` does for one course)."""
        from pydicom import dcmread

        from adapters.dicom.export import export_all
        from adapters.dicom.plans import import_plan_file
        from adapters.runtime import Ledger
        from ledger.service import Actor
        from tools.dicom_samples import sample_plan, write_plan

        (self.out / "plans").mkdir(parents=True)
        ois = self.out / "ois"
        ois.mkdir()
        by_patient = {s.patient_id: s for s in self.specs}
        now = datetime.combine(self.outage_day, clock_time(7, 0), tzinfo=ZONE)
        with Ledger(str(ois / "ois.sqlite3"), clock=lambda: now, read_db=str(ois / "ois.read.sqlite3")) as scratch:
            for s in self.specs:
                s.plan_path = write_plan(sample_plan(s.patient_id, s.name, s.label, groups=[(s.planned, s.plan_beams)],
                                                     arc=s.technique == "VMAT", control_points=5 if s.technique == "VMAT" else 2,
                                                     machine="HOME-LINAC-1", mlc_pairs=20),
                                         self.out / "plans" / f"{s.patient_id}.dcm")
                course = import_plan_file(scratch.app, s.plan_path, Actor("physicist", HOME), HOME)["course_id"]
                for k in range(1, s.baseline + 1):
                    scratch.app.log_fraction(course, {"number": k, "centre": HOME, "machine": "HOME-LINAC-1",
                                                      "operator": "rtt.ois", "delivered_at": self.home_time(s, k)},
                                             Actor("rtt.ois", HOME))
            for exported in export_all(scratch.app, scratch.fresh(), ois / "records", kinds=("record",)):
                ds = dcmread(exported.path, stop_before_pixels=True)
                number = int(ds.TreatmentSessionBeamSequence[0].CurrentFractionNumber)
                by_patient[str(ds.PatientID)].records[number] = exported.path
        self.counts["baseline records (home OIS)"] = sum(len(s.records) for s in self.specs)

    def home_time(self, s: CourseSpec, k: int) -> datetime:
        """Fraction k of the baseline: one a day, the last (k = baseline) on the lost day."""
        day = self.lost_day - timedelta(days=s.baseline - k)
        return datetime.combine(day, clock_time(8, 0), tzinfo=ZONE) + timedelta(minutes=20 * (s.index % 24))

    def outage_time(self, s: CourseSpec, j: int) -> datetime:
        """The j-th fraction (0-based) at the partner, after hours, on the outage days."""
        day = self.outage_day + timedelta(days=j)
        return datetime.combine(day, clock_time(17, 0), tzinfo=ZONE) + timedelta(minutes=10 * (s.index % 30))

    def accounts(self) -> None:
        people = [("physicist.home", "physicist", HOME), ("finance.home", "finance", HOME),
                  ("rtt.home.a", "rtt", HOME), ("rtt.home.b", "rtt", HOME)]
        for p in self.online:
            people += [(rtt(p, "a"), "rtt", p), (rtt(p, "b"), "rtt", p)]
        for name, role, centre in people:
            made = self.cli_json("user", "add", name, "--role", role, "--centre", centre, user="admin.drill")
            self.tokens[name] = made["token"]
        self.counts["accounts"] = len(people)

    # ---- 1. the baseline over DICOM, then the OIS goes down ----------------------------------

    def baseline_over_dicom(self, listener: subprocess.Popen, port: int) -> None:
        from pydicom import dcmread
        from pynetdicom import AE
        from pynetdicom.sop_class import RTBeamsTreatmentRecordStorage, RTPlanStorage

        ae = AE(ae_title=OIS_AET)
        for context in (RTPlanStorage, RTBeamsTreatmentRecordStorage):
            ae.add_requested_context(context)
        assoc = ae.associate("127.0.0.1", port, ae_title="LEDGER")
        if not assoc.is_established:
            raise DrillError(f"the listener on 127.0.0.1:{port} refused the association")
        statuses: Counter = Counter()
        sent = 0
        try:
            # Plans first, then the records; the REX 3 course's record of the lost day never left the OIS.
            objects = [s.plan_path for s in self.specs]
            objects += [p for s in self.specs for k, p in sorted(s.records.items())
                        if not (s.index == REX and k == s.baseline)]
            for path in objects:
                answer = assoc.send_c_store(dcmread(path))
                statuses[f"0x{int(answer.Status):04X}" if answer and "Status" in answer else "none"] += 1
                sent += 1
        finally:
            assoc.release()
        self.counts["DICOM objects pushed to the listener"] = sent
        self.check("1 baseline", "every object pushed answered Success (0x0000)", {"0x0000": sent}, dict(statuses))

    def read_courses(self) -> None:
        rows = self.cli_json("course", "list")
        by_patient = {r["patient_id"]: r for r in rows}
        for s in self.specs:
            s.course_id = by_patient.get(s.patient_id, {}).get("id", "")
            for k in s.records:
                if not (s.index == REX and k == s.baseline):
                    self.delivered[s.index][k] = HOME
        self.check("1 baseline", "courses registered by the listener from their RT Plans", len(self.specs),
                   sum(1 for s in self.specs if s.course_id))
        self.check("1 baseline", "baseline fractions in the ledger (all pushed records)",
                   sum(len(d) for d in self.delivered.values()),
                   sum(r["fractions_delivered"] for r in rows))

    # ---- 2. triage, assignment, the partners at work ---------------------------------------

    def triage_and_assign(self) -> None:
        for s in self.specs:
            self.expect_status(self.api("POST", f"/api/courses/{s.course_id}/triage", "physicist.home",
                                        {"triage": s.triage}, f"triage-{s.index}"), 200, "triage")
            if s.centre:
                self.expect_status(self.api("POST", f"/api/courses/{s.course_id}/assign", "physicist.home",
                                            {"centre": s.centre}, f"assign-{s.index}"), 200, "assign")
        listed = {c["id"]: c for c in self.api("GET", "/api/courses", "physicist.home").json()}
        self.check("2 outage", "triage code of every course as on the triage list",
                   {s.patient_id: s.triage for s in self.specs},
                   {s.patient_id: listed.get(s.course_id, {}).get("triage") for s in self.specs})
        self.counts["courses assigned to partners"] = sum(1 for s in self.specs if s.centre)
        self.counts["courses waiting (triage 4-5)"] = sum(1 for s in self.specs if not s.centre)
        for p in self.online:
            seen = sorted(c["patient_id"] for c in self.api("GET", "/api/courses", rtt(p, "a")).json())
            self.check("2 outage", "an RTT of {centre} sees exactly the courses assigned to {centre}",
                       sorted(s.patient_id for s in self.specs if s.centre == p), seen, centre=p)

    def expect_status(self, response, status: int, what: str) -> Any:
        if response.status_code != status:
            raise DrillError(f"{what}: HTTP {response.status_code} where {status} was expected: {response.text[:300]}")
        return response.json()

    def log(self, s: CourseSpec, number: int, user: str, at: datetime, key: str, **extra):
        body = {"number": number, "machine": self.machine_of(s.centre or HOME), "delivered_at": at.isoformat(), **extra}
        return self.api("POST", f"/api/courses/{s.course_id}/fractions/", user, body, key)

    @staticmethod
    def machine_of(centre: str) -> str:
        return "HOME-LINAC-1" if centre == HOME else f"P{centre.rsplit('-', 1)[-1]}-TB1"

    def partner_fractions(self) -> None:
        """Every assigned course's outage fractions, each double-checked by a second RTT."""
        for s in self.specs:
            if not s.centre or s.centre == self.offline:
                continue
            a, b = rtt(s.centre, "a"), rtt(s.centre, "b")
            first = s.planned if s.index == REX else s.baseline + 1
            for j in range(s.outage):
                number = first + j
                if s.index == INTERRUPTED and j == 0:
                    self.interrupted(s, number, a, b)
                    continue
                if s.index == RACE and j == 0:
                    self.race(s, number)
                    continue
                r = self.log(s, number, a, self.outage_time(s, j), f"log-{s.index}-{number}")
                if r.status_code == 201:
                    self.delivered[s.index][number] = s.centre
                    self.counts["fractions logged over HTTP"] += 1
                if s.index == TWICE and j == 0:
                    mine = self.api("POST", f"/api/courses/{s.course_id}/fractions/{number}/verify", a, {},
                                    f"self-{s.index}")
                    self.refused("2 outage", "{patient}: an RTT verifying its own fraction is refused (four eyes)", s, number,
                                 mine, "verifier_is_operator")
                self.verify(s, number, b)
                if s.index == TWICE and j == 0:
                    # The second RTT, not seeing the first's record, logs the same fraction again.
                    again = self.log(s, number, b, self.outage_time(s, j) + timedelta(minutes=25), f"twice-{s.index}")
                    self.refused("2 outage", "{patient}: a fraction logged twice is refused", s, number, again,
                                 "fraction_already_delivered")

    def verify(self, s: CourseSpec, number: int, user: str) -> None:
        r = self.api("POST", f"/api/courses/{s.course_id}/fractions/{number}/verify", user, {}, f"verify-{s.index}-{number}")
        if r.status_code == 200:
            self.counts["fractions verified by a second RTT"] += 1
        else:
            self.check("2 outage", "{patient} fraction {number} verified by a second RTT", 200, r.status_code,
                       patient=s.patient_id, number=number)

    def refused(self, phase: str, name: str, s: CourseSpec, number: int, response, code: str) -> None:
        found = response.status_code, (response.json().get("error") if response.status_code >= 400 else "accepted")
        if self.check(phase, name, (409, code), found, patient=s.patient_id):
            self.refusals.append((s.course_id, number))
            self.counts["live attempts refused by the rules"] += 1
        elif response.status_code == 201:
            self.counts["live attempts wrongly accepted"] += 1

    def race(self, s: CourseSpec, number: int) -> None:
        """The home centre and the partner log the same fraction at the same moment."""
        barrier, answers = threading.Barrier(2), {}
        at = self.outage_time(s, 0)

        def one(user: str, centre: str) -> None:
            body = {"number": number, "machine": self.machine_of(centre), "delivered_at": at.isoformat()}
            barrier.wait(timeout=30)
            answers[centre] = self.api("POST", f"/api/courses/{s.course_id}/fractions/", user, body, f"race-{user}")

        racers = [threading.Thread(target=one, args=(rtt(s.centre, "a"), s.centre)),
                  threading.Thread(target=one, args=("rtt.home.a", HOME))]
        for t in racers:
            t.start()
        for t in racers:
            t.join(timeout=120)
        codes = sorted(r.status_code for r in answers.values())
        self.check("2 outage", "{patient}: two centres racing for fraction {number}: one accepted, one refused",
                   [201, 409], codes, patient=s.patient_id, number=number)
        for centre, r in answers.items():
            if r.status_code == 201:
                self.delivered[s.index][number] = centre
                self.counts["fractions logged over HTTP"] += 1
                self.verify(s, number, rtt(centre, "b"))
            elif r.status_code == 409:
                self.refusals.append((s.course_id, number))
                self.counts["live attempts refused by the rules"] += 1
        if codes == [201, 201]:
            self.counts["live attempts wrongly accepted"] += 1

    def interrupted(self, s: CourseSpec, number: int, a: str, b: str) -> None:
        """A session stopped by the machine half-way through beam 2, then its continuation."""
        full = [{"number": n, "delivered_mu": mu} for n, mu in self.beam_numbers(s)]
        last_number, last_mu = self.beam_numbers(s)[-1]
        half = f"{float(last_mu) / 2:.1f}"
        first = [*full[:-1], {"number": last_number, "delivered_mu": half, "termination": "MACHINE"}]
        r = self.log(s, number, a, self.outage_time(s, 0), f"interrupted-{s.index}", beams=first)
        rest = f"{float(last_mu) - float(half):.1f}"
        c = self.log(s, number, a, self.outage_time(s, 0) + timedelta(minutes=30), f"continued-{s.index}",
                     type="CONTINUATION", beams=[{"number": last_number, "delivered_mu": rest}])
        self.check("2 outage", "{patient}: the interrupted session and its continuation are accepted",
                   [201, 201], [r.status_code, c.status_code], patient=s.patient_id)
        if r.status_code == 201:
            self.delivered[s.index][number] = s.centre
            self.counts["fractions logged over HTTP"] += 1
            self.counts["continuations logged"] += int(c.status_code == 201)
        self.verify(s, number, b)
        course = self.api("GET", f"/api/courses/{s.course_id}", a).json()
        self.check("2 outage", "{patient}: the interrupted fraction and its continuation count once",
                   s.baseline + 1, course.get("fractions_delivered"), patient=s.patient_id)
        again = self.log(s, number, a, self.outage_time(s, 0) + timedelta(minutes=50), f"continued-again-{s.index}",
                         type="CONTINUATION", beams=[{"number": last_number, "delivered_mu": rest}])
        self.refused("2 outage", "{patient}: a second continuation of a completed fraction is refused", s, number, again,
                     "fraction_already_delivered")

    def beam_numbers(self, s: CourseSpec) -> list[tuple[int, str]]:
        """(beam number, MU) of the treatment beams: beams are numbered in plan order, setup beams first."""
        offset = 1 if s.technique == "IMRT+setup" else 0
        return [(offset + n, mu) for n, mu in enumerate(s.metersets, 1)]

    def rex3(self) -> None:
        """FANC REX 3: the lost day's fraction of one course is re-registered late; the count is then
        current, and an extra fraction is refused. Another course's fraction, re-registered by hand
        from the schedule although the ledger has it, is refused too."""
        s = self.specs[REX]
        late = self.log(s, s.baseline, "rtt.home.a", self.home_time(s, s.baseline), f"late-{s.index}")
        self.check("2 outage", "{patient}: REX 3 late re-registration of fraction {number} (lost day) accepted",
                   201, late.status_code, patient=s.patient_id, number=s.baseline)
        if late.status_code == 201:
            self.delivered[s.index][s.baseline] = HOME
            self.counts["fractions logged over HTTP"] += 1
            self.verify(s, s.baseline, "rtt.home.b")
        shown = self.api("GET", f"/api/courses/{s.course_id}", "rtt.home.a").json()
        self.check("2 outage", "{patient}: REX 3 count current after the late re-registration",
                   f"{s.planned}/{s.planned}", f"{shown.get('fractions_delivered')}/{shown.get('fractions_planned')}",
                   patient=s.patient_id)
        a = rtt(s.centre, "a")
        extra = self.log(s, s.planned + 1, a, self.outage_time(s, 1), f"extra-{s.index}")
        self.refused("2 outage", "{patient}: REX 3 extra fraction beyond the prescription is refused", s, s.planned + 1, extra,
                     "fraction_out_of_range")
        r = self.specs[REREGISTER]
        again = self.log(r, r.baseline, "rtt.home.b", self.home_time(r, r.baseline), f"reregister-{r.index}")
        self.refused("2 outage", "{patient}: REX 3 re-registration by hand of a fraction the ledger holds is refused", r,
                     r.baseline, again, "fraction_already_delivered")

    # ---- the offline partner -----------------------------------------------------------------

    def offline_partner(self) -> None:
        """The partner works on its own ledger (no network), re-plans on its linac, its OIS writes
        records in the re-plan's own numbering, one file per beam; it returns a signed bundle."""
        from tools.dicom_samples import sample_plan, write_plan
        from tools.partner_samples import per_beam, scratch_records
        from adapters.dicom.export import encode
        from pydicom import dcmread

        s, p = self.specs[OFFLINE], self.offline
        folder = self.out / p
        folder.mkdir()
        db = str(folder / "ledger.sqlite3")
        remaining = s.planned - s.baseline
        machine = self.machine_of(p)
        partner_id = f"{p[-1]}-{s.patient_id}"
        replan = write_plan(sample_plan(partner_id, s.name, f"Re-plan P{p.rsplit('-', 1)[-1]}",
                                        groups=[(remaining, replan_beams(s))], machine=machine, mlc_pairs=20),
                            folder / "replan.dcm")
        pcli = lambda *a, **kw: self.cli(*a, db=db, user=f"physicist.{p.lower()}", centre=p, **kw)  # noqa: E731
        pcli("import", "plan", str(s.plan_path), "--centre", HOME)
        pcli("course", "identity", s.course_id, "--centre", p, "--patient-id", partner_id, "--name", s.name,
             "--birth-date", BIRTH)
        pcli("import", "plan", str(replan), "--centre", p, "--fallback-for", s.course_id,
             "--starts-at", str(s.baseline + 1))
        days = [self.outage_time(s, j) for j in range(remaining)]
        returns = folder / "partner-ois"
        returns.mkdir()
        files = 0
        for path in scratch_records(folder / "scratch", replan, p, machine, days):
            for one in per_beam(dcmread(path)):
                (returns / f"{one.SOPInstanceUID}.dcm").write_bytes(encode(one))
                files += 1
        pcli("import", "records", str(returns))
        surplus = pcli("fraction", "log", s.course_id, "--number", str(s.planned + 1), "--centre", p,
                       "--machine", machine, "--operator", rtt(p, "a"),
                       "--at", self.outage_time(s, remaining).isoformat(), expect_ok=False)
        self.check("2 outage", "{patient}: at the offline partner, a fraction beyond the re-plan is refused",
                   (1, True), (surplus.exit_code, "outside the prescription" in surplus.stderr), patient=s.patient_id)
        key = folder / f"{p}.ed25519"
        pcli("centre", "keygen", p, "--out", str(key))
        bundle = folder / f"{p}.bundle"
        pcli("bundle", "export", "--centre", p, "--out", str(bundle), "--key", str(key))
        self.counts["records from the offline partner's OIS (one file per beam)"] = files
        # Home: the partner's key, the patient's id there, then the bundle, twice.
        self.cli("centre", "add", p, "--public-key", str(key) + ".pub")
        self.expect_status(self.api("POST", f"/api/courses/{s.course_id}/identities", "physicist.home",
                                    {"centre": p, "patient_id": partner_id, "name": s.name, "birth_date": BIRTH},
                                    f"identity-{s.index}"), 200, "identity")
        first = self.cli_json("bundle", "import", str(bundle))
        second = self.cli_json("bundle", "import", str(bundle))
        self.counts["bundle events applied"] = first.get("applied", 0)
        self.check("2 outage", "the offline partner's signed bundle: imported, a second import applies nothing",
                   (True, 0), (first.get("applied", 0) > 0, second.get("applied")))
        for k in range(s.baseline + 1, s.planned + 1):
            self.delivered[s.index][k] = p
        course = self.api("GET", f"/api/courses/{s.course_id}", "physicist.home").json()
        numbered = sorted({f["number"] for f in course.get("fractions", []) if f.get("centre") == p and not f.get("voided")})
        self.check("2 outage", "{patient}: the partner's re-plan (its fractions 1-{last}) keeps the prescription count",
                   (s.planned, list(range(s.baseline + 1, s.planned + 1))),
                   (course.get("fractions_delivered"), numbered), patient=s.patient_id, last=remaining)

    def complete_courses(self) -> None:
        done = [s for s in self.specs if len(self.delivered[s.index]) == s.planned]
        for s in done:
            self.expect_status(self.api("POST", f"/api/courses/{s.course_id}/complete", "physicist.home",
                                        {"reason": "all fractions delivered"}, f"complete-{s.index}"), 200, "complete")
        self.counts["courses completed"] = len(done)
        self.completed = done

    # ---- the whole drill -----------------------------------------------------------------------

    def run(self) -> bool:
        from tools.serverproc import free_port, running_server, stop_process

        os.environ.pop("FRACTION_LEDGER_READ_DB", None)  # each ledger keeps its read model beside it
        self.out.mkdir(parents=True, exist_ok=True)
        with self.phase("0 scratch network"):
            self.build()
            self.accounts()
        listener_log = self.out / "listen.log"
        with open(listener_log, "w") as log:
            listener = subprocess.Popen(
                [sys.executable, "-m", "tools.cli", "--db", self.db, "--user", "listener", "listen", "--port", "0",
                 "--aet", "LEDGER", "--allow", f"{OIS_AET}={HOME}"],
                env={**os.environ, **self.env()}, stdout=log, stderr=subprocess.STDOUT)
        try:
            with self.phase("1 baseline over DICOM"):
                port = self.wait_listening(listener, listener_log)
                self.baseline_over_dicom(listener, port)
        finally:
            stop_process(listener, grace=30)
        self.read_courses()
        self.agreements()
        import httpx

        self.echo("2 outage: starting the server ...", err=True)
        with running_server(self.db, free_port(), env=self.env(), log=self.out / "serve.log") as base:
            with httpx.Client(base_url=base, timeout=60) as self.http:
                with self.phase("2a triage and assignment (API)"):
                    self.triage_and_assign()
                with self.phase("2b partners log and verify (API), mistakes refused"):
                    self.partner_fractions()
                    self.rex3()
                with self.phase("2c offline partner: re-plan, signed bundle"):
                    self.offline_partner()
                with self.phase("2d courses completed (API)"):
                    self.complete_courses()
        with self.phase("3 OIS restored from the day-before backup"):
            ois, st_luc = self.restore()
        with self.phase("4a reconcile and import set"):
            anchor = self.reconcile(ois, st_luc)
        with self.phase("4b DICOM send to storescp"):
            self.send_dicom()
        with self.phase("4c HL7 send over MLLP"):
            self.send_hl7()
        with self.phase("4d OIS imports the set, acknowledged"):
            self.import_set_into_ois(ois)
        with self.phase("4e billing settlement, incidents home"):
            self.billing()
            self.incidents()
        with self.phase("5 verify the chain"):
            self.verify_chain(anchor)
        return all(c.ok for c in self.checks)

    def agreements(self) -> None:
        valid_from = (self.outage_day - timedelta(days=120)).isoformat()
        for p in self.partners:
            self.cli("billing", "agree", "--billing-centre", HOME, "--partner", p, "--rule", "pro-rata",
                     "--course-amount", "3000.00", "--valid-from", valid_from, user="finance.home")

    @staticmethod
    def wait_listening(proc: subprocess.Popen, log: Path) -> int:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise DrillError(f"the listener exited with {proc.returncode}: {log.read_text()[-500:]}")
            for line in log.read_text().splitlines():
                if line.startswith("listening as"):
                    return int(line.split(" on ")[1].split(" ")[0].rsplit(":", 1)[1])
            time.sleep(0.1)
        raise DrillError("the listener did not start within 120 s")

    def summary(self) -> dict:
        return {
            "seed": self.seed, "courses": len(self.specs), "partners": self.partners, "offline_partner": self.offline,
            "clock": self.start.isoformat(), "passed": all(c.ok for c in self.checks),
            "checks": [{"phase": c.phase, "check": c.text(), "name": c.name, "params": c.params,
                        "expected": c.expected, "found": c.found, "ok": c.ok} for c in self.checks],
            "counts": dict(self.counts), "timeline": self.timeline, "skipped": self.skipped,
            "log_events": getattr(self, "log_events", None),
        }


class DrillError(Exception):
    """The drill could not play a step at all (a peer did not start, a command failed)."""


@click.command("drill")
@click.option("--out", "out", type=click.Path(file_okay=False, path_type=Path), default=Path("drill"),
              show_default=True, help="Scratch folder for the network, its ledgers and the report (must be empty).")
@click.option("--courses", type=click.IntRange(6, 500), default=12, show_default=True, help="Active courses.")
@click.option("--partners", type=click.IntRange(2, 20), default=2, show_default=True,
              help="Partner centres (the last works offline and returns a bundle).")
@click.option("--seed", type=int, default=1, show_default=True, help="Same seed, same scenario, checks and counts.")
@click.option("--peers", type=click.Choice(["auto", "none"]), default="auto", show_default=True,
              help="auto: send to storescp (dcmtk) and an MLLP receiver when installed; none: skip them.")
@click.option("--lang", type=click.Choice(["en", "nl", "fr"]), default="en", show_default=True,
              help="Language of the report's headings.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
def drill(out: Path, courses: int, partners: int, seed: int, peers: str, lang: str, as_json: bool) -> None:
    """Rehearse a whole outage on a scratch network and report what held (report.html, report.pdf).
    Exits 1 when any check fails."""
    import logging

    from tools.drill_report import write_reports

    for name in ("pynetdicom", "httpx"):
        logging.getLogger(name).setLevel(logging.WARNING)
    if out.exists() and any(out.iterdir()):
        raise click.BadParameter(f"{out} is not empty: a drill builds its network in an empty folder", param_hint="--out")
    d = Drill(out, courses, partners, seed, peers, echo=click.echo)
    began = time.monotonic()
    try:
        d.run()
    except Exception as exc:  # noqa: BLE001  the report says which step could not be played
        d.check("drill", "every step of the drill could be played", "played", f"{type(exc).__name__}: {exc}"[:300])
        if not isinstance(exc, DrillError):
            import traceback

            traceback.print_exc()
    result = d.summary()
    result["seconds"] = round(time.monotonic() - began, 1)
    html, pdf = write_reports(result, out, lang)
    (out / "summary.json").write_text(json.dumps(result, indent=1, default=str))
    if as_json:
        click.echo(json.dumps(result, default=str))
    else:
        click.echo(text_summary(result, html, pdf))
    if not result["passed"]:
        sys.exit(1)


def text_summary(r: dict, html: Path, pdf: Path) -> str:
    from tools.drill_report import say

    failed = [c for c in r["checks"] if not c["ok"]]
    lines = [f"drill seed {r['seed']}: {r['courses']} courses, home {HOME}, partners {', '.join(r['partners'])} "
             f"({r['offline_partner']} offline), clock {r['clock']}"]
    lines += [f"  {t['phase']:<48} {t['seconds']:>7.1f} s" for t in r["timeline"]]
    lines += [f"  {k:<58} {v:>6}" for k, v in r["counts"].items()]
    lines.append(f"  {'events in the log (verified)':<58} {r['log_events']:>6}")
    lines += [f"  {say('en', s['text'], s['params'])}" for s in r["skipped"]]
    lines += [f"  FAILED {c['check']}: expected {c['expected']}, found {c['found']}" for c in failed]
    lines.append(f"{'PASS' if r['passed'] else 'FAIL'}: {len(r['checks']) - len(failed)} of {len(r['checks'])} checks "
                 f"passed in {r['seconds']} s")
    lines.append(f"report: {html}, {pdf}")
    return "\n".join(lines)


def register(main: click.Group) -> None:
    main.add_command(drill)


__all__ = ["drill", "register", "scenario", "Drill"]
