#!/usr/bin/python3
"""Generate the dicomio test fixtures.

Run from the repository root with Debian's python3-pydicom (2.3) and dcmtk:

    /usr/bin/python3 testdata/gen/dicomio/gen.py

Writes small DICOM files under dicomio/testdata/ and expected.json, which
holds, for each single-file fixture, the float32 values pydicom computes
(pixel_array + apply_modality_lut) so the Go tests compare against an
independent reader. Everything is deterministic (fixed UIDs, fixed pixels).
"""
import json
import os
import random
import shutil
import subprocess
import sys

import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileDataset, FileMetaDataset
from pydicom.encaps import encapsulate
from pydicom.pixel_data_handlers.util import apply_modality_lut
from pydicom.sequence import Sequence
from pydicom.uid import (ExplicitVRBigEndian, ExplicitVRLittleEndian,
                         ImplicitVRLittleEndian, DeflatedExplicitVRLittleEndian)

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "dicomio", "testdata")
OUT = os.path.normpath(OUT)
ROOT = "1.2.826.0.1.3680043.10.1234"  # fixture UID root
CT = "1.2.840.10008.5.1.4.1.1.2"
ECT = "1.2.840.10008.5.1.4.1.1.2.1"
CR = "1.2.840.10008.5.1.4.1.1.1"
STUDY = ROOT + ".1"
FOR = ROOT + ".2"
expected = {}


def uid(*parts):
    return ".".join([ROOT] + [str(p) for p in parts])


def base(sop_class, sop_uid, series_uid, modality, ts=ExplicitVRLittleEndian):
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = sop_class
    meta.MediaStorageSOPInstanceUID = sop_uid
    meta.TransferSyntaxUID = ts
    meta.ImplementationClassUID = ROOT + ".99"
    ds = FileDataset(None, {}, file_meta=meta, preamble=b"\0" * 128)
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = sop_uid
    ds.StudyDate = "20240102"
    ds.StudyTime = "101500"
    ds.AccessionNumber = "ACC0001"
    ds.Modality = modality
    ds.ReferringPhysicianName = "Doe^Referrer"
    ds.StudyDescription = "Fixture study"
    ds.PatientName = "Müller^Hans"
    ds.PatientID = "PID-SECRET-42"
    ds.PatientBirthDate = "19600101"
    ds.PatientSex = "M"
    ds.PatientAge = "064Y"
    ds.BodyPartExamined = "CHEST"
    ds.StudyInstanceUID = STUDY
    ds.SeriesInstanceUID = series_uid
    ds.StudyID = "1"
    ds.SeriesNumber = 2
    ds.InstanceNumber = 1
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    return ds


def set_ts(ds, ts):
    ds.file_meta.TransferSyntaxUID = ts
    ds.is_little_endian = ts != ExplicitVRBigEndian
    ds.is_implicit_VR = ts == ImplicitVRLittleEndian


def set_pixels(ds, arr, bits_stored=None, signed=False, raw=None):
    arr = np.asarray(arr)
    ds.Rows, ds.Columns = arr.shape[-2], arr.shape[-1]
    ds.BitsAllocated = arr.dtype.itemsize * 8
    ds.BitsStored = bits_stored or ds.BitsAllocated
    ds.HighBit = ds.BitsStored - 1
    ds.PixelRepresentation = 1 if signed else 0
    data = raw if raw is not None else arr
    if ds.file_meta.TransferSyntaxUID == ExplicitVRBigEndian:
        data = data.astype(data.dtype.newbyteorder(">"))
    ds.PixelData = data.tobytes()


def ct_slice(series_uid, k, z, rows=8, cols=8, ts=ExplicitVRLittleEndian, sop=None, orient=(1, 0, 0, 0, 1, 0)):
    sop = sop or uid(3, series_uid.split(".")[-1], k)
    ds = base(CT, sop, series_uid, "CT", ts)
    set_ts(ds, ts)
    ds.InstanceNumber = k + 1
    ds.FrameOfReferenceUID = FOR
    ds.ImagePositionPatient = [-10.0, -20.0, z]
    ds.ImageOrientationPatient = list(orient)
    ds.PixelSpacing = [0.7, 0.8]
    ds.SliceThickness = 2.5
    ds.RescaleIntercept = -1024
    ds.RescaleSlope = 1
    ds.RescaleType = "HU"
    r, c = np.mgrid[0:rows, 0:cols]
    arr = (1000 + 10 * (r * cols + c) + 7 * k).astype(np.uint16)
    set_pixels(ds, arr, bits_stored=12)
    return ds


def save(ds, rel, record=True):
    path = os.path.join(OUT, rel)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    ds.save_as(path, write_like_original=False)
    if record:
        record_expected(rel)
    return path


def record_expected(rel):
    ds = pydicom.dcmread(os.path.join(OUT, rel))
    arr = ds.pixel_array
    v = apply_modality_lut(arr, ds).astype(np.float32)
    expected[rel] = {"rows": int(ds.Rows), "columns": int(ds.Columns),
                     "frames": int(getattr(ds, "NumberOfFrames", 1) or 1),
                     "values": [float(x) for x in v.ravel()]}


def dcmtk(args, src, dst):
    subprocess.run(args + [os.path.join(OUT, src), os.path.join(OUT, dst)], check=True)


def main():
    if os.path.isdir(OUT):
        for d in ("ts", "pixel", "series", "enhanced"):
            shutil.rmtree(os.path.join(OUT, d), ignore_errors=True)
    # --- transfer syntaxes: one CT slice each -----------------------------
    s = uid(10)
    for n, (name, ts) in enumerate([("implicit", ImplicitVRLittleEndian), ("explicit", ExplicitVRLittleEndian),
                                    ("bigendian", ExplicitVRBigEndian), ("deflated", DeflatedExplicitVRLittleEndian)]):
        ds = ct_slice(s, 0, 0.0, rows=16, cols=12, ts=ts, sop=uid(10, n + 1))
        if ts == DeflatedExplicitVRLittleEndian:
            ds.is_little_endian, ds.is_implicit_VR = True, False
        save(ds, "ts/%s.dcm" % name)
    # 8-bit MONOCHROME2 source for JPEG (a smooth ramp so lossy stays close).
    ds = base(CR, uid(11, 1), uid(11), "CR")
    r, c = np.mgrid[0:16, 0:16]
    set_pixels(ds, (8 * r + 4 * c + 20).astype(np.uint8))
    save(ds, "ts/jpeg_source.dcm")
    dcmtk(["dcmcjpeg", "+eb"], "ts/jpeg_source.dcm", "ts/jpeg_baseline.dcm")
    record_expected("ts/jpeg_baseline.dcm")
    dcmtk(["dcmcjpeg", "+ee", "+be"], "ts/jpeg_source.dcm", "ts/jpeg_extended8.dcm")
    record_expected("ts/jpeg_extended8.dcm")
    # 12-bit JPEG extended: Go's decoder cannot (expect an error).
    dcmtk(["dcmcjpeg", "+ee", "+bt"], "ts/explicit.dcm", "ts/jpeg_extended12.dcm")
    dcmtk(["dcmcrle"], "ts/explicit.dcm", "ts/rle.dcm")
    dcmtk(["dcmcjpeg", "+e1"], "ts/explicit.dcm", "ts/jpeg_lossless.dcm")
    # JPEG 2000: no encoder here; a valid header with a dummy codestream.
    ds = ct_slice(s, 0, 0.0, sop=uid(10, 9))
    ds.file_meta.TransferSyntaxUID = "1.2.840.10008.1.2.4.90"
    ds.PixelData = encapsulate([b"\xff\x4f\xff\x51" + b"\0" * 60])
    ds["PixelData"].VR = "OB"
    ds["PixelData"].is_undefined_length = True
    save(ds, "ts/jpeg2000.dcm", record=False)

    # --- pixel representations --------------------------------------------
    ds = base(CT, uid(20, 1), uid(20), "CT")
    r, c = np.mgrid[0:8, 0:8]
    stored = (r * 8 + c) * 70 - 2048  # -2048..2362 fits in 13 bits signed
    raw = (stored.astype(np.int16).view(np.uint16) & 0x0FFF)  # 12 bits, two's complement
    raw = raw | 0xA000  # garbage above BitsStored: must be masked off
    ds.RescaleIntercept, ds.RescaleSlope = 0, 1
    set_pixels(ds, raw.astype(np.uint16), bits_stored=12, signed=True)
    save(ds, "pixel/signed12_garbage.dcm", record=False)
    # pydicom does not mask garbage bits: record the expected values here.
    s12 = raw & 0x0FFF
    s12 = np.where(s12 >= 0x800, s12.astype(np.int32) - 0x1000, s12)
    expected["pixel/signed12_garbage.dcm"] = {"rows": 8, "columns": 8, "frames": 1,
                                              "values": [float(x) for x in s12.ravel()]}

    ds = base(CT, uid(21, 1), uid(21), "CT")
    set_pixels(ds, ((r * 8 + c) * 500 - 16000).astype(np.int16), signed=True)
    ds.RescaleIntercept, ds.RescaleSlope = -10, 0.5
    save(ds, "pixel/signed16_rescale.dcm")

    ds = base(CT, uid(22, 1), uid(22), "CT")
    set_pixels(ds, ((r * 8 + c) * 1000).astype(np.uint16))
    ds.RescaleIntercept, ds.RescaleSlope = -1024, 2
    save(ds, "pixel/unsigned16_rescale.dcm")

    ds = base(CR, uid(23, 1), uid(23), "CR")
    ds.PhotometricInterpretation = "MONOCHROME1"
    ds.ImagerPixelSpacing = [0.15, 0.15]
    ds.PatientOrientation = ["P", "F"]
    set_pixels(ds, (r * 8 + c).astype(np.uint8) * 4)
    save(ds, "pixel/cr_monochrome1.dcm")

    ds = base(CT, uid(24, 1), uid(24), "CT")
    a = ((r * 8 + c) * 10 - 300).astype(np.int16)
    a[0, :] = -2000  # padding outside the field of view
    set_pixels(ds, a, signed=True)
    ds.PixelPaddingValue = -2000
    ds.RescaleIntercept, ds.RescaleSlope = 0, 1
    save(ds, "pixel/padding_signed.dcm", record=False)
    # padding maps to the minimum real value (-300 + 80 = -220 is row 1 col 0)
    v = a.astype(np.float32)
    v[0, :] = v[1:, :].min()
    expected["pixel/padding_signed.dcm"] = {"rows": 8, "columns": 8, "frames": 1,
                                            "values": [float(x) for x in v.ravel()]}

    # padding range: stored values from PixelPaddingValue to
    # PixelPaddingRangeLimit (either order) are padding; rescale applies to
    # the rest, and padding takes the frame's minimum real value.
    ds = base(CT, uid(26, 1), uid(26), "CT")
    a = ((r * 8 + c) * 10 - 300).astype(np.int16)
    a[0, :4] = -2000
    a[0, 4:] = -1800
    a[7, 7] = -1500
    set_pixels(ds, a, signed=True)
    ds.PixelPaddingValue = -1500
    ds.add_new(0x00280121, "SS", -2000)  # PixelPaddingRangeLimit
    ds.RescaleIntercept, ds.RescaleSlope = -1024, 2
    save(ds, "pixel/padding_range.dcm", record=False)
    v = a.astype(np.float32) * 2 - 1024
    pad = (a >= -2000) & (a <= -1500)
    v[pad] = v[~pad].min()
    expected["pixel/padding_range.dcm"] = {"rows": 8, "columns": 8, "frames": 1,
                                           "values": [float(x) for x in v.ravel()]}

    ds = base(CT, uid(25, 1), uid(25), "CT")
    set_pixels(ds, ((r * 8 + c) * 123456 - 5000000).astype(np.int32), signed=True)
    ds.RescaleIntercept, ds.RescaleSlope = 0, 1
    save(ds, "pixel/signed32.dcm")

    # --- series --------------------------------------------------------------
    rng = random.Random(7)
    zs = [2.5 * k for k in range(6)]
    def write_series(name, su, slices):
        names = list(range(len(slices)))
        rng.shuffle(names)
        for n, ds in zip(names, slices):
            save(ds, "series/%s/f%02d.dcm" % (name, n), record=False)

    su = uid(31)
    write_series("ct_shuffled", su, [ct_slice(su, k, z) for k, z in enumerate(zs)])
    su = uid(32)
    sl = [ct_slice(su, k, z) for k, z in enumerate(zs)]
    sl.append(ct_slice(su, 9, zs[3]))  # a second instance at z = 7.5
    write_series("ct_duplicate", su, sl)
    su = uid(33)
    write_series("ct_missing", su, [ct_slice(su, k, z) for k, z in enumerate(zs) if k != 3])
    su = uid(34)
    sl = [ct_slice(su, k, z) for k, z in enumerate(zs)]
    sl[2] = ct_slice(su, 2, zs[2], rows=10)
    write_series("ct_mixedsize", su, sl)
    su = uid(35)
    sl = [ct_slice(su, k, z) for k, z in enumerate(zs)]
    loc = ct_slice(su, 20, 0.0, orient=(0, 1, 0, 0, 0, -1))
    loc.ImageType = ["ORIGINAL", "PRIMARY", "LOCALIZER"]
    loc.InstanceNumber = 1
    sl.append(loc)
    write_series("ct_localizer", su, sl)
    # reversed-normal ordering: sagittal MR series
    su = uid(36)
    sl = []
    for k in range(4):
        ds = ct_slice(su, k, 0.0, orient=(0, 1, 0, 0, 0, -1))
        ds.Modality = "MR"
        ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.4"
        ds.ImagePositionPatient = [30.0 - 3.0 * k, -20.0, 40.0]
        ds.InstanceNumber = 4 - k
        sl.append(ds)
    write_series("mr_sagittal", su, sl)
    # DX pair without geometry: ordered by InstanceNumber
    su = uid(37)
    sl = []
    for k in range(2):
        ds = base("1.2.840.10008.5.1.4.1.1.1.1", uid(37, k), su, "DX")
        ds.InstanceNumber = k + 1
        set_pixels(ds, (r * 8 + c + 100 * k).astype(np.uint16), bits_stored=14)
        sl.append(ds)
    write_series("dx_pair", su, sl)
    # CT with pixel padding: each frame's padding becomes the minimum real
    # value of that frame; a frame that is all padding takes the series'.
    su = uid(38)
    sl, vals = [], []
    for k in range(3):
        ds = ct_slice(su, k, zs[k])
        a = ((r * 8 + c) * 10 - 300 + 40 * k).astype(np.int16)
        if k < 2:
            a[0, :] = -2000
        else:
            a[:, :] = -2000
        set_pixels(ds, a, signed=True)
        ds.PixelPaddingValue = -2000
        sl.append(ds)
        vals.append(a.astype(np.float32) - 1024)
    for k in range(2):
        vals[k][0, :] = vals[k][1:, :].min()
    vals[2][:, :] = min(v[1:, :].min() for v in vals[:2])
    write_series("ct_padded", su, sl)
    expected["series/ct_padded"] = {"rows": 8, "columns": 8, "frames": 3,
                                    "values": [float(x) for x in np.stack(vals).ravel()]}

    # --- enhanced multi-frame CT -------------------------------------------
    su = uid(40)
    ds = base(ECT, uid(40, 1), su, "CT")
    ds.ImageType = ["ORIGINAL", "PRIMARY", "VOLUME", "NONE"]
    ds.FrameOfReferenceUID = FOR
    nf, rows, cols = 5, 8, 6
    ds.NumberOfFrames = nf
    frames = np.zeros((nf, rows, cols), np.int16)
    rr, cc = np.mgrid[0:rows, 0:cols]
    for f in range(nf):
        frames[f] = (rr * cols + cc) * 3 + 100 * f - 50
    set_pixels(ds, frames, signed=True)
    shared = Dataset()
    po = Dataset(); po.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
    shared.PlaneOrientationSequence = Sequence([po])
    pm = Dataset(); pm.PixelSpacing = [0.5, 0.5]; pm.SliceThickness = 1.25
    shared.PixelMeasuresSequence = Sequence([pm])
    ds.SharedFunctionalGroupsSequence = Sequence([shared])
    per = []
    zorder = [3, 0, 4, 1, 2]  # frames stored out of spatial order
    for f in range(nf):
        it = Dataset()
        pp = Dataset(); pp.ImagePositionPatient = [0.0, 0.0, 1.25 * zorder[f]]
        it.PlanePositionSequence = Sequence([pp])
        pv = Dataset(); pv.RescaleIntercept = -1000 + f; pv.RescaleSlope = 1 + f; pv.RescaleType = "HU"
        it.PixelValueTransformationSequence = Sequence([pv])
        fc = Dataset(); fc.InStackPositionNumber = zorder[f] + 1
        it.FrameContentSequence = Sequence([fc])
        per.append(it)
    ds.PerFrameFunctionalGroupsSequence = Sequence(per)
    save(ds, "enhanced/ct_enhanced.dcm", record=False)
    vals = []
    for f in range(nf):
        vals.append((frames[f].astype(np.float64) * (1 + f) + (-1000 + f)).astype(np.float32))
    expected["enhanced/ct_enhanced.dcm"] = {
        "rows": rows, "columns": cols, "frames": nf,
        "values": [float(x) for x in np.stack(vals).ravel()],
        "z": [1.25 * z for z in zorder]}

    with open(os.path.join(OUT, "expected.json"), "w") as f:
        json.dump(expected, f, indent=0, sort_keys=True)
        f.write("\n")


if __name__ == "__main__":
    main()
