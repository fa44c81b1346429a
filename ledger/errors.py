"""Every refusal the ledger can give, by name.

A refusal means nothing was written. The message is for a tired RTT at a linac: it says
which fraction, which course, and who/where/when of the record that is in the way.
`conflict` carries that record for programs (the API answers it with a 409).
"""

from __future__ import annotations

from typing import Any

from ledger.messages import english, known, said


class LedgerError(Exception):
    """Base of all refusals. `code` is stable for programs and names the kind of refusal;
    `said` is what it tells a person: a message code of `ledger.messages` with its values,
    rendered in the reader's language at the edge. `message` is its English text."""

    code = "refused"

    def __init__(self, text: str, /, *, conflict: dict[str, Any] | None = None, **params: Any):
        self.said = said(text, **params) if known(text) else None
        message = english(self.said) if self.said else text
        super().__init__(message)
        self.message = message
        self.conflict = conflict

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"error": self.code, "message": self.message}
        if self.said is not None:
            out["said"] = self.said
        if self.conflict is not None:
            out["conflict"] = self.conflict
        return out


class InvalidCommand(LedgerError):
    """Bad input: names the field and the reason (a message code with its values)."""

    code = "invalid"

    def __init__(self, field: str, reason: str, /, **params: Any):
        super().__init__(reason, **params)
        self.field = field
        self.reason = self.message
        self.message = f"{field}: {self.reason}"
        self.args = (self.message,)


class NotFound(LedgerError):
    code = "not_found"


class CourseNotFound(NotFound):
    code = "course_not_found"


class FractionNotFound(NotFound):
    code = "fraction_not_found"


class RuleViolation(LedgerError):
    """A refusal by a clinical safety rule. Refused on a live attempt (an RTT logging or
    verifying), those in `ledger.incident.NEAR_MISS_SEVERITY` are recorded as near-misses.
    `do_not_treat`: whether the refusal means the patient must not be treated as things stand."""

    code = "rule_violation"
    do_not_treat = True


class FractionOutOfRange(RuleViolation):
    code = "fraction_out_of_range"


class FractionAlreadyDelivered(RuleViolation):
    code = "fraction_already_delivered"


class MetersetBeyondTolerance(RuleViolation):
    """A beam's delivered MU differ from what it should have received beyond tolerance: refused
    unless a person confirms it with a reason (then it is a recorded dose deviation). The session
    was delivered: it is the record that needs a second look, not the treatment that must stop."""

    code = "meterset_beyond_tolerance"
    do_not_treat = False


class BeamAlreadyComplete(RuleViolation):
    """A continuation that names a beam the fraction's earlier sessions delivered in full."""

    code = "beam_already_complete"


class PlanHasNoBeams(RuleViolation):
    """A fraction on a course whose plan lists no beams: what would it have delivered?"""

    code = "plan_has_no_beams"


class VerifierIsOperator(RuleViolation):
    """The four-eyes rule: the person who delivered a fraction cannot be its second check."""

    code = "verifier_is_operator"


class PatientMismatch(RuleViolation):
    code = "patient_mismatch"


class PlanForAnotherCentre(RuleViolation):
    """A fallback plan for a centre other than the one adding it: a centre re-plans only for its own linacs."""

    code = "plan_for_another_centre"


class PlanNotApproved(RuleViolation):
    """A fraction with a re-plan that differs from the prescription beyond a re-plan's expected
    changes and that no physicist of the home centre has approved yet."""

    code = "plan_not_approved"


class CourseNotActive(RuleViolation):
    code = "course_not_active"


class NothingToContinue(RuleViolation):
    code = "nothing_to_continue"


class Conflict(LedgerError):
    """The request contradicts the current state (not a clinical rule)."""

    code = "conflict"


class CourseConflict(Conflict):
    code = "course_conflict"


class CourseAlreadyRegistered(Conflict):
    """One backed-up plan is one course: the patient's plan is already a course (of this or another home centre)."""

    code = "course_already_registered"


class UnknownPlan(Conflict):
    code = "unknown_plan"


class UnknownBeam(Conflict):
    code = "unknown_beam"


class AlreadyVerified(Conflict):
    code = "already_verified"


class AlreadyVoided(Conflict):
    code = "already_voided"


class LifecycleConflict(Conflict):
    code = "lifecycle_conflict"


class RequestIdReused(Conflict):
    code = "request_id_reused"


class StillContended(Conflict):
    """Other writers kept changing the course; nothing was written, try again."""

    code = "contended"


class AccessDenied(LedgerError):
    """The account's role or centre does not allow this (see `ledger.access`)."""

    code = "forbidden"


class AccountConflict(Conflict):
    code = "account_conflict"


class AccountNotFound(NotFound):
    code = "account_not_found"


class IncidentNotFound(NotFound):
    code = "incident_not_found"


class IncidentClosed(Conflict):
    code = "incident_closed"


class CentreNotFound(NotFound):
    code = "centre_not_found"


class UnknownOrigin(Conflict):
    """A record names no centre the ledger knows: it is refused rather than attributed by guess."""

    code = "unknown_origin"


class CentreConflict(Conflict):
    code = "centre_conflict"


class BundleRefused(Conflict):
    """A bundle that fails its signature, its chain or a check of its content: nothing of it was applied."""

    code = "bundle_refused"


class LogCompromised(LedgerError):
    """The event log failed its integrity check (an event edited, deleted, reordered or written
    outside the ledger): nothing more is written until it is restored from a verified copy.
    `problem` says which event and what is wrong (adapters.chain)."""

    code = "log_compromised"

    def __init__(self, problem: dict[str, Any], position: int):
        what = problem.get("said") or problem.get("message", "")
        super().__init__("log_compromised.integrity_check_failed", conflict=problem, problem=what, position=position)
        self.problem = problem


# ---- issue 17: prescription amendments ------------------------------------------------------


class CountersignerIsPrescriber(RuleViolation):
    """The four-eyes rule on a prescription change: who proposed an amendment cannot countersign it."""

    code = "countersigner_is_prescriber"
    do_not_treat = False


class AmendmentConflict(Conflict):
    """An amendment that contradicts the course as it stands (fewer fractions than delivered,
    countersigned already)."""

    code = "amendment_conflict"


class AmendmentNotFound(NotFound):
    code = "amendment_not_found"


class UnknownCentre(InvalidCommand):
    """A centre that is not in the registry (`ledger.registry`): a typo must not send a patient
    nowhere. Bad input naming the field; `conflict` lists the centres the registry knows."""

    code = "unknown_centre"

    def __init__(self, text: str, /, *, field: str = "centre", **params: Any):
        super().__init__(field, text, **params)


class PlanChanged(Conflict):
    """An accepted assignment no longer holds on the current state (a partner filled up, the course
    was assigned meanwhile): nothing of the acceptance was recorded; plan again."""

    code = "plan_changed"
