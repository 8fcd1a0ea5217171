"""Phantom DICOM writer: read back with pydicom, geometry, rescale, HU, truth, determinism."""
import json
from pathlib import Path

import numpy as np
import pydicom
import pytest
from PIL import Image

from tmca import dicom_writer as dw
from tmca.phantoms import ct_series, cxr_case


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("dw")
    dw.write_studies(out, seed=4000, n_cr=2, n_ct=1, ct_slices=4, size=64, ct_size=48)
    return out


def test_layout_and_cases(folder):
    doc = json.loads((folder / "cases.json").read_text())
    assert doc["seed"] == 4000 and len(doc["series"]) == 3
    for e in doc["series"]:
        assert (folder / "reports" / f"{e['accession']}.txt").read_text().strip() == e["report"]
        assert len(e["files"]) == len(e["sop_instance_uids"])
        for rel, sop in zip(e["files"], e["sop_instance_uids"]):
            ds = pydicom.dcmread(folder / rel)
            assert ds.SOPInstanceUID == sop and ds.AccessionNumber == e["accession"]
            assert ds.StudyInstanceUID == e["study_instance_uid"]
            assert ds.file_meta.TransferSyntaxUID == pydicom.uid.ExplicitVRLittleEndian
            assert len(sop) <= 64 and sop.startswith("2.25.")
            truth = np.asarray(Image.open(folder / "truth" / f"{sop}.png"))
            assert truth.shape == (ds.Rows, ds.Columns) and set(np.unique(truth)) <= {0, 255}


def test_cr_readback(folder):
    e = json.loads((folder / "cases.json").read_text())["series"][0]
    ds = pydicom.dcmread(folder / e["files"][0])
    case = cxr_case(4000, 0, size=64)
    assert ds.SOPClassUID == dw.CR_IMAGE_STORAGE and ds.Modality == "CR"
    assert (ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation) == (16, 12, 11, 0)
    assert ds.PhotometricInterpretation == case.photometric
    assert "ImagePositionPatient" not in ds and float(ds.PixelSpacing[0]) == case.pixel_spacing[0]
    np.testing.assert_array_equal(ds.pixel_array, case.raw)
    truth = np.asarray(Image.open(folder / "truth" / f"{ds.SOPInstanceUID}.png")) > 0
    np.testing.assert_array_equal(truth, case.mask.astype(bool))
    assert ds.PatientName != "" and ds.PatientID.startswith("PH")


def test_ct_readback_geometry_and_hu(folder):
    e = json.loads((folder / "cases.json").read_text())["series"][2]
    series = ct_series(4000, 0, slices=4, size=48)
    dss = [pydicom.dcmread(folder / f) for f in e["files"]]
    zs = [float(d.ImagePositionPatient[2]) for d in dss]
    assert np.allclose(np.diff(zs), -series.slice_spacing)
    for k, (d, sl) in enumerate(zip(dss, series.slices)):
        assert d.SOPClassUID == dw.CT_IMAGE_STORAGE and d.InstanceNumber == k + 1
        assert d.PixelRepresentation == 1 and float(d.RescaleIntercept) == -1024 and float(d.RescaleSlope) == 1
        assert [float(v) for v in d.ImageOrientationPatient] == [1, 0, 0, 0, 1, 0]
        assert d.FrameOfReferenceUID == e["frame_of_reference_uid"]
        assert float(d.SliceThickness) == pytest.approx(series.slice_spacing)
        hu = d.pixel_array.astype(np.float32) * float(d.RescaleSlope) + float(d.RescaleIntercept)
        np.testing.assert_array_equal(hu, sl.raw.astype(np.float32) - 1024)
        assert hu.min() < -900  # air
    # pixel centres are symmetric about the isocentre
    ps = float(dss[0].PixelSpacing[1])
    assert float(dss[0].ImagePositionPatient[0]) == pytest.approx(-(48 * ps) / 2 + ps / 2, abs=1e-3)


def test_deterministic(tmp_path, folder):
    dw.write_studies(tmp_path, seed=4000, n_cr=2, n_ct=1, ct_slices=4, size=64, ct_size=48)
    for f in sorted(folder.rglob("*")):
        if f.is_file():
            assert (tmp_path / f.relative_to(folder)).read_bytes() == f.read_bytes(), f
    assert dw.uid(1, "a") != dw.uid(2, "a")


def test_examples_regenerate_identically(tmp_path):
    """examples/ is exactly what its README's command writes (reports in phrasing families included)."""
    import filecmp
    from pathlib import Path

    from tmca import dicom_writer

    root = Path(__file__).resolve().parents[2] / "examples"
    dicom_writer.main(["--seed", "4000", "--cr", "4", "--ct", "2", "--ct-slices", "20", "--size", "256",
                       "--ct-size", "128", "--report-families", "sectioned,abbreviations,tubes_lines,typos,ct_realistic",
                       "--out", str(tmp_path)])
    for rel in ["cases.json", *sorted(str(p.relative_to(root)) for p in (root / "reports").iterdir()),
                "dicom/study-001/series-1/0001.dcm", "dicom/study-006/series-1/0020.dcm"]:
        assert filecmp.cmp(root / rel, tmp_path / rel, shallow=False), rel
