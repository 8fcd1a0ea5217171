"""The paper-size TMCA (preset `paper`, random weights) for the engine benchmark's CPU section.

    /usr/bin/python3 bench/engine/paper.py export --out /tmp/tmcad-bench-cache/tmca-paper
    /usr/bin/python3 bench/engine/paper.py torch --threads 2 --batches 1,8 --out /tmp/torch-paper.json

`export` writes a model folder the Go engine loads: model.onnx from `tmca.export --preset paper
--random-init` (torch.manual_seed(0), so the weights are a function of the code alone), a manifest
for that graph and a vocab (the benchmark feeds token ids directly; the vocab is never read). An
existing model.onnx is kept, so the folder works as a cache.

`torch` is the PyTorch eager peer: the same model built the same way (same seed, so the same
weights as the exported graph), the same inputs as bench/engine, images/s per batch size (median
run time after a warm-up, eval mode, torch.no_grad()), the resident memory once the model is built
and the process's peak resident memory (VmHWM) at the end.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
sys.path.insert(0, ROOT)

import torch  # noqa: E402

from tmca.config import build_config  # noqa: E402
from tmca.export import manifest_for  # noqa: E402
from tmca.model import TMCA  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_bench import inputs  # noqa: E402

PRESET = "paper"


def status_mb(key: str) -> float:
    """One memory line of /proc/self/status (VmRSS, VmHWM) in MB (10^6 bytes)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024 / 1e6
    return 0.0


def export(out: str, threads: int) -> int:
    onnx_path = os.path.join(out, "model.onnx")
    if not os.path.exists(onnx_path):
        subprocess.run([sys.executable, "-m", "tmca.export", "--preset", PRESET, "--random-init", "--out", out,
                        "--no-reference", "--threads", str(threads)], cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
    cfg = build_config(PRESET)
    man = manifest_for(cfg, "tmca-paper-random", "0.0.0", "TMCA paper preset on random weights; for benchmarks only")
    man.pop("reference", None)
    with open(os.path.join(out, "manifest.json"), "w") as f:
        json.dump(man, f, indent=2)
        f.write("\n")
    shutil.copyfile(os.path.join(ROOT, "models", "tmca-cxr-compact", "vocab.txt"), os.path.join(out, "vocab.txt"))
    print(f"{onnx_path}: {os.path.getsize(onnx_path) / 1e6:.1f} MB", file=sys.stderr)
    return 0


def bench_torch(threads: int, batches: str, seconds: float, out: str) -> int:
    torch.set_num_threads(threads)
    torch.manual_seed(0)  # as tmca.export --random-init: the exported graph's weights
    t0 = time.perf_counter()
    model = TMCA(build_config(PRESET)).eval()
    res = {"threads": threads, "load_s": time.perf_counter() - t0, "rss_loaded_mb": status_mb("VmRSS"),
           "params": sum(p.numel() for p in model.parameters()), "images_per_sec": {}}
    cfg = model.cfg
    with torch.no_grad():
        for bs in [int(x) for x in batches.split(",")]:
            x = inputs(bs, cfg.image_size, cfg.image_size, cfg.max_length)
            model(*x)
            times = []
            deadline = time.perf_counter() + seconds
            while len(times) < 3 or time.perf_counter() < deadline:
                t = time.perf_counter()
                model(*x)
                times.append(time.perf_counter() - t)
            res["images_per_sec"][str(bs)] = bs / statistics.median(times)
            print(f"pytorch paper batch {bs:2d}: {res['images_per_sec'][str(bs)]:.2f} images/s ({len(times)} runs)",
                  file=sys.stderr)
    res["peak_rss_mb"] = status_mb("VmHWM")
    text = json.dumps(res, indent=2)
    if out:
        with open(out, "w") as f:
            f.write(text)
    else:
        print(text)
    return 0


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("what", choices=["export", "torch"])
    ap.add_argument("--out", default="")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batches", default="1,8")
    ap.add_argument("--seconds", type=float, default=6.0)
    a = ap.parse_args()
    if a.what == "export":
        return export(a.out, a.threads)
    return bench_torch(a.threads, a.batches, a.seconds, a.out)


if __name__ == "__main__":
    sys.exit(main())
