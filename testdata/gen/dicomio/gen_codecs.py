#!/usr/bin/python3
"""Generate the dicomio compressed transfer syntax fixtures.

Run from the repository root with Debian's python3-pydicom (2.3), dcmtk,
libgdcm-tools and libopenjp2-tools:

    /usr/bin/python3 testdata/gen/dicomio/gen_codecs.py

Writes dicomio/testdata/codecs/: DICOM files encoded by real encoders
(dcmcrle, dcmcjpeg, dcmcjpls, gdcmconv, and OpenJPH's ojph_compress for
HTJ2K, whose codestreams pydicom encapsulates) from the example series and
from small generated images, some re-encapsulated by pydicom (no Basic
Offset Table, frames in several fragments, Extended Offset Table), and
cases.json. For every file, <name>.ref.gz holds the reference: the modality
values (float32, little endian, frame after frame) of the pixels an
independent decoder (dcmdrle, dcmdjpeg, dcmdjpls, gdcmconv --raw,
ojph_expand) returns for the same file, read by pydicom from its native
output. The Go tests compare dicomio's decoding with them exactly, except
lossy HTJ2K, where OpenJPEG's and OpenJPH's floating-point 9/7 wavelets
round a few samples differently (cases.json's "tolerance").
Everything is deterministic.
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
import pydicom._uid_dict
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


def as12(ds, signed_bits):
    """ds (the CT example, int16 stored values, intercept -1024) with 12
    bits stored: unsigned stored values and intercept -1024, or (signed_bits)
    the HU as 12-bit two's complement bit patterns in an unsigned image, for
    an encoder that takes unsigned samples only (relabel_signed makes the
    encoded file signed)."""
    arr = ds.pixel_array.astype(np.int32)
    if signed_bits:
        arr = (arr - 1024).clip(-2048, 2047) & 0xFFF
        set_intercept(ds, 0)
    else:
        arr = arr.clip(0, 4095)
    gen.set_pixels(ds, arr.astype(np.uint16), bits_stored=12, signed=False)
    return ds


def set_intercept(ds, icpt):
    if "SharedFunctionalGroupsSequence" in ds:
        ds.SharedFunctionalGroupsSequence[0].PixelValueTransformationSequence[0].RescaleIntercept = icpt
    else:
        ds.RescaleIntercept = icpt


def sources():
    shutil.copy(CR_EXAMPLE, src("cr"))
    one = pydicom.dcmread(os.path.join(CT_EXAMPLE, "0001.dcm"))
    one.save_as(src("ct1"))
    ct_multiframe().save_as(src("ctmf"), write_like_original=False)
    as12(pydicom.dcmread(src("ct1")), False).save_as(src("ct12u"))
    as12(pydicom.dcmread(src("ct1")), True).save_as(src("ct12sbits"))
    as12(pydicom.dcmread(src("ctmf")), False).save_as(src("ctmf12u"))
    as12(pydicom.dcmread(src("ctmf")), True).save_as(src("ctmf12sbits"))
    ct12s = as12(pydicom.dcmread(src("ct1")), True)
    ct12s.PixelRepresentation = 1  # 12-bit signed, the words not sign-extended
    ct12s.save_as(src("ct12s"))
    rng = np.random.default_rng(7)
    r, c = np.mgrid[0:24, 0:32]
    u8 = [(r * 5 + c * 3 + rng.integers(0, 40, r.shape) + 60 * f).clip(0, 255).astype(np.uint8) for f in range(2)]
    u8[1][0:4, 0:8] = 255  # saturated corner: runs for RLE
    generated("u8", u8, False, 1).save_as(src("u8"), write_like_original=False)
    s16 = [((r - 12) * 1500 + (c - 16) * 900 + rng.integers(-300, 300, r.shape) - 1000 * f).clip(-32768, 32767).astype(np.int16) for f in range(2)]
    s16[0][0, 0], s16[0][0, 1] = -32768, 32767  # the extremes
    generated("s16", s16, True, 2).save_as(src("s16"), write_like_original=False)


def stored(ds):
    """The stored values of a native data set: the BitsStored low bits of
    each word (DICOM ignores those above HighBit), sign-extended when the
    pixel representation is signed."""
    arr = ds.pixel_array.astype(np.int64)
    bs = int(ds.BitsStored)
    if bs < 32:
        arr &= (1 << bs) - 1
        if int(ds.PixelRepresentation) == 1:
            arr = np.where(arr >= 1 << (bs - 1), arr - (1 << bs), arr)
    return arr


def modality(path):
    """Modality values (float32) of a native file, read by pydicom."""
    ds = pydicom.dcmread(path)
    arr = stored(ds).astype(np.float64)
    slope, icpt = float(getattr(ds, "RescaleSlope", 1) or 1), float(getattr(ds, "RescaleIntercept", 0) or 0)
    if "SharedFunctionalGroupsSequence" in ds:
        pv = ds.SharedFunctionalGroupsSequence[0].get("PixelValueTransformationSequence")
        if pv:
            slope, icpt = float(pv[0].RescaleSlope), float(pv[0].RescaleIntercept)
    return (arr * slope + icpt).astype("<f4")


def write_ref(name, v):
    with gzip.GzipFile(os.path.join(OUT, name), "wb", mtime=0) as f:
        f.write(v.tobytes())


def record(name, ts, decoder, lossless, source, tolerance=0):
    """Decode OUT/name.dcm with the reference decoder (a command line, or a
    function of the input and output paths), store its values."""
    path = os.path.join(OUT, name + ".dcm")
    ds = pydicom.dcmread(path)
    assert ds.file_meta.TransferSyntaxUID == ts, (name, ds.file_meta.TransferSyntaxUID)
    ref = os.path.join(TMP, name + ".ref.dcm")
    if callable(decoder):
        decoder(path, ref)
    else:
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
    case = {"file": name + ".dcm", "ref": refname, "ts": ts, "frames": frames,
            "rows": int(ds.Rows), "columns": int(ds.Columns), "lossless": lossless, "source": source}
    if tolerance:
        case["tolerance"] = tolerance
    cases.append(case)


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
JPEGBL, JPEG12 = "1.2.840.10008.1.2.4.50", "1.2.840.10008.1.2.4.51"
DRLE, DJPEG, DJPLS, DGDCM = ["dcmdrle"], ["dcmdjpeg"], ["dcmdjpls"], ["gdcmconv", "--raw"]


def encode(name, source, encoder, ts, decoder, lossless=True):
    run(*encoder, src(source), os.path.join(OUT, name + ".dcm"))
    record(name, ts, decoder, lossless, source)


def relabel_signed(name):
    """Mark OUT/name.dcm, encoded from 12-bit two's complement patterns
    (as12), as signed: the codestream is unchanged, and decoders
    sign-extend its samples at BitsStored, as for scanners' signed JPEG."""
    path = os.path.join(OUT, name + ".dcm")
    ds = pydicom.dcmread(path)
    ds.PixelRepresentation = 1
    ds.save_as(path)


HTJ2K, HTJ2K_RPCL, HTJ2K_LOSSY = "1.2.840.10008.1.2.4.201", "1.2.840.10008.1.2.4.202", "1.2.840.10008.1.2.4.203"
# pydicom 2.3 predates HTJ2K: tell it these are (compressed) transfer syntaxes.
for _uid, _name in ((HTJ2K, "High-Throughput JPEG 2000 Image Compression (Lossless Only)"),
                    (HTJ2K_RPCL, "High-Throughput JPEG 2000 with RPCL Options Image Compression (Lossless Only)"),
                    (HTJ2K_LOSSY, "High-Throughput JPEG 2000 Image Compression")):
    pydicom._uid_dict.UID_dictionary.setdefault(_uid, (_name, "Transfer Syntax", "", "", ""))


def ojph_codestream_format(ds):
    """The sample format OpenJPH encodes a frame of ds in: BitsStored bits,
    unsigned, and the numpy type of its raw files. Signed pixel data is
    encoded as its unsigned BitsStored-bit two's complement patterns, which
    DICOM decoders sign-extend: ojph_compress 0.9 reads signed raw samples
    zero-extended (negative 16-bit values become 32768..65535, which it
    encodes as out-of-range signed samples that only its own decoder wraps
    back), and it cannot read signed 12-bit raw samples at all."""
    dt = np.uint8 if int(ds.BitsAllocated) == 8 else np.uint16
    return int(ds.BitsStored), False, dt


def encode_htj2k(name, source, ts, reversible, qstep=None, tolerance=0):
    """OUT/name.dcm: every frame of the source encoded by ojph_compress,
    encapsulated by pydicom with a Basic Offset Table."""
    ds = pydicom.dcmread(src(source))
    bits, signed, dt = ojph_codestream_format(ds)
    frames = stored(ds).reshape(-1, int(ds.Rows), int(ds.Columns))
    frames = frames & ((1 << bits) - 1)  # signed: the unsigned bit patterns
    streams = []
    for k, f in enumerate(frames):
        raw, j2c = os.path.join(TMP, "%s_%d.yuv" % (name, k)), os.path.join(TMP, "%s_%d.j2c" % (name, k))
        f.astype(dt).tofile(raw)
        args = ["ojph_compress", "-i", raw, "-o", j2c, "-dims", "{%d,%d}" % (f.shape[1], f.shape[0]),
                "-num_comps", 1, "-signed", "true" if signed else "false", "-bit_depth", bits,
                "-downsamp", "{1,1}", "-reversible", "true" if reversible else "false"]
        if qstep:
            args += ["-qstep", qstep]
        if ts == HTJ2K_RPCL:
            args += ["-prog_order", "RPCL"]
        else:
            args += ["-prog_order", "LRCP"]
        run(*args)
        with open(j2c, "rb") as fh:
            b = fh.read()
        streams.append(b + b"\0" * (len(b) % 2))
    gen.set_ts(ds, ts)
    ds.PixelData = encapsulate(streams, has_bot=True)
    ds["PixelData"].is_undefined_length = True
    if not reversible:
        ds.LossyImageCompression = "01"
    ds.save_as(os.path.join(OUT, name + ".dcm"), write_like_original=False)
    record(name, ts, ojph_expand, reversible, source, tolerance)


def ojph_expand(path, ref):
    """The reference decoder of HTJ2K: OpenJPH's ojph_expand on each frame,
    its raw samples written back as a native copy of path."""
    ds = pydicom.dcmread(path)
    bits, signed, dt = ojph_codestream_format(ds)
    nf = int(getattr(ds, "NumberOfFrames", 1) or 1)
    out = []
    for k, frame in enumerate(generate_pixel_data_frame(ds.PixelData, nf)):
        j2c, raw = os.path.join(TMP, "ref_%d.j2c" % k), os.path.join(TMP, "ref_%d.yuv" % k)
        with open(j2c, "wb") as fh:
            fh.write(frame)
        run("ojph_expand", "-i", j2c, "-o", raw)
        out.append(np.fromfile(raw, dtype=dt))
    arr = np.concatenate(out)
    if int(ds.BitsAllocated) == 16:
        arr = arr.astype(np.uint16)
    gen.set_ts(ds, ExplicitVRLittleEndian)
    ds.PixelData = arr.tobytes()
    ds.save_as(ref, write_like_original=False)


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
                           ("FuzzDecodeJPEGLS", "jls"), ("FuzzDecodeJPEG2000", "j2k"),
                           ("FuzzDecodeJPEGDCT", "jpegext"), ("FuzzDecodeHTJ2K", "htj2k")):
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
    # JPEG extended 12-bit (and 8-bit extended and baseline), lossy: IJG's
    # encoder in dcmtk, IJG's decoder (dcmdjpeg) for the reference. dcmtk
    # encodes unsigned samples only; the signed cases are encoded from
    # two's complement patterns and relabelled (relabel_signed).
    for s12 in ("ct12u", "ctmf12u", "cr", "u8", "s16"):
        bits = ["+be"] if s12 == "u8" else ["+bt"]  # u8: 8-bit extended
        encode("jpegext_" + s12, s12, ["dcmcjpeg", "+ee"] + bits, JPEG12, DJPEG, lossless=False)
    for s12 in ("ct12sbits", "ctmf12sbits"):
        run("dcmcjpeg", "+ee", "+bt", src(s12), os.path.join(OUT, "jpegext_" + s12 + ".dcm"))
        relabel_signed("jpegext_" + s12)
        record("jpegext_" + s12, JPEG12, DJPEG, False, s12)
    encode("jpegbl_u8", "u8", ["dcmcjpeg", "+eb"], JPEGBL, DJPEG, lossless=False)
    encode("jpegbl_ctmf", "ctmf", ["dcmcjpeg", "+eb"], JPEGBL, DJPEG, lossless=False)
    # HTJ2K (OpenJPH): lossless 8, 12 and 16 bits, unsigned and signed (as
    # unsigned patterns, ojph_codestream_format), single and multi-frame,
    # one in RPCL order (.202); lossy 8 and 12 bits (.203).
    encode_htj2k("htj2k_u8", "u8", HTJ2K, True)
    encode_htj2k("htj2k_s16", "s16", HTJ2K, True)
    encode_htj2k("htj2k_cr", "cr", HTJ2K, True)
    encode_htj2k("htj2k_ct1", "ct1", HTJ2K, True)
    encode_htj2k("htj2k_ct12s", "ct12s", HTJ2K, True)
    encode_htj2k("htj2k_ctmf", "ctmf", HTJ2K_RPCL, True)
    encode_htj2k("htj2klossy_u8", "u8", HTJ2K_LOSSY, False, 0.02, tolerance=1)
    encode_htj2k("htj2klossy_cr", "cr", HTJ2K_LOSSY, False, 0.005, tolerance=1)
    encode_htj2k("htj2klossy_ctmf12u", "ctmf12u", HTJ2K_LOSSY, False, 0.002, tolerance=1)
    # Other encapsulations of the same frames (re-encapsulated by pydicom).
    for how in ("nobot", "split_bot", "split_nobot", "eot"):
        for base in ("jls_ctmf", "j2k_ctmf", "sv1_ctmf", "jpegext_ctmf12u", "htj2k_ctmf"):
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
