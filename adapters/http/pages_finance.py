"""Finance's page: the settlement statement for a period (optionally between two centres),
its CSV download, and the agreements in force. Statements read only the read model's
billing tables (`api_billing.statement_of`), as the API and `billing statement` do."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Annotated

import msgspec
from litestar import Request, Response, Router, get, post
from litestar.params import QueryParameter
from litestar.response import Redirect, Template

from adapters.http.api_billing import statement_of
from adapters.http.api_incidents import safe
from adapters.http.auth import current
from adapters.http.backend import actor_of
from adapters.http.errors import validate_body
from adapters.http.i18n import language_of, translator, words
from adapters.http.pages import Form, backend, flash, page, refusal, zone
from adapters.http.paging import Pager
from adapters.reports import statement_csv
from ledger import access, errors
from schemas.api_ops import AgreementIn
from schemas.billing import PER_FRACTION, PRO_RATA

RULES = (PRO_RATA, PER_FRACTION)
STATEMENT_PAGE = 100  # lines of the statement on the finance page (the printable one and the CSV: all)

Text = Annotated[str | None, QueryParameter(max_length=200)]


def period(start: str | None, end: str | None, now: datetime) -> tuple[date, date]:
    """The asked period; by default the previous and the current month up to today (the ledger's
    clock, local date): the courses completed lately, whatever the day of the month."""
    today = now.astimezone(zone()).date()
    previous = (today.replace(day=1) - timedelta(days=1)).replace(day=1)
    try:
        first = date.fromisoformat(start) if start else previous
    except ValueError:
        raise errors.InvalidCommand("from", "invalid.not_date_yyyy_mm", start=repr(start)) from None
    try:
        last = date.fromisoformat(end) if end else today
    except ValueError:
        raise errors.InvalidCommand("to", "invalid.not_date_yyyy_mm_2", end=repr(end)) from None
    return first, last


AGREEMENT_FIELDS = ("billing_centre", "partner", "rule", "valid_from", "valid_to", "course_amount", "fee_per_fraction")


def finance_context(request: Request, start: str | None, end: str | None, pair: str | None,
                    page_asked: str | None = None, lines_asked: str | None = None, whole: bool = False) -> dict:
    """`page_asked`: the page of the courses table; `lines_asked`: the page of the statement's lines
    (`whole`: every line, for the printable statement and the CSV; the totals always count every line)."""
    b, who = backend(request), current(request)
    form = {"from": start or "", "to": end or "", "pair": pair or ""}
    pager = Pager("/finance", page_asked, {**form, "lines": lines_asked if lines_asked and lines_asked != "1" else None})
    courses, total = b.courses_page(who, limit=pager.size, offset=pager.offset)
    context: dict = {"courses": courses, "view": pager.found(total), "form": form, "rules": RULES}
    if who.role == "finance":
        context["agreements"] = b.agreements_view(who)
        try:
            first, last = period(start, end, b.app.clock())
            context["form"].update({"from": first.isoformat(), "to": last.isoformat()})
            if whole:
                context["statement"] = statement_of(request, first, last, pair or None)
            else:
                lines = Pager("/finance", lines_asked, {**context["form"], "page": pager.page}, size=STATEMENT_PAGE)
                statement = statement_of(request, first, last, pair or None,
                                         shown=slice(lines.offset, lines.offset + lines.size))
                context["statement"] = statement
                context["lines_view"] = lines.found(statement["lines_total"])
        except errors.LedgerError as exc:
            context["refusal"] = refusal(translator(language_of(request)), exc)
    return context


@get("/finance", opt={"action": "courses.list"}, sync_to_thread=True, include_in_schema=False)
def finance_home(request: Request, start: Annotated[str | None, QueryParameter(name="from", max_length=20)] = None,
                 end: Annotated[str | None, QueryParameter(name="to", max_length=20)] = None,
                 pair: Text = None, page_asked: Annotated[str | None, QueryParameter(name="page", max_length=12)] = None,
                 lines: Text = None) -> Template:
    context = finance_context(request, start, end, pair, page_asked, lines)
    return page(request, "finance.html", status_code=400 if "refusal" in context else 200, **context)


@get("/finance/statement", opt={"action": "billing"}, sync_to_thread=True, include_in_schema=False)
def statement_print(request: Request, start: Annotated[str | None, QueryParameter(name="from", max_length=20)] = None,
                    end: Annotated[str | None, QueryParameter(name="to", max_length=20)] = None,
                    pair: Text = None) -> Template:
    """The statement alone, to print or save as PDF (the print stylesheet leaves out menus and forms)."""
    context = finance_context(request, start, end, pair, whole=True)
    return page(request, "statement.html", status_code=400 if "refusal" in context else 200, **context)


def form_terms(data: dict) -> dict:
    """The agreement form as the API body (AgreementIn): empty fields left out; tariffs one per line
    `category=amount`; a decimal comma taken as a point."""
    raw: dict = {}
    for name in AGREEMENT_FIELDS:
        value = str(data.get(name) or "").strip()
        if value:
            raw[name] = value.replace(",", ".") if name in ("course_amount", "fee_per_fraction") else value
    tariffs = {}
    for line in str(data.get("tariffs") or "").splitlines():
        if line.strip():
            category, _, amount = line.partition("=")
            tariffs[category.strip()] = amount.strip().replace(",", ".")
    if tariffs:
        raw["tariffs"] = tariffs
    return raw


@post("/finance/agreements", opt={"action": "billing.agree"}, sync_to_thread=True, include_in_schema=False,
      status_code=200)
def agree_form(request: Request, data: Form) -> Template | Redirect:
    """Record an agreement with a partner, or amend it: a new version valid from a date."""
    b, who = backend(request), current(request)
    t = translator(language_of(request))
    raw = form_terms(data)
    try:
        validate_body(AgreementIn, raw)
        terms = msgspec.convert(raw, AgreementIn, strict=False)
        access.check(who, "billing.agree", terms.billing_centre, [terms.partner])
        result = b.app.billing.agree({f: getattr(terms, f) for f in AGREEMENT_FIELDS} | {"tariffs": dict(terms.tariffs)},
                             actor_of(who))
    except errors.LedgerError as exc:
        context = finance_context(request, None, None, None)
        context.update(refusal=refusal(t, exc), agreement_form=data)
        return page(request, "finance.html", status_code=403 if isinstance(exc, errors.AccessDenied) else
                    400 if isinstance(exc, errors.InvalidCommand) else 409, **context)
    version = result.get("terms", {}).get("version", "")
    said_key = "agreement_recorded" if result.get("changed", True) else "agreement_unchanged"
    flash(request, t(said_key,
                     billing_centre=terms.billing_centre, partner=terms.partner, version=version,
                     valid_from=words(language_of(request)).day(terms.valid_from)))
    return Redirect("/finance#agreements")


@get("/finance/statement.csv", opt={"action": "billing"}, sync_to_thread=True, include_in_schema=False)
def statement_download(request: Request,
                       start: Annotated[str | None, QueryParameter(name="from", max_length=20)] = None,
                       end: Annotated[str | None, QueryParameter(name="to", max_length=20)] = None,
                       pair: Text = None) -> Response:
    first, last = period(start, end, backend(request).app.clock())
    result = statement_of(request, first, last, pair or None)
    name = f"statement-{first}-{last}" + ("-" + "-".join(safe(c) for c in result["pair"]) if result["pair"] else "")
    return Response(statement_csv(result), media_type="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="{name}.csv"'})


router = Router("/", route_handlers=[finance_home, statement_print, agree_form, statement_download])
