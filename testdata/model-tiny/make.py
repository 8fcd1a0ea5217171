"""Writes testdata/model-tiny/: a 16×16 stand-in with the TMCA interface.

prob = sigmoid(image + 0.25 * (sum(attention_mask) - 2)), so the output depends on
both the image and the text input. Engine unit tests (batching, manifest
checks, execution providers) use it; parity and accuracy tests use the real
shipped model. Run: /usr/bin/python3 testdata/model-tiny/make.py
"""
import os

import onnx
from onnx import TensorProto, helper, numpy_helper
import numpy as np

H = W = 16
L = 6
image = helper.make_tensor_value_info("image", TensorProto.FLOAT, ["batch", 1, H, W])
ids = helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", L])
mask = helper.make_tensor_value_info("attention_mask", TensorProto.INT64, ["batch", L])
prob = helper.make_tensor_value_info("prob", TensorProto.FLOAT, ["batch", 1, H, W])
inits = [
    numpy_helper.from_array(np.array([1], dtype=np.int64), "axes1"),
    numpy_helper.from_array(np.array(2.0, dtype=np.float32), "two"),
    numpy_helper.from_array(np.array(0.25, dtype=np.float32), "quarter"),
    numpy_helper.from_array(np.array([-1, 1, 1, 1], dtype=np.int64), "shape4"),
]
nodes = [
    helper.make_node("Cast", ["attention_mask"], ["maskf"], to=TensorProto.FLOAT),
    helper.make_node("ReduceSum", ["maskf", "axes1"], ["len"], keepdims=1),
    helper.make_node("Sub", ["len", "two"], ["len2"]),
    helper.make_node("Mul", ["len2", "quarter"], ["bias"]),
    helper.make_node("Reshape", ["bias", "shape4"], ["bias4"]),
    helper.make_node("Add", ["image", "bias4"], ["logit"]),
    helper.make_node("Sigmoid", ["logit"], ["prob"]),
]
graph = helper.make_graph(nodes, "tiny_tmca", [image, ids, mask], [prob], initializer=inits)
model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="tmcad-testdata")
model.ir_version = 8
onnx.checker.check_model(model)
onnx.save(model, os.path.join(os.path.dirname(os.path.abspath(__file__)), "model.onnx"))
