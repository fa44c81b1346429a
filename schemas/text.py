"""Text the home systems can take back: each input field is typed by where it ends up.

The ledger's values are replayed into DICOM records and HL7 messages (adapters/dicom,
adapters/hl7), so what those cannot carry is refused here, when a command is validated,
with the field's name, before anything is written:

| type          | DICOM it is written to (PS3.5 6.2)                 | limit                          |
|---------------|----------------------------------------------------|--------------------------------|
| `ShortString` | SH, e.g. TreatmentMachineName, StudyID             | 16 characters, one line        |
| `LongString`  | LO, e.g. PatientID, BeamName, RTPlanName           | 64 characters, one line        |
| `PersonName`  | PN, e.g. PatientName, OperatorsName                | 3 groups (`=`) of 5 components |
|               |                                                    | (`^`), 64 characters per group |
| `Note`        | ST, TreatmentStatusComment                         | 1024 characters, LF allowed    |
| `LongText`    | none (HL7 NTE/FT comments, the summary PDF)        | its field's length, LF allowed |

No value may hold a control character (NUL, CR, TAB, ESC, C1...): in HL7 a CR ends the
segment, in DICOM only the text VRs may hold line breaks. One-line values may not hold a
backslash either: DICOM reads it as a value separator (a machine "A\\B" becomes two
values). Free text (`Note`, `LongText`) may hold line feeds for multi-line notes, and
backslashes (ST and HL7 FT carry both; HL7 escapes them, adapters/hl7/er7.py). A CR is
refused rather than turned into LF: the ledger never changes what was typed.
HL7 fields are ST of 199 characters once escaped; a `PersonName` is checked against that
too, because the operator goes whole into FT1-20.
"""

from __future__ import annotations


from typing import Annotated

from msgspec import Meta

# C0 controls, DEL and C1 controls. `(?!\n)$` because Python's `$` also matches before a
# final newline; in the OpenAPI document (ECMA regex) it means the same.
_CONTROL = r"\x00-\x1f\x7f-\x9f"
ONE_LINE = rf"^[^{_CONTROL}\\]*(?!\n)$"
MULTI_LINE = r"^[^\x00-\x09\x0b-\x1f\x7f-\x9f]*$"

PN_GROUPS, PN_COMPONENTS, PN_GROUP_LENGTH = 3, 5, 64
HL7_ST_LENGTH = 199
HL7_ESCAPED = "|^&~\\"

ShortString = Annotated[str, Meta(max_length=16, pattern=ONE_LINE)]
LongString = Annotated[str, Meta(max_length=64, pattern=ONE_LINE)]
Machine = Annotated[str, Meta(min_length=1, max_length=16, pattern=ONE_LINE,
                              description="TreatmentMachineName (DICOM SH): 1-16 characters, no backslash")]
PatientId = Annotated[str, Meta(min_length=1, max_length=64, pattern=ONE_LINE,
                                description="PatientID (DICOM LO): 1-64 characters, no backslash")]
Label = Annotated[str, Meta(min_length=1, max_length=64, pattern=ONE_LINE,
                            description="The plan's name, as RTPlanName (DICOM LO): 1-64 characters")]
PersonName = Annotated[str, Meta(
    min_length=1, max_length=PN_GROUPS * PN_GROUP_LENGTH + PN_GROUPS - 1, pattern=ONE_LINE,
    description="A DICOM PN: FAMILY^GIVEN^MIDDLE^PREFIX^SUFFIX, up to 64 characters per =group, no backslash")]
Note = Annotated[str, Meta(max_length=1024, pattern=MULTI_LINE,
                           description="TreatmentStatusComment (DICOM ST): up to 1024 characters; LF allowed")]


def long_text(max_length: int, min_length: int = 0) -> type[str]:
    """Free text of a field that holds up to `max_length` characters; LF allowed."""
    return Annotated[str, Meta(min_length=min_length, max_length=max_length, pattern=MULTI_LINE)]  # type: ignore[return-value]


REASONS = {ONE_LINE: "invalid.one_line", MULTI_LINE: "invalid.multi_line"}


def check_person_name(value: str | None, field: str) -> None:
    """PN (PS3.5 6.2): at most 3 component groups separated by `=`, each of at most 5
    components separated by `^` and at most 64 characters; it must also fit HL7 ST once
    escaped. Raises ValueError naming the field (msgspec adds where the Struct sits)."""
    if value is None:
        return
    groups = value.split("=")
    if len(groups) > PN_GROUPS:
        raise ValueError(f"{field}: a person name has at most {PN_GROUPS} component groups separated by '=', "
                         f"got {len(groups)}")
    for n, group in enumerate(groups, 1):
        if len(group) > PN_GROUP_LENGTH:
            raise ValueError(f"{field}: component group {n} is {len(group)} characters; DICOM PN allows "
                             f"{PN_GROUP_LENGTH} per group")
        if group.count("^") >= PN_COMPONENTS:
            raise ValueError(f"{field}: component group {n} has {group.count('^') + 1} components separated "
                             f"by '^'; DICOM PN allows {PN_COMPONENTS}")
    escaped = len(value) + 2 * sum(value.count(c) for c in HL7_ESCAPED)
    if escaped > HL7_ST_LENGTH:
        raise ValueError(f"{field}: {escaped} characters once HL7-escaped; HL7 ST allows {HL7_ST_LENGTH}")
