"""Frames of a `tmca.dicom_writer` folder, read the way tmcad reads them (for `tmca.eval --dicom-folder`).

Layout (docs/CONTRACTS.md): DIR/dicom/**/*.dcm, DIR/reports/<AccessionNumber>.txt,
DIR/truth/<SOPInstanceUID>.png (8-bit 0/255, rows x cols), DIR/cases.json. The report of a frame is
its study's report file (falling back to the `report` of its cases.json entry).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Dict, Iterator

import numpy as np


def _frame(ds, f: Path, root: Path, report: str):
    import numpy as np
    from PIL import Image
    uid = str(ds.SOPInstanceUID)
    truth_p = root / "truth" / f"{uid}.png"
    if not truth_p.exists():
        return None
    return {"raw": ds.pixel_array, "slope": float(getattr(ds, "RescaleSlope", 1.0) or 1.0),
            "intercept": float(getattr(ds, "RescaleIntercept", 0.0) or 0.0),
            "modality": str(ds.Modality), "photometric": str(ds.PhotometricInterpretation),
            "rows": int(ds.Rows), "cols": int(ds.Columns), "report": report,
            "truth": np.asarray(Image.open(truth_p)) > 127, "sop_instance_uid": uid, "file": str(f)}


def iter_dicom_frames(folder: str) -> Iterator[dict]:
    """One dict per single-frame instance that has a truth PNG, in cases.json order when present."""
    import pydicom

    root = Path(folder)
    cases = root / "cases.json"
    if cases.exists():
        doc = json.loads(cases.read_text())
        entries = doc["series"] if isinstance(doc, dict) else doc
        for e in entries:
            rp = root / "reports" / f"{e.get('accession', '')}.txt"
            report = rp.read_text(encoding="utf-8").strip() if rp.exists() else e["report"]
            for rel in e["files"]:
                f = root / rel
                fr = _frame(pydicom.dcmread(str(f)), f, root, report)
                if fr is not None:
                    fr["phantom"] = e.get("phantom")
                    yield fr
        return
    files = sorted((root / "dicom").rglob("*.dcm"))
    if not files:
        raise FileNotFoundError(f"{root} has neither cases.json nor dicom/**/*.dcm: is it a tmca.dicom_writer folder?")
    for f in files:
        ds = pydicom.dcmread(str(f))
        if int(getattr(ds, "NumberOfFrames", 1) or 1) != 1:
            continue
        acc = str(getattr(ds, "AccessionNumber", ""))
        rp = root / "reports" / f"{acc}.txt"
        if not rp.exists():
            raise FileNotFoundError(f"no report for {f} (accession {acc!r}): want {rp}")
        fr = _frame(ds, f, root, rp.read_text(encoding="utf-8").strip())
        if fr is not None:
            yield fr
