"""Evaluate a TMCA checkpoint.

    /usr/bin/python3 -m tmca.eval --checkpoint runs/full-s0/checkpoint.pt --split test
    /usr/bin/python3 -m tmca.eval --checkpoint runs/full-s0/checkpoint.pt --split test --text canonical
    /usr/bin/python3 -m tmca.eval --dicom-folder DIR     # the shipped model (models/tmca-cxr-compact/checkpoint.pt)

Metrics at threshold 0.5:
* `dice_mean`, `miou_mean`: Dice and foreground IoU per image, averaged over images (the LViT
  convention; an image where truth and prediction are both empty counts 1).
* `dataset_dice`: 2·ΣTP / (ΣP + ΣG) over all pixels of the split (the GuideDecoder convention).

`--text report` (default) feeds each case its report as written; `--text canonical` feeds the
canonical guide text of the case's truth instead (`report_text.guide_text` of the target zones,
`report_text.ct_guide_text` of the side and category), which is what tmcad's report normaliser
renders for the model.

`--dicom-folder` reads a folder written by `tmca.dicom_writer` (cases.json, DICOM, truth PNGs) and
runs the exact pre/post-processing of `tmca.preprocess` (the one the Go engine implements): each
frame is windowed, resized and normalised, the report tokenized, the prob map resized back to the
frame's rows x cols, then thresholded; Dice per frame against truth/<SOPInstanceUID>.png.
Prints JSON.

`--data qata|mosmed --data-root DIR` evaluates a split (default test) of a public data set folder
(`tmca.datasets` layout) with the checkpoint's own vocab and tokenizer flags, on `--device`, and
reports both conventions above at the model's input size (masks resized like predictions,
bilinear then >= 0.5).
"""
from __future__ import annotations

import argparse
import contextlib
import json
import sys
from pathlib import Path
from typing import Dict, List

import numpy as np
import torch

from .config import TMCAConfig
from .model import TMCA


def dice_iou(pred: np.ndarray, gt: np.ndarray):
    """Per-image Dice and IoU of boolean arrays [N, ...]; both empty -> 1."""
    p = pred.reshape(pred.shape[0], -1).astype(bool)
    g = gt.reshape(gt.shape[0], -1).astype(bool)
    tp = (p & g).sum(1).astype(np.float64)
    ps, gs = p.sum(1).astype(np.float64), g.sum(1).astype(np.float64)
    union = ps + gs - tp
    empty = (ps + gs) == 0
    dice = np.where(empty, 1.0, 2 * tp / np.maximum(ps + gs, 1))
    iou = np.where(empty, 1.0, tp / np.maximum(union, 1))
    return dice, iou, tp.sum(), ps.sum(), gs.sum()


def summarize(dice: np.ndarray, iou: np.ndarray, tp: float, ps: float, gs: float) -> Dict[str, float]:
    return {"n": int(len(dice)), "dice_mean": float(dice.mean()), "dice_std": float(dice.std()),
            "miou_mean": float(iou.mean()), "miou_std": float(iou.std()),
            "dataset_dice": float(2 * tp / max(ps + gs, 1.0)), "threshold": 0.5}


@torch.no_grad()
def predict(model: TMCA, images, input_ids, attention_mask, batch: int = 32) -> np.ndarray:
    model.eval()
    out = []
    for i in range(0, len(images), batch):
        out.append(model(torch.as_tensor(images[i:i + batch]), torch.as_tensor(input_ids[i:i + batch]),
                         torch.as_tensor(attention_mask[i:i + batch])).numpy())
    return np.concatenate(out, 0)


def evaluate_arrays(model: TMCA, data: Dict[str, np.ndarray], threshold: float = 0.5) -> Dict[str, float]:
    prob = predict(model, data["image"], data["input_ids"], data["attention_mask"])
    dice, iou, tp, ps, gs = dice_iou(prob >= threshold, data["mask"] >= 0.5)
    return summarize(dice, iou, tp, ps, gs)


TEXTS = ("report", "canonical")


def evaluate_split(model: TMCA, cfg: TMCAConfig, split: str, n: int, family: str, vocab: str,
                   text: str = "report") -> Dict[str, float]:
    """Metrics on the first `n` cases of a phantom split, fed their reports or canonical texts."""
    from .data_source import load_split, split_texts, with_texts
    if text not in TEXTS:
        raise ValueError(f"text must be one of {TEXTS}, got {text!r}")
    data = load_split(split, n, family, cfg.image_size, vocab, cfg.max_length)
    if text == "canonical":
        data = with_texts(data, split_texts(split, n, family, "canonical"), vocab, cfg.max_length)
    res = evaluate_arrays(model, data)
    res.update({"split": split, "family": family, "text": text})
    return res


def load_checkpoint(path: str) -> TMCA:
    return load_run(path)[0]


def load_run(path: str):
    """(model in eval mode, the checkpoint dict) of a tmca.train checkpoint."""
    ck = torch.load(path, map_location="cpu")
    cfg = TMCAConfig.from_dict(ck["config"])
    model = TMCA(cfg)
    model.load_state_dict(ck["state_dict"])
    model.eval()
    return model, ck


@torch.no_grad()
def evaluate_dataset(model: TMCA, ds, device="cpu", batch: int = 32, amp: bool = False,
                     workers: int = 0, threshold: float = 0.5) -> Dict[str, float]:
    """Both Dice conventions over a `datasets.TextSegDataset`, accumulated batch by batch."""
    from .real_data import eval_loader
    device = torch.device(device)
    model.eval()
    dices, ious = [], []
    TP = PS = GS = 0.0
    amp = amp and device.type == "cuda"  # float16 autocast on the GPU only (see tmca.train --amp)
    for b in eval_loader(ds, batch, workers, pin=device.type == "cuda"):
        with (torch.autocast(device_type="cuda", dtype=torch.float16) if amp else contextlib.nullcontext()):
            prob = model(b["image"].to(device), b["input_ids"].to(device), b["attention_mask"].to(device))
        d, i, tp, ps, gs = dice_iou(prob.float().cpu().numpy() >= threshold, b["mask"].numpy() >= 0.5)
        dices.append(d); ious.append(i)
        TP += tp; PS += ps; GS += gs
    return summarize(np.concatenate(dices), np.concatenate(ious), TP, PS, GS)


def canonical_text_of(phantom: dict) -> str:
    """The canonical guide text of a `tmca.dicom_writer` cases.json entry's phantom truth."""
    from .report_text import ct_category, ct_guide_text, guide_text
    if phantom.get("family") == "ct":
        return ct_guide_text(phantom["side"], ct_category(float(phantom["involvement"]))[0])
    return guide_text([tuple(z) for z in phantom["target_zones"]])


def evaluate_dicom_folder(model: TMCA, folder: str, manifest: dict, vocab: str, text: str = "report") -> Dict[str, object]:
    from .dicom_eval import iter_dicom_frames
    from .preprocess import prob_to_mask, prepare_frame
    from .tokenizer import WordPieceTokenizer

    tok = WordPieceTokenizer.from_vocab(vocab)
    L = int(manifest["tokenizer"]["max_length"])
    thr = float(manifest.get("threshold", 0.5))
    rows_out: List[dict] = []
    dices, ious = [], []
    TP = PS = GS = 0.0
    for fr in iter_dicom_frames(folder):
        z = prepare_frame(fr["raw"], fr["slope"], fr["intercept"], fr["modality"], fr["photometric"], manifest)
        if text == "canonical":
            if not fr.get("phantom"):
                raise ValueError(f"--text canonical needs the phantom truth of cases.json ({fr['file']})")
            guide = canonical_text_of(fr["phantom"])
        else:
            guide = fr["report"]
        ids, am = tok.encode_batch([guide], max_length=L)
        with torch.no_grad():
            prob = model(torch.from_numpy(z)[None, None], torch.as_tensor(ids), torch.as_tensor(am))[0, 0].numpy()
        _, mask = prob_to_mask(prob, fr["rows"], fr["cols"], thr)
        d, i, tp, ps, gs = dice_iou(mask[None] > 0, fr["truth"][None] > 0)
        dices.append(float(d[0])); ious.append(float(i[0]))
        TP += tp; PS += ps; GS += gs
        rows_out.append({"sop_instance_uid": fr["sop_instance_uid"], "modality": fr["modality"],
                         "dice": float(d[0]), "foreground": int(mask.sum())})
    res = summarize(np.array(dices), np.array(ious), TP, PS, GS)
    res.update({"folder": str(folder), "threshold": thr, "text": text, "frames": rows_out,
                "per_modality": {m: float(np.mean([r["dice"] for r in rows_out if r["modality"] == m]))
                                 for m in sorted({r["modality"] for r in rows_out})}})
    return res


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="tmca.eval", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", default="models/tmca-cxr-compact/checkpoint.pt",
                   help="a tmca.train checkpoint (default: the shipped model's)")
    p.add_argument("--split", default="test")
    p.add_argument("--n", type=int, default=300, help="cases in the split")
    p.add_argument("--family", default=None,
                   help="phantom family: cxr, ct, appearance-cxr, appearance-ct (default: the one trained on, else cxr)")
    p.add_argument("--text", default="report", choices=TEXTS,
                   help="what each case is fed: its report, or the canonical guide text of its truth")
    p.add_argument("--dicom-folder", default=None, help="evaluate a tmca.dicom_writer folder instead of a split")
    p.add_argument("--manifest", default="models/tmca-cxr-compact/manifest.json")
    p.add_argument("--vocab", default="models/tmca-cxr-compact/vocab.txt")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--per-frame", action="store_true", help="include each frame's Dice in the JSON (dicom-folder)")
    p.add_argument("--data", default="phantom", choices=["phantom", "qata", "mosmed"])
    p.add_argument("--data-root", default=None, help="QaTa-COV19 / MosMedData+ folder (--data qata|mosmed)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--amp", action="store_true")
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--workers", type=int, default=0)
    p.add_argument("--out", default=None, help="also write the JSON here")
    a = p.parse_args(argv)
    torch.set_num_threads(a.threads)
    model, ck = load_run(a.checkpoint)
    if a.data != "phantom":
        from .real_data import read_vocab_tokens, split_dataset, tokenizer_of
        if not a.data_root:
            p.error("--data qata|mosmed needs --data-root")
        tokens = ck.get("vocab") or read_vocab_tokens(a.vocab)
        tok = tokenizer_of(tokens, **ck.get("tokenizer", {}))
        ds = split_dataset(a.data_root, a.split, model.cfg.image_size, model.cfg.max_length, tok, a.data)
        res = evaluate_dataset(model.to(a.device), ds, a.device, a.batch, a.amp, a.workers)
        res.update({"split": a.split, "data": a.data, "checkpoint": str(a.checkpoint), "step": ck.get("step")})
    elif a.dicom_folder:
        mpath = Path(a.manifest)
        if mpath.exists():
            manifest = json.loads(mpath.read_text())
        else:
            from .preprocess import manifest_at
            manifest = dict(manifest_at(model.cfg.image_size), tokenizer={"max_length": model.cfg.max_length})
        res = evaluate_dicom_folder(model, a.dicom_folder, manifest, a.vocab, a.text)
        if not a.per_frame:
            res.pop("frames")
    else:
        fam = a.family
        if fam is None:
            fam = torch.load(a.checkpoint, map_location="cpu").get("args", {}).get("family", "cxr")
            fam = {"mix": "cxr", "appearance": "appearance-cxr"}.get(fam, fam)
        vocab = a.vocab
        if fam.startswith("appearance") and ck.get("vocab"):
            # an appearance run's vocab extends the shipped one (phantoms_appearance.appearance_vocab)
            import tempfile
            vocab = str(Path(tempfile.mkdtemp(prefix="tmca-eval-")) / "vocab.txt")
            Path(vocab).write_text("\n".join(ck["vocab"]) + "\n", encoding="utf-8")
        res = evaluate_split(model, model.cfg, a.split, a.n, fam, vocab, a.text)
    print(json.dumps(res, indent=1))
    if a.out:
        Path(a.out).write_text(json.dumps(res, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
