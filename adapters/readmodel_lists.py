"""Lists that scale (issue 20 point 5): the courses a centre sees and its incidents, a page at a
time, filtered and sorted in SQL, never every row loaded to be filtered in Python.

Which courses a centre sees (`ledger.access.centre_sees`: its home centre's, those assigned to it;
for finance also those it bills or has a share of) is an SQL condition on the course row, so the
filters, the count and the sort run in SQLite in one statement and only a page of rows is decoded.
Search folds case, accents and the DICOM separator (`folded`): the folded names wait in a table of
their own, `course_search`, brought up to date by the search itself (`fold_new`).
Indexes: `INDEXES` (a read model that an older version made gets them when it is opened).

The day order of the RTT's worklist (due today, treated today, the rest: `ledger.day`) depends
on today: it is computed in SQL from the course row (today's window in the centre's zone for
"treated"; "due" from the schedule, which `ledger.day.due_state` judges once per distinct schedule,
not once per course).
"""

from __future__ import annotations

import json
import sqlite3
import unicodedata
from datetime import date, datetime, time, timedelta, timezone
from typing import Any

import msgspec

from ledger import day as days
from schemas.schedule import Schedule

# Page sizes: what a page shows, and the most an API call may ask for.
PAGE_SIZE = 50
API_DEFAULT_LIMIT = 200
API_MAX_LIMIT = 1000

# The sorts of the worklist: SQL ORDER BY terms (`{dir}`: ASC or DESC); ties keep the courses'
# own order (patient id, registration, id), as the page's stable sort did.
SORTS: dict[str, str] = {
    "day": "day_state {dir}, COALESCE(NULLIF(c.triage, 0), 9) {dir}, c.patient_id {dir}",
    "patient": "COALESCE(c.patient_name, '') {dir}, c.patient_id {dir}",
    "plan": "COALESCE(c.plan_label, '') {dir}",
    "triage": "COALESCE(NULLIF(c.triage, 0), 9) {dir}, c.patient_id {dir}",
    "fractions": ("CAST(COALESCE(c.fractions_delivered, 0) AS REAL) / MAX(COALESCE(NULLIF(c.fractions_planned, 0), 1), 1) {dir}, "
                  "c.patient_id {dir}"),
    "last": "COALESCE(c.last_fraction_at, '') {dir}",
    "awaiting": "COALESCE(c.awaiting_verification, 0) {dir}, c.patient_id {dir}",
    "status": "c.status {dir}, c.patient_id {dir}",
}
COURSE_ORDER = "c.patient_id, c.registered_at, c.id"
DAY_STATES = {0: days.DUE, 1: days.TREATED, 2: days.NOT_DUE}


def folded(text: str | None) -> str:
    """For search: case, accents and the DICOM name separator ignored (Müller finds MÜLLER^ZOË)."""
    plain = unicodedata.normalize("NFKD", (text or "").replace("^", " ").replace(",", " "))
    return " ".join("".join(ch for ch in plain if not unicodedata.combining(ch)).casefold().split())


INDEXES = (
    # the folded names for search, kept by `fold_new` (not by the projection: a search brings it up to date)
    "CREATE TABLE IF NOT EXISTS course_search (course_id TEXT PRIMARY KEY, patient_id TEXT, patient_name TEXT, "
    "raw_id TEXT, raw_name TEXT) WITHOUT ROWID",
    "CREATE INDEX IF NOT EXISTS courses_listed ON courses (patient_id, registered_at, id)",
    "CREATE INDEX IF NOT EXISTS courses_home ON courses (home_centre)",
    "CREATE INDEX IF NOT EXISTS courses_schedule ON courses (schedule)",
    "CREATE INDEX IF NOT EXISTS courses_gap_category ON courses (gap_category)",
    "CREATE INDEX IF NOT EXISTS courses_site ON courses (site)",
    "CREATE INDEX IF NOT EXISTS incidents_listed ON incidents (position)",
    "CREATE INDEX IF NOT EXISTS incidents_centre ON incidents (centre, position)",
    "CREATE INDEX IF NOT EXISTS splits_billing ON splits (billing_centre)",
    "CREATE INDEX IF NOT EXISTS split_shares_centre ON split_shares (centre)",
)


def create_list_tables(conn: Any) -> None:
    """The lists' indexes (after the billing tables); a read model an older version made gets them."""
    for statement in INDEXES:
        conn.execute(statement)


def fold_new(conn: Any) -> None:
    """`course_search` brought up to date: the folded id and name of each course that has none yet, or
    whose id or name changed (Python folds them: `folded`, an SQL function of the connection, registered
    once); a course no longer in the table dropped. A search pays the folding once per course, not per search."""
    try:
        conn.execute("SELECT folded('')")
    except sqlite3.OperationalError:  # once: registering it again would free what cached statements call
        conn.create_function("folded", 1, folded, deterministic=True)
    conn.execute("INSERT OR REPLACE INTO course_search SELECT c.id, folded(c.patient_id), folded(c.patient_name), "
                 "c.patient_id, c.patient_name FROM courses c LEFT JOIN course_search s ON s.course_id = c.id "
                 "WHERE s.course_id IS NULL OR s.raw_id IS NOT c.patient_id OR s.raw_name IS NOT c.patient_name")
    conn.execute("DELETE FROM course_search WHERE course_id NOT IN (SELECT id FROM courses)")


def seen_clause(centre: str | None, billed: bool) -> tuple[str, list]:
    """The SQL condition on a course row `c` (and its parameters) that `centre` sees it (None: every course)."""
    if centre is None:
        return "", []
    # assigned_centres is the JSON array of the centres' codes, each as msgspec writes a string
    sql = "(c.home_centre = ? OR instr(c.assigned_centres, ?) > 0"
    params: list = [centre, msgspec.json.encode(centre).decode()]
    if billed:
        sql += (" OR c.id IN (SELECT course_id FROM splits WHERE billing_centre = ?"
                " UNION SELECT course_id FROM split_shares WHERE centre = ?)")
        params += [centre, centre]
    return sql + ")", params


def utc_text(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


def day_state_sql(conn: Any, today: date, zone: Any) -> tuple[str, list]:
    """The SQL of a course's state on `today` (0 due, 1 treated today, 2 not due) as `ledger.day.due_state`
    says: treated when its last fraction falls in today's window in `zone`; otherwise due when active,
    with fractions left, and its schedule intends a fraction today (each distinct schedule judged once)."""
    start = datetime.combine(today, time(0), tzinfo=zone)
    end = datetime.combine(today + timedelta(days=1), time(0), tzinfo=zone)
    default_due = days.due_state(today, "active", 0, 1, None, None) == days.DUE
    due = [text for (text,) in conn.execute("SELECT DISTINCT schedule FROM courses WHERE schedule IS NOT NULL")
           if days.due_state(today, "active", 0, 1, None, msgspec.convert(json.loads(text), Schedule)) == days.DUE]
    sql = ("CASE WHEN substr(c.last_fraction_at, 1, 10) BETWEEN ? AND ? AND datetime(c.last_fraction_at) >= ? "
           "AND datetime(c.last_fraction_at) < ? THEN 1 "
           "WHEN c.status != 'active' OR COALESCE(c.fractions_delivered, 0) >= COALESCE(c.fractions_planned, 0) THEN 2 "
           "WHEN c.schedule IS NULL THEN ? "
           "WHEN c.schedule IN (SELECT value FROM json_each(?)) THEN 0 ELSE 2 END")  # json_each of the due list, once
    near = [(today - timedelta(days=2)).isoformat(), (today + timedelta(days=2)).isoformat()]  # UTC-12 .. +14
    return sql, [*near, utc_text(start), utc_text(end), 0 if default_due else 2, json.dumps(due)]


class ListQueries:
    """Mixed into `ReadModel` (needs `conn`, `db`)."""

    conn: Any
    db: Any
    decode_course: Any  # adapters.readmodel.decode: a row as the readers get it

    def course_page(self, centre: str | None = None, billed: bool = False, *, status: str | None = None,
                    triage: int | None = None, awaiting: bool = False, search: str | None = None,
                    sort: str | None = None, descending: bool = False, limit: int | None = None, offset: int = 0,
                    today: date | None = None, zone: Any = None, count: bool = True) -> tuple[list[dict], int | None]:
        """One page of the courses `centre` sees (None: all), filtered and sorted, and how many match.
        `sort`: a key of SORTS ("day" needs `today` and the centre's `zone`; each row then has `due`);
        none: the courses' own order (patient id, registration). `limit` None: every match. `count`
        False: the number of matches is not counted (None)."""
        where, params = [], []
        clause, seen = seen_clause(centre, billed)
        if clause:
            where.append(clause)
            params += seen
        if status is not None:
            where.append("c.status = ?")
            params.append(status)
        if triage is not None:
            where.append("c.triage = ?")
            params.append(triage)
        if awaiting:
            where.append("c.awaiting_verification > 0")
        wanted = folded(search)
        if wanted:
            fold_new(self.conn)
            name_terms = " AND ".join("instr(s.patient_name, ?) > 0" for _ in wanted.split())
            where.append(f"c.id IN (SELECT s.course_id FROM course_search s WHERE instr(s.patient_id, ?) > 0 "
                         f"OR ({name_terms}))")
            params += [wanted, *wanted.split()]
        filtered = (" WHERE " + " AND ".join(where)) if where else ""
        total = self.conn.execute(f"SELECT COUNT(*) FROM courses c{filtered}", params).fetchone()[0] if count else None
        state_sql, state_params = ("NULL", [])
        if sort == "day" or today is not None:
            state_sql, state_params = day_state_sql(self.conn, today, zone)
        direction = "DESC" if descending else "ASC"
        order = (SORTS[sort].format(dir=direction) + ", " if sort in SORTS else "") + COURSE_ORDER
        page = "" if limit is None else f" LIMIT {int(limit)} OFFSET {int(offset)}"
        # The page's ids first (a narrow sort: the sorter holds id and key, not whole rows), then its rows.
        chosen = self.conn.execute(
            f"SELECT c.id, {state_sql} AS day_state FROM courses c{filtered} ORDER BY {order}{page}",
            state_params + params).fetchall()
        found = self.rows_by_id([course_id for course_id, _ in chosen])
        rows = []
        for course_id, state in chosen:
            out = found[course_id]
            if state is not None:
                out["due"] = DAY_STATES[state]
            rows.append(out)
        return rows, total

    def rows_by_id(self, course_ids: list[str]) -> dict[str, dict]:
        """course id -> its row, decoded (a page's worth at a time)."""
        out: dict[str, dict] = {}
        for start in range(0, len(course_ids), 500):
            some = course_ids[start:start + 500]
            cursor = self.conn.execute(f"SELECT * FROM courses WHERE id IN ({','.join('?' * len(some))})", some)
            names = [d[0] for d in cursor.description]
            for values in cursor:
                row = self.decode_course(dict(zip(names, values)))
                out[row["id"]] = row
        return out

    def day_counts(self, centre: str, billed: bool, today: date, zone: Any) -> dict[str, int]:
        """How many of the courses `centre` sees are due today, treated today, and in all."""
        state_sql, state_params = day_state_sql(self.conn, today, zone)
        clause, seen = seen_clause(centre, billed)
        counts = dict(self.conn.execute(
            f"SELECT {state_sql} AS s, COUNT(*) FROM courses c WHERE {clause} GROUP BY s",
            state_params + seen).fetchall())
        return {days.DUE: counts.get(0, 0), days.TREATED: counts.get(1, 0), "all": sum(counts.values())}

    def gap_candidates(self, centre: str, billed: bool, category: int, sites: list[str]) -> list[dict]:
        """The active courses `centre` sees whose gap category is `category` (set, or else from the site):
        the only ones that can raise a gap alarm."""
        clause, seen = seen_clause(centre, billed)
        marks = ",".join("?" * len(sites)) or "NULL"
        rows = self.db.query(
            f"SELECT c.* FROM courses c WHERE c.id IN (SELECT id FROM courses WHERE gap_category = ? UNION "
            f"SELECT id FROM courses WHERE site IN ({marks}) AND gap_category IS NULL) AND c.status = 'active' "
            f"AND {clause} ORDER BY {COURSE_ORDER}", [category, *sites, *seen])
        return [self.decode_course(r) for r in rows]

    def all_seen_ids(self, centre: str, billed: bool) -> set[str]:
        """The ids of every course `centre` sees (no row decoded)."""
        clause, seen = seen_clause(centre, billed)
        return {r[0] for r in self.conn.execute(f"SELECT c.id FROM courses c WHERE {clause}", seen)}

    def seen_ids(self, centre: str, billed: bool, course_ids: list[str]) -> set[str]:
        """Which of `course_ids` `centre` sees."""
        if not course_ids:
            return set()
        clause, seen = seen_clause(centre, billed)
        marks = ",".join("?" * len(course_ids))
        return {r[0] for r in self.conn.execute(f"SELECT c.id FROM courses c WHERE c.id IN ({marks}) AND {clause}",
                                                [*course_ids, *seen])}

    def incident_page(self, centre: str | None = None, billed: bool = False, *, course_id: str | None = None,
                      status: str | None = None, at_centre: str | None = None, home_centre: str | None = None,
                      category: str | None = None, limit: int | None = None, offset: int = 0) -> tuple[list[dict], int]:
        """The incidents `centre`'s people see (those registered at `centre`, and those of the courses it
        sees; None: all), in the order registered, a page at a time, and how many match."""
        from adapters.readmodel_billing import decoded

        where, params = [], []
        if centre is not None:
            clause, seen = seen_clause(centre, billed)
            where.append(f"(i.centre = ? OR EXISTS (SELECT 1 FROM courses c WHERE c.id = i.course_id AND {clause}))")
            params += [centre, *seen]
        for column, value in (("centre", at_centre), ("course_id", course_id), ("status", status), ("category", category)):
            if value is not None:
                where.append(f"i.{column} = ?")
                params.append(value)
        if home_centre is not None:
            where.append("(i.home_centre = ? OR i.centre = ?)")
            params += [home_centre, home_centre]
        filtered = (" WHERE " + " AND ".join(where)) if where else ""
        total = self.conn.execute(f"SELECT COUNT(*) FROM incidents i{filtered}", params).fetchone()[0]
        page = "" if limit is None else f" LIMIT {int(limit)} OFFSET {int(offset)}"
        rows = self.db.query(f"SELECT i.* FROM incidents i{filtered} ORDER BY i.position{page}", params)
        return [decoded(r) for r in rows], total
