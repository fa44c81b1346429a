"""A charge built the slow way: field by field with hl7apy's object model in strict mode,
validated and serialised, one message at a time.

This is the baseline of `tools/bench_hl7.py`, and a cross-check of the templates: for the
same values it must give the same bytes as `messages.CHARGE`.
"""

from __future__ import annotations

from typing import Any

from hl7apy.consts import VALIDATION_LEVEL
from hl7apy.core import Message
from hl7apy.v2_5 import IS, ST

from adapters.hl7.er7 import CHARSET, VERSION, dt, ts


def charge_with_hl7apy(v: dict[str, Any]) -> str:
    """The values are those `messages.CHARGE.fill` takes."""
    m = Message("DFT_P03", version=VERSION, validation_level=VALIDATION_LEVEL.STRICT)
    msh = m.msh
    msh.msh_3.hd_1 = IS(v["sending_application"])
    msh.msh_4.hd_1 = IS(v["sending_facility"])
    msh.msh_5.hd_1 = IS(v["receiving_application"])
    msh.msh_6.hd_1 = IS(v["receiving_facility"])
    msh.msh_7 = ts(v["time"])
    msh.msh_9 = "DFT^P03^DFT_P03"
    msh.msh_10 = ST(v["control_id"])
    msh.msh_11 = "P"
    msh.msh_12 = VERSION
    msh.msh_18 = CHARSET
    m.evn.evn_1 = "P03"
    m.evn.evn_2 = ts(v["time"])
    pid = m.pid
    pid.pid_1 = "1"
    pid.pid_3.cx_1 = ST(v["patient_id"])
    pid.pid_3.cx_4.hd_1 = IS(v["home"])
    pid.pid_3.cx_5 = "MR"
    name = pid.pid_5
    name.xpn_1.fn_1 = ST(v["family"])
    for part, index in (("given", 2), ("middle", 3), ("suffix", 4), ("prefix", 5)):
        if v.get(part):
            setattr(name, f"xpn_{index}", ST(v[part]))
    if v.get("birth_date"):
        pid.pid_7 = dt(v["birth_date"])
    if v.get("sex"):
        pid.pid_8 = IS(v["sex"])
    m.pv1.pv1_1 = "1"
    m.pv1.pv1_2 = "O"
    ft1 = m.dft_p03_financial.ft1
    ft1.ft1_1 = "1"
    ft1.ft1_2 = ST(v["transaction_id"])
    ft1.ft1_4.dr_1.ts_1 = ts(v["delivered_at"])
    ft1.ft1_5 = ts(v["posted_at"])
    ft1.ft1_6 = "CG"
    for field in (ft1.ft1_7, ft1.ft1_25):
        field.ce_1 = ST(v["code"])
        if v.get("code_text"):
            field.ce_2 = ST(v["code_text"])
        field.ce_3 = v["coding_system"]
    ft1.ft1_10 = "1"
    ft1.ft1_16.pl_4.hd_1 = IS(v["centre"])
    if v.get("machine"):
        ft1.ft1_16.pl_9 = ST(v["machine"])
    if v.get("operator"):
        ft1.ft1_20.xcn_1 = ST(v["operator"])
    m.validate()
    return m.to_er7() + "\r"
