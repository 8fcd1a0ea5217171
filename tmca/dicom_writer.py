"""Write phantom cases as DICOM studies, with reports and truth masks (docs/CONTRACTS.md).

``/usr/bin/python3 -m tmca.dicom_writer --seed S --cr N --ct M [--ct-slices K] [--size P] [--ct-size Q] --out DIR``

writes

* ``DIR/dicom/study-NNN/series-1/NNNN.dcm`` — explicit VR little endian files:
  CR studies (CR Image Storage, one frame, 12 bits stored in 16 allocated,
  MONOCHROME1 or MONOCHROME2 as the phantom chose, PixelSpacing and
  ImagerPixelSpacing, PatientOrientation ``L\\F``, no ImagePositionPatient) for
  ``cxr_case(S, 0..N-1)``, then CT studies (CT Image Storage, int16 with
  PixelRepresentation 1, RescaleSlope 1 / RescaleIntercept -1024 / HU, axial
  geometry in LPS: ImageOrientationPatient ``1\\0\\0\\0\\1\\0``, ImagePositionPatient
  stepping by ``-slice_spacing`` along z from the apex down, PixelSpacing,
  SliceThickness, SliceLocation, FrameOfReferenceUID, InstanceNumber) for
  ``ct_series(S, 0..M-1)``;
* ``DIR/reports/<AccessionNumber>.txt`` — the report (one line);
* ``DIR/truth/<SOPInstanceUID>.png`` — the target mask, 8-bit 0/255, rows × cols;
* ``DIR/cases.json`` — ``{"generator", "seed", "series": [...]}``, one entry per
  series: study/series/frame-of-reference UIDs, accession, modality, report,
  ordered SOP instance UIDs and files, patient ID, and the phantom's truth
  (described zones or side).

Everything is synthetic and deterministic: patient names/IDs are drawn from
made-up lists, UIDs are ``2.25.<decimal of a UUID built from SHA-256(seed, role,
index)>``, so the same arguments write byte-identical files.
"""
from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import uuid
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pydicom
from PIL import Image
from pydicom.dataset import Dataset, FileDataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian

from .phantoms import PhantomCase, PhantomSeries, ct_series, cxr_case

CR_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.1"
CT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.2"
IMPLEMENTATION_UID = "2.25.183391229837442771405395478618441726516"  # fixed, made from a hash like the rest
GENERATOR = "tmca.dicom_writer"
REPORT_STREAM = 77  # the phrasing generator of --report-families: [seed, REPORT_STREAM, case index]

_FIRST = ("Alice", "Bruno", "Chiara", "Dmitri", "Elena", "Farid", "Greta", "Hiro", "Ines", "Jonas",
          "Kavya", "Liam", "Marta", "Nils", "Olga", "Pavel", "Rosa", "Samir", "Tomas", "Uma", "Vera", "Yusuf")
_LAST = ("Andersen", "Baker", "Costa", "Dubois", "Eriksen", "Fischer", "Garcia", "Horvat", "Ivanova",
         "Jensen", "Kowalski", "Larsen", "Moreau", "Novak", "Oliveira", "Petrov", "Quinn", "Rossi",
         "Schmidt", "Tanaka", "Ueda", "Varga", "Weber", "Young")


def uid(seed: int, *parts: Any) -> str:
    """Deterministic UID ``2.25.<int>`` from a hash of ``(seed, *parts)``."""
    digest = hashlib.sha256(repr((GENERATOR, seed) + parts).encode()).digest()
    return "2.25." + str(uuid.UUID(bytes=digest[:16], version=4).int)


def _hash_int(seed: int, *parts: Any) -> int:
    return int.from_bytes(hashlib.sha256(repr(("tmca-people", seed) + parts).encode()).digest()[:8], "big")


def fake_patient(seed: int, study_no: int) -> dict[str, str]:
    """Made-up, deterministic patient demographics for one study."""
    h = _hash_int(seed, study_no)
    sex = "F" if h % 2 else "M"
    birth = dt.date(1940, 1, 1) + dt.timedelta(days=int(h % (365 * 60)))
    study_date = dt.date(2024, 1, 8) + dt.timedelta(days=int((h >> 20) % 300))
    age = study_date.year - birth.year - ((study_date.month, study_date.day) < (birth.month, birth.day))
    return {
        "PatientName": f"{_LAST[(h >> 8) % len(_LAST)]}^{_FIRST[(h >> 16) % len(_FIRST)]}",
        "PatientID": f"PH{(h >> 24) % 10**7:07d}",
        "PatientBirthDate": birth.strftime("%Y%m%d"),
        "PatientSex": sex,
        "PatientAge": f"{age:03d}Y",
        "StudyDate": study_date.strftime("%Y%m%d"),
        "StudyTime": f"{8 + (h >> 32) % 10:02d}{(h >> 36) % 60:02d}{(h >> 42) % 60:02d}",
        "AccessionNumber": f"A{seed % 1000:03d}{study_no:04d}{(h >> 48) % 1000:03d}",
    }


def _base_dataset(sop_class: str, sop_uid: str) -> FileDataset:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = sop_class
    meta.MediaStorageSOPInstanceUID = sop_uid
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = IMPLEMENTATION_UID
    meta.ImplementationVersionName = "TMCA_PHANTOM_1"
    ds = FileDataset(None, {}, file_meta=meta, preamble=b"\0" * 128)
    ds.is_little_endian, ds.is_implicit_VR = True, False
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.SOPClassUID, ds.SOPInstanceUID = sop_class, sop_uid
    return ds


def _fill_common(ds: Dataset, patient: dict[str, str], study_uid: str, series_uid: str, study_no: int,
                 modality: str, description: str) -> None:
    for k, v in patient.items():
        setattr(ds, k, v)
    ds.StudyInstanceUID, ds.SeriesInstanceUID = study_uid, series_uid
    ds.StudyID = f"{study_no}"
    ds.StudyDescription = description
    ds.SeriesDescription = description
    ds.ReferringPhysicianName = "Referrer^Phantom"
    ds.Modality = modality
    ds.SeriesNumber = 1
    ds.SeriesDate = ds.ContentDate = ds.InstanceCreationDate = patient["StudyDate"]
    ds.SeriesTime = ds.ContentTime = ds.InstanceCreationTime = patient["StudyTime"]
    ds.Manufacturer = "tmcad phantom generator"
    ds.ManufacturerModelName = "tmca.phantoms"
    ds.InstitutionName = "Phantom General Hospital"
    ds.StationName = "PHANTOM01"
    ds.SoftwareVersions = "1.0"
    ds.BodyPartExamined = "CHEST"
    ds.PatientIdentityRemoved = "NO"  # synthetic, but nothing was removed
    ds.BurnedInAnnotation = "NO"


def _set_pixels(ds: Dataset, raw: np.ndarray, bits_stored: int, signed: bool, photometric: str) -> None:
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = photometric
    ds.Rows, ds.Columns = int(raw.shape[0]), int(raw.shape[1])
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = 16, bits_stored, bits_stored - 1
    ds.PixelRepresentation = 1 if signed else 0
    arr = np.ascontiguousarray(raw.astype("<i2" if signed else "<u2"))
    ds.PixelData = arr.tobytes()


def _write_truth(out: Path, sop_uid: str, mask: np.ndarray) -> None:
    Image.fromarray((mask > 0).astype(np.uint8) * 255).save(out / "truth" / f"{sop_uid}.png", optimize=True)


def write_cr_study(out: Path, seed: int, study_no: int, case: PhantomCase, index: int) -> dict[str, Any]:
    """One CR study (one series, one instance); returns its cases.json entry."""
    patient = fake_patient(seed, study_no)
    study_uid, series_uid = uid(seed, "study", study_no), uid(seed, "series", study_no, 1)
    sop_uid = uid(seed, "sop", study_no, 1, 1)
    ds = _base_dataset(CR_IMAGE_STORAGE, sop_uid)
    _fill_common(ds, patient, study_uid, series_uid, study_no, "CR", "CHEST PA")
    ds.ViewPosition = "PA"
    ds.PatientOrientation = ["L", "F"]  # columns toward patient's left, rows toward feet
    ds.ImageType = ["ORIGINAL", "PRIMARY"]
    ds.InstanceNumber = 1
    ds.KVP = 120
    ds.ExposureTime = 10
    ds.PixelSpacing = [f"{case.pixel_spacing[0]:g}", f"{case.pixel_spacing[1]:g}"]
    ds.ImagerPixelSpacing = ds.PixelSpacing
    _set_pixels(ds, case.raw, 12, False, case.photometric)
    ds.WindowCenter, ds.WindowWidth = 2048, 4096
    rel = Path("dicom") / f"study-{study_no:03d}" / "series-1" / "0001.dcm"
    (out / rel).parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(out / rel, write_like_original=False)
    _write_truth(out, sop_uid, case.mask)
    return {
        "study_instance_uid": study_uid, "series_instance_uid": series_uid, "frame_of_reference_uid": None,
        "accession": patient["AccessionNumber"], "patient_id": patient["PatientID"], "modality": "CR",
        "report": case.report, "sop_instance_uids": [sop_uid], "files": [str(rel)],
        "phantom": {"family": "cxr", "seed": seed, "index": index, "photometric": case.photometric,
                    "zones": [list(z) for z in case.zones], "target_zones": [list(z) for z in case.target_zones]},
    }


def write_ct_study(out: Path, seed: int, study_no: int, series: PhantomSeries, index: int) -> dict[str, Any]:
    """One CT study (one axial series); returns its cases.json entry."""
    patient = fake_patient(seed, study_no)
    study_uid, series_uid = uid(seed, "study", study_no), uid(seed, "series", study_no, 1)
    for_uid = uid(seed, "frame-of-reference", study_no)
    first = series.slices[0]
    rows, cols = first.raw.shape
    ps_r, ps_c = first.pixel_spacing
    x0, y0 = -(cols * ps_c) / 2 + ps_c / 2, -(rows * ps_r) / 2 + ps_r / 2
    z0 = (len(series.slices) - 1) * series.slice_spacing / 2  # slice 0 = most cranial (largest z)
    sops, files = [], []
    for k, sl in enumerate(series.slices):
        sop_uid = uid(seed, "sop", study_no, 1, k + 1)
        ds = _base_dataset(CT_IMAGE_STORAGE, sop_uid)
        _fill_common(ds, patient, study_uid, series_uid, study_no, "CT", "CT CHEST")
        ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
        ds.FrameOfReferenceUID = for_uid
        ds.PositionReferenceIndicator = ""
        ds.PatientPosition = "HFS"
        ds.InstanceNumber = k + 1
        ds.AcquisitionNumber = 1
        z = z0 - k * series.slice_spacing
        ds.ImagePositionPatient = [f"{x0:.4f}", f"{y0:.4f}", f"{z:.4f}"]
        ds.ImageOrientationPatient = ["1", "0", "0", "0", "1", "0"]
        ds.SliceLocation = f"{z:.4f}"
        ds.SliceThickness = f"{series.slice_spacing:g}"
        ds.PixelSpacing = [f"{ps_r:g}", f"{ps_c:g}"]
        ds.KVP = 120
        ds.ConvolutionKernel = "STANDARD"
        ds.RescaleIntercept, ds.RescaleSlope, ds.RescaleType = f"{sl.intercept:g}", "1", "HU"
        _set_pixels(ds, sl.raw, 16, True, "MONOCHROME2")
        ds.WindowCenter, ds.WindowWidth = -600, 1500
        rel = Path("dicom") / f"study-{study_no:03d}" / "series-1" / f"{k + 1:04d}.dcm"
        (out / rel).parent.mkdir(parents=True, exist_ok=True)
        ds.save_as(out / rel, write_like_original=False)
        _write_truth(out, sop_uid, sl.mask)
        sops.append(sop_uid)
        files.append(str(rel))
    return {
        "study_instance_uid": study_uid, "series_instance_uid": series_uid, "frame_of_reference_uid": for_uid,
        "accession": patient["AccessionNumber"], "patient_id": patient["PatientID"], "modality": "CT",
        "report": series.report, "sop_instance_uids": sops, "files": files,
        "phantom": {"family": "ct", "seed": seed, "index": index, "side": series.side,
                    "involvement": round(series.involvement, 4), "slice_spacing": series.slice_spacing},
    }


def _realistic(families: Sequence[str], modality: str, seed: int, i: int,
               case: PhantomCase | PhantomSeries) -> str | None:
    """The report of case ``i`` in the next of ``families`` of ``modality`` (``tmca.report_corpus``),
    or None when none of them is of that modality; it replaces the generator's sentence."""
    from .report_corpus import FAMILY_BY_NAME, realistic_report

    fams = [f for f in families if FAMILY_BY_NAME[f].modality == modality]
    if not fams:
        return None
    text, _ = realistic_report(fams[i % len(fams)], case, np.random.default_rng([seed, REPORT_STREAM, i]))
    return text


def write_studies(out: Path, seed: int, n_cr: int, n_ct: int, ct_slices: int = 20, size: int = 256,
                  ct_size: int = 128, report_families: Sequence[str] = ()) -> list[dict[str, Any]]:
    """Write ``n_cr`` CR and ``n_ct`` CT studies under ``out``; returns the cases.json series list.

    With ``report_families`` (names of ``tmca.report_corpus`` families), the reports are written in
    those phrasing families in turn (a CR family for CR studies, a CT one for CT) instead of the
    generator's one-sentence form; the images and truth masks do not change.
    """
    for sub in ("dicom", "reports", "truth"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    entries = []
    study_no = 0
    for i in range(n_cr):
        study_no += 1
        case = cxr_case(seed, i, size=size)
        case.report = _realistic(report_families, "CR", seed, i, case) or case.report
        entries.append(write_cr_study(out, seed, study_no, case, i))
    for i in range(n_ct):
        study_no += 1
        series = ct_series(seed, i, slices=ct_slices, size=ct_size)
        series.report = _realistic(report_families, "CT", seed, i, series) or series.report
        entries.append(write_ct_study(out, seed, study_no, series, i))
    for e in entries:
        (out / "reports" / f"{e['accession']}.txt").write_text(e["report"] + "\n", encoding="utf-8")
    doc = {"generator": GENERATOR, "seed": seed, "series": entries}
    (out / "cases.json").write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
    return entries


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seed", type=int, default=4000, help="phantom split seed (4000 = the e2e split)")
    ap.add_argument("--cr", type=int, default=4, help="number of CR studies")
    ap.add_argument("--ct", type=int, default=2, help="number of CT studies")
    ap.add_argument("--ct-slices", type=int, default=20, help="slices per CT series")
    ap.add_argument("--size", type=int, default=256, help="CR rows = columns")
    ap.add_argument("--ct-size", type=int, default=128, help="CT rows = columns")
    ap.add_argument("--report-families", default="",
                    help="comma-separated tmca.report_corpus families to write the reports in, in turn "
                         "(e.g. sectioned,abbreviations,ct_realistic); default: the generator's sentence")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args(argv)
    fams = [f for f in args.report_families.split(",") if f]
    if fams:
        from .report_corpus import FAMILY_BY_NAME
        unknown = [f for f in fams if f not in FAMILY_BY_NAME]
        if unknown:
            ap.error(f"unknown report families {unknown}; known: {', '.join(FAMILY_BY_NAME)}")
    entries = write_studies(args.out, args.seed, args.cr, args.ct, args.ct_slices, args.size, args.ct_size, fams)
    n_files = sum(len(e["files"]) for e in entries)
    print(f"wrote {len(entries)} studies ({n_files} instances) to {args.out}")


if __name__ == "__main__":
    main()
