"""Finance's page: the settlement statement for a period (optionally between two centres),
its CSV download, and the agreements in force. Statements read only the read model's
billing tables (`api_billing.statement_of`), as the API and `billing statement` do."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated

from litestar import Request, Response, Router, get
from litestar.params import QueryParameter
from litestar.response import Template

from adapters.http.api_billing import statement_of
from adapters.http.api_incidents import safe
from adapters.http.auth import current
from adapters.http.i18n import language_of, translator
from adapters.http.pages import backend, page, refusal, zone
from adapters.reports import statement_csv
from ledger import errors

Text = Annotated[str | None, QueryParameter(max_length=200)]


def period(start: str | None, end: str | None, now: datetime) -> tuple[date, date]:
    """The asked period; by default the current month up to today (the ledger's clock, local date)."""
    today = now.astimezone(zone()).date()
    try:
        first = date.fromisoformat(start) if start else today.replace(day=1)
    except ValueError:
        raise errors.InvalidCommand("from", "invalid.not_date_yyyy_mm", start=repr(start)) from None
    try:
        last = date.fromisoformat(end) if end else today
    except ValueError:
        raise errors.InvalidCommand("to", "invalid.not_date_yyyy_mm_2", end=repr(end)) from None
    return first, last


@get("/finance", opt={"action": "courses.list"}, sync_to_thread=True, include_in_schema=False)
def finance_home(request: Request, start: Annotated[str | None, QueryParameter(name="from", max_length=20)] = None,
                 end: Annotated[str | None, QueryParameter(name="to", max_length=20)] = None,
                 pair: Text = None) -> Template:
    b, who = backend(request), current(request)
    context: dict = {"courses": b.courses_view(who), "form": {"from": start or "", "to": end or "", "pair": pair or ""}}
    if who.role == "finance":
        context["agreements"] = b.agreements_view(who)
        try:
            first, last = period(start, end, b.app.clock())
            context["form"].update({"from": first.isoformat(), "to": last.isoformat()})
            context["statement"] = statement_of(request, first, last, pair or None)
        except errors.LedgerError as exc:
            context["refusal"] = refusal(translator(language_of(request)), exc)
    return page(request, "finance.html", status_code=400 if "refusal" in context else 200, **context)


@get("/finance/statement.csv", opt={"action": "billing"}, sync_to_thread=True, include_in_schema=False)
def statement_download(request: Request,
                       start: Annotated[str | None, QueryParameter(name="from", max_length=20)] = None,
                       end: Annotated[str | None, QueryParameter(name="to", max_length=20)] = None,
                       pair: Text = None) -> Response:
    first, last = period(start, end, backend(request).app.clock())
    result = statement_of(request, first, last, pair or None)
    name = f"statement-{first}-{last}" + ("-" + "-".join(safe(c) for c in result["pair"]) if result["pair"] else "")
    return Response(statement_csv(result), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{name}.csv"'})


router = Router("/", route_handlers=[finance_home, statement_download])
