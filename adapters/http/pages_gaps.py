"""Pages of issue 17: the gaps worklist, and on the course page the gap category, the
prescription amendments and their countersignature (forms posting here)."""

from __future__ import annotations

from litestar import Request, Router, get, post
from litestar.params import FromPath, FromQuery
from litestar.response import Redirect, Template

from adapters.http.auth import current
from adapters.http.backend import actor_of
from adapters.http.i18n import language_of, translator
from adapters.http.pages import Form, backend, check_form, course_context, flash, page, refusal
from adapters.gaps_view import alarms
from adapters.runtime import gap_alarm_days, physicists_prescribe
from ledger import access, errors
from schemas.prescription import AmendPrescription, GapCategoryArg


@get("/gaps", opt={"action": "gaps.read"}, sync_to_thread=True, include_in_schema=False)
def gaps_page(request: Request, centre: FromQuery[str | None] = None) -> Template:
    b, who = backend(request), current(request)
    rows = b.gaps_view(who, centre or None)
    return page(request, "gaps.html", rows=rows, centre=centre or "", gap_alarms=alarms(rows, gap_alarm_days()))


def gap_form(path: str, action: str, run, ok_key: str, body: type | None):
    def answer(request: Request, course_id: str, data: dict, amendment_id: str | None) -> Template | Redirect:
        b, who = backend(request), current(request)
        b.course_for(who, action, course_id)
        t = translator(language_of(request))
        raw = {k: v for k, v in data.items() if k != "_csrf_token" and v not in ("", None)}
        try:
            if action == "courses.amend":
                access.check_prescriber(who, physicists_prescribe())
            if body is not None:
                check_form(body, raw)
            run(b, course_id, raw, who, amendment_id)
        except errors.LedgerError as exc:
            status = (403 if isinstance(exc, errors.AccessDenied) else 400 if isinstance(exc, errors.InvalidCommand)
                      else 409)
            return page(request, "course.html", status_code=status, refusal=refusal(t, exc), amend_form=raw,
                        **course_context(request, course_id))
        flash(request, t(ok_key))
        return Redirect(f"/courses/{course_id}#prescription")

    if "{amendment_id" in path:
        def handler(request: Request, course_id: FromPath[str], amendment_id: FromPath[str], data: Form
                    ) -> Template | Redirect:
            return answer(request, course_id, data, amendment_id)
    else:
        def handler(request: Request, course_id: FromPath[str], data: Form) -> Template | Redirect:  # type: ignore[misc]
            return answer(request, course_id, data, None)

    handler.__name__ = action.replace(".", "_") + "_page_form"
    return post("/courses/{course_id:str}" + path, opt={"action": action}, sync_to_thread=True,
                include_in_schema=False, status_code=200)(handler)


def amend(b, course_id, raw, who, _):
    b.app.gaps.amend_prescription(course_id, raw, actor_of(who))


def countersign(b, course_id, raw, who, amendment_id):
    b.app.gaps.countersign_amendment(course_id, amendment_id, actor_of(who))


category_form = gap_form("/gap-category", "courses.gap_category",
                         lambda b, cid, raw, who, _: b.app.gaps.set_gap_category(cid, raw.get("category"), actor_of(who)),
                         "gap_category_set", GapCategoryArg)
amend_form = gap_form("/amendments", "courses.amend", amend, "amendment_proposed", AmendPrescription)
countersign_form = gap_form("/amendments/{amendment_id:str}/countersign", "courses.countersign", countersign,
                            "amendment_countersigned", None)

router = Router("/", route_handlers=[gaps_page, category_form, amend_form, countersign_form])
