"""Writes testdata/onnx/tiny.onnx: y = x * 2 + 1 over a [B,4] float32 input.

The smoke test loads ONNX Runtime and runs this graph, so that a broken
set-up fails `make test` loudly instead of failing at the first study.
Run: /usr/bin/python3 testdata/onnx/make_tiny.py
"""
import os

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 4])
y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 4])
two = numpy_helper.from_array(np.array([2.0], dtype=np.float32), "two")
one = numpy_helper.from_array(np.array([1.0], dtype=np.float32), "one")
graph = helper.make_graph(
    [helper.make_node("Mul", ["x", "two"], ["x2"]), helper.make_node("Add", ["x2", "one"], ["y"])],
    "tiny", [x], [y], initializer=[two, one])
model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="tmcad-testdata")
model.ir_version = 8
onnx.checker.check_model(model)
onnx.save(model, os.path.join(os.path.dirname(os.path.abspath(__file__)), "tiny.onnx"))
