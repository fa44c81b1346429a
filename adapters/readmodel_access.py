"""The access log's table: one row per entry and course it showed (an entry that showed no
course has one row without), for listing per patient, per user, per course. Disposable like
every read model table: a rebuild gives the same rows."""

from __future__ import annotations

from typing import Any

from adapters.readmodel_sql import insert_sql, row_of
from ledger.access_log import TOPIC as ACCESS_TOPIC

ACCESS_TABLES = ("access_log",)
ACCESS_COLUMNS = {
    "row": str, "entry_id": str, "position": int, "at": str, "user": str, "role": str, "centre": str,
    "channel": str, "client": str, "action": str, "path": str, "course_id": str, "patient_id": str,
    "home_centre": str,
}
INSERT_ACCESS, ACCESS_ROW = insert_sql("access_log", ACCESS_COLUMNS), row_of(ACCESS_COLUMNS)


class AccessLogTables:
    """Mixed into `ReadModel` (needs `db`)."""

    db: Any
    conn: Any

    def create_access_tables(self) -> None:
        self.db["access_log"].create(ACCESS_COLUMNS, pk="row", if_not_exists=True)
        for column in ("patient_id", "user", "course_id"):
            self.db["access_log"].create_index([column, "position"], if_not_exists=True)

    def apply_access(self, app: Any, notification: Any) -> bool:
        """Project an access-log entry; False when the notification is not one."""
        if notification.topic != ACCESS_TOPIC:
            return False
        e = app.mapper.to_domain_event(notification)
        base = {"entry_id": str(notification.originator_id), "position": notification.id,
                "at": e.meta["recorded_at"].isoformat(), "user": e.user, "role": e.role, "centre": e.centre,
                "channel": e.channel, "client": e.client, "action": e.action, "path": e.path}
        courses = e.courses or [{"course_id": None, "patient_id": None, "home_centre": None}]
        self.conn.executemany(INSERT_ACCESS, [
            ACCESS_ROW({**base, "row": f"{notification.id}/{n}", "course_id": c.get("course_id"),
                        "patient_id": c.get("patient_id"), "home_centre": c.get("home_centre")})
            for n, c in enumerate(courses)])
        return True

    def access_log(self, patient: str | None = None, user: str | None = None, course: str | None = None,
                   centre: str | None = None, limit: int | None = None) -> list[dict]:
        """Newest first. `centre`: only what concerns it (read by its people, or of its patients)."""
        where, params = [], []
        for column, value in (("patient_id", patient), ("user", user), ("course_id", course)):
            if value is not None:
                where.append(f'"{column}" = ?')
                params.append(value)
        if centre is not None:
            where.append("(centre = ? OR home_centre = ?)")
            params += [centre, centre]
        sql = ("SELECT * FROM access_log" + (" WHERE " + " AND ".join(where) if where else "")
               + " ORDER BY position DESC, rowid")
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        rows = [dict(r) for r in self.db.query(sql, params)]
        for r in rows:
            r.pop("row")
        return rows

    def courses_named(self, course_ids: list[str]) -> dict[str, dict]:
        """course id -> {patient_id, home_centre}, for the courses of a read that named only ids."""
        if not course_ids:
            return {}
        marks = ",".join("?" * len(course_ids))
        return {r["id"]: {"patient_id": r["patient_id"], "home_centre": r["home_centre"]}
                for r in self.db.query(f"SELECT id, patient_id, home_centre FROM courses WHERE id IN ({marks})",
                                       list(course_ids))}

    def dump_access(self) -> dict[str, list[dict]]:
        return {"access_log": list(self.db["access_log"].rows_where(order_by="position, rowid"))}
