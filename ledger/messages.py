"""Every sentence the ledger says to a person, by code: refusals, warnings, flags.

The domain never stores or raises prose. A refusal is `errors.X("code", **params)` and a
warning is `said("code", **params)`: a code from `TEXTS` and the values it needs. The edge
(pages, API, CLI, PDFs, the drill report) renders it in the reader's language with the
gettext catalogs in `adapters/locale` (`adapters/i18n.py`); `english()` is the source text,
and what programs, logs and the CLI's default language read.

`N_` marks a template for extraction (`pybabel extract`, see README "Translations"); a
template's `{name}` fields are the params. A count that needs plural forms is a `PLURALS`
entry: (singular, plural, the param that counts), marked with `Np_`.
"""

from __future__ import annotations

from typing import Any


def N_(text: str) -> str:
    """Marks a source text for extraction; it is translated where it is shown."""
    return text


def Np_(singular: str, plural: str) -> tuple[str, str]:
    """Marks a text with plural forms for extraction (`-k Np_:1,2`)."""
    return singular, plural


TEXTS: dict[str, str] = {
    # warnings stored with a fraction
    'warning.short_interval': N_('Less than {hours} hours after fraction {number} ({record}).'),
    'warning.centre_not_assigned': N_('Centre {centre} is not assigned to this course (home {home_centre}).'),
    'warning.course_flagged': N_('Course is flagged for review: {reason}'),
    # flags on a course, for a physicist to review
    'flag.replan_exceeds_prescription': N_('re-plan {course} ({uid}) prescribes {planned} fractions in group {group} from fraction {start}, but the course has {left} left: fractions beyond {prescribed} are refused; review the re-plan'),
    'flag.bundle_collision': N_('fraction {number} from {centre} collides: delivered there on {there}, while here: {clash}. Both records are kept.'),
    'flag.bundle_deviation': N_('fraction {number} from {centre} (delivered there on {there}) is kept although {clash}.'),
    # what a refusal is about, in a few words (inside another sentence)
    'refusal.fraction_already_delivered': N_('the fraction was already delivered'),
    'refusal.delivered_here': N_('the fraction was already delivered at {record}'),
    'refusal.course_not_active': N_('the course is not active'),
    'refusal.meterset_beyond_tolerance': N_("the metersets differ from the plan's beyond tolerance"),
    'refusal.beam_already_complete': N_('a beam was already delivered in full'),
    'refusal.plan_not_approved': N_('the plan awaits approval by the home centre'),
    # incidents the ledger registers itself
    'incident.beam_deviation': N_('beam {beam}: {delivered} MU delivered where {expected} MU were due'),
    'incident.dose_deviation': N_('Fraction {number} on {machine}: {beams}. Confirmed by {by}: {reason}'),
    'incident.near_miss': N_('Refused {command} by {user} at {centre}: {refusal}'),
    'incident.bundle_collision': N_('Bundle collision, both records kept: {reason}'),
    # commands, as an incident names them
    'command.log_fraction': N_('log fraction'),
    'command.verify_fraction': N_('verify fraction'),
    'command.void_fraction': N_('void fraction'),
    'command.import_bundle': N_('import bundle'),
    # forbidden
    'forbidden.may_not_void_fraction': N_("{user} ({role} at {centre}) may not void fraction {number}: {why}. An RTT voids only an unverified fraction recorded at its own centre; ask a physicist of {home_centre}, the course's home centre."),
    'forbidden.may_not': N_('{user} ({role} at {centre}) may not take the action {action}.'),
    'forbidden.may_not_on_course': N_('{user} ({role} at {centre}) may not take the action {action} on a course of {home_centre}.'),
    'forbidden.only_physicist_course_s': N_("Only a physicist of {home_centre}, the course's home centre, may approve plan {course} ({plan_uid}); {meta_user} acts for {meta_centre}."),
    'forbidden.admin_may_not_add': N_('{user} (admin at {centre}) may not add an account at {centre2}: an administrator manages the accounts of its own centre only.'),
    # account_conflict
    'account_conflict.account_already_exists_nothing': N_('Account {name} already exists ({role} at {centre}, {value}); nothing was changed.'),
    'account_conflict.account_revoked_make_new': N_('Account {name} is revoked; make a new account instead.'),
    'account_conflict.name_taken_choose_another': N_('The name {data_name} is taken; choose another. Nothing was changed.'),
    # account_not_found
    'account_not_found.no_account_named': N_('No account named {name}.'),
    # invalid
    'invalid.json_object': N_('expected a JSON object'),
    'invalid.not_json': N_('not valid JSON ({detail})'),
    'invalid.nested_too_deep': N_('nested deeper than {depth} levels of arrays and objects'),
    'invalid.unknown_field_expected': N_('unknown field (expected: {expected})'),
    'invalid.centre_from_account': N_('not accepted: the centre comes from your account'),
    'invalid.operator_from_account': N_('not accepted: the operator is the account that sends the fraction'),
    'invalid.verifier_from_account': N_('not accepted: the verifier is the account that sends the request'),
    'invalid.one_line': N_('must not contain a backslash (DICOM would read it as a second value) or a control character (CR, LF, TAB, NUL...)'),
    'invalid.multi_line': N_('must not contain a control character (CR, TAB, NUL...); line breaks are LF only'),
    'invalid.too_long': N_('at most {n} characters'),
    'invalid.too_short': N_('at least {n} characters'),
    'invalid.too_many': N_('at most {n} items'),
    'invalid.too_few': N_('at least {n} items'),
    'invalid.at_least': N_('at least {n}'),
    'invalid.at_most': N_('at most {n}'),
    'invalid.more_than': N_('must be more than {n}'),
    'invalid.missing_field': N_('{name} is required'),
    'invalid.unknown_field': N_('{name} is not a field of this request'),
    'invalid.enum_value': N_('{value} is not one of the allowed values'),
    'invalid.decimal': N_('is not a number (use a point for decimals, e.g. 120.5)'),
    'invalid.datetime': N_('is not a date and time (ISO-8601 with a timezone offset, e.g. 2026-11-23T09:30:00+01:00)'),
    'invalid.date': N_('is not a date (YYYY-MM-DD)'),
    'invalid.expected_type': N_('expected {expected}, got {got}'),
    'invalid.must_be_amount_eur': N_('must be an amount in EUR between 0 and {max_amount}, got {value}'),
    'invalid.must_be_whole_cents': N_('must be whole cents, got {value}'),
    'invalid.partner_must_be_another': N_('the partner must be another centre than the billing centre'),
    'invalid.before_valid_from': N_('{valid_to} is before valid_from {valid_from}'),
    'invalid.give_course_amount_or': N_('give the course amount, or a tariff per treatment category'),
    'invalid.per_fraction_rule_needs': N_('the per-fraction rule needs a fee per fraction'),
    'invalid.only_per_fraction_rule': N_('only the per-fraction rule has a fee per fraction'),
    'invalid.alias_one_not': N_('an alias is one of {alias_kinds}, not {kind}'),
    'invalid.not_dicom_name_characters': N_('{value} is not a DICOM {kind} name (1..{limit} characters, no backslash or control characters)'),
    'invalid.not_iana_time_zone': N_('{zone} is not an IANA time zone such as Europe/Brussels'),
    'invalid.fraction_group_not_plan': N_('fraction group {number} is not in plan {course} (groups: {known})'),
    'invalid.fraction_group_lists_no': N_('fraction group {number} lists no beams: give each beam with its meterset (MU)'),
    'invalid.utc_offset_not_time': N_('UTC offset {isoformat} is not a time zone on Earth (-12:00 to +14:00)'),
    'invalid.future_ledger_s_clock': N_("{at} is in the future: the ledger's clock reads {now}"),
    'invalid.before_course_could_have': N_('{at} is before course {course} could have started (registered {registered_at}; a fraction can be at most {days} days older)'),
    'invalid.plan_has_several_fraction': N_('this plan has several fraction groups: say which one'),
    'invalid.session_delivers_least_one': N_('a session delivers at least one beam; leave beams out to mean every planned beam in full'),
    'invalid.void_needs_reason': N_('a void needs a reason'),
    'invalid.beam_ended_normal_but': N_('beam {number} ended NORMAL but delivered 0 MU of {lacking}: a beam that ends normally gives its meterset; if it was interrupted, say how it ended (OPERATOR, MACHINE or UNKNOWN)'),
    'invalid.continuation_must_say_which': N_('a continuation must say which beams were delivered and their MU'),
    'invalid.beam_listed_twice': N_('beam {number} is listed twice'),
    'invalid.fallback_group_matches_no': N_('fallback group {number} matches no group of the original plan'),
    'invalid.group_re_plan_starts': N_('group {number}: a re-plan starts at a fraction of the course (1..{planned}), not {start}'),
    'invalid.follow_up_needs_text': N_('a follow-up needs text'),
    'invalid.required': N_('is required'),
    'invalid.missing': N_('is missing'),
    'invalid.destination_needs_name': N_('a destination needs a name'),
    'invalid.fraction_named_within_course': N_('a fraction is named within a course: give the course too'),
    'invalid.versions_are_numbered_ledger': N_('versions are numbered by the ledger'),
    'invalid.expected_two_different_centres': N_('{pair}: expected two different centres as C:P'),
    'invalid.before_from': N_('{end} is before from {start}'),
    'invalid.no_file_uploaded_multipart': N_('no file uploaded (multipart/form-data, field `files`)'),
    'invalid.not_offset_such_as': N_('{utc_offset} is not an offset such as +01:00'),
    'invalid.add_timezone_offset_e': N_('add the timezone offset, e.g. 2026-11-02T00:00:00+01:00'),
    'invalid.unknown_known': N_('unknown {unknown} (known: {join})'),
    'invalid.unknown_known_2': N_('unknown {unknown} (known: {destinations})'),
    'invalid.add_timezone_offset_e_2': N_('add the timezone offset, e.g. 2026-11-02T06:00:00+01:00'),
    'invalid.not_number_mu_or': N_('{mu_tolerance} is not a number of MU (0 or more)'),
    'invalid.must_be_characters': N_('must be 1 to {max_idempotency_key} characters'),
    'invalid.not_date_time': N_('{text_value} is not a date and time'),
    'invalid.not_date_yyyy_mm': N_('{start} is not a date (YYYY-MM-DD)'),
    'invalid.not_date_yyyy_mm_2': N_('{end} is not a date (YYYY-MM-DD)'),
    'invalid.choose_import_set_s': N_("choose the import set's import-set.json"),
    'invalid.not_import_set_manifest': N_('not an import set manifest ({exc})'),
    'invalid.detail': N_('{detail}'),
    # centre_conflict
    'centre_conflict.centre_already_has_public': N_('Centre {name} already has a public key; replacing it needs --replace-key (bundles signed with the old key will then be refused).'),
    'centre_conflict.name_already_means_centre': N_('The {kind} name {value} already means centre {centre}; one name names one centre.'),
    'centre_conflict.not_key_registered_centre': N_('{key_path} is not the key registered for centre {centre} ({fingerprint}); a bundle signed with it would be refused.'),
    # fraction_out_of_range
    'fraction_out_of_range.fraction_outside_prescription_course': N_('Fraction {number} is outside the prescription: course {course} of patient {patient_id} has {fractions_planned} fractions planned in group {number2} ({delivered} delivered). Do not treat.'),
    'fraction_out_of_range.fraction_outside_plan_which': N_('Fraction {number} is outside plan {course} ({uid}), which plans {fractions_planned} fractions in group {number2}. Do not treat.'),
    # fraction_already_delivered
    'fraction_already_delivered.fraction_course_patient_was': N_('Fraction {number} of course {course} (patient {patient_id}) was already delivered at {record}. Do not treat; if that record is wrong, void it first.'),
    'fraction_already_delivered.fraction_course_patient_was_2': N_('Fraction {number} of course {course} (patient {patient_id}) was delivered in full at {record}; there is nothing to continue. Do not treat.'),
    # plan_has_no_beams
    'plan_has_no_beams.plan_patient_lists_no': N_('Plan {course} ({uid}) of patient {patient_id} lists no beams in fraction group {group}: import its RT Plan before logging fractions. Do not treat from this course.'),
    # nothing_to_continue
    'nothing_to_continue.fraction_course_has_no': N_('Fraction {number} of course {course} has no delivered session to continue; log it as TREATMENT.'),
    # unknown_plan
    'unknown_plan.plan_not_plan_course': N_('Plan {plan_uid} is not a plan of course {course}.'),
    'unknown_plan.plan_not_plan_course_2': N_('Plan {plan_uid} is not a plan of course {course}: known plans are {value}.'),
    # meterset_beyond_tolerance
    'meterset_beyond_tolerance.fraction_course_patient_check': N_('Fraction {number} of course {course} (patient {patient_id}): {shown}. Check what was entered; if it is what the linac delivered, confirm it with a reason: it is then recorded as a dose deviation and an incident is registered.'),
    # plan_not_approved
    'plan_not_approved.plan_awaits_approval_physicist': N_('Plan {course} ({uid}) of {centre} awaits approval by a physicist of {home_centre}: {record}. Do not treat with it until it is approved.'),
    # fraction_not_found
    'fraction_not_found.fraction_course_not_recorded': N_('Fraction {number} of course {course} is not recorded.'),
    'fraction_not_found.course_holds_no_fraction': N_('Course {course} holds no fraction received as {sorted}: import the bundle that carried it first.'),
    # already_verified
    'already_verified.fraction_was_already_verified': N_('Fraction {number} was already verified by {verified_by}.'),
    # patient_mismatch
    'patient_mismatch.plan_patient_but_course': N_("Plan {course} ({uid}) is for patient {patient_id}, but course {course2} is of patient {patient_id2}: a fallback plan must be for the same patient. If it is the same person under another centre's id, map it first with `fraction-ledger course identity` (name and birth date are checked). Nothing was changed."),
    'patient_mismatch.born_not_patient_course': N_("{name} born {birth_date} is not the patient of course {course} (patient {patient_id}): name and birth date must both match to map {centre}'s id {patient_id2}."),
    # plan_for_another_centre
    'plan_for_another_centre.plan_plan_but_added': N_('Plan {course} ({uid}) is a plan for {centre}, but it is added by {centre2}: a centre adds fallback plans only for itself. Nothing was changed.'),
    # lifecycle_conflict
    'lifecycle_conflict.course_only_active_course': N_('Course {course} is {status}; only an active course can be suspended.'),
    'lifecycle_conflict.course_only_suspended_course': N_('Course {course} is {status}; only a suspended course can be resumed.'),
    'lifecycle_conflict.course_already_completed': N_('Course {course} is already completed.'),
    'lifecycle_conflict.course_split_recorded_when': N_('Course {course} is {status}; its split is recorded when it completes.'),
    # beam_already_complete
    'beam_already_complete.beam_fraction_course_patient': N_('Beam {number} of fraction {number2} (course {course}, patient {patient_id}) was already delivered in full ({start_mu} of {planned} MU): a continuation gives only the beams that were interrupted. Do not treat this beam again.'),
    # unknown_beam
    'unknown_beam.beam_not_plan_beams': N_('Beam {number} is not in plan {course} (beams: {join}).'),
    # verifier_is_operator
    'verifier_is_operator.delivered_fraction_cannot_verify': N_('{by} delivered fraction {number} and cannot verify it: a colleague must double-check.'),
    # already_voided
    'already_voided.fraction_was_already_voided': N_('Fraction {number} was already voided by {voided_by}: {void_reason}.'),
    # course_conflict
    'course_conflict.plan_already_course_with': N_('Plan {uid} is already on this course with other content.'),
    'course_conflict.patient_id_already_s': N_("Patient id {patient_id} is already {other_centre}'s id of this patient."),
    'course_conflict.course_already_registered_patient': N_('Course {course_id} is already registered for patient {id} and plan {uid} with a different {differs}; nothing was changed.'),
    # incident_closed
    'incident_closed.cannot_incident_closed': N_('Cannot {doing}: incident {id} is closed ({resolution}).'),
    # unknown_origin
    'unknown_origin.record_course_patient_machine': N_("A record of course {course} (patient {patient_id}) on machine {machine} names {shown}: no centre of this course is known by these names. Declare the centre's name with `fraction-ledger centre alias add CENTRE --institution NAME` (or --station), then import it again."),
    # course_already_registered
    'course_already_registered.plan_patient_already_course': N_('Plan {plan_uid} of patient {patient_id} is already course {course_id} of home centre {home_centre}; it cannot also be a course of {home_centre2}. Treat on that course (its home centre assigns it to your centre). Nothing was changed.'),
    # bundle_refused
    'bundle_refused.fraction_course_record_was': N_('fraction {number} of course {course} (record {source_uid}) was delivered at {centre}, not at {centre2}: a centre may verify or void only the fractions delivered there.'),
    'bundle_refused.unknown_event_type': N_('unknown event type {name}'),
    'bundle_refused.event_was_recorded_but': N_("event {i} ({key}) was recorded at {where}, but the bundle is {centre}'s: a centre's bundle may carry only its own records."),
    'bundle_refused.course_registration_gives_id': N_('course {id}: its registration gives id {cid}; the bundle is inconsistent.'),
    'bundle_refused.event_names_course_which': N_('event {i} ({key}) names course {course}, which the bundle does not describe.'),
    'bundle_refused.event_was_imported_before': N_('event {i} ({key}) was imported before with other content: the exporting ledger changed its history.'),
    'bundle_refused.event': N_('event {i} ({key}): {exc}'),
    'bundle_refused.course_bundle_s_differs': N_("course {id}: the bundle's {name} differs from this ledger's; nothing was imported."),
    'bundle_refused.not_bundle_file_expected': N_('not a bundle file: expected 2 JSON lines (bundle, signature), found {n_lines}'),
    'bundle_refused.not_bundle_file_format': N_('not a bundle file (format {bundle_format} expected)'),
    'bundle_refused.centre_has_no_public': N_('centre {centre} has no public key here: `fraction-ledger centre add {centre2} --public-key FILE`'),
    'bundle_refused.signature_does_not_match': N_("the signature does not match centre {centre}'s public key ({fingerprint}): the file was changed after signing, or signed by someone else"),
    'bundle_refused.bundle_s_head_does': N_("the bundle's head does not match the chain of its events (events were cut off)"),
    'bundle_refused.not_bundle_file': N_('not a bundle file: {exc}'),
    'bundle_refused.signed_unknown_centre': N_('signed by an unknown centre: {exc}'),
    'bundle_refused.event_does_not_match': N_('event {i} ({key}) does not match its chain hash'),
    'bundle_refused.malformed_bundle': N_('malformed bundle: {exc}'),
    'bundle_refused.detail': N_('{detail}'),
    # contended
    'contended.course_kept_changing_while': N_('The course kept changing while this was being recorded; nothing was written. Try again.'),
    'contended.ledger_kept_changing_while': N_('The ledger kept changing while the bundle was imported; nothing was written. Try again.'),
    # course_not_found
    'course_not_found.no_course_with_id': N_('No course with id {course_id}.'),
    # request_id_reused
    'request_id_reused.request_id_was_already': N_('Request id {request_id} was already used for a different {command}; nothing was written.'),
    # incident_not_found
    'incident_not_found.no_incident_with_id': N_('No incident with id {incident_id}.'),
    # centre_not_found
    'centre_not_found.centre_not_known_here': N_('Centre {name} is not known here: add it with `fraction-ledger centre add {name2} --public-key FILE`.'),
    # course_not_active
    'course_not_active.cannot_doing': N_('Cannot {doing}: course {course} of patient {patient_id} is {status} (by {user} at {centre} on {at}).'),
    'course_not_active.cannot_doing_reason': N_('Cannot {doing}: course {course} of patient {patient_id} is {status} (by {user} at {centre} on {at}, reason: {reason}).'),
    # doing
    'doing.log_fraction': N_('log a fraction'),
    'doing.add_follow_up': N_('add a follow-up'),
    'doing.close_incident': N_('close it'),
    'incident.no_resolution': N_('no resolution given'),
    'field.patient': N_('patient'),
    'field.plan': N_('plan'),
    'doing.record_from_another_centre': N_('record a fraction from another centre'),
    # status
    'status.active': N_('active'),
    'status.suspended': N_('suspended'),
    'status.completed': N_('completed'),
    # record
    'record.where': N_('{centre} on {machine} at {at} by {operator}'),
    # replan
    'replan.more_fractions': N_('{planned} fractions planned in group {group} where the prescription has {prescribed}'),
    'replan.meterset_per_fraction': N_('{planned} MU per fraction in group {group} where the prescription gives {prescribed} MU (more than {share} apart)'),
    # issue 17: treatment gaps and prescription amendments
    'amendment.course_completed': N_('Course {course} is completed: its prescription can no longer be amended.'),
    'amendment.below_delivered': N_('Fraction group {group} of course {course} cannot have {after} fractions: fraction {highest} was already delivered. If that record is wrong, void it first.'),
    'amendment.already_countersigned': N_('Amendment {amendment} was already countersigned by {by} on {at}; nothing was changed.'),
    'amendment_not_found.no_amendment': N_('Course {course} has no amendment {amendment}.'),
    'countersigner_is_prescriber.same_person': N_('{by} proposed this amendment of course {course} and cannot countersign it: a second prescriber or a physicist must (four eyes).'),
    'invalid.amendment_needs_reason': N_('an amendment needs a reason'),
    'invalid.amendment_needs_fractions': N_('an amendment of kind {kind} needs a number of fractions'),
    'invalid.amendment_needs_day': N_('an amendment of kind {kind} needs a day'),
    'invalid.amendment_changes_nothing': N_('group {group} already has {fractions} fractions: the amendment changes nothing'),
    'invalid.day_before_schedule': N_("{day} is before the course's first treatment day ({start})"),
    'invalid.day_already_treats': N_('the schedule already gives {fractions} fractions on {day}'),
    'forbidden.physicists_do_not_prescribe': N_('{user} (physicist at {centre}) may not amend a prescription here: an oncologist does (set FRACTION_LEDGER_PHYSICISTS_PRESCRIBE=1 where physicists prescribe).'),
    'gap.alarm': N_('Category 1 course {course} of patient {patient_id} is {prolongation} treatment days behind its schedule (alarm beyond {threshold}).'),
    'amendment_what.fractions': N_('fraction group {group}: {before} to {after} fractions'),
    'amendment_what.extra_fractions': N_('fraction group {group}: {fractions} more ({before} to {after} fractions)'),
    'amendment_what.twice_daily': N_('two fractions on {day}, at least 6 hours apart'),
    'amendment_what.treatment_day': N_('one fraction on {day}, outside the usual treatment days'),
    'command.countersign_amendment': N_('countersign an amendment'),
    # issue 18: outage operations (registry, capacity, assignment plan, calls, sheets)
    'unknown_centre.not_registered': N_('{centre} is not a centre of the registry (known: {known}); register it first with `fraction-ledger centre register`.'),
    'unknown_centre.did_you_mean': N_('{centre} is not a centre of the registry: did you mean {suggestion}? (known: {known})'),
    'unknown_centre.registry_empty': N_('Centre {centre} is not registered: the registry holds no centre yet; register it first.'),
    'invalid.machine_not_at_centre': N_('{machine} is not a machine of centre {centre} in the registry'),
    'invalid.until_before_from': N_('ends ({valid_until}) before it starts ({valid_from})'),
    'invalid.window_end_before_start': N_('the time window ends ({window_end}) before it starts ({window_start})'),
    'invalid.percentage': N_('{value} is not a percentage from 0 to 100'),
    'plan.not_triaged': N_('no triage code: triage the course first'),
    'plan.no_machine_for_technique': N_('no partner offers a machine that delivers {technique}'),
    'plan.no_room': N_('every partner that delivers {technique} is full ({centres})'),
    'plan_changed.course_not_in_plan': N_('Course {course} is not an active course to plan (or it is named twice); nothing was assigned. Plan again.'),
    'plan_changed.already_assigned': N_('Course {course} (patient {patient_id}) is already assigned to {centres}; nothing was assigned. Plan again.'),
    'plan_changed.not_to_be_treated': N_('Course {course} (patient {patient_id}) is not to be treated at {capacity_lost}% of capacity lost; nothing was assigned.'),
    'plan_changed.no_offer': N_('{centre} offers no capacity on that day; nothing was assigned. Plan again.'),
    'plan_changed.technique_not_offered': N_('{centre} offers no machine that delivers {technique} for course {course} (patient {patient_id}); nothing was assigned.'),
    'plan_changed.partner_full': N_('{centre} is full ({per_day} patients a day): course {course} (patient {patient_id}) does not fit; nothing was assigned. Plan again.'),
    'call.moved_to_partner': N_('moved to {centre}: first treatment there on {start}, time window {window}'),
    'call.suspended': N_('treatment suspended: {reason}'),
    'call.new_start_date': N_('treatment resumes: new start date {start}'),
    'invalid.not_a_day': N_('{value} is not a day (YYYY-MM-DD)'),
    'invalid.nothing_chosen': N_('tick at least one proposal to accept'),
    # issue 21: the web UI for a working day
    'invalid.choose_ois_records_first': N_("there is no reconciliation to take it from yet: choose the restored OIS's records and reconcile first"),
    'invalid.void_not_confirmed': N_('fraction {number} was not voided: its confirmation box was not ticked'),
    'refusal.beam_beyond_tolerance': N_('beam {beam}: {delivered} MU delivered where {expected} MU were due (tolerance {tolerance} MU)'),
    # sends and exports refused by the server's configuration or state
    'send_refused.no_hl7_address': N_("No address configured for {names}: give host and port under [destinations.NAME] in the server's HL7 configuration (serve --hl7-config)."),
    'send_refused.no_hl7_destination': N_("No HL7 destination has an address: give host and port under [destinations.NAME] in the server's HL7 configuration (serve --hl7-config)."),
    'send_refused.no_dicom_destination': N_("No DICOM destination configured: give [destinations.NAME] host, port and called_aet in the server's DICOM configuration (serve --dicom-config)."),
    'send_refused.busy': N_('Another send is running; try again when it has finished.'),
    'cannot_replay.hl7': N_('Cannot build the HL7 messages: {detail}'),
    # how the restored OIS and the ledger differ on one fraction (reconcile)
    'reconcile.voided_in_ledger': N_('the ledger voided this fraction but the OIS holds it as delivered'),
    'reconcile.date': N_('date: ledger {ledger}, OIS {ois}'),
    'reconcile.machine': N_('machine: ledger {ledger}, OIS {ois}'),
    'reconcile.beam_mu': N_('beam {beam} MU: ledger {ledger}, OIS {ois} (tolerance {tolerance})'),
    # DICOM and triage files the importers refuse (adapters.dicom.BadFile): a file named with its reason
    'bad_file.too_large': N_('too large: {detail}'),
    'bad_file.unreadable': N_('not a readable DICOM file (truncated or corrupt): {detail}'),
    'bad_file.value_undecodable': N_('not a readable DICOM file (truncated or corrupt): {attribute} cannot be decoded ({detail})'),
    'bad_file.no_sop_class': N_('not a DICOM object: SOPClassUID (0008,0016) is missing'),
    'bad_file.missing': N_('{attribute}{where} is missing or empty'),
    'bad_file.several_values': N_('{attribute}{where} holds {count} values separated by a backslash; the ledger takes one and could not write it back'),
    'bad_file.not_writable_back': N_('{attribute}{where} {value}: {reason}; the home systems could not take it back'),
    'bad_file.not_a_number': N_('{what} is not a number: {value}'),
    'bad_file.not_finite': N_('{what} is not a finite number: {value}'),
    'bad_file.control_points': N_('NumberOfControlPoints (300A,0110) of beam {beam} says {declared} but the file holds {held} control points (truncated or inconsistent plan)'),
    'bad_file.not_an_rt_plan': N_('not an RT Plan: it is a {kind} (Modality {modality})'),
    'bad_file.no_fraction_group': N_('FractionGroupSequence (300A,0070) is missing or empty'),
    'bad_file.brachytherapy': N_('brachytherapy plans are not supported'),
    'bad_file.group_brachytherapy': N_('fraction group {group} has brachytherapy setups: not supported'),
    'bad_file.number_of_beams': N_('NumberOfBeams (300A,0080) of fraction group {group} says {declared} but ReferencedBeamSequence holds {held} (truncated or inconsistent plan)'),
    'bad_file.beam_not_in_plan': N_('fraction group {group} references beam {beam}, which is not in BeamSequence (truncated or inconsistent plan)'),
    'bad_file.not_a_dicom_date': N_('treatment date {value} is not a DICOM date (YYYYMMDD)'),
    'bad_file.bad_date_time': N_('treatment date/time {date} {time}: {detail}'),
    'bad_file.no_referenced_plan': N_('ReferencedRTPlanSequence (300C,0002) names no plan: the record cannot be tied to a course'),
    'bad_file.value_unreadable': N_('a value of the record cannot be read ({kind}: {detail})'),
    'bad_file.fractions_differ': N_('the beams of one session name different fractions: {numbers}'),
    'bad_file.no_delivered_meterset': N_('beam {beam}: no delivered meterset (DeliveredPrimaryMeterset or control points)'),
    'bad_file.patient_not_known_as': N_('plan {plan} is of course {course}, whose patient is not known as {patient_id}: if it is the same person under a partner\'s id, map it with `fraction-ledger course identity` (name and birth date are checked); nothing was written'),
    'bad_file.patient_unknown': N_('patient {patient_id} is not known to the ledger: import the plan first; nothing was written'),
    'bad_file.plan_unknown': N_('plan {plan} of patient {patient_id} is not known to the ledger: import the plan first; nothing was written'),
    'bad_file.operator_not_writable_back': N_('{attribute} value {k} {value}: {reason}; the home systems could not take it back'),
    'bad_file.not_a_record': N_('not an RT treatment record: it is a {kind}'),
    'bad_file.truncated_in_header': N_('truncated: the file ends at byte {size} inside the header of an element at byte {pos}'),
    'bad_file.truncated_in_header_of': N_('truncated: the file ends at byte {size} inside the header of element {tag}'),
    'bad_file.truncated_element': N_('truncated: element {tag} declares {length} bytes but {left} are left'),
    'bad_file.truncated_item_end': N_('truncated: the file ends at byte {size} before the end of an item'),
    'bad_file.truncated_sequence_open': N_('truncated: sequence {sequence} of undefined length is not closed: the file ends at byte {size}'),
    'bad_file.truncated_sequence_holds': N_('truncated: sequence {sequence} holds {tag} where an item or its end is due'),
    'bad_file.truncated_item': N_('truncated: an item of sequence {sequence} declares {length} bytes but {left} are left'),
    'bad_file.too_many_elements': N_('too large: more than {limit} elements (the limit of a DICOM file here); nothing was read'),
    'bad_file.meta_truncated': N_('truncated: the file meta information ends at byte {size}'),
    'bad_file.deflate_broken': N_('truncated: the deflated data set cannot be inflated ({detail})'),
    'bad_file.inflates_too_large': N_('too large: the deflated data set inflates past {limit} (the limit of a DICOM data set here; {size} bytes deflated); nothing was read'),
    'bad_file.deflate_cut': N_('truncated: the deflated data set ends before its deflate stream does'),
    'bad_file.triage_code': N_('triage: {value} is not a triage code 1-5'),
    'bad_file.triage_patient_unknown': N_('patient_id: patient {patient_id} is not known to the ledger'),
    'bad_file.triage_no_plan': N_('plan: patient {patient_id} has no plan with UID or label {plan}'),
    'bad_file.not_taken': N_('not an RT Plan or an RT treatment record'),
    # where in the file (the {where} and {what} of the texts above; a where begins with its space)
    'bad_file.where_beam': N_(' in beam {beam}'),
    'bad_file.where_group': N_(' in fraction group {group}'),
    'bad_file.where_beam_in_group': N_(' of beam {beam} in fraction group {group}'),
    'bad_file.where_sequence': N_(' in {sequence}'),
    'bad_file.attribute_of_beam': N_('{attribute} of beam {beam}'),
    'bad_file.delivered_meterset_of_beam': N_('delivered meterset of beam {beam}'),
    'bad_file.specified_meterset_of_beam': N_('specified meterset of beam {beam}'),
    'bad_file.triage_label_ambiguous': N_('plan: label {plan} names {count} courses of patient {patient_id}; give the plan UID'),
    # issue 14: the hash chain's verdict (adapters.chain) and the refusal while it fails
    'chain.missing': N_('event {event} is in the hash chain but missing from the log (deleted)'),
    'chain.unchained': N_('event {event} ({what}) has no hash-chain entry: it was written outside the ledger'),
    'chain.broken': N_('event {event} ({what}) does not follow the event before it in the chain: events before it were deleted, inserted or rewritten'),
    'chain.altered': N_('event {event} ({what}) does not match its hash: it was edited or moved'),
    'chain.anchor_not_on_chain': N_('head {head} is not on the verified chain: the log was cut or rewritten after it was printed'),
    'chain.anchor_not_reached': N_('head {head} was not reached before the first problem'),
    'log_compromised.integrity_check_failed': N_('The event log failed its integrity check: {problem}. Nothing is written until the log is restored from a verified copy (check it with `fraction-ledger verify`); what was recorded up to event {position} can still be read.'),
    # issue 14: why a course's split is unsettled (ledger.billing.compute_split)
    'split.no_agreement': N_('{billing} has no agreement with {missing} in force on {on}'),
    'split.no_tariff': N_('no tariff for category {category} and no course amount in {agreements}'),
    'split.different_amounts': N_('the agreements of {billing} name different course amounts ({named})'),
    'split.reasons': N_('{reasons}'),
    # issue 14: what an import says beside a file it took
    'import.plan_awaits_approval': N_('registered, but it departs from the prescription: it awaits approval by a physicist of the home centre (`fraction-ledger course approve-plan`) before anyone treats with it'),
    # issue 20.5: lists that scale (paging of the API's lists)
    'invalid.limit_out_of_range': N_('{value} is not a whole number from 1 to {max}'),
    'invalid.offset_not_whole': N_('{value} is not a whole number of rows to skip (0 to {max})'),
}

PLURALS: dict[str, tuple[str, str, str]] = {
    "warning.earlier_not_recorded": (*Np_("An earlier fraction is not recorded: {numbers}.",
                                          "Earlier fractions are not recorded: {numbers}."), "n"),
}


def known(code: str) -> bool:
    return code in TEXTS or code in PLURALS


def said(code: str, **params: Any) -> dict[str, Any]:
    """What a warning or flag stores: its code and its values (JSON-able)."""
    if not known(code):
        raise KeyError(f"no message {code!r} in ledger.messages")
    return {"code": code, "params": params}


def template(code: str, params: dict[str, Any]) -> str:
    if code in PLURALS:
        singular, plural, count = PLURALS[code]
        return singular if params.get(count) == 1 else plural
    return TEXTS[code]


def is_message(value: Any) -> bool:
    return isinstance(value, dict) and set(value) == {"code", "params"}


def render(message: dict[str, Any] | str, translate: Any = None, value: Any = None) -> str:
    """A stored message as text: `translate(template) -> template` gives the reader's language
    (identity: English), `value(v) -> str` formats each value (numbers, dates per locale). A
    value that is itself a message (or a list of them) is rendered the same way; a plain
    string (a warning written before codes existed) is shown as it is."""
    if isinstance(message, str):
        return message
    translate = translate or (lambda text, params: template_text(text, params))
    value = value or str
    params = {}
    for name, v in message["params"].items():
        if is_message(v):
            params[name] = render(v, translate, value)
        elif isinstance(v, list) and v and all(is_message(x) for x in v):
            params[name] = "; ".join(render(x, translate, value) for x in v)
        else:
            params[name] = value(v)
    return translate(message["code"], message["params"]).format(**params)


def template_text(code: str, params: dict[str, Any]) -> str:
    return template(code, params)


def english(message: dict[str, Any] | str) -> str:
    """The English text of a stored message; a plain string (written before codes) as it is."""
    return render(message)
