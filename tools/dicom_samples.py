"""Sample RT Plans built with pydicom, for tests, demos and the benchmark.

Real plans vary: with or without file meta, static fields or VMAT arcs with a hundred and
more control points, one or several fraction groups. `sample_plan` builds each of these
shapes as a valid RT Plan (it passes dciodvfy), deterministically from its arguments.
"""

from __future__ import annotations

import io
from pathlib import Path

from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian, RTPlanStorage, generate_uid


def uid(*parts: str) -> str:
    return str(generate_uid(entropy_srcs=["fraction-ledger-sample", *parts]))


def _beam(number: int, machine: str, arc: bool, points: int, mlc_pairs: int, spec: dict | None = None) -> Dataset:
    """`spec` (see `sample_plan`): an electron beam with its applicator, or a setup beam."""
    spec = spec or {}
    b = Dataset()
    b.Manufacturer = "Varian Medical Systems"
    b.InstitutionName = "Sample Centre"
    b.ManufacturerModelName = "TrueBeam"
    b.DeviceSerialNumber = "1234"
    b.TreatmentMachineName = machine
    b.PrimaryDosimeterUnit = "MU"
    b.SourceAxisDistance = "1000"
    devices = Sequence()
    for kind, pairs in (("ASYMX", 1), ("ASYMY", 1), ("MLCX", mlc_pairs)):
        d = Dataset()
        d.RTBeamLimitingDeviceType = kind
        d.NumberOfLeafJawPairs = pairs
        if kind == "MLCX":
            d.LeafPositionBoundaries = [str(-200 + 400 * i // pairs) for i in range(pairs + 1)]
        devices.append(d)
    b.BeamLimitingDeviceSequence = devices
    b.BeamNumber = number
    b.BeamName = f"{'ARC' if arc else 'FIELD'} {number}"
    b.BeamType = "DYNAMIC" if arc else "STATIC"
    b.RadiationType = spec.get("radiation", "PHOTON")
    b.TreatmentDeliveryType = "SETUP" if spec.get("setup") else "TREATMENT"
    b.NumberOfWedges = 0
    b.NumberOfCompensators = 0
    b.NumberOfBoli = 0
    b.NumberOfBlocks = 0
    if spec.get("applicator"):
        a = Dataset()
        a.ApplicatorID, a.ApplicatorType = spec["applicator"]
        a.ApplicatorDescription = f"{a.ApplicatorType} {a.ApplicatorID}"
        b.ApplicatorSequence = Sequence([a])
    b.FinalCumulativeMetersetWeight = "1"
    b.NumberOfControlPoints = points
    cps = Sequence()
    for i in range(points):
        cp = Dataset()
        cp.ControlPointIndex = i
        cp.CumulativeMetersetWeight = f"{i / (points - 1):.6f}".rstrip("0").rstrip(".") or "0"
        positions = Sequence()
        for kind, pairs in (("ASYMX", 1), ("ASYMY", 1), ("MLCX", mlc_pairs)):
            if i and kind != "MLCX":
                continue
            p = Dataset()
            p.RTBeamLimitingDeviceType = kind
            p.LeafJawPositions = (["-50", "50"] if kind != "MLCX" else
                                  [str(-20 - (i % 5)) for _ in range(pairs)] + [str(20 + (i % 5)) for _ in range(pairs)])
            positions.append(p)
        cp.BeamLimitingDevicePositionSequence = positions
        if arc or i == 0:
            cp.GantryAngle = str((181 + i * 358 // (points - 1)) % 360) if arc else str(90 * number % 360)
        if i == 0:
            cp.NominalBeamEnergy = spec.get("energy", "6")
            cp.DoseRateSet = "600"
            cp.GantryRotationDirection = "CW" if arc else "NONE"
            cp.BeamLimitingDeviceAngle = "0"
            cp.BeamLimitingDeviceRotationDirection = "NONE"
            cp.PatientSupportAngle = "0"
            cp.PatientSupportRotationDirection = "NONE"
            cp.TableTopEccentricAngle = "0"
            cp.TableTopEccentricRotationDirection = "NONE"
            cp.TableTopVerticalPosition = None
            cp.TableTopLongitudinalPosition = None
            cp.TableTopLateralPosition = None
            cp.IsocenterPosition = ["0", "0", "0"]
        cps.append(cp)
    b.ControlPointSequence = cps
    b.ReferencedPatientSetupNumber = 1
    return b


def sample_plan(
    patient_id: str = "PAT-001",
    patient_name: str = "TEST^PATIENT",
    label: str = "Sample",
    plan_uid: str | None = None,
    groups: list[tuple[int, list[str | dict]]] | None = None,
    arc: bool = False,
    control_points: int = 2,
    machine: str = "LINAC-1",
    study_uid: str | None = None,
    file_meta: bool = True,
    mlc_pairs: int = 60,
) -> Dataset:
    """An RT Plan. `groups`: per fraction group (fractions planned, [meterset per beam]);
    beams are numbered across groups. A beam is its meterset ("120.5"), or a dict: `meterset`
    (None: left out, as setup beams often are), `radiation` ("ELECTRON"), `energy` ("9"),
    `applicator` ((ApplicatorID, ApplicatorType), e.g. ("A10", "ELECTRON_SQUARE")), `setup` (True:
    a SETUP beam)."""
    groups = groups or [(25, ["120.5", "118.25"])]
    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 192"
    ds.InstanceCreationDate = "20261101"
    ds.InstanceCreationTime = "120000"
    ds.SOPClassUID = RTPlanStorage
    ds.SOPInstanceUID = plan_uid or uid("plan", patient_id, label)
    ds.StudyDate = "20261020"
    ds.StudyTime = "090000"
    ds.AccessionNumber = ""
    ds.Modality = "RTPLAN"
    ds.Manufacturer = "Sample TPS"
    ds.ReferringPhysicianName = ""
    ds.OperatorsName = "PHYSICIST^ONE"
    ds.PatientName = patient_name
    ds.PatientID = patient_id
    ds.PatientBirthDate = "19610314"
    ds.PatientSex = "F"
    ds.StudyInstanceUID = study_uid or uid("study", patient_id)
    ds.SeriesInstanceUID = uid("series", ds.SOPInstanceUID)
    ds.StudyID = "1"
    ds.SeriesNumber = 1
    ds.InstanceNumber = 1
    ds.FrameOfReferenceUID = uid("frame", patient_id)
    ds.PositionReferenceIndicator = ""
    ds.RTPlanLabel = label
    ds.RTPlanName = label
    ds.RTPlanDate = "20261101"
    ds.RTPlanTime = "120000"
    ds.RTPlanGeometry = "PATIENT"
    structures = Dataset()
    structures.ReferencedSOPClassUID = "1.2.840.10008.5.1.4.1.1.481.3"
    structures.ReferencedSOPInstanceUID = uid("structures", patient_id)
    ds.ReferencedStructureSetSequence = Sequence([structures])
    ds.ApprovalStatus = "APPROVED"
    ds.ReviewDate = "20261101"
    ds.ReviewTime = "130000"
    ds.ReviewerName = "ONCOLOGIST^ONE"
    fgs, beams, number = Sequence(), Sequence(), 0
    for g, (fractions, metersets) in enumerate(groups, 1):
        fg = Dataset()
        fg.FractionGroupNumber = g
        fg.NumberOfFractionsPlanned = fractions
        fg.NumberOfBeams = len(metersets)
        fg.NumberOfBrachyApplicationSetups = 0
        refs = Sequence()
        for mu in metersets:
            number += 1
            spec = mu if isinstance(mu, dict) else {"meterset": mu}
            r = Dataset()
            if spec.get("meterset") is not None:
                r.BeamMeterset = spec["meterset"]
            r.ReferencedBeamNumber = number
            refs.append(r)
            beams.append(_beam(number, machine, arc and not spec.get("setup"), control_points, mlc_pairs, spec))
        fg.ReferencedBeamSequence = refs
        fgs.append(fg)
    ds.FractionGroupSequence = fgs
    ds.BeamSequence = beams
    setup = Dataset()
    setup.PatientPosition = "HFS"
    setup.PatientSetupNumber = 1
    ds.PatientSetupSequence = Sequence([setup])
    if file_meta:
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = RTPlanStorage
        meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds.file_meta = meta
    return ds


def write_plan(ds: Dataset, path: Path) -> Path:
    """Part 10 when the dataset has file meta, else a bare Implicit VR dataset (as some
    backup scripts write them)."""
    if "TransferSyntaxUID" in getattr(ds, "file_meta", {}):
        ds.save_as(path, enforce_file_format=True, implicit_vr=False, little_endian=True)
    else:
        buffer = io.BytesIO()
        ds.save_as(buffer, implicit_vr=True, little_endian=True)
        path.write_bytes(buffer.getvalue())
    return path


__all__ = ["sample_plan", "write_plan", "uid", "ImplicitVRLittleEndian"]
