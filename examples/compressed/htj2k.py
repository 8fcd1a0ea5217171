#!/usr/bin/python3
"""Re-encodes one native DICOM file in HTJ2K lossless (1.2.840.10008.1.2.4.201).

usage: htj2k.py IN.dcm OUT.dcm

Each frame's stored values go through OpenJPH's ojph_compress (reversible
5/3 wavelet, one tile, LRCP), and the codestreams are encapsulated with a
Basic Offset Table; every other element, every UID included, is kept. Signed
pixel data is encoded as its unsigned BitsStored-bit patterns, which DICOM
decoders sign-extend (ojph_compress reads signed raw samples zero-extended).
The output depends on the input only: re-running rewrites identical bytes.
"""
import os
import subprocess
import sys
import tempfile

import numpy as np
import pydicom
from pydicom.encaps import encapsulate

HTJ2K_LOSSLESS = "1.2.840.10008.1.2.4.201"
# pydicom 2.3 predates HTJ2K: tell it this is a (compressed) transfer syntax.
pydicom._uid_dict.UID_dictionary.setdefault(
    HTJ2K_LOSSLESS, ("High-Throughput JPEG 2000 Image Compression (Lossless Only)", "Transfer Syntax", "", "", ""))


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    src, dst = sys.argv[1], sys.argv[2]
    ds = pydicom.dcmread(src)
    if ds.file_meta.TransferSyntaxUID.is_compressed:
        sys.exit("htj2k.py: %s is already compressed (%s)" % (src, ds.file_meta.TransferSyntaxUID))
    if int(ds.SamplesPerPixel) != 1:
        sys.exit("htj2k.py: %s: only greyscale is supported" % src)
    bits, rows, cols = int(ds.BitsStored), int(ds.Rows), int(ds.Columns)
    dt = np.uint8 if int(ds.BitsAllocated) == 8 else np.uint16
    # The stored values' bit patterns, BitsStored bits, unsigned.
    frames = ds.pixel_array.reshape(-1, rows, cols).view(dt) & ((1 << bits) - 1)
    streams = []
    with tempfile.TemporaryDirectory() as tmp:
        for k, f in enumerate(frames):
            raw, j2c = os.path.join(tmp, "%d.yuv" % k), os.path.join(tmp, "%d.j2c" % k)
            f.astype(dt).tofile(raw)
            subprocess.run(["ojph_compress", "-i", raw, "-o", j2c, "-dims", "{%d,%d}" % (cols, rows),
                            "-num_comps", "1", "-signed", "false", "-bit_depth", str(bits),
                            "-downsamp", "{1,1}", "-reversible", "true", "-prog_order", "LRCP"],
                           check=True, capture_output=True)
            with open(j2c, "rb") as fh:
                b = fh.read()
            streams.append(b + b"\0" * (len(b) % 2))
    ds.file_meta.TransferSyntaxUID = HTJ2K_LOSSLESS
    ds.is_little_endian, ds.is_implicit_VR = True, False
    ds.PixelData = encapsulate(streams, has_bot=True)
    ds["PixelData"].VR = "OB"
    ds["PixelData"].is_undefined_length = True
    ds.save_as(dst, write_like_original=False)


if __name__ == "__main__":
    main()
