#!/usr/bin/python3
"""Generate the dicomio compressed transfer syntax fixtures.

Run from the repository root with Debian's python3-pydicom (2.3), dcmtk,
libgdcm-tools and libopenjp2-tools:

    /usr/bin/python3 testdata/gen/dicomio/gen_codecs.py

Writes dicomio/testdata/codecs/: DICOM files encoded by real encoders
(dcmcrle, dcmcjpeg, dcmcjpls, gdcmconv) from the example series and from
small generated images, some re-encapsulated by pydicom (no Basic Offset
Table, frames in several fragments, Extended Offset Table), and cases.json.
For every file, <name>.ref.gz holds the reference: the modality values
(float32, little endian, frame after frame) of the pixels an independent
decoder (dcmdrle, dcmdjpeg, dcmdjpls, gdcmconv --raw) returns for the same
file, read by pydicom from its native output. The Go tests compare dicomio's
decoding with them exactly. Everything is deterministic.
"""
import gzip
import json
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np
import pydicom
from pydicom.dataset import Dataset
from pydicom.encaps import encapsulate, encapsulate_extended, generate_pixel_data_frame
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRLittleEndian

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gen  # noqa: E402  (the fixture helpers: base, set_pixels, uid)

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.normpath(os.path.join(HERE, "..", "..", ".."))
OUT = os.path.join(REPO, "dicomio", "testdata", "codecs")
CR_EXAMPLE = os.path.join(REPO, "examples", "dicom", "study-001", "series-1", "0001.dcm")
CT_EXAMPLE = os.path.join(REPO, "examples", "dicom", "study-005", "series-1")
TMP = tempfile.mkdtemp(prefix="tmcad-codecs-")
cases = []


def run(*args):
    subprocess.run([str(a) for a in args], check=True, stdout=subprocess.DEVNULL)


def src(name):
    return os.path.join(TMP, name + ".dcm")


def ct_multiframe():
    """Three slices of the CT example as one enhanced CT (native)."""
    slices = [pydicom.dcmread(os.path.join(CT_EXAMPLE, "%04d.dcm" % k)) for k in (1, 2, 3)]
    ds = gen.base(gen.ECT, gen.uid(60, 1), gen.uid(60), "CT")
    gen.set_ts(ds, ExplicitVRLittleEndian)
    ds.ImageType = ["ORIGINAL", "PRIMARY", "VOLUME", "NONE"]
    ds.FrameOfReferenceUID = gen.FOR
    ds.NumberOfFrames = len(slices)
    gen.set_pixels(ds, np.stack([s.pixel_array for s in slices]).astype(np.int16), signed=True)
    shared = Dataset()
    po = Dataset(); po.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
    shared.PlaneOrientationSequence = Sequence([po])
    pm = Dataset(); pm.PixelSpacing = [0.7, 0.7]; pm.SliceThickness = 2.0
    shared.PixelMeasuresSequence = Sequence([pm])
    pv = Dataset(); pv.RescaleIntercept = -1024; pv.RescaleSlope = 1; pv.RescaleType = "HU"
    shared.PixelValueTransformationSequence = Sequence([pv])
    ds.SharedFunctionalGroupsSequence = Sequence([shared])
    per = []
    for k in range(len(slices)):
        it = Dataset()
        pp = Dataset(); pp.ImagePositionPatient = [0.0, 0.0, 2.0 * k]
        it.PlanePositionSequence = Sequence([pp])
        fc = Dataset(); fc.InStackPositionNumber = k + 1
        it.FrameContentSequence = Sequence([fc])
        per.append(it)
    ds.PerFrameFunctionalGroupsSequence = Sequence(per)
    return ds


def generated(name, frames, signed, sop):
    """A small multi-frame secondary image of generated pixels."""
    ds = gen.base(gen.CT, gen.uid(61, sop), gen.uid(61, sop), "CT")
    gen.set_ts(ds, ExplicitVRLittleEndian)
    ds.NumberOfFrames = len(frames)
    gen.set_pixels(ds, np.stack(frames), signed=signed)
    ds.RescaleIntercept = 0
    ds.RescaleSlope = 1
    return ds


def sources():
    shutil.copy(CR_EXAMPLE, src("cr"))
    one = pydicom.dcmread(os.path.join(CT_EXAMPLE, "0001.dcm"))
    one.save_as(src("ct1"))
    ct_multiframe().save_as(src("ctmf"), write_like_original=False)
    rng = np.random.default_rng(7)
    r, c = np.mgrid[0:24, 0:32]
    u8 = [(r * 5 + c * 3 + rng.integers(0, 40, r.shape) + 60 * f).clip(0, 255).astype(np.uint8) for f in range(2)]
    u8[1][0:4, 0:8] = 255  # saturated corner: runs for RLE
    generated("u8", u8, False, 1).save_as(src("u8"), write_like_original=False)
    s16 = [((r - 12) * 1500 + (c - 16) * 900 + rng.integers(-300, 300, r.shape) - 1000 * f).clip(-32768, 32767).astype(np.int16) for f in range(2)]
    s16[0][0, 0], s16[0][0, 1] = -32768, 32767  # the extremes
    generated("s16", s16, True, 2).save_as(src("s16"), write_like_original=False)


def modality(path):
    """Modality values (float32) of a native file, read by pydicom."""
    ds = pydicom.dcmread(path)
    arr = ds.pixel_array.astype(np.float64)
    slope, icpt = float(getattr(ds, "RescaleSlope", 1) or 1), float(getattr(ds, "RescaleIntercept", 0) or 0)
    if "SharedFunctionalGroupsSequence" in ds:
        pv = ds.SharedFunctionalGroupsSequence[0].get("PixelValueTransformationSequence")
        if pv:
            slope, icpt = float(pv[0].RescaleSlope), float(pv[0].RescaleIntercept)
    return (arr * slope + icpt).astype("<f4")


def write_ref(name, v):
    with gzip.GzipFile(os.path.join(OUT, name), "wb", mtime=0) as f:
        f.write(v.tobytes())


def record(name, ts, decoder, lossless, source):
    """Decode OUT/name.dcm with the reference decoder, store its values."""
    path = os.path.join(OUT, name + ".dcm")
    ds = pydicom.dcmread(path)
    assert ds.file_meta.TransferSyntaxUID == ts, (name, ds.file_meta.TransferSyntaxUID)
    ref = os.path.join(TMP, name + ".ref.dcm")
    run(*decoder, path, ref)
    v = modality(ref)
    frames = int(getattr(ds, "NumberOfFrames", 1) or 1)
    refname = name + ".ref.gz"
    if lossless:
        # The reference decoder gives back the source's values exactly: the
        # cases of one source share its values.
        assert np.array_equal(v.ravel(), modality(src(source)).ravel()), name
        refname = source + ".ref.gz"
    write_ref(refname, v)
    cases.append({"file": name + ".dcm", "ref": refname, "ts": ts, "frames": frames,
                  "rows": int(ds.Rows), "columns": int(ds.Columns), "lossless": lossless, "source": source})


def reencapsulate(name, from_name, how):
    """Copy OUT/from_name.dcm with its frames encapsulated another way."""
    ds = pydicom.dcmread(os.path.join(OUT, from_name + ".dcm"))
    nf = int(getattr(ds, "NumberOfFrames", 1) or 1)
    frames = list(generate_pixel_data_frame(ds.PixelData, nf))
    if how == "nobot":
        ds.PixelData = encapsulate(frames, has_bot=False)
    elif how == "split_bot":
        ds.PixelData = encapsulate(frames, fragments_per_frame=3, has_bot=True)
    elif how == "split_nobot":
        ds.PixelData = encapsulate(frames, fragments_per_frame=3, has_bot=False)
    elif how == "eot":
        data, offsets, lengths = encapsulate_extended(frames)
        ds.PixelData = data
        ds.ExtendedOffsetTable = offsets
        ds.ExtendedOffsetTableLengths = lengths
    ds["PixelData"].is_undefined_length = True
    ds.save_as(os.path.join(OUT, name + ".dcm"))


RLE, SV1, P14 = "1.2.840.10008.1.2.5", "1.2.840.10008.1.2.4.70", "1.2.840.10008.1.2.4.57"
JLS, JLSNL = "1.2.840.10008.1.2.4.80", "1.2.840.10008.1.2.4.81"
J2K, J2KLOSSY = "1.2.840.10008.1.2.4.90", "1.2.840.10008.1.2.4.91"
DRLE, DJPEG, DJPLS, DGDCM = ["dcmdrle"], ["dcmdjpeg"], ["dcmdjpls"], ["gdcmconv", "--raw"]


def encode(name, source, encoder, ts, decoder, lossless=True):
    run(*encoder, src(source), os.path.join(OUT, name + ".dcm"))
    record(name, ts, decoder, lossless, source)


def go_quote(b):
    """A Go interpreted string literal of the bytes b."""
    return '"' + "".join(chr(x) if 0x20 <= x < 0x7F and x not in (0x22, 0x5C) else "\\x%02x" % x for x in b) + '"'


def fuzz_seeds():
    """Seed corpora of the codec fuzz targets (dicomio/testdata/fuzz/...):
    the first frame of each small fixture, whole, truncated and with a
    corrupted byte, with the frame format (true: 8-bit unsigned 32×24,
    false: 16-bit signed 32×24)."""
    fuzz = os.path.join(REPO, "dicomio", "testdata", "fuzz")
    for target, prefix in (("FuzzDecodeRLE", "rle"), ("FuzzDecodeJPEGLossless", "sv1"),
                           ("FuzzDecodeJPEGLS", "jls"), ("FuzzDecodeJPEG2000", "j2k")):
        d = os.path.join(fuzz, target)
        os.makedirs(d, exist_ok=True)  # keeps the inputs fuzzing found
        for src_name, u8 in (("u8", True), ("s16", False)):
            ds = pydicom.dcmread(os.path.join(OUT, "%s_%s.dcm" % (prefix, src_name)))
            frame = next(generate_pixel_data_frame(ds.PixelData, 2))
            bad = bytearray(frame)
            bad[len(bad) // 3] ^= 0x5A
            for k, b in enumerate((frame, frame[: len(frame) // 2], bytes(bad))):
                with open(os.path.join(d, "%s_%d" % (src_name, k)), "w") as f:
                    f.write("go test fuzz v1\n[]byte(%s)\nbool(%s)\n" % (go_quote(b), "true" if u8 else "false"))


def main():
    shutil.rmtree(OUT, ignore_errors=True)
    os.makedirs(OUT)
    sources()
    for s in ("cr", "ctmf", "u8", "s16"):
        encode("rle_" + s, s, ["dcmcrle"], RLE, DRLE)
        encode("sv1_" + s, s, ["dcmcjpeg", "+e1"], SV1, DJPEG)
        encode("jls_" + s, s, ["dcmcjpls", "+el"], JLS, DJPLS)
        encode("j2k_" + s, s, ["gdcmconv", "--j2k"], J2K, DGDCM)
    encode("rle_ctmf_nobot", "ctmf", ["dcmcrle", "-ot"], RLE, DRLE)
    # Process 14 with every predictor, and a point transform (lossy then).
    for sv in range(1, 8):
        encode("p14_sv%d_ct1" % sv, "ct1", ["dcmcjpeg", "+el", "+sv", sv], P14, DJPEG)
    encode("p14_sv1_u8", "u8", ["dcmcjpeg", "+el", "+sv", 1], P14, DJPEG)
    encode("p14_sv7_pt2_cr", "cr", ["dcmcjpeg", "+el", "+sv", 7, "+pt", 2], P14, DJPEG, lossless=False)
    encode("sv1_ctmf_frag", "ctmf", ["dcmcjpeg", "+e1", "-ot", "+fs", 4], SV1, DJPEG)
    # Near-lossless JPEG-LS and lossy JPEG 2000.
    encode("jlsnl_cr", "cr", ["dcmcjpls", "+en", "+md", 3, "+un"], JLSNL, DJPLS, lossless=False)
    encode("jlsnl_u8", "u8", ["dcmcjpls", "+en", "+un"], JLSNL, DJPLS, lossless=False)
    encode("j2klossy_cr", "cr", ["gdcmconv", "--j2k", "--lossy", "-r", "12"], J2KLOSSY, DGDCM, lossless=False)
    encode("j2klossy_ctmf", "ctmf", ["gdcmconv", "--j2k", "--lossy", "-r", "8"], J2KLOSSY, DGDCM, lossless=False)
    # Other encapsulations of the same frames (re-encapsulated by pydicom).
    for how in ("nobot", "split_bot", "split_nobot", "eot"):
        for base in ("jls_ctmf", "j2k_ctmf", "sv1_ctmf"):
            reencapsulate(base + "_" + how, base, how)
            # The codestreams are those of the base file, byte for byte
            # (gdcmconv cannot read a JPEG 2000 frame in several
            # fragments): the base's reference holds for them.
            case = dict(next(c for c in cases if c["file"] == base + ".dcm"))
            case["file"] = base + "_" + how + ".dcm"
            cases.append(case)
    fuzz_seeds()
    with open(os.path.join(OUT, "cases.json"), "w") as f:
        json.dump(cases, f, indent=1)
        f.write("\n")
    shutil.rmtree(TMP)


if __name__ == "__main__":
    main()
