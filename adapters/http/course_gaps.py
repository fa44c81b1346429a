"""What the course page shows of issue 17 (gap, category, amendments) and which of its forms the
reader may use; the forms post to adapters/http/pages_gaps.py."""

from __future__ import annotations

from typing import Any

from litestar import Request

from adapters.http.auth import current
from adapters.runtime import gap_alarm_days, physicists_prescribe
from ledger import access
from adapters.gaps_view import what
from schemas.prescription import KINDS


def course_gap_context(request: Request, course_id: str) -> dict[str, Any]:
    """What the course page shows of issue 17, and which forms the reader may use."""
    b, who = request.app.state.backend, current(request)
    aggregate = b.app.get_course(course_id)
    gap = b.app.gaps.course_gap(course_id, threshold=gap_alarm_days()) if aggregate.status == "active" else None
    may = lambda action: access.may(who, action, aggregate.home_centre, aggregate.assigned_centres)  # noqa: E731
    return {
        "gap": gap, "amendments": [{"a": a, "what": what(a)} for a in aggregate.amendments], "original_groups": aggregate.plan.fraction_groups,
        "prescribed_groups": aggregate.prescription.fraction_groups, "site": aggregate.site,
        "gap_category": aggregate.gap_category, "amendment_kinds": KINDS,
        "dose": dict(zip(("prescribed", "delivered"), aggregate.dose())),
        "may_categorise": may("courses.gap_category"),
        "may_amend": may("courses.amend") and (who.role != "physicist" or physicists_prescribe()),
        "may_countersign": may("courses.countersign"),
    }
