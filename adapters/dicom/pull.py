"""A scheduled pull from an archive that cannot push (C-FIND, then C-GET of what is missing).

`Puller.pass_once()` asks the archive for its studies (since a date, if given), their RT Plan
and RT Treatment Record series and their instances, leaves out every SOP Instance the ledger
holds already (however it came: pushed, pulled, imported or a file), and retrieves the rest
with C-GET on the same association. Each object retrieved is imported exactly as the listener
imports a C-STORE (`StorageSCP.handle_store`): same rules, same answers, a receipt for each.

Resuming where it stopped needs no bookmark: what the ledger holds is the bookmark, so a
pass interrupted half way is completed by the next one, and nothing is imported twice (an
object the ledger has is never asked for; one asked for twice changes nothing). Plans come
before records, and an object refused because it came too early (a continuation before its
first part, say) is asked for once more at the end of the pass, and again on every later pass.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import date
from typing import Any

from pydicom.dataset import Dataset
from pydicom.multival import MultiValue
from pydicom.uid import (
    DeflatedExplicitVRLittleEndian, ExplicitVRBigEndian, ExplicitVRLittleEndian, ImplicitVRLittleEndian,
    RTBeamsTreatmentRecordStorage, RTPlanStorage, RTTreatmentSummaryRecordStorage,
)
from pynetdicom import AE, build_role, evt
from pynetdicom.sop_class import (
    StudyRootQueryRetrieveInformationModelFind as FIND, StudyRootQueryRetrieveInformationModelGet as GET,
)

from adapters.dicom.listen import ACCEPTED_CLASSES, StorageSCP
from adapters.runtime import Ledger

log = logging.getLogger("fraction_ledger.pull")

RT_MODALITIES = ("RTPLAN", "RTRECORD")
# Plans first (records need them), then sessions, then summaries (their fractions may be covered).
ORDER = {RTPlanStorage: 0, RTBeamsTreatmentRecordStorage: 1, RTTreatmentSummaryRecordStorage: 2}
PENDING = (0xFF00, 0xFF01)
TRANSFER_SYNTAXES = [ExplicitVRLittleEndian, ImplicitVRLittleEndian, DeflatedExplicitVRLittleEndian,
                     ExplicitVRBigEndian]


class PullError(Exception):
    """The archive could not be reached or refused the query; nothing was imported by this pass."""


class Puller(StorageSCP):
    channel = "pull"

    def __init__(self, ledger: Ledger, host: str, port: int, called_aet: str, centre: str, aet: str = "LEDGER",
                 user: str = "dicom-pull", deviation_reason: str | None = None, timeout: float = 30,
                 since: date | None = None):
        super().__init__(ledger, {called_aet: centre}, aet=aet, host=host, port=port, user=user,
                         deviation_reason=deviation_reason, timeout=timeout)
        self.called_aet = called_aet
        self.since = since

    def source_of(self, event: Any) -> str:
        return self.called_aet  # the archive sends the C-STOREs of our C-GET

    # ---- one pass ----------------------------------------------------------------------------

    def pass_once(self) -> dict:
        """Query, retrieve what is missing, import it; a summary of the pass."""
        ae = AE(ae_title=self.aet)
        for name in ("acse_timeout", "dimse_timeout", "network_timeout"):
            setattr(ae, name, self.timeout)
        ae.add_requested_context(FIND)
        ae.add_requested_context(GET)
        for uid in ACCEPTED_CLASSES:
            ae.add_requested_context(uid, TRANSFER_SYNTAXES)
        roles = [build_role(uid, scp_role=True) for uid in ACCEPTED_CLASSES]
        assoc = ae.associate(self.host, self.port, ae_title=self.called_aet, ext_neg=roles,
                             evt_handlers=[(evt.EVT_C_STORE, self.handle_store)])
        if not assoc.is_established:
            raise PullError(f"{self.called_aet} at {self.host}:{self.port} did not accept an association "
                            f"from {self.aet} (rejected, aborted or unreachable)")
        try:
            found = sorted(self.instances(assoc), key=lambda i: (ORDER.get(i["sop_class"], 9), i["sop_instance_uid"]))
            held = self.ledger.fresh().held_objects()
            wanted = [i for i in found if i["sop_instance_uid"] not in held]
            first = len(self.answers)
            for item in wanted:
                self.retrieve(assoc, item)
            refused = {a["sop_instance_uid"] for a in self.answers[first:] if a.get("status") == "error"}
            for item in wanted:  # refused perhaps because it came before what it needs: once more
                if item["sop_instance_uid"] in refused:
                    self.retrieve(assoc, item)
        finally:
            assoc.release()
        latest = {a["sop_instance_uid"]: a for a in self.answers[first:]}  # an object's last answer
        answers = list(latest.values())
        return {"source": self.called_aet, "found": len(found), "held": len(found) - len(wanted),
                "retrieved": len(answers),
                "imported": sum(1 for a in answers if a.get("status") in ("imported", "registered")),
                "unchanged": sum(1 for a in answers if a.get("status") == "unchanged"),
                "refused": [a for a in answers if a.get("status") == "error"], "answers": answers}

    # ---- C-FIND, down the study / series / instance levels -------------------------------------

    def find(self, assoc: Any, query: Dataset) -> Iterator[Dataset]:
        for status, identifier in assoc.send_c_find(query, FIND):
            if status is None or "Status" not in status:
                raise PullError(f"{self.called_aet}: no answer to C-FIND at {query.QueryRetrieveLevel} level")
            code = int(status.Status)
            if code in PENDING:
                if identifier is not None:
                    yield identifier
            elif code != 0x0000:
                raise PullError(f"{self.called_aet}: C-FIND at {query.QueryRetrieveLevel} level failed "
                                f"with status 0x{code:04X}")

    def instances(self, assoc: Any) -> Iterator[dict]:
        studies = Dataset()
        studies.QueryRetrieveLevel = "STUDY"
        studies.StudyInstanceUID = ""
        studies.StudyDate = f"{self.since:%Y%m%d}-" if self.since else ""
        studies.ModalitiesInStudy = ""
        for study in list(self.find(assoc, studies)):
            modalities = study.get("ModalitiesInStudy")
            named = set(map(str, modalities)) if isinstance(modalities, MultiValue) else {str(modalities or "")} - {""}
            if named and not named & set(RT_MODALITIES):
                continue  # an archive that names a study's modalities: no RT object in this one
            series = Dataset()
            series.QueryRetrieveLevel = "SERIES"
            series.StudyInstanceUID = study.StudyInstanceUID
            series.SeriesInstanceUID = ""
            series.Modality = ""
            for one in list(self.find(assoc, series)):
                if str(one.get("Modality", "")) not in RT_MODALITIES:
                    continue
                images = Dataset()
                images.QueryRetrieveLevel = "IMAGE"
                images.StudyInstanceUID = study.StudyInstanceUID
                images.SeriesInstanceUID = one.SeriesInstanceUID
                images.SOPInstanceUID = ""
                images.SOPClassUID = ""
                for image in self.find(assoc, images):
                    sop_class = str(image.get("SOPClassUID", ""))
                    if sop_class and sop_class not in ACCEPTED_CLASSES:
                        continue
                    yield {"study": str(study.StudyInstanceUID), "series": str(one.SeriesInstanceUID),
                           "sop_instance_uid": str(image.SOPInstanceUID), "sop_class": sop_class}

    # ---- C-GET of one instance -----------------------------------------------------------------

    def retrieve(self, assoc: Any, item: dict) -> None:
        query = Dataset()
        query.QueryRetrieveLevel = "IMAGE"
        query.StudyInstanceUID = item["study"]
        query.SeriesInstanceUID = item["series"]
        query.SOPInstanceUID = item["sop_instance_uid"]
        before = len(self.answers)
        final = None
        for status, _ in assoc.send_c_get(query, GET):
            if status is not None and "Status" in status:
                final = int(status.Status)
        if len(self.answers) == before:  # the archive sent nothing: say why
            self.answers.append({"aet": self.called_aet, "sop_instance_uid": item["sop_instance_uid"],
                                 "kind": "object", "status": "error", "dimse_status": f"0x{final or 0:04X}",
                                 "error": f"{self.called_aet} did not send it (C-GET status "
                                          f"{'none' if final is None else f'0x{final:04X}'})"})
