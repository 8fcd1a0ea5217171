"""Metrics conventions, and evaluation on a tmca.dicom_writer folder with the Go-side processing."""
import json

import numpy as np
import torch

from tmca.config import build_config
from tmca.eval import dice_iou, evaluate_dicom_folder, summarize
from tmca.model import TMCA
from tmca.preprocess import DEFAULT_MANIFEST

torch.set_num_threads(2)
VOCAB = "models/tmca-cxr-compact/vocab.txt"


def test_dice_iou_conventions():
    gt = np.zeros((3, 4, 4), bool)
    pred = np.zeros((3, 4, 4), bool)
    gt[0, :2] = True; pred[0, :1] = True          # dice 2*4/(4+8) = 2/3, iou 4/8
    gt[1, :2] = True                              # missed entirely: 0, 0
    # case 2: both empty -> 1, 1
    d, i, tp, ps, gs = dice_iou(pred, gt)
    assert np.allclose(d, [2 / 3, 0, 1]) and np.allclose(i, [0.5, 0, 1])
    s = summarize(d, i, tp, ps, gs)
    assert abs(s["dataset_dice"] - 2 * 4 / (4 + 16)) < 1e-9 and abs(s["dice_mean"] - (2 / 3 + 1) / 3) < 1e-9


def test_evaluate_dicom_folder(tmp_path):
    from tmca.dicom_writer import write_studies
    write_studies(tmp_path, seed=5, n_cr=1, n_ct=1, ct_slices=3, size=64, ct_size=48)
    n_vocab = sum(1 for _ in open(VOCAB, encoding="utf-8"))
    cfg = build_config("compact", image_size=32, widths=(8, 16, 16, 32), depths=(1, 1, 1, 1), vocab_size=n_vocab,
                       text_width=32, text_heads=2, decoder_widths=(8, 16, 16, 32), head_width=8, attn_heads=2,
                       embed_dim=16)
    torch.manual_seed(0)
    model = TMCA(cfg).eval()
    manifest = json.loads(json.dumps(DEFAULT_MANIFEST))
    manifest["image"].update(height=32, width=32)
    manifest["tokenizer"] = {"max_length": 24}
    res = evaluate_dicom_folder(model, str(tmp_path), manifest, VOCAB)
    assert res["n"] == 4 and set(res["per_modality"]) == {"CR", "CT"}
    assert all(0 <= f["dice"] <= 1 for f in res["frames"])
    assert 0 <= res["dice_mean"] <= 1
