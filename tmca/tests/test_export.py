"""ONNX export: opset 17, checker, names and shapes, batch dynamic (1, 2, 8), reference files."""
import json

import numpy as np
import onnx
import torch

from tmca.config import build_config
from tmca.export import export_onnx, graph_io, infer_at_batch, manifest_for, verify_onnx, write_reference
from tmca.model import TMCA

torch.set_num_threads(2)


def _tiny(variant="full"):
    return build_config("compact", variant, image_size=32, widths=(8, 16, 16, 32), depths=(1, 1, 1, 1),
                        vocab_size=60, text_width=32, text_heads=2, decoder_widths=(8, 16, 16, 32),
                        head_width=8, attn_heads=2, embed_dim=16)


def test_export_checker_and_dynamic_batch(tmp_path):
    torch.manual_seed(0)
    cfg = _tiny()
    model = TMCA(cfg).eval()
    path = tmp_path / "model.onnx"
    export_onnx(model, path)
    m = onnx.load(str(path))
    assert m.opset_import[0].version == 17
    onnx.checker.check_model(m)
    assert graph_io(path) == {"image": ["batch", 1, 32, 32], "input_ids": ["batch", 24],
                              "attention_mask": ["batch", 24], "prob": ["batch", 1, 32, 32]}
    assert verify_onnx(path, cfg) == {1: [1, 1, 32, 32], 2: [2, 1, 32, 32], 8: [8, 1, 32, 32]}
    # no eval-mode fast-path kernels that ONNX Runtime would not know
    assert all(n.domain in ("", "ai.onnx") for n in m.graph.node)


def test_no_text_variant_exports(tmp_path):
    cfg = _tiny("no-text")
    path = tmp_path / "model.onnx"
    export_onnx(TMCA(cfg).eval(), path)
    verify_onnx(path, cfg)


def test_eval_output_independent_of_batch_and_padding():
    """What the graph computes per case must not depend on the batch it sits in."""
    torch.manual_seed(0)
    cfg = _tiny()
    model = TMCA(cfg).eval()
    x = torch.randn(8, 1, 32, 32)
    ids = torch.randint(5, 60, (8, 24))
    am = torch.ones(8, 24, dtype=torch.long)
    am[:, 9:] = 0
    with torch.no_grad():
        p8 = model(x, ids, am)
        p1 = torch.cat([model(x[i:i + 1], ids[i:i + 1], am[i:i + 1]) for i in range(8)])
    assert torch.allclose(p8, p1, atol=1e-5)


def test_reference_and_manifest(tmp_path):
    torch.manual_seed(0)
    cfg = _tiny()
    model = TMCA(cfg).eval()
    data = {"image": np.random.RandomState(0).randn(8, 1, 32, 32).astype(np.float32),
            "input_ids": np.full((8, 24), 7, np.int64), "attention_mask": np.ones((8, 24), np.int64),
            "report": np.array(["x"] * 8)}
    meta = write_reference(model, tmp_path, data)
    assert meta["batch"] == 8 and meta["height"] == 32 and meta["max_length"] == 24
    prob = np.fromfile(tmp_path / "reference" / "prob.f32", dtype="<f4").reshape(8, 1, 32, 32)
    with torch.no_grad():
        want = model(torch.from_numpy(data["image"]), torch.from_numpy(data["input_ids"]),
                     torch.from_numpy(data["attention_mask"])).numpy()
    assert np.array_equal(prob, want)
    man = manifest_for(cfg, "tmca-test", "0.0.1", "test")
    for k in ("name", "version", "description", "onnx", "inputs", "outputs", "image", "windows", "normalize",
              "tokenizer", "threshold", "text_required", "modalities", "segments", "guide", "reference"):
        assert k in man, k
    assert man["guide"] == {"forms": {"CR": "qata-cov19", "DX": "qata-cov19", "CT": "mosmeddata"}, "max_zones": 3}
    assert man["segments"][0]["category"]["code"] == "49755003"
    json.dumps(man)


def test_manifest_preprocessing_is_what_training_uses():
    """The exported manifest's pre-processing part is tmca.preprocess's at the model's size, so
    tmcad feeds the graph what the phantom and data set loaders fed it in training."""
    from tmca import preprocess
    from tmca.real_data import manifest_like

    for size in (32, 96, 224):
        man = manifest_for(_tiny() if size == 32 else build_config("compact", image_size=size), "t", "0", "t")
        used = preprocess.manifest_at(size)
        assert used == manifest_like(size)
        for k in ("image", "windows", "normalize", "threshold"):
            assert man[k] == used[k], k
        assert man["windows"] == preprocess.DEFAULT_MANIFEST["windows"]
        assert man["normalize"] == preprocess.DEFAULT_MANIFEST["normalize"]
        assert man["image"]["height"] == man["image"]["width"] == size
        # the same frames come out of either
        rng = np.random.default_rng(size)
        raw = rng.integers(0, 4096, (50, 61)).astype(np.uint16)
        for modality in ("CR", "DX", "CT", "MR"):
            a = preprocess.prepare_frame(raw, 1.0, -1024.0, modality, manifest_like=json.loads(json.dumps(man)))
            b = preprocess.prepare_frame(raw, 1.0, -1024.0, modality, manifest_like=used)
            assert np.array_equal(a, b), modality
    # the manifest holds copies: editing one leaves the defaults alone
    man["windows"]["CT"]["center"] = 0
    man["image"]["height"] = 1
    assert preprocess.DEFAULT_MANIFEST["windows"]["CT"]["center"] == -600
    assert preprocess.DEFAULT_MANIFEST["image"]["height"] == 96


def test_shipped_manifest_preprocessing_matches():
    """The shipped manifest.json's pre-processing part is what tmca.preprocess defines."""
    from pathlib import Path

    from tmca import preprocess
    path = Path(__file__).resolve().parents[2] / "models" / "tmca-cxr-compact" / "manifest.json"
    if not path.is_file():
        return
    shipped = json.loads(path.read_text())
    used = preprocess.manifest_at(shipped["image"]["height"])
    for k in ("image", "windows", "normalize", "threshold"):
        assert shipped[k] == used[k], k


def test_batch_check_catches_a_frozen_reshape(tmp_path):
    class Frozen(torch.nn.Module):
        def forward(self, x):
            return x.reshape(2, -1).sum(1, keepdim=True)

    import warnings
    path = tmp_path / "bad.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(Frozen(), torch.randn(2, 3, 4), str(path), opset_version=17, input_names=["x"],
                          output_names=["y"], dynamic_axes={"x": {0: "b"}, "y": {0: "b"}})
    m = onnx.load(str(path))
    assert infer_at_batch(m, 2)[0] == [2, 1]
    for b in (1, 8):
        try:
            infer_at_batch(m, b)
        except Exception:
            continue
        raise AssertionError(f"a reshape frozen to batch 2 passed at batch {b}")
