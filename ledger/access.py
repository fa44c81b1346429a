"""Who may do what, on which course: the access policy (authorization, not a clinical rule).

Every HTTP route names one action; this table says which roles may take it and on which
courses. A course's centres are its home centre and the centres it is assigned to.
A route whose action is not in the table cannot be served (the app refuses to start).

Need to know (NEN 7510, GDPR) comes first: whatever the action, a caller sees only the courses
`sees` allows, on every route and page that returns patient data (lists, exports, incidents,
statements, deliveries...). A course the caller may not see is answered exactly as an unknown
id (404, same words), never 403, so that nobody learns that another centre's patient exists;
403 is kept for a course the caller sees but may not change. The policy is here;
`adapters/http/backend.py` applies it.
"""

from __future__ import annotations

from collections.abc import Iterable

import msgspec

from ledger import errors

ROLES: tuple[str, ...] = ("rtt", "physicist", "finance", "admin", "privacy", "oncologist")

# Scopes: on which courses a role may take an action.
ANY = "any"            # every course (or no course involved)
HOME = "home"          # courses whose home centre is the user's centre
ASSIGNED = "assigned"  # courses of the user's centre: home, or assigned to it
SEEN = "seen"          # the courses the user sees (`sees`, below): the reading actions

# Need to know: whose courses each role sees at all.
#   rtt, physicist: the courses of their centre (home, or assigned to it): they treat them,
#     plan them, re-plan them, import and export them.
#   finance: those, and also the courses its centre bills or is billed for (the billing centre,
#     or a centre with a share, of one of the course's splits). A centre that is party to a
#     billing agreement must check the lines settled under it, and a fraction given at a centre
#     the course is not assigned to is accepted (with a warning) and paid: that centre's finance
#     needs those courses, with no clinical page of theirs beyond the course itself.
#   admin: no course; it manages the accounts of its own centre only.
#   privacy: no course; it reads the access log of its own centre (who read which patient).
#   oncologist: the courses of its centre (home, or assigned to it): it prescribes for them.
BILLED = "billed"
SEES: dict[str, str | None] = {"rtt": ASSIGNED, "physicist": ASSIGNED, "finance": BILLED, "admin": None,
                               "privacy": None, "oncologist": ASSIGNED}

RULES: dict[str, dict[str, str]] = {
    # reading
    "me": {"rtt": ANY, "physicist": ANY, "finance": ANY, "admin": ANY, "privacy": ANY, "oncologist": ANY},
    "courses.list": {"rtt": SEEN, "physicist": SEEN, "finance": SEEN, "oncologist": SEEN},
    "courses.read": {"rtt": SEEN, "physicist": SEEN, "finance": SEEN, "oncologist": SEEN},
    # the log's course events: only those of the courses the caller sees
    "events.read": {"physicist": SEEN, "finance": SEEN},
    # RTTs at the linac
    "fractions.log": {"rtt": ASSIGNED},
    "fractions.verify": {"rtt": ASSIGNED},
    "fractions.void": {"rtt": ASSIGNED, "physicist": HOME},
    # the home physicists
    "courses.register": {"physicist": HOME},
    "courses.assign": {"physicist": HOME},
    "courses.triage": {"physicist": HOME},
    "courses.lifecycle": {"physicist": HOME},
    # a partner's id of the patient is mapped by a home physicist, who checks name and birth date
    "courses.identity": {"physicist": HOME},
    # a partner re-plans on its own linac, so its physicists add fallback plans too
    "courses.fallback_plan": {"physicist": ASSIGNED},
    # a re-plan that departs from the prescription waits for a physicist of the home centre
    "courses.approve_plan": {"physicist": HOME},
    "exports": {"physicist": HOME},
    # imports from the backup (RT Plans, baseline records, triage list) for the home centre's
    # courses; a partner's re-plan files are attached to a course assigned to it
    "imports.plans": {"physicist": HOME},
    "imports.records": {"physicist": HOME},
    "imports.triage": {"physicist": HOME},
    # after recovery: a home centre reconciles its own restored OIS against its courses
    "reconcile": {"physicist": HOME},
    # sends to the home systems go from the home centre; the answers (sent, accepted,
    # refused with the reason) are for everyone who follows the recovery
    "sends": {"physicist": HOME},
    # (a refusal names a patient: only those of courses the caller sees are listed)
    "deliveries.read": {"physicist": SEEN, "finance": SEEN},
    # incidents: on an incident, "home" is the course's home centre (else the centre where it
    # happened) and the centre where it happened counts as assigned. A caller sees the
    # incidents its centre registered and those of the courses it sees (`sees_incident`).
    "incidents.read": {"rtt": SEEN, "physicist": SEEN, "finance": SEEN},
    "incidents.register": {"rtt": ASSIGNED, "physicist": ASSIGNED},
    "incidents.follow_up": {"rtt": ASSIGNED, "physicist": ASSIGNED},
    "incidents.close": {"physicist": HOME},
    # what a home centre gets back: of the incidents it may see (`centre=` only narrows it)
    "incidents.export": {"physicist": SEEN},
    # finance: reads the agreements its centre is a party to and the statements and splits of
    # the courses it sees; records agreements and settles only where its centre is a party
    "billing": {"finance": SEEN},
    "billing.agree": {"finance": ASSIGNED},
    "billing.settle": {"finance": ASSIGNED},
    # the treatment category picks the tariff: the home centre's physicists or finance
    "courses.category": {"physicist": HOME, "finance": HOME},
    # the administrator: list, add, revoke and rotate the accounts of its own centre ("home"
    # is the account's centre); another centre's account is answered as unknown (404)
    "accounts.manage": {"admin": HOME},
    # the access log (NEN 7513): the administrator and the privacy officer, each for what concerns
    # its centre (read by its people, or of its patients); nobody can change it
    "access_log.read": {"admin": HOME, "privacy": HOME},
    # issue 17: treatment gaps and prescription amendments. The gaps worklist for those who treat,
    # plan and prescribe; the gap category and the schedule by the prescriber (the schedule also
    # by the home physicist who registers the course); an amendment is proposed by an oncologist
    # (a physicist only where the centre allows it: `check_prescriber`) and countersigned by a
    # second oncologist or a physicist (never its prescriber: ledger/amendments.py).
    "gaps.read": {"rtt": SEEN, "physicist": SEEN, "oncologist": SEEN},
    "courses.gap_category": {"oncologist": ASSIGNED},
    "courses.schedule": {"oncologist": ASSIGNED, "physicist": HOME},
    "courses.amend": {"oncologist": ASSIGNED, "physicist": ASSIGNED},
    "courses.countersign": {"oncologist": ASSIGNED, "physicist": ASSIGNED},
    # outage operations (issue 18). The registry names no patient: everyone reads it; physicists
    # and administrators keep it (codes, names, machines, zones, aliases) for the network.
    "centres.read": {"rtt": ANY, "physicist": ANY, "finance": ANY, "admin": ANY},
    "centres.manage": {"physicist": ANY, "admin": ANY},
    # a partner declares its own capacity ("home" is the declaring centre); physicists plan with all
    "capacity.read": {"physicist": ANY, "admin": ANY},
    "capacity.declare": {"physicist": HOME, "admin": HOME},
    # the home physicists propose and accept the assignment of their courses
    "plan.assignments": {"physicist": HOME},
    # patients' phone numbers: only those who call them, the RTTs and physicists of the course's
    # centres; finance, administrators and privacy officers never need them
    "contacts.read": {"rtt": ASSIGNED, "physicist": ASSIGNED},
    "contacts.write": {"physicist": HOME},
    "calls.record": {"rtt": ASSIGNED, "physicist": ASSIGNED},
    # a centre's day list and the emergency sheets of the courses one sees
    "day_list.read": {"rtt": HOME, "physicist": HOME},
    "sheets.read": {"rtt": SEEN, "physicist": SEEN},
}

# Which roles prescribe (propose amendments): oncologists, and physicists where the centre
# configures it (FRACTION_LEDGER_PHYSICISTS_PRESCRIBE=1, read at the edge).
PRESCRIBERS: tuple[str, ...] = ("oncologist",)


def check_prescriber(principal: "Principal", physicists_prescribe: bool) -> None:
    """`courses.amend` lets physicists through the table; here the configuration decides."""
    if principal.role == "physicist" and not physicists_prescribe:
        raise errors.AccessDenied("forbidden.physicists_do_not_prescribe", user=principal.user,
                                  centre=principal.centre)


class Principal(msgspec.Struct, frozen=True):
    """A signed-in account: its name, role and centre."""

    user: str
    role: str
    centre: str


def scope_of(principal: Principal, action: str) -> str | None:
    """The scope in which `principal` may take `action`, or None when never."""
    if action not in RULES:
        raise KeyError(f"no access rule for action {action!r}")
    return RULES[action].get(principal.role)


def sees(principal: Principal, home_centre: str, assigned_centres: Iterable[str] = (),
         billing_parties: Iterable[str] = ()) -> bool:
    """Need to know: whether `principal` sees the course of these centres at all (`SEES`).
    `billing_parties`: the centres of the course's splits (billing centre and shares)."""
    scope = SEES.get(principal.role)
    if scope is None:
        return False
    return centre_sees(principal.centre, home_centre, assigned_centres, billing_parties if scope == BILLED else None)


def centre_sees(centre: str, home_centre: str, assigned_centres: Iterable[str] = (),
                billing_parties: Iterable[str] | None = None) -> bool:
    """Whether a centre's people see a course: its home centre and the centres assigned to it; with
    `billing_parties` (what its finance sees), also those that bill it or have a share of it."""
    if centre == home_centre or centre in set(assigned_centres):
        return True
    return billing_parties is not None and centre in set(billing_parties)


def sees_incident(principal: Principal, centre: str, course_seen: bool) -> bool:
    """An incident is seen by the centre where it was registered, and with its course (if any)."""
    return SEES.get(principal.role) is not None and (principal.centre == centre or course_seen)


def may(principal: Principal, action: str, home_centre: str | None = None,
        assigned_centres: Iterable[str] = (), billing_parties: Iterable[str] = ()) -> bool:
    """Whether `principal` may take `action` (on the course with these centres, if any)."""
    scope = scope_of(principal, action)
    if scope is None:
        return False
    if scope == ANY or home_centre is None:
        return True
    if scope == SEEN:
        return sees(principal, home_centre, assigned_centres, billing_parties)
    if scope == HOME:
        return principal.centre == home_centre
    return principal.centre == home_centre or principal.centre in set(assigned_centres)


def check(principal: Principal, action: str, home_centre: str | None = None,
          assigned_centres: Iterable[str] = (), billing_parties: Iterable[str] = ()) -> None:
    if not may(principal, action, home_centre, assigned_centres, billing_parties):
        raise errors.AccessDenied(
            "forbidden.may_not" if home_centre is None else "forbidden.may_not_on_course",
            user=principal.user, role=principal.role, centre=principal.centre, action=action,
            **({} if home_centre is None else {"home_centre": home_centre}),
            conflict={"user": principal.user, "role": principal.role, "centre": principal.centre, "action": action},
        )


def may_void(principal: Principal, home_centre: str, recorded_at: Iterable[str], verified: bool) -> bool:
    """Whether `principal` may void a fraction of a course of `home_centre` whose sessions were
    recorded at the centres `recorded_at`, `verified` or not (on top of "fractions.void").

    A void frees the fraction number for another delivery, so it must not undo a double
    check or another centre's record on one person's word: an RTT voids only what its own
    centre recorded and nobody has verified yet; anything else needs a physicist of the
    course's home centre, who answers for the course."""
    if principal.role == "physicist":
        return principal.centre == home_centre
    return principal.role == "rtt" and not verified and set(recorded_at) <= {principal.centre}


def check_void(principal: Principal, home_centre: str, number: int, recorded_at: Iterable[str],
               verified_by: str | None) -> None:
    centres = sorted(set(recorded_at))
    if may_void(principal, home_centre, centres, verified_by is not None):
        return
    why = (f"it was verified by {verified_by}" if verified_by is not None
           else f"it was recorded at {', '.join(centres)}")
    raise errors.AccessDenied(
        "forbidden.may_not_void_fraction", user=principal.user, role=principal.role, centre=principal.centre, number=number, why=why, home_centre=home_centre,
        conflict={"user": principal.user, "role": principal.role, "centre": principal.centre,
                  "action": "fractions.void", "number": number, "recorded_at": centres, "verified_by": verified_by,
                  "home_centre": home_centre},
    )


def centre_filter(principal: Principal, action: str = "courses.list") -> str | None:
    """For a list: None = every course, else only the courses of this centre."""
    return None if scope_of(principal, action) == ANY else principal.centre


def may_manage_account(principal: Principal, account_centre: str) -> bool:
    """An administrator manages the accounts of its own centre only: a token minted for another
    centre would open that centre's patients, a revoke would lock its staff out."""
    return may(principal, "accounts.manage", account_centre)
