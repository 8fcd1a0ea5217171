"""PyTorch eager peer of bench/engine: the same TMCA network, the same inputs, the same batch sizes.

    /usr/bin/python3 bench/engine/torch_bench.py --checkpoint models/tmca-cxr-compact/checkpoint.pt \
        --threads 2 --out /tmp/torch.json --write-matmul /tmp/matmul.onnx

Prints images/s per batch size (median over repeated runs in eval mode under torch.no_grad()), the
model's FLOPs per image (multiply-adds × 2 of convolutions, linear layers and matrix products,
counted by torch.profiler(with_flops=True)), and writes a square MatMul ONNX graph for the Go side's
machine-peak measurement.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from tmca.eval import load_checkpoint  # noqa: E402


def inputs(batch: int, h: int, w: int, length: int):
    i = np.arange(batch * h * w, dtype=np.int64)
    img = ((i * 7919) % 1000).astype(np.float32) / 500 - 1
    ids = np.zeros((batch, length), dtype=np.int64)
    mask = np.zeros((batch, length), dtype=np.int64)
    for b in range(batch):
        for j in range(12):
            ids[b, j] = 5 + (b + j) % 50
            mask[b, j] = 1
    return torch.from_numpy(img.reshape(batch, 1, h, w)), torch.from_numpy(ids), torch.from_numpy(mask)


def flops_per_image(model, h: int, w: int, length: int) -> float:
    x = inputs(1, h, w, length)
    with torch.no_grad(), torch.profiler.profile(with_flops=True) as prof:
        model(*x)
    return float(sum(e.flops or 0 for e in prof.events()))


def write_matmul(path: str, n: int) -> None:
    import onnx
    from onnx import TensorProto, helper
    a = helper.make_tensor_value_info("a", TensorProto.FLOAT, [n, n])
    b = helper.make_tensor_value_info("b", TensorProto.FLOAT, [n, n])
    c = helper.make_tensor_value_info("c", TensorProto.FLOAT, [n, n])
    g = helper.make_graph([helper.make_node("MatMul", ["a", "b"], ["c"])], "matmul", [a, b], [c])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    onnx.save(m, path)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--checkpoint", required=True)
    ap.add_argument("--batches", default="1,4,8,16")
    ap.add_argument("--seconds", type=float, default=6.0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default="")
    ap.add_argument("--write-matmul", default="")
    ap.add_argument("--matmul-n", type=int, default=1024)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    model = load_checkpoint(a.checkpoint).eval()
    cfg = model.cfg
    h = w = cfg.image_size
    length = cfg.max_length
    res = {"threads": a.threads, "images_per_sec": {}, "flops_per_image": flops_per_image(model, h, w, length)}
    with torch.no_grad():
        for bs in [int(x) for x in a.batches.split(",")]:
            x = inputs(bs, h, w, length)
            model(*x)
            times = []
            deadline = time.perf_counter() + a.seconds
            while len(times) < 3 or time.perf_counter() < deadline:
                t0 = time.perf_counter()
                model(*x)
                times.append(time.perf_counter() - t0)
            res["images_per_sec"][str(bs)] = bs / statistics.median(times)
            print(f"pytorch batch {bs:2d}: {res['images_per_sec'][str(bs)]:.1f} images/s", file=sys.stderr)
        n = a.matmul_n
        m1 = torch.rand(n, n)
        torch.mm(m1, m1)
        times = []
        for _ in range(10):
            t0 = time.perf_counter()
            torch.mm(m1, m1)
            times.append(time.perf_counter() - t0)
        res["torch_matmul_gflops"] = 2 * n ** 3 / statistics.median(times) / 1e9
    if a.write_matmul:
        write_matmul(a.write_matmul, a.matmul_n)
    text = json.dumps(res, indent=2)
    if a.out:
        with open(a.out, "w") as f:
            f.write(text)
    else:
        print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
