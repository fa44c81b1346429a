"""Pages for the home physicists (register courses from backup files, assign, triage,
suspend/resume) and the administrator (accounts). Finance has `pages_finance`.

DICOM RT Plan/record upload, exports and sends are added by their own page modules when
those adapters land (listed in app.AREAS)."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from litestar import Request, Router, get, post
from litestar.datastructures import UploadFile
from litestar.enums import RequestEncodingType
from litestar.params import Body, FromPath
from litestar.response import Redirect, Template

from adapters.http.auth import current
from adapters.http.backend import actor_of
from adapters.http import access_log
from adapters.http.i18n import language_of, translator, words
from adapters.i18n import name_parts
from adapters.http.pages import Form, backend, check_form, flash, page, refusal
from ledger import access, errors
from ledger.accounts import hash_token
from schemas.api import AccountIn, AssignIn, PlanApprovalIn, ReasonIn, TriageIn

MAX_FILE = 5_000_000
# what a course change from this page says when done (`done_<change>`), and an import's status (`import_<status>`)
DONE = ("assign", "triage", "suspend", "resume", "complete", "approve_plan")
IMPORT_STATUSES = ("registered", "imported", "unchanged", "updated", "warning")


def awaiting_approval(b, who, courses: list[dict]) -> list[dict]:
    """The fallback plans that wait for a physicist of this home centre: each with its course and
    how it departs from the prescription (`ledger/replan.py`). Only courses with a re-plan are loaded."""
    from ledger import replan

    waiting = []
    for c in courses:
        if c["home_centre"] != who.centre or len(c.get("plans") or []) < 2:
            continue
        course = b.app.get_course(c["id"])
        for uid, found in course.awaiting_approval.items():
            plan = course.find_plan(uid)
            waiting.append({"course": c, "plan_uid": uid, "plan_label": plan.label if plan else uid,
                            "centre": plan.centre if plan else "", "differences": replan.describe(found)})
    return waiting


def physicist_context(request: Request, **context: Any) -> dict:
    b, who = backend(request), current(request)
    courses = b.courses_view(who)
    return {"courses": courses, "results": [], "extra_column": "_physicist_actions.html",
            "sources": b.sources_view(), "approvals": awaiting_approval(b, who, courses),
            "gap_alarms": b.gap_alarms_view(who), **context}


@get("/physicist", opt={"action": "courses.list"}, sync_to_thread=True, include_in_schema=False)
def physicist_home(request: Request) -> Template:
    return page(request, "physicist.html", **physicist_context(request))


@post("/physicist/courses", opt={"action": "courses.register"}, include_in_schema=False,
      status_code=200, request_max_body_size=10 * MAX_FILE)
async def upload_courses(request: Request,
                         data: Annotated[dict[str, Any], Body(media_type=RequestEncodingType.MULTI_PART)]) -> Template:
    """Register courses from backed-up course files (one JSON course per file), with a result per file."""
    who = current(request)
    files = data.get("files")
    files = files if isinstance(files, list) else [files] if files is not None else []
    results = []
    for upload in files:
        if not isinstance(upload, UploadFile):
            continue
        content = await upload.read()
        results.append(register_file(request, upload.filename, content, who))
    return page(request, "physicist.html", **physicist_context(request, results=named(request, results)))


def register_file(request: Request, filename: str, content: bytes, who) -> dict:
    w = words(language_of(request))
    if len(content) > MAX_FILE:
        return {"file": filename, "ok": False, "message": w.t("file_too_large", limit=w.number(MAX_FILE))}
    try:
        raw = msgspec.json.decode(content)
        if isinstance(raw, dict):
            access.check(who, "courses.register", home_centre=str(raw.get("home_centre")))
        result = backend(request).app.register_course(raw, actor_of(who))
        return {"file": filename, "ok": True, "status": result["status"], "id": result["id"]}
    except msgspec.DecodeError as exc:
        return {"file": filename, "ok": False, "message": w.t("not_json_course", detail=str(exc))}
    except errors.LedgerError as exc:
        return {"file": filename, "ok": False, "message": w.say(exc)}


def named(request: Request, results: list[dict]) -> list[dict]:
    """Each import result that reached a course, with the course's patient and plan (what the
    physicist checks), read from the read model; its status in words."""
    b, w = backend(request), words(language_of(request))
    for r in results:
        if r.get("id"):
            view = b.read(lambda m, cid=r["id"]: m.course(cid))
            if view is not None:
                r["course"] = view
        if r.get("status"):
            r["status_text"] = w.t("import_" + r["status"]) if w.t("import_" + r["status"]) != "import_" + r["status"] \
                else r["status"]
    access_log.saw_rows([r["course"] for r in results if r.get("course")])
    return results


def course_form(path: str, action: str, kind: type, fields: tuple[str, ...], run):
    """A course change from a form, held to the API body `kind` (its `fields` from the form)."""
    def handler(request: Request, course_id: FromPath[str], data: Form) -> Template | Redirect:
        b, who = backend(request), current(request)
        course = b.course_for(who, action, course_id)
        t = translator(language_of(request))
        try:
            check_form(kind, {f: str(data.get(f, "")) for f in fields})
            run(b.app, course_id, data, who)
        except errors.LedgerError as exc:
            status = 400 if isinstance(exc, errors.InvalidCommand) else 409
            return page(request, "physicist.html", status_code=status,
                        **physicist_context(request, refusal=refusal(t, exc), refused_course=course_id))
        family, given = name_parts(course.patient.get("name"))
        who_is = " ".join([course.patient["id"], ", ".join(p for p in (family, given) if p)])
        flash(request, t("done_" + path.replace("-", "_"), patient=who_is,
                         plan=course.plan.label, centre=str(data.get("centre", "")), triage=str(data.get("triage", "")),
                         plan_uid=str(data.get("plan_uid", ""))))
        return Redirect("/physicist")

    handler.__name__ = "form_" + path
    return post("/physicist/courses/{course_id:str}/" + path, opt={"action": action}, sync_to_thread=True,
                include_in_schema=False, status_code=200)(handler)


assign_form = course_form("assign", "courses.assign", AssignIn, ("centre",),
                          lambda app, cid, d, who: app.assign_centre(cid, str(d.get("centre", "")), actor_of(who)))
triage_form = course_form("triage", "courses.triage", TriageIn, ("triage",),
                          lambda app, cid, d, who: app.set_triage(cid, d.get("triage"), actor_of(who)))
suspend_form = course_form("suspend", "courses.lifecycle", ReasonIn, ("reason",),
                           lambda app, cid, d, who: app.suspend_course(cid, str(d.get("reason", "")), actor_of(who)))
resume_form = course_form("resume", "courses.lifecycle", ReasonIn, (),
                          lambda app, cid, d, who: app.resume_course(cid, actor_of(who)))
complete_form = course_form("complete", "courses.lifecycle", ReasonIn, ("reason",),
                            lambda app, cid, d, who: app.complete_course(cid, str(d.get("reason", "")), actor_of(who)))
approve_form = course_form("approve-plan", "courses.approve_plan", PlanApprovalIn, ("plan_uid",),
                           lambda app, cid, d, who: app.approve_fallback_plan(cid, str(d.get("plan_uid", "")),
                                                                              actor_of(who)))


@get("/admin", opt={"action": "accounts.manage"}, sync_to_thread=True, include_in_schema=False)
def admin_home(request: Request) -> Template:
    return admin_page(request)


def admin_page(request: Request, status_code: int = 200, **context: Any) -> Template:
    """The accounts of the administrator's own centre."""
    who = current(request)
    return page(request, "admin.html", status_code=status_code, accounts=backend(request).accounts_view(who),
                centre=who.centre, **context)


@post("/admin/accounts", opt={"action": "accounts.manage"}, sync_to_thread=True, include_in_schema=False,
      status_code=200)
def admin_create(request: Request, data: Form) -> Template:
    from adapters.http.api_system import new_token

    who, b = current(request), backend(request)
    token, created, problem = new_token(), None, None
    status = 200
    try:
        fields = {k: str(data.get(k, "")) for k in ("name", "role", "centre")}
        check_form(AccountIn, fields)
        b.add_account(who, fields, hash_token(token))
        created = {"name": data.get("name"), "token": token}
    except errors.LedgerError as exc:
        problem = refusal(translator(language_of(request)), exc)
        status = 400 if isinstance(exc, errors.InvalidCommand) else 403 if problem["code"] == "forbidden" else 409
    return admin_page(request, created=created, refusal=problem, status_code=status)


@post("/admin/accounts/{name:str}/revoke", opt={"action": "accounts.manage"}, sync_to_thread=True,
      include_in_schema=False, status_code=200)
def admin_revoke(request: Request, name: FromPath[str]) -> Redirect:
    backend(request).revoke_account(current(request), name)  # 404 for another centre's account
    flash(request, translator(language_of(request))("revoked_ok", name=name))
    return Redirect("/admin")


@post("/admin/accounts/{name:str}/rotate", opt={"action": "accounts.manage"}, sync_to_thread=True,
      include_in_schema=False, status_code=200)
def admin_rotate(request: Request, name: FromPath[str]) -> Template:
    from adapters.http.api_system import new_token

    token = new_token()
    backend(request).rotate_account(current(request), name, hash_token(token))  # 404 for another centre's
    return admin_page(request, created={"name": name, "token": token})


router = Router("/", route_handlers=[physicist_home, upload_courses, assign_form, triage_form, suspend_form,
                                     resume_form, complete_form, approve_form, admin_home, admin_create, admin_revoke, admin_rotate])
