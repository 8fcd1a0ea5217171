"""Export a TMCA checkpoint to ONNX and write the model folder the Go engine reads.

    /usr/bin/python3 -m tmca.export --checkpoint runs/full-s0/checkpoint.pt --out models/tmca-cxr-compact

Writes OUT/checkpoint.pt (a copy of the PyTorch checkpoint, for tmca.eval), OUT/model.onnx (opset 17; inputs image [B,1,H,W] float32, input_ids / attention_mask [B,L]
int64; output prob [B,1,H,W] float32; only B dynamic), OUT/manifest.json (docs/CONTRACTS.md) and
OUT/reference/ (8 real phantom test cases with their tokenized reports, and what PyTorch computed
on them, for the Go side's parity test). The graph is traced with batch 2 (so no reshape can freeze
the batch to 1), checked with onnx.checker, and its shapes are re-inferred with the batch fixed to
1, 2 and 8 (strict shape inference with data propagation) to prove the batch stays dynamic.

The paper-size preset on random weights (no checkpoint) exports with
    /usr/bin/python3 -m tmca.export --preset paper --random-init --out /tmp/tmca-paper --no-reference

A run of `tmca.train --data qata|mosmed` exports the same way, and the folder is complete for tmcad:
OUT/vocab.txt is the run's vocab (the --init-text checkpoint's, stored in the training checkpoint),
the manifest's tokenizer flags are that tokenizer's, its modalities and `guide` forms are the data
set's (QaTa-COV19: CR, DX in the `qata-cov19` form; MosMedData+: CT in the `mosmeddata` form), the
reference cases are the first test cases of --data-root (else phantoms), and OUT/MODEL_CARD.md and
OUT/metrics.json are written from the run (test_metrics.json beside the checkpoint, or --metrics)
with the data licence and intended use given by --data-licence and --intended-use.
"""
from __future__ import annotations

import argparse
import copy
import json
import sys
import time
from pathlib import Path
from typing import Dict, Optional

import numpy as np
import torch

from .config import TMCAConfig, build_config
from .model import TMCA, count_parameters
from .preprocess import DEFAULT_MANIFEST, manifest_at
from .report_text import MAX_GUIDE_ZONES

INPUTS = ("image", "input_ids", "attention_mask")
OUTPUT = "prob"

# SNOMED CT codes for the one segment. 49755003 is the DICOM-standard category for lesions; the type
# 52988006 "Lesion" is the SCT concept DICOM uses for a lesion segment (CID 7151 family). There is no
# SCT "lung opacity" concept in DICOM's code lists (its "Ground glass opacity" is DCM 112120), so the
# segment is typed as a lesion and labelled "Lung opacity". Its site, 39607008 "Lung structure", is the
# Finding Site of the measurement report tmcad writes beside the SEG.
SEGMENTS = [{
    "number": 1, "label": "Lung opacity",
    "category": {"code": "49755003", "scheme": "SCT", "meaning": "Morphologically Abnormal Structure"},
    "type": {"code": "52988006", "scheme": "SCT", "meaning": "Lesion"},
    "site": {"code": "39607008", "scheme": "SCT", "meaning": "Lung structure"},
}]


VERSION = "1.1.0"

# The guide text the model was trained on, per modality (the form tmcad's report normaliser must
# render: "qata-cov19" = report_text.guide_text, "mosmeddata" = report_text.ct_guide_text), and the
# most target zones one guide text names.
GUIDE = {"forms": {"CR": "qata-cov19", "DX": "qata-cov19", "CT": "mosmeddata"}, "max_zones": MAX_GUIDE_ZONES}


class _Graph(torch.nn.Module):
    """What the ONNX graph computes: prob = TMCA(image, input_ids, attention_mask)."""

    def __init__(self, model: TMCA):
        super().__init__()
        self.model = model

    def forward(self, image, input_ids, attention_mask):
        prob = self.model(image, input_ids, attention_mask)
        if not self.model.cfg.use_text:
            # keep the text inputs in the graph (the contract has three inputs) though unused
            zero = (input_ids[:, :1] * 0 + attention_mask[:, :1] * 0).to(prob.dtype)
            prob = prob + zero[:, :, None, None]
        return prob


def export_onnx(model: TMCA, path: Path, example: Optional[tuple] = None) -> None:
    cfg = model.cfg
    model.eval()
    if example is None:
        g = torch.Generator().manual_seed(0)
        s, L = cfg.image_size, cfg.max_length
        ids = torch.randint(5, cfg.vocab_size, (2, L), generator=g)
        am = torch.ones(2, L, dtype=torch.long)
        am[1, L // 2:] = 0
        ids[1, L // 2:] = 0
        example = (torch.randn(2, 1, s, s, generator=g), ids, am)
    assert example[0].shape[0] == 2, "trace with batch 2"
    dyn = {n: {0: "batch"} for n in INPUTS + (OUTPUT,)}
    path.parent.mkdir(parents=True, exist_ok=True)
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(_Graph(model), example, str(path), opset_version=17, input_names=list(INPUTS),
                          output_names=[OUTPUT], dynamic_axes=dyn, do_constant_folding=True)
    import onnx
    m = onnx.load(str(path))
    # The output's H and W are static (the decoder resizes to fixed sizes) but the exporter leaves
    # them symbolic after Resize: state them, so the Go side can check [-1,1,H,W].
    dims = m.graph.output[0].type.tensor_type.shape.dim
    for i, v in ((1, 1), (2, cfg.image_size), (3, cfg.image_size)):
        dims[i].Clear()
        dims[i].dim_value = v
    m.producer_name = "tmca.export"
    onnx.save(m, str(path))


def graph_io(path: Path) -> Dict[str, list]:
    import onnx
    m = onnx.load(str(path), load_external_data=False)
    out = {}
    for v in list(m.graph.input) + list(m.graph.output):
        out[v.name] = [d.dim_param if d.dim_param else d.dim_value for d in v.type.tensor_type.shape.dim]
    return out


def verify_onnx(path: Path, cfg: TMCAConfig, batches=(1, 2, 8)) -> Dict[int, list]:
    """onnx.checker, then strict shape inference with the batch fixed to each size -> output shapes."""
    import onnx
    m = onnx.load(str(path))
    onnx.checker.check_model(m, full_check=True)
    io = graph_io(path)
    s, L = cfg.image_size, cfg.max_length
    want = {"image": ["batch", 1, s, s], "input_ids": ["batch", L], "attention_mask": ["batch", L],
            OUTPUT: ["batch", 1, s, s]}
    if io != want:
        raise AssertionError(f"{path}: graph inputs/outputs {io}, want {want}")
    found = {}
    for b in batches:
        got, inf = infer_at_batch(m, b)
        if got != [b, 1, s, s]:
            raise AssertionError(f"{path}: at batch {b} the output infers as {got}")
        # every inferred intermediate with a known leading dim must carry this batch, never the trace's 2
        for vi in inf.graph.value_info:
            dd = vi.type.tensor_type.shape.dim
            if b != 2 and len(dd) >= 3 and dd[0].HasField("dim_value") and dd[0].dim_value == 2 and dd[1].HasField("dim_value") \
                    and dd[1].dim_value in (s * s // 16, s * s // 64, s * s // 256, s * s // 1024, L):
                raise AssertionError(f"{path}: {vi.name} keeps the trace batch 2 at batch {b}")
        found[b] = got
    return found


def infer_at_batch(m, b: int):
    """Fix dim 0 of every graph input/output to b and run strict shape inference with data
    propagation; a reshape frozen to the trace's batch makes it fail. Returns (output dims, model)."""
    from onnx import shape_inference
    mb = copy.deepcopy(m)
    for v in list(mb.graph.input) + list(mb.graph.output):
        d0 = v.type.tensor_type.shape.dim[0]
        d0.Clear()
        d0.dim_value = b
    del mb.graph.value_info[:]
    inf = shape_inference.infer_shapes(mb, check_type=True, strict_mode=True, data_prop=True)
    out = inf.graph.output[0].type.tensor_type.shape.dim
    return [d.dim_value if d.HasField("dim_value") else d.dim_param for d in out], inf


def manifest_for(cfg: TMCAConfig, name: str, version: str, description: str,
                 tokenizer: Optional[dict] = None, modalities: Optional[list] = None,
                 guide_forms: Optional[dict] = None) -> dict:
    """The manifest (docs/CONTRACTS.md). Its pre-processing part (image, windows, normalize,
    threshold) is `tmca.preprocess`'s, at the model's input size, so the graph is fed as in training.
    `tokenizer` ({"lower_case", "strip_accents"}), `modalities` and `guide_forms` default to the
    phantom model's (lower-cased, accents stripped; CR, DX, CT)."""
    s, L = cfg.image_size, cfg.max_length
    pre = manifest_at(s)
    tok = {"lower_case": True, "strip_accents": True, **(tokenizer or {})}
    guide = copy.deepcopy(GUIDE)
    if guide_forms is not None:
        guide["forms"] = dict(guide_forms)
    return {
        "name": name,
        "version": version,
        "description": description,
        "onnx": "model.onnx",
        "inputs": [
            {"name": "image", "dtype": "float32", "shape": [-1, 1, s, s]},
            {"name": "input_ids", "dtype": "int64", "shape": [-1, L]},
            {"name": "attention_mask", "dtype": "int64", "shape": [-1, L]},
        ],
        "outputs": [{"name": "prob", "dtype": "float32", "shape": [-1, 1, s, s]}],
        "image": pre["image"],
        "windows": pre["windows"],
        "normalize": pre["normalize"],
        "tokenizer": {"vocab": "vocab.txt", "max_length": L, "lower_case": bool(tok["lower_case"]),
                      "strip_accents": bool(tok["strip_accents"])},
        "threshold": pre["threshold"],
        "text_required": bool(cfg.use_text),
        "modalities": list(modalities) if modalities else ["CR", "DX", "CT"],
        "segments": SEGMENTS,
        "guide": guide,
        "reference": "reference/reference.json",
    }


def write_reference(model: TMCA, out_dir: Path, data: Dict[str, np.ndarray], batch: int = 8) -> dict:
    ref = out_dir / "reference"
    ref.mkdir(parents=True, exist_ok=True)
    img = np.ascontiguousarray(data["image"][:batch], dtype="<f4")
    ids = np.ascontiguousarray(data["input_ids"][:batch], dtype="<i8")
    am = np.ascontiguousarray(data["attention_mask"][:batch], dtype="<i8")
    model.eval()
    with torch.no_grad():
        prob = model(torch.from_numpy(img.astype(np.float32)), torch.from_numpy(ids.astype(np.int64)),
                     torch.from_numpy(am.astype(np.int64))).numpy().astype("<f4")
    img.tofile(ref / "image.f32")
    ids.tofile(ref / "input_ids.i64")
    am.tofile(ref / "attention_mask.i64")
    prob.tofile(ref / "prob.f32")
    s = model.cfg.image_size
    meta = {"batch": int(img.shape[0]), "height": s, "width": s, "max_length": int(ids.shape[1]),
            "image": "image.f32", "input_ids": "input_ids.i64", "attention_mask": "attention_mask.i64",
            "prob": "prob.f32"}
    if "report" in data:
        meta["reports"] = [str(r) for r in data["report"][:batch]]
    (ref / "reference.json").write_text(json.dumps(meta, indent=1) + "\n")
    return meta


DATA_NAMES = {"qata": "QaTa-COV19", "mosmed": "MosMedData+", "phantom": "the synthetic phantom benchmark"}
NOT_STATED = "NOT STATED: pass {flag} to tmca.export"


def reference_from_dataset(root: str, kind: str, cfg: TMCAConfig, tokens: list, tok_flags: dict,
                           n: int = 8) -> Dict[str, np.ndarray]:
    """The first `n` test cases of a data set folder (at least 2: the trace batch) as reference arrays."""
    from .real_data import split_dataset, tokenizer_of
    ds = split_dataset(root, "test", cfg.image_size, cfg.max_length, tokenizer_of(tokens, **tok_flags), kind)
    items = [ds[i % len(ds)] for i in range(max(2, min(n, len(ds))))]
    return {"image": np.stack([it["image"] for it in items]), "input_ids": np.stack([it["input_ids"] for it in items]),
            "attention_mask": np.stack([it["attention_mask"] for it in items]),
            "report": np.array([it["text"] for it in items])}


def model_card(name: str, version: str, cfg: TMCAConfig, ck: dict, params: int, licence: Optional[str],
               intended_use: Optional[str], metrics: Optional[dict], modalities: list) -> str:
    """MODEL_CARD.md of an exported run: what it is, how it was trained, on what, and its metrics."""
    args = ck.get("args", {})
    data = (ck.get("data") or {}).get("kind") or args.get("data", "phantom")
    init = ck.get("init", {})
    img = init.get("image")
    txt = init.get("text")
    lines = [
        f"# {name} — model card (version {version})", "",
        "TMCA (language-guided segmentation with Target-informed Multi-level Contrastive Alignments, "
        "arXiv 2412.13533, as read in `tmca/README.md`), exported by `tmca.export` from a `tmca.train` run.", "",
        f"**Intended use:** {intended_use or NOT_STATED.format(flag='--intended-use')}", "",
        "## Training", "",
        "| | |", "|---|---|",
        f"| data | {DATA_NAMES.get(data, data)} (`--data {data}`), train split; licence: "
        f"{licence or NOT_STATED.format(flag='--data-licence')} |",
        f"| config | preset `{args.get('preset', '?')}`: image {cfg.image_size}x{cfg.image_size}, ConvNeXt widths "
        f"{'/'.join(map(str, cfg.widths))}, depths {'/'.join(map(str, cfg.depths))}; text width {cfg.text_width}, "
        f"{cfg.text_layers} layers, {cfg.text_heads} heads, {'pre' if cfg.text_norm_first else 'post (BERT)'}-norm, "
        f"vocab {cfg.vocab_size}, {cfg.max_length} tokens; {params / 1e6:.1f} M parameters in the exported graph |",
        f"| image encoder init | " + (f"ImageNet ConvNeXt weights ({img['layout']} layout, {img['loaded']} tensors; "
                                      f"unused: {', '.join(img['unused']) or 'none'})" if img else "random") + " |",
        f"| text encoder init | " + (f"BERT checkpoint ({txt['layout']}, {txt['loaded']} tensors; its vocab.txt)"
                                     if txt else "random") + " |",
        f"| optimisation | AdamW lr {args.get('lr')}, weight decay {args.get('weight_decay')}, warm-up {args.get('warmup')} "
        f"then cosine; batch {args.get('batch_size')}; {ck.get('step')} steps; AMP {bool(args.get('amp'))}; "
        f"device {args.get('device', 'cpu')}; seed {args.get('seed')}; {float(ck.get('train_seconds', 0)):.0f} s |",
        "", "## Input and output", "",
        f"Modalities: {', '.join(modalities)}. Pre-processing as in `docs/CONTRACTS.md` (window, MONOCHROME1 "
        f"inversion, bilinear resize to {cfg.image_size}x{cfg.image_size}, normalise with mean "
        f"{DEFAULT_MANIFEST['normalize']['mean']} / std {DEFAULT_MANIFEST['normalize']['std']}); "
        f"the guide text tokenized with `vocab.txt`. Output: `prob`, thresholded at "
        f"{DEFAULT_MANIFEST['threshold']} by tmcad.", "",
        "## Test metrics", "",
    ]
    if metrics:
        lines += ["| split | n | Dice (per image, LViT) | mIoU | Dice (dataset, GuideDecoder) |", "|---|---|---|---|---|",
                  f"| {metrics.get('split', 'test')} | {metrics.get('n')} | {metrics['dice_mean']:.4f} | "
                  f"{metrics['miou_mean']:.4f} | {metrics['dataset_dice']:.4f} |", ""]
    else:
        lines += ["No test metrics were given (run `tmca.eval`, pass `--metrics`).", ""]
    lines += ["## Limitations", "",
              "Trained and measured on one public data set; not validated on this institution's images "
              "or for clinical use. The guide-text form tmcad renders must match the training "
              "annotations' form (`guide` in manifest.json).", ""]
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="tmca.export", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", help="a tmca.train checkpoint")
    p.add_argument("--preset", default="compact", help="with --random-init: the preset to build")
    p.add_argument("--random-init", action="store_true", help="export an untrained model of --preset (size check)")
    p.add_argument("--out", required=True, help="model folder, e.g. models/tmca-cxr-compact")
    p.add_argument("--name", default=None, help="manifest name (default tmca-cxr-compact, or tmca-<data>-<preset>)")
    p.add_argument("--version", default=VERSION)
    p.add_argument("--description", default=None)
    p.add_argument("--vocab", default="models/tmca-cxr-compact/vocab.txt",
                   help="the vocab of a checkpoint that does not carry its own")
    p.add_argument("--data-root", default=None, help="reference cases from this folder's test split "
                   "(default: the run's --data-root)")
    p.add_argument("--data-licence", default=None, help="the training data's licence, for MODEL_CARD.md")
    p.add_argument("--intended-use", default=None, help="intended use statement, for MODEL_CARD.md")
    p.add_argument("--metrics", default=None, help="tmca.eval JSON (default: test_metrics.json beside the checkpoint)")
    p.add_argument("--model-card", action="store_true", help="write MODEL_CARD.md for a phantom run too")
    p.add_argument("--no-reference", action="store_true", help="skip reference/ (and manifest.json)")
    p.add_argument("--threads", type=int, default=2)
    a = p.parse_args(argv)
    torch.set_num_threads(a.threads)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    ck: dict = {}
    if a.random_init:
        torch.manual_seed(0)
        model = TMCA(build_config(a.preset))
    else:
        if not a.checkpoint:
            p.error("--checkpoint is required (or --random-init)")
        from .eval import load_run
        model, ck = load_run(a.checkpoint)
    model.eval()
    cfg = model.cfg
    args = ck.get("args", {})
    kind = (ck.get("data") or {}).get("kind") or args.get("data", "phantom")
    real = kind in ("qata", "mosmed")
    tok_flags = ck.get("tokenizer", {"lower_case": True, "strip_accents": True})
    vocab_path = Path(a.vocab)
    if ck.get("vocab"):
        # the run's own vocab (e.g. CXR-BERT's) is the folder's vocab
        vocab_path = out / "vocab.txt"
        vocab_path.write_text("\n".join(ck["vocab"]) + "\n", encoding="utf-8")
    elif real:
        p.error("this checkpoint carries no vocab")
    modalities, forms = None, None
    if real:
        from .real_data import FORMS
        forms = FORMS[kind]
        modalities = list(forms)
    name = a.name or ("tmca-cxr-compact" if not real else f"tmca-{kind}-{args.get('preset', 'paper')}")
    description = a.description or ("TMCA compact, trained on synthetic phantoms; not for clinical use" if not real else
                                    f"TMCA {args.get('preset', '')}, trained on {DATA_NAMES[kind]}; see MODEL_CARD.md")
    data = None
    if not a.no_reference:
        root = a.data_root or (ck.get("data") or {}).get("root")
        if real and root and Path(root).is_dir():
            data = reference_from_dataset(root, kind, cfg, ck["vocab"], tok_flags)
        else:
            from .data_source import load_split
            data = load_split("test", 8, "cxr", cfg.image_size, str(vocab_path), cfg.max_length)
        ex = (torch.from_numpy(data["image"][:2]), torch.from_numpy(data["input_ids"][:2]),
              torch.from_numpy(data["attention_mask"][:2]))
    else:
        ex = None
    onnx_path = out / "model.onnx"
    export_onnx(model, onnx_path, ex)
    shapes = verify_onnx(onnx_path, cfg)
    params = count_parameters(model, inference_only=True)
    info = {"onnx": str(onnx_path), "bytes": onnx_path.stat().st_size,
            "params": params, "seconds": round(time.time() - t0, 1),
            "verified_batches": shapes, "io": graph_io(onnx_path)}
    if data is not None:
        write_reference(model, out, data)
        if a.checkpoint and Path(a.checkpoint).resolve() != (out / "checkpoint.pt").resolve():
            # the PyTorch weights beside the graph: `tmca.eval` runs them (the Go end-to-end test
            # compares its Dice with the engine's), and the graph can be re-exported from them
            import shutil
            shutil.copyfile(a.checkpoint, out / "checkpoint.pt")
        man = manifest_for(cfg, name, a.version, description, tok_flags, modalities, forms)
        (out / "manifest.json").write_text(json.dumps(man, indent=2) + "\n")
        if real or a.model_card:
            metrics = None
            mpath = Path(a.metrics) if a.metrics else (Path(a.checkpoint).parent / "test_metrics.json" if a.checkpoint else None)
            if mpath is not None and mpath.is_file():
                metrics = json.loads(mpath.read_text())
                (out / "metrics.json").write_text(json.dumps(metrics, indent=1) + "\n")
            (out / "MODEL_CARD.md").write_text(model_card(name, a.version, cfg, ck, params, a.data_licence,
                                                          a.intended_use, metrics, man["modalities"]))
            info["model_card"] = str(out / "MODEL_CARD.md")
    print(json.dumps(info, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
