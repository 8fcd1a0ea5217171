"""Dynamic int8 quantisation of a model folder's ONNX graph with python3-onnx alone.

    /usr/bin/python3 bench/engine/quantize.py models/tmca-cxr-compact /tmp/tmcad-bench-cache/compact-int8

ONNX Runtime's own `onnxruntime.quantization.quantize_dynamic` is not installed here (it ships in
the onnxruntime Python wheel; Debian packages no onnxruntime), so this writes the same graph
pattern with standard ONNX operators: every MatMul (and Gemm with transB) whose weight is a
constant gets its weight quantised once to int8 (symmetric, per tensor, zero point 0), and its
activation quantised at run time by DynamicQuantizeLinear (uint8, per tensor):

    DynamicQuantizeLinear(A) -> A_q, A_scale, A_zero
    MatMulInteger(A_q, W_q, A_zero, 0) -> int32 -> Cast(float) -> Mul(A_scale * W_scale) [+ Gemm's C]

ONNX Runtime fuses that pattern into its MatMulIntegerToFloat kernel. Convolutions stay float
(quantize_dynamic's ConvInteger path is not reproduced). The output folder is a copy of the input
folder (manifest, vocab, reference) with the quantised model.onnx.
"""
from __future__ import annotations

import os
import shutil
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def quantize(src: str, dst: str) -> dict:
    m = onnx.load(src)
    g = m.graph
    inits = {t.name: t for t in g.initializer}
    new_nodes, new_inits, stats = [], [], {"matmul": 0, "gemm": 0, "weights": 0}
    for n in g.node:
        attrs = {a.name: helper.get_attribute_value(a) for a in n.attribute}
        gemm = n.op_type == "Gemm" and attrs.get("transA", 0) == 0 and attrs.get("alpha", 1.0) == 1.0 \
            and attrs.get("beta", 1.0) == 1.0
        if not ((n.op_type == "MatMul" or gemm) and n.input[1] in inits):
            new_nodes.append(n)
            continue
        w = numpy_helper.to_array(inits[n.input[1]]).astype(np.float32)
        if w.ndim != 2:
            new_nodes.append(n)
            continue
        if gemm and attrs.get("transB", 0):
            w = w.T
        p = n.name or n.output[0]
        scale = float(np.abs(w).max()) / 127 or 1.0
        wq = np.clip(np.round(w / scale), -127, 127).astype(np.int8)
        new_inits += [numpy_helper.from_array(wq, p + "_Wq"), numpy_helper.from_array(np.int8(0), p + "_Wzero"),
                      numpy_helper.from_array(np.float32(scale), p + "_Wscale")]
        y = n.output[0] + "_noadd" if gemm and len(n.input) > 2 and n.input[2] else n.output[0]
        new_nodes += [
            helper.make_node("DynamicQuantizeLinear", [n.input[0]], [p + "_Aq", p + "_Ascale", p + "_Azero"], p + "_dql"),
            helper.make_node("MatMulInteger", [p + "_Aq", p + "_Wq", p + "_Azero", p + "_Wzero"], [p + "_i32"], p + "_mmi"),
            helper.make_node("Cast", [p + "_i32"], [p + "_f32"], p + "_cast", to=TensorProto.FLOAT),
            helper.make_node("Mul", [p + "_Ascale", p + "_Wscale"], [p + "_scale"], p + "_scale_mul"),
            helper.make_node("Mul", [p + "_f32", p + "_scale"], [y], p + "_mul"),
        ]
        if y != n.output[0]:
            new_nodes.append(helper.make_node("Add", [y, n.input[2]], [n.output[0]], p + "_bias"))
        stats["gemm" if gemm else "matmul"] += 1
        stats["weights"] += w.size
    used = {i for nd in new_nodes for i in nd.input}
    keep = [t for t in g.initializer if t.name in used]
    del g.node[:]
    g.node.extend(new_nodes)
    del g.initializer[:]
    g.initializer.extend(keep + new_inits)
    onnx.checker.check_model(m)
    onnx.save(m, dst)
    return stats


def main(src_dir: str, dst_dir: str) -> int:
    if os.path.exists(dst_dir):
        shutil.rmtree(dst_dir)
    shutil.copytree(src_dir, dst_dir, ignore=shutil.ignore_patterns("checkpoint.pt", "model.onnx"))
    stats = quantize(os.path.join(src_dir, "model.onnx"), os.path.join(dst_dir, "model.onnx"))
    a, b = (os.path.getsize(os.path.join(d, "model.onnx")) for d in (src_dir, dst_dir))
    print(f"quantised {stats['matmul']} MatMul and {stats['gemm']} Gemm ({stats['weights'] / 1e6:.2f} M weights to int8); "
          f"model.onnx {a / 1e6:.2f} MB -> {b / 1e6:.2f} MB", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:3]))
