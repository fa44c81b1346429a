"""The access log (NEN 7513): who read which patient's data, when, what, and from where.

Every read of patient data (a page, an API answer, an export, a CLI command that shows or
exports it) is one `AccessLogEntry` stream of one event, appended to the same event store
as the ledger, so the hash chain covers it like any other event. A new stream per read
means a read costs one small insert and never loads an aggregate, and no two readers ever
contend for a stream. An entry has no command after its creation: nothing changes it.
"""

from __future__ import annotations

from typing import Any

from eventsourcing.domain import Aggregate, event

from ledger import errors
from ledger.service import Actor

TOPIC = "ledger.access_log:AccessLogEntry.Recorded"


class AccessLogUnavailable(errors.LedgerError):
    """The entry for a read could not be written: the read is not served (HTTP 503)."""

    code = "access_log_unavailable"


class AccessLogEntry(Aggregate):
    @event("Recorded")
    def __init__(self, user: str, role: str, centre: str, channel: str, client: str, action: str, path: str,
                 courses: list[dict], meta: dict):
        """`channel`: "http" or "cli"; `client`: the caller's address (HTTP) or OS user@host (CLI);
        `action`: the access rule's name of what was done; `path`: the route or command with its
        arguments; `courses`: one {course_id, patient_id, home_centre} per course whose patient data
        the answer held (empty for a read that showed none)."""
        self.user, self.role, self.centre = user, role, centre
        self.channel, self.client = channel, client
        self.action, self.path = action, path
        self.courses = courses
        self.at = meta["recorded_at"]


def record_access(app: Any, *, user: str, role: str, centre: str, channel: str, client: str, action: str,
                  path: str, courses: list[dict]) -> str:
    """Append one entry; its id. Any failure to store it is `AccessLogUnavailable`: the caller
    must then not show what was read."""
    try:
        entry = AccessLogEntry(user=user, role=role, centre=centre, channel=channel, client=client, action=action,
                               path=path, courses=[dict(c) for c in courses], meta=app.uow.meta(Actor(user, centre), None))
        app.save(entry)
    except Exception as exc:  # whatever the store's failure, the read must not be served silently
        raise AccessLogUnavailable(
            "The access log could not be written, so this patient data is not shown (every read of patient "
            f"data is logged). Try again; if it persists, the event store needs attention ({type(exc).__name__})."
        ) from exc
    return str(entry.id)
