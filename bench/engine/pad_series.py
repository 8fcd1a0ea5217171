"""Copies a tmca.dicom_writer folder, declaring a Pixel Padding Value in every image.

The value (stored -2000, below any real value) pads no pixel, but its presence is what
makes the loader hold every frame back until the whole series is decoded (the padding
fill is the series minimum): the bench measures the pipeline on that path too.
"""
from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pydicom


def main(src: str, dst: str) -> int:
    shutil.copytree(src, dst)
    n = 0
    for f in sorted(Path(dst, "dicom").rglob("*.dcm")):
        ds = pydicom.dcmread(f)
        vr = "SS" if ds.PixelRepresentation == 1 else "US"
        ds.add_new(0x00280120, vr, -2000 if vr == "SS" else 0)
        ds.save_as(f)
        n += 1
    print(f"{n} files with PixelPaddingValue in {dst}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
