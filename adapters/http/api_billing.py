"""Billing for finance: agreements between centres, settlement statements (JSON or the
CSV of `fraction-ledger billing statement --csv`), a course's splits, re-settling a course,
and the course's treatment category (which picks the tariff)."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from litestar import Request, Response, Router, get, post
from litestar.params import FromPath, JSONBody, QueryParameter

from adapters.http import access_log
from adapters.http.api_courses import IdempotencyKey, backend
from adapters.http.api_incidents import safe
from adapters.http.auth import current
from adapters.http.backend import actor_of, request_id_for
from adapters.http.errors import READ, WRITE, documented
from adapters.http.views import as_, reasons_worded
from adapters.reports import statement_csv
from ledger import access, errors
from schemas.api_ops import (
    AgreementChangeOut, AgreementIn, AgreementOut, CategoryIn, CategoryOut, SettleOut, SplitOut, StatementOut,
)




@get("/api/billing/agreements", opt={"action": "billing"}, sync_to_thread=True, responses=documented(*READ),
     summary="Every version of the agreements the caller's centre is a party to")
def agreements(request: Request) -> list[AgreementOut]:
    return [as_(AgreementOut, a) for a in backend(request).agreements_view(current(request))]


@post("/api/billing/agreements", opt={"action": "billing.agree", "body": AgreementIn}, sync_to_thread=True,
      status_code=201, responses=documented(*WRITE),
      summary="Record the agreement with a partner, or amend it (a new version valid from a date)")
def agree(request: Request, data: JSONBody[AgreementIn], idempotency_key: IdempotencyKey = None) -> AgreementChangeOut:
    who = current(request)
    # finance records what its own centre agreed: it must be one of the pair
    access.check(who, "billing.agree", data.billing_centre, [data.partner])
    terms = {"billing_centre": data.billing_centre, "partner": data.partner, "rule": data.rule,
             "valid_from": data.valid_from, "valid_to": data.valid_to, "course_amount": data.course_amount,
             "fee_per_fraction": data.fee_per_fraction, "tariffs": dict(data.tariffs)}
    result = backend(request).app.billing.agree(terms, actor_of(who), request_id=request_id_for(who, idempotency_key))
    return as_(AgreementChangeOut, result)


def parse_pair(pair: str | None) -> tuple[str, str] | None:
    if pair is None:
        return None
    first, sep, second = pair.partition(":")
    if not sep or not first or not second or first == second:
        raise errors.InvalidCommand("pair", "invalid.expected_two_different_centres", pair=repr(pair))
    return first, second


Start = Annotated[date, QueryParameter(name="from", description="YYYY-MM-DD: courses completed from this day...")]
End = Annotated[date, QueryParameter(name="to", description="YYYY-MM-DD: ...to this day, inclusive")]
Pair = Annotated[str | None, QueryParameter(name="pair", max_length=200, description="C:P: only what is between these two centres")]


def statement_of(request: Request, start: date, end: date, pair: str | None, shown: slice | None = None) -> dict:
    """The statement (its totals and balances of every line); `shown`: only those of its lines are kept
    (a page's; `lines_total` says how many there are), and only those are logged as read."""
    if end < start:
        raise errors.InvalidCommand("to", "invalid.before_from", end=end, start=start)
    centres = parse_pair(pair)
    # only the courses the caller's finance sees (its own, and those its centre bills or is billed for)
    result = backend(request).statement_view(current(request), start, end, centres)
    if shown is not None:
        result["lines_total"] = len(result["lines"])
        result["lines"] = result["lines"][shown]
    access_log.saw_rows(result["lines"], key="course_id")
    return result


@get("/api/billing/statement", opt={"action": "billing"}, sync_to_thread=True, responses=documented(*READ),
     summary="Settlement statement for courses completed in a period, optionally between two centres")
def statement(request: Request, start: Start, end: End, pair: Pair = None) -> StatementOut:
    return as_(StatementOut, reasons_worded(statement_of(request, start, end, pair)))


@get("/api/billing/statement.csv", opt={"action": "billing"}, sync_to_thread=True, media_type="text/csv",
     responses=documented(*READ), summary="The same as CSV (as `fraction-ledger billing statement --csv`)")
def statement_csv_download(request: Request, start: Start, end: End, pair: Pair = None) -> Response[str]:
    result = statement_of(request, start, end, pair)
    name = f"statement-{start}-{end}" + ("-" + "-".join(safe(c) for c in result["pair"]) if result["pair"] else "")
    return Response(statement_csv(result), media_type="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="{name}.csv"'})


@get("/api/courses/{course_id:str}/splits", opt={"action": "billing"}, sync_to_thread=True,
     responses=documented(*READ), summary="A course's splits, oldest first; the last one is in force")
def splits(request: Request, course_id: FromPath[str]) -> list[SplitOut]:
    b = backend(request)
    access_log.saw_course(b.course_for(current(request), "billing", course_id))  # 404 for a course not seen
    return [as_(SplitOut, reasons_worded(s)) for s in b.read(lambda r: r.splits(course_id))]


@post("/api/courses/{course_id:str}/settle", opt={"action": "billing.settle"}, sync_to_thread=True,
      status_code=200, responses=documented(*WRITE),
      summary="Recompute a completed course's split (e.g. after an agreement was recorded late)")
def settle(request: Request, course_id: FromPath[str], idempotency_key: IdempotencyKey = None) -> SettleOut:
    b, who = backend(request), current(request)
    b.course_for(who, "billing.settle", course_id)
    return as_(SettleOut, reasons_worded(
        b.app.billing.settle_course(course_id, actor_of(who), request_id=request_id_for(who, idempotency_key))))


@post("/api/courses/{course_id:str}/category", opt={"action": "courses.category", "body": CategoryIn},
      sync_to_thread=True, status_code=200, responses=documented(*WRITE),
      summary="Set a course's treatment category (a completed course's split follows)")
def category(request: Request, course_id: FromPath[str], data: JSONBody[CategoryIn],
             idempotency_key: IdempotencyKey = None) -> CategoryOut:
    b, who = backend(request), current(request)
    b.course_for(who, "courses.category", course_id)
    result = b.app.billing.set_course_category(course_id, data.category, actor_of(who),
                                       request_id=request_id_for(who, idempotency_key))
    return as_(CategoryOut, result)


router = Router("/", route_handlers=[agreements, agree, statement, statement_csv_download, splits, settle, category], tags=["billing"])
