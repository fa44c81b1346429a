"""Pages for RTTs: sign-in, the worklist of their centre, and the course page where a
fraction is logged, verified by a colleague or voided. Refusals are shown in plain words,
in the user's language, with the ledger's own explanation of the record in the way."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from litestar import Request, Response, Router, get, post
from litestar.enums import RequestEncodingType
from litestar.params import Body, FromPath, FromQuery
from litestar.response import Redirect, Template

from adapters.runtime import department_zone, local_text
from adapters.http.auth import PUBLIC, SESSION_TOKEN, SESSION_USER, address_of, current, refuse_while_locked
from adapters.http.backend import Backend, actor_of, may_void
from adapters.http.auth import HOME_OF_ROLE
from adapters.http.errors import InvalidBody, log_alarm, validate_body
from adapters.http.course_gaps import course_gap_context
from adapters.http.i18n import COOKIE, LANGUAGES, language_of, translator, words
from adapters.i18n import mu_input, name_parts
from adapters.http.sessions import rotate
from adapters.http.throttle import TooManyAttempts, account_key
from ledger import errors
from ledger.accounts import hash_token, principal_for_token
from schemas.api import FractionIn, VoidIn

Form = Annotated[dict[str, Any], Body(media_type=RequestEncodingType.URL_ENCODED)]
TERMINATIONS = ("NORMAL", "OPERATOR", "MACHINE", "UNKNOWN")
INCIDENT_CATEGORIES = ("positioning", "dose-deviation", "equipment", "extra-or-missed-fraction",
                       "wrong-patient-or-plan", "data-loss-or-restore", "communication", "other")


def zone() -> ZoneInfo:
    return department_zone()


def local(iso: str | None) -> str:
    """A stored (UTC) time as the department's local time, for people reading a page."""
    return local_text(iso)


def local_at(iso: str | datetime | None) -> datetime | None:
    """A stored time in the department's zone (for `Words.when`, which writes it per locale)."""
    if not iso:
        return None
    try:
        at = datetime.fromisoformat(iso) if isinstance(iso, str) else iso
        return at.astimezone(zone())
    except (TypeError, ValueError):
        return None


def local_input(text: str | None, field: str) -> datetime | None:
    """A datetime-local field, in the department's zone (None when empty)."""
    if not text:
        return None
    try:
        return datetime.fromisoformat(text).replace(tzinfo=zone())
    except ValueError:
        raise errors.InvalidCommand(field, "invalid.not_date_time", text_value=repr(text)) from None


def backend(request: Request) -> Backend:
    return request.app.state.backend


def page(request: Request, name: str, status_code: int = 200, **context: Any) -> Template:
    lang = language_of(request)
    flash = None
    if request.scope.get("session") and "flash" in request.session:
        flash = request.session.pop("flash")
        request.set_session(dict(request.session))
    who = request.scope.get("user")
    shown = context.get("refusal")
    if isinstance(shown, dict) and shown.get("code") == errors.LogCompromised.code:
        status_code = 503  # whichever form was refused: the log, not the input, is what is wrong
    w = words(lang)
    return Template(template_name=name, status_code=status_code, context={
        "t": w.t, "tn": w.tn, "say": w.say, "words": w, "lang": lang, "languages": LANGUAGES, "who": who,
        "path": request.url.path, "flash": flash, "home": HOME_OF_ROLE.get(who.role, "/") if who else "/",
        "local": lambda iso: w.when(local_at(iso)) if local_at(iso) else ("–" if not iso else str(iso)),
        "local_at": local_at, "name_parts": name_parts, "mu_input": mu_input,
        "alarm": log_alarm(request), "no_registry": no_registry(request, who), "gap_alarms": [], **context,
    })


def no_registry(request: Request, who: Any) -> bool:
    """Until a centre is registered, any centre code is accepted: the people who can register
    them (physicists, administrators) are told so on every page."""
    if who is None or who.role not in ("physicist", "admin"):
        return False
    return backend(request).app.outage.registry() is None


def flash(request: Request, text: str) -> None:
    request.set_session({**(request.session or {}), "flash": text})


_INDEX = re.compile(r"\[(\d+)\]")


def field_label(w, field: str) -> str:
    """A field's name as the page calls it ("Delivered MU, beam 2"), from `field_<name>` page keys
    (indices dropped: `beams[1].delivered_mu` is `field_beams.delivered_mu` with n=2); the bare
    name when the page has no label for it."""
    found = _INDEX.search(field)
    key = "field_" + _INDEX.sub("", field)
    label = w.t(key, n=int(found.group(1)) + 1) if found else w.t(key)
    return field if label == key else label


def named_field(w, field: str) -> str:
    label = field_label(w, field)
    return field if label == field else f"{label} ({field})"


def refusal(t, exc: errors.LedgerError) -> dict:
    """A refusal for people, in their language: a headline, then the ledger's words. Bad fields:
    each named as the page labels it, with its reason, also in `fields` (field -> reason) for
    the page to show next to the field itself."""
    w = getattr(t, "__self__", None) or words("en")  # `t` is a Words' bound method
    detail, fields = w.say(exc), {}
    if isinstance(exc, errors.InvalidCommand):
        problems = exc.said_fields if isinstance(exc, InvalidBody) else [(exc.field, exc.said or exc.reason)]
        fields = {f: w.say(r) for f, r in problems}
        # the label the page gives the field, and its name (what the API and support call it)
        detail = "; ".join(t("field_problem", field=named_field(w, f), reason=r) for f, r in fields.items())
    return {"headline": t("err_" + exc.code) if t("err_" + exc.code) != "err_" + exc.code else t("err_other"),
            "detail": detail, "conflict": exc.conflict, "code": exc.code, "fields": fields,
            "rule": isinstance(exc, errors.RuleViolation) and exc.do_not_treat}


def check_form(kind: type, raw: dict) -> None:
    """A page form is held to the limits of the API body it stands for (`schemas/`): every bad
    field named, nothing written."""
    validate_body(kind, raw)


# ---- sign-in and language ------------------------------------------------------------------


@get("/", opt={"action": PUBLIC}, sync_to_thread=False, include_in_schema=False)
def sign_in_page(request: Request) -> Template:
    return page(request, "sign_in.html")


@post("/", opt={"action": PUBLIC}, sync_to_thread=True, include_in_schema=False, status_code=200)
def sign_in(request: Request, data: Form) -> Template | Redirect:
    """A failure counts against the address and, when one was typed, the account name; while
    either is locked out (or the account the token opens is), the answer is 429, whatever the token."""
    token = str(data.get("token", "")).strip()
    name = str(data.get("name", "")).strip()[:65]  # no account name is longer than 64: bounds what is counted
    keys = [address_of(request)] + ([account_key(name)] if name else [])
    try:
        refuse_while_locked(request, *keys)
        who = principal_for_token(backend(request).app, token) if token else None
        if who is None or (name and who.user != name):
            request.app.state.throttle.failed(*keys)
            return page(request, "sign_in.html", status_code=401, account=name,
                        error=translator(language_of(request))("bad_token"))
        refuse_while_locked(request, account_key(who.user))
    except TooManyAttempts as locked:
        answer = page(request, "sign_in.html", status_code=429, account=name, error=locked.detail)
        answer.headers.update(locked.headers or {})
        return answer
    rotate(request, {SESSION_USER: who.user, SESSION_TOKEN: hash_token(token)})
    return Redirect(HOME_OF_ROLE[who.role])


@post("/sign-out", opt={"action": "me"}, sync_to_thread=False, include_in_schema=False, status_code=200)
def sign_out(request: Request) -> Redirect:
    request.clear_session()  # the stored session goes with its id; a new sign-in gets a new one
    return Redirect("/")


@get("/lang/{code:str}", opt={"action": PUBLIC}, sync_to_thread=False, include_in_schema=False)
def switch_language(request: Request, code: FromPath[str], next: FromQuery[str] = "/") -> Response:
    target = next if next.startswith("/") and not next.startswith("//") else "/"
    response = Redirect(target)
    if code in LANGUAGES:
        response.set_cookie(COOKIE, code, max_age=365 * 24 * 3600, samesite="strict", httponly=True,
                            secure=request.app.state.secure_cookies)
    return response


# ---- RTT pages ------------------------------------------------------------------------------


def course_context(request: Request, course_id: str, form: dict | None = None) -> dict:
    b, who = backend(request), current(request)
    view = b.course_view(who, course_id)
    aggregate = b.app.get_course(course_id)
    plan = aggregate.plan_in_use(who.centre)
    following = aggregate.next_fraction(who.centre)
    # Nothing left to deliver (suspended, completed, or every fraction given): no form, but why.
    stop = None if following is not None else {"status": aggregate.status, **(aggregate.status_note or {}),
                                                "planned": aggregate.fractions_planned()}
    here = [f for f in view["fractions"] if f["centre"] == who.centre and not f["voided"]]
    defaults = None
    if following is not None:
        group, number = following
        defaults = {
            "number": number,
            "group": group.number,
            "machine": here[-1]["machine"] if here else "",
            "delivered_at": b.app.clock().astimezone(zone()).strftime("%Y-%m-%dT%H:%M"),
            "beams": [{"number": b.number, "name": b.name, "planned": mu_input(b.meterset),
                       "delivered": mu_input(b.meterset), "termination": "NORMAL"} for b in group.beams],
        }
    voidable = {(f["group"], f["number"]) for f in view["fractions"]
                if not f["voided"] and may_void(who, aggregate, f["group"], f["number"])}
    # Confirmed dose deviations (beam, over/under, expected and delivered MU) per session, to highlight.
    deviations = {r.record_id: {"beams": {d.beam: d for d in r.deviations}, "reason": r.deviation_reason}
                  for r in aggregate.records if r.deviations}
    return {**course_gap_context(request, course_id),
            "course": view, "plan": plan, "form": form or defaults, "stop": stop, "zone": zone().key,
            "deviations": deviations,
            "terminations": TERMINATIONS, "may_log": who.role == "rtt", "may_report": who.role in ("rtt", "physicist"),
            "voidable": voidable, "incident_categories": INCIDENT_CATEGORIES}


@get("/courses/{course_id:str}", opt={"action": "courses.read"}, sync_to_thread=True, include_in_schema=False)
def course_page(request: Request, course_id: FromPath[str]) -> Template:
    return page(request, "course.html", **course_context(request, course_id))


def form_to_fraction(data: dict) -> tuple[dict, dict]:
    """The log form as a LogFraction command (and the form back, to show it again on refusal)."""
    beams, shown = [], []
    for key in sorted(k for k in data if k.startswith("beam_") and k.endswith("_mu")):
        number = key[len("beam_"):-len("_mu")]
        termination = str(data.get(f"beam_{number}_termination", "NORMAL"))
        beams.append({"number": number, "delivered_mu": str(data[key]).strip().replace(",", "."),
                      "termination": termination})
        shown.append({"number": number, "name": data.get(f"beam_{number}_name", ""),
                      "planned": data.get(f"beam_{number}_planned", ""), "delivered": data[key],
                      "termination": termination})
    local = str(data.get("delivered_at", ""))
    try:
        at: Any = datetime.fromisoformat(local).replace(tzinfo=zone()) if local else None
    except ValueError:
        at = local  # the ledger names the field and the reason
    command = {"number": data.get("number"), "group": data.get("group") or None, "machine": data.get("machine", ""),
               "delivered_at": at, "delivery_type": data.get("delivery_type", "TREATMENT"),
               "note": data.get("note", ""), "beams": beams or None,
               "deviation_reason": str(data.get("deviation_reason") or "").strip() or None}
    return command, {**data, "beams": shown}


@post("/courses/{course_id:str}/log", opt={"action": "fractions.log"}, sync_to_thread=True, include_in_schema=False,
      status_code=200)
def log_from_form(request: Request, course_id: FromPath[str], data: Form) -> Template | Redirect:
    b, who = backend(request), current(request)
    b.course_for(who, "fractions.log", course_id)
    command, shown = form_to_fraction(data)
    t = translator(language_of(request))
    try:
        check_form(FractionIn, {"type" if k == "delivery_type" else k: v for k, v in command.items()})
        record = b.app.log_fraction(course_id, {**command, "centre": who.centre, "operator": who.user}, actor_of(who))
    except errors.LedgerError as exc:
        return page(request, "course.html", status_code=400 if isinstance(exc, errors.InvalidCommand) else 409,
                    refusal=refusal(t, exc), **course_context(request, course_id, form=shown))
    text = t("accepted", number=record["number"])
    if record["warnings"]:
        text += " " + t("warnings") + ": " + " ".join(words(language_of(request)).say(w) for w in record["warnings"])
    flash(request, text)
    return Redirect(f"/courses/{course_id}")


def fraction_action(path: str, action: str, run, ok_key: str):
    def handler(request: Request, course_id: FromPath[str], number: FromPath[int], data: Form) -> Template | Redirect:
        b, who = backend(request), current(request)
        b.course_for(who, action, course_id)
        t = translator(language_of(request))
        try:
            run(b, course_id, number, data, who)
        except errors.LedgerError as exc:
            status = 403 if isinstance(exc, errors.AccessDenied) else 400 if isinstance(exc, errors.InvalidCommand) else 409
            return page(request, "course.html", status_code=status, refusal=refusal(t, exc),
                        **course_context(request, course_id))
        flash(request, t(ok_key, number=number))
        return Redirect(f"/courses/{course_id}")

    handler.__name__ = action.replace(".", "_") + "_form"
    return post("/courses/{course_id:str}/fractions/{number:int}/" + path, opt={"action": action}, sync_to_thread=True,
                include_in_schema=False, status_code=200)(handler)


verify_from_form = fraction_action(
    "verify", "fractions.verify",
    lambda b, cid, n, data, who: b.app.verify_fraction(cid, n, who.user, actor_of(who)), "verified_ok")


class VoidNotConfirmed(errors.InvalidCommand):
    code = "void_not_confirmed"


def void_confirmed(b: Backend, course_id: str, number: int, data: dict, who) -> None:
    """A void from the page needs its box ticked (the browser asks too, but the server does not
    count on it) and a reason; who may void which fraction is the backend's rule."""
    if data.get("confirm") != "yes":
        raise VoidNotConfirmed("confirm", "invalid.void_not_confirmed", number=number)
    check_form(VoidIn, {"reason": str(data.get("reason", ""))})
    b.void_fraction(who, course_id, number, str(data.get("reason", "")))


void_from_form = fraction_action("void", "fractions.void", void_confirmed, "voided_ok")

router = Router("/", route_handlers=[sign_in_page, sign_in, sign_out, switch_language, course_page,
                                     log_from_form, verify_from_form, void_from_form])
