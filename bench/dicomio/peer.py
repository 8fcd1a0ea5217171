#!/usr/bin/python3
"""pydicom peer for bench/dicomio: the same work on the same files.

usage: peer.py DIR REPS [gdcm]   (prints JSON)

header: dcmread(stop_before_pixels=True) of every file (files/s, best of 3*REPS)
load:   dcmread + pixel_array + apply_modality_lut into one float32 volume,
        slices sorted along the normal (MB/s of files, best of REPS); the
        peak RSS of the load is measured in a fresh child process.
gdcm:   the load only, pixel data decoded by GDCM (Debian python3-gdcm,
        pydicom's gdcm_handler and no other), for compressed files: best
        seconds of REPS with their CPU seconds (all threads: GDCM's
        OpenJPEG decodes on several), peak RSS in a child, and the
        SHA-256 of the volume's float32 little endian bytes.
"""
import glob
import hashlib
import json
import os
import resource
import subprocess
import sys
import time

import numpy as np
import pydicom
from pydicom.pixel_data_handlers.util import apply_modality_lut


def load(paths):
    dss = [pydicom.dcmread(p) for p in paths]
    o = np.array(dss[0].ImageOrientationPatient, dtype=float)
    n = np.cross(o[:3], o[3:])
    dss.sort(key=lambda d: float(np.dot(n, np.array(d.ImagePositionPatient, dtype=float))))
    vol = np.empty((len(dss), dss[0].Rows, dss[0].Columns), np.float32)
    for i, d in enumerate(dss):
        vol[i] = apply_modality_lut(d.pixel_array, d)
        d.PixelData = None  # keep only the volume, as LoadSeries does
    return vol


def use_gdcm():
    """Makes pydicom decode pixel data with GDCM only; returns GDCM's version."""
    from pydicom import config
    from pydicom.pixel_data_handlers import gdcm_handler
    if not gdcm_handler.is_available():
        sys.exit("peer.py: GDCM's Python binding is not installed (apt-get install python3-gdcm; make deps)")
    config.pixel_data_handlers = [gdcm_handler]
    import gdcm
    return gdcm.Version.GetVersion()


def gdcm_load(d, paths, reps, mem):
    version = use_gdcm()
    if mem:
        vol = load(paths)
        print(json.dumps({"maxrss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, "volume_bytes": vol.nbytes}))
        return
    best, cpu, digest = float("inf"), 0.0, ""
    for _ in range(reps):
        t0, c0 = time.perf_counter(), time.process_time()
        vol = load(paths)
        t = time.perf_counter() - t0
        if t < best:
            best, cpu = t, time.process_time() - c0
        digest = hashlib.sha256(vol.astype("<f4").tobytes()).hexdigest()
        del vol
    child = json.loads(subprocess.run([sys.executable, __file__, d, "1", "gdcm-mem"], check=True,
                                      capture_output=True, text=True).stdout)
    print(json.dumps({"load_seconds": best, "load_cpu_seconds": cpu, "load_maxrss_kb": child["maxrss_kb"], "volume_sha256": digest,
                      "gdcm": version, "pydicom": pydicom.__version__}))


def main():
    d, reps = sys.argv[1], int(sys.argv[2])
    paths = sorted(glob.glob(os.path.join(d, "*.dcm")))
    if len(sys.argv) > 3 and sys.argv[3] in ("gdcm", "gdcm-mem"):
        gdcm_load(d, paths, reps, sys.argv[3] == "gdcm-mem")
        return
    if len(sys.argv) > 3 and sys.argv[3] == "mem":
        vol = load(paths)
        print(json.dumps({"maxrss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, "volume_bytes": vol.nbytes}))
        return
    size = sum(os.path.getsize(p) for p in paths)
    hdr = 0.0
    for _ in range(3 * reps):
        t0 = time.perf_counter()
        for p in paths:
            pydicom.dcmread(p, stop_before_pixels=True)
        hdr = max(hdr, len(paths) / (time.perf_counter() - t0))
    best = 0.0
    for _ in range(reps):
        t0 = time.perf_counter()
        vol = load(paths)
        best = max(best, size / 1e6 / (time.perf_counter() - t0))
        del vol
    mem = json.loads(subprocess.run([sys.executable, __file__, d, "1", "mem"], check=True,
                                    capture_output=True, text=True).stdout)
    print(json.dumps({"header_files_per_s": hdr, "load_mb_per_s": best, "load_maxrss_kb": mem["maxrss_kb"],
                      "volume_bytes": mem["volume_bytes"], "pydicom": pydicom.__version__}))


if __name__ == "__main__":
    main()
