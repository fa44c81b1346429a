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
from adapters.http.i18n import language_of, translator
from adapters.http.pages import Form, backend, check_form, flash, page, refusal
from ledger import access, errors
from ledger.accounts import hash_token
from schemas.api import AccountIn, AssignIn, ReasonIn, TriageIn

MAX_FILE = 5_000_000


@get("/physicist", opt={"action": "courses.list"}, sync_to_thread=True, include_in_schema=False)
def physicist_home(request: Request) -> Template:
    courses = backend(request).courses_view(current(request))
    return page(request, "physicist.html", courses=courses, results=[], extra_column="_physicist_actions.html",
                sources=backend(request).sources_view(), gap_alarms=backend(request).gap_alarms_view(current(request)))


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
    courses = backend(request).courses_view(who)
    return page(request, "physicist.html", courses=courses, results=results, extra_column="_physicist_actions.html",
                sources=backend(request).sources_view())


def register_file(request: Request, filename: str, content: bytes, who) -> dict:
    if len(content) > MAX_FILE:
        return {"file": filename, "ok": False, "message": f"larger than {MAX_FILE} bytes"}
    try:
        raw = msgspec.json.decode(content)
        if isinstance(raw, dict):
            access.check(who, "courses.register", home_centre=str(raw.get("home_centre")))
        result = backend(request).app.register_course(raw, actor_of(who))
        return {"file": filename, "ok": True, "message": f"{result['status']}: {result['id']}", "id": result["id"]}
    except msgspec.DecodeError as exc:
        return {"file": filename, "ok": False, "message": f"not a JSON course file ({exc})"}
    except errors.LedgerError as exc:
        return {"file": filename, "ok": False, "message": exc.message}


def course_form(path: str, action: str, kind: type, fields: tuple[str, ...], run):
    """A course change from a form, held to the API body `kind` (its `fields` from the form)."""
    def handler(request: Request, course_id: FromPath[str], data: Form) -> Template | Redirect:
        b, who = backend(request), current(request)
        b.course_for(who, action, course_id)
        try:
            check_form(kind, {f: str(data.get(f, "")) for f in fields})
            run(b.app, course_id, data, who)
        except errors.LedgerError as exc:
            t = translator(language_of(request))
            courses = b.courses_view(who)
            status = 400 if isinstance(exc, errors.InvalidCommand) else 409
            return page(request, "physicist.html", status_code=status, courses=courses, results=[],
                        refusal=refusal(t, exc), extra_column="_physicist_actions.html",
                        sources=backend(request).sources_view())
        flash(request, f"{path}: {course_id}")
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
    return Redirect("/admin")


@post("/admin/accounts/{name:str}/rotate", opt={"action": "accounts.manage"}, sync_to_thread=True,
      include_in_schema=False, status_code=200)
def admin_rotate(request: Request, name: FromPath[str]) -> Template:
    from adapters.http.api_system import new_token

    token = new_token()
    backend(request).rotate_account(current(request), name, hash_token(token))  # 404 for another centre's
    return admin_page(request, created={"name": name, "token": token})


router = Router("/", route_handlers=[physicist_home, upload_courses, assign_form, triage_form, suspend_form,
                                     resume_form, admin_home, admin_create, admin_revoke, admin_rotate])
