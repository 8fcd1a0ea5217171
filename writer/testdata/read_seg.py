#!/usr/bin/python3
"""Independent read-back of a tmcad SEG with pydicom (used by writer tests).

usage: read_seg.py SEG.dcm OUT.raw

Writes the decoded frames (pydicom's own unpacking of the Pixel Data, one
uint8 per pixel, frames in file order) to OUT.raw and prints a JSON summary
of the attributes the Go test checks.
"""
import json
import sys

import numpy as np
import pydicom


def _as_list(v):
    return list(v) if isinstance(v, (list, pydicom.multival.MultiValue)) else [v]


def main() -> int:
    seg_path, out_path = sys.argv[1], sys.argv[2]
    ds = pydicom.dcmread(seg_path)
    arr = ds.pixel_array  # pydicom unpacks BitsAllocated 1 itself
    n = int(ds.NumberOfFrames)
    arr = np.asarray(arr, dtype=np.uint8).reshape(n, int(ds.Rows), int(ds.Columns))
    arr.tofile(out_path)
    frames = []
    for item in ds.PerFrameFunctionalGroupsSequence:
        src = item.DerivationImageSequence[0].SourceImageSequence[0]
        f = {
            "segment": int(item.SegmentIdentificationSequence[0].ReferencedSegmentNumber),
            "sop": str(src.ReferencedSOPInstanceUID),
            "frame": int(src.ReferencedFrameNumber) if "ReferencedFrameNumber" in src else None,
            "dimension_index": [int(v) for v in _as_list(item.FrameContentSequence[0].DimensionIndexValues)],
        }
        if "PlanePositionSequence" in item:
            f["position"] = [float(v) for v in item.PlanePositionSequence[0].ImagePositionPatient]
        frames.append(f)
    refs = []
    for s in ds.ReferencedSeriesSequence:
        refs.append({"series": str(s.SeriesInstanceUID),
                     "instances": [str(i.ReferencedSOPInstanceUID) for i in s.ReferencedInstanceSequence]})
    print(json.dumps({
        "sop_class": str(ds.SOPClassUID),
        "modality": str(ds.Modality),
        "type": str(ds.SegmentationType),
        "patient_name": str(ds.PatientName),
        "frames": frames,
        "segments": [int(s.SegmentNumber) for s in ds.SegmentSequence],
        "referenced_series": refs,
        "transfer_syntax": str(ds.file_meta.TransferSyntaxUID),
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
