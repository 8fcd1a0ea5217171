"""The paper's recipe end to end on a tiny QaTa-COV19-layout folder: pretrained-encoder init,
training on CPU, resumption, evaluation in both Dice conventions, export to a complete model folder."""
import json
from pathlib import Path

import numpy as np
import onnx
import torch
from PIL import Image

from tmca import eval as tmca_eval
from tmca import export as tmca_export
from tmca import train as tmca_train
from tmca.hf_folder import write_safetensors
from tmca.tokenizer import load_vocab

VOCAB = Path(__file__).resolve().parents[2] / "models/tmca-cxr-compact/vocab.txt"
TINY = ["--image-size", "32", "--set", "widths=8,16,16,32", "--set", "depths=1,1,1,1",
        "--set", "decoder_widths=8,16,16,32", "--set", "head_width=8", "--set", "attn_heads=2",
        "--set", "embed_dim=16"]
TEXTS = ["Bilateral pulmonary infection, two infected areas, lower left lung and lower right lung.",
         "Unilateral pulmonary infection, one infected area, upper right lung.",
         "Bilateral pulmonary infection, three infected areas, all left lung and middle right lung.",
         "Unilateral pulmonary infection, one infected area, lower left lung."]


def write_qata(root: Path, n_train: int = 6, n_val: int = 2, n_test: int = 3) -> None:
    """A tiny folder in LViT's QaTa-COV19 layout, annotations as GuideDecoder CSVs."""
    rng = np.random.default_rng(0)
    for split, folder, n in (("train", "Train_Folder", n_train), ("val", "Val_Folder", n_val), ("test", "Test_Folder", n_test)):
        rows = ["Image,Description"]
        for i in range(n):
            name = f"covid_{split}_{i}"
            img = rng.integers(0, 120, (40, 40)).astype(np.uint8)
            mask = np.zeros((40, 40), np.uint8)
            r, c = rng.integers(4, 24, 2)
            mask[r:r + 12, c:c + 10] = 255
            img[mask > 0] += 100
            (root / folder / "img").mkdir(parents=True, exist_ok=True)
            (root / folder / "labelcol").mkdir(parents=True, exist_ok=True)
            Image.fromarray(img).save(root / folder / "img" / f"{name}.png")
            Image.fromarray(mask).save(root / folder / "labelcol" / f"mask_{name}.png")
            rows.append(f'{name}.png,"{TEXTS[i % len(TEXTS)]}"')
        (root / f"{split}_annotations.csv").write_text("\n".join(rows) + "\n")


def write_bert(folder: Path, d: int = 32, layers: int = 2, heads: int = 4) -> int:
    """A tiny BERT folder (BertForMaskedLM names, safetensors) whose vocab is the compact model's."""
    folder.mkdir()
    tokens = (VOCAB.read_text(encoding="utf-8")).splitlines()
    n = len(tokens)
    g = torch.Generator().manual_seed(0)
    r = lambda *s: 0.1 * torch.randn(*s, generator=g)  # noqa: E731
    sd = {"bert.embeddings.word_embeddings.weight": r(n, d), "bert.embeddings.position_embeddings.weight": r(64, d),
          "bert.embeddings.token_type_embeddings.weight": r(2, d), "bert.embeddings.LayerNorm.weight": 1 + r(d),
          "bert.embeddings.LayerNorm.bias": r(d), "cls.predictions.bias": r(n)}
    for i in range(layers):
        p = f"bert.encoder.layer.{i}."
        for name, shape in (("attention.self.query", (d, d)), ("attention.self.key", (d, d)), ("attention.self.value", (d, d)),
                            ("attention.output.dense", (d, d)), ("intermediate.dense", (4 * d, d)), ("output.dense", (d, 4 * d))):
            sd[p + name + ".weight"], sd[p + name + ".bias"] = r(*shape), r(shape[0])
        for name in ("attention.output.LayerNorm", "output.LayerNorm"):
            sd[p + name + ".weight"], sd[p + name + ".bias"] = 1 + r(d), r(d)
    write_safetensors(folder / "model.safetensors", sd)
    (folder / "vocab.txt").write_text("\n".join(tokens) + "\n", encoding="utf-8")
    (folder / "config.json").write_text(json.dumps({
        "model_type": "bert", "hidden_size": d, "num_hidden_layers": layers, "num_attention_heads": heads,
        "intermediate_size": 4 * d, "hidden_act": "gelu", "max_position_embeddings": 64, "type_vocab_size": 2,
        "vocab_size": n, "layer_norm_eps": 1e-12}))
    return n


def write_convnext(path: Path, widths=(8, 16, 16, 32)) -> None:
    """A tiny ConvNeXt in timm's names (depth 1 per stage) with an ImageNet head."""
    g = torch.Generator().manual_seed(1)
    r = lambda *s: 0.1 * torch.randn(*s, generator=g)  # noqa: E731
    sd = {"stem.0.weight": r(widths[0], 3, 4, 4), "stem.0.bias": r(widths[0]), "stem.1.weight": 1 + r(widths[0]),
          "stem.1.bias": r(widths[0]), "head.fc.weight": r(5, widths[3]), "head.fc.bias": r(5)}
    for i, c in enumerate(widths):
        if i:
            sd[f"stages.{i}.downsample.0.weight"], sd[f"stages.{i}.downsample.0.bias"] = 1 + r(widths[i - 1]), r(widths[i - 1])
            sd[f"stages.{i}.downsample.1.weight"], sd[f"stages.{i}.downsample.1.bias"] = r(c, widths[i - 1], 2, 2), r(c)
        b = f"stages.{i}.blocks.0."
        sd.update({b + "conv_dw.weight": r(c, 1, 7, 7), b + "conv_dw.bias": r(c), b + "norm.weight": 1 + r(c),
                   b + "norm.bias": r(c), b + "mlp.fc1.weight": r(4 * c, c), b + "mlp.fc1.bias": r(4 * c),
                   b + "mlp.fc2.weight": r(c, 4 * c), b + "mlp.fc2.bias": r(c), b + "gamma": 0.5 + r(c)})
    torch.save({"state_dict": sd}, path)


def test_train_resume_eval_export(tmp_path, capsys):
    torch.set_num_threads(2)
    data = tmp_path / "QaTa-COV19"
    write_qata(data)
    n_vocab = write_bert(tmp_path / "bert")
    write_convnext(tmp_path / "convnext.pth")
    common = ["--preset", "paper", "--data", "qata", "--data-root", str(data), "--init-image", str(tmp_path / "convnext.pth"),
              "--init-text", str(tmp_path / "bert"), "--batch-size", "2", "--warmup", "1", "--lr", "1e-3",
              "--log-every", "1", "--threads", "2", *TINY]

    # 4 steps in one go, and 2 + 2 with --resume: the same weights
    full = tmp_path / "full"
    assert tmca_train.main([*common, "--steps", "4", "--out", str(full), "--no-eval"]) == 0
    part = tmp_path / "part"
    assert tmca_train.main([*common, "--steps", "2", "--out", str(part), "--no-eval"]) == 0
    assert torch.load(part / "train_state.pt")["step"] == 2
    assert tmca_train.main([*common, "--steps", "4", "--out", str(part), "--resume", "--val-every", "2"]) == 0
    a, b = torch.load(full / "checkpoint.pt"), torch.load(part / "checkpoint.pt")
    assert a["step"] == b["step"] == 4
    diff = max(float((a["state_dict"][k].float() - b["state_dict"][k].float()).abs().max()) for k in a["state_dict"])
    with capsys.disabled():
        print(f"\nresumed vs uninterrupted: max abs weight difference {diff:.2e}")
    assert diff < 1e-6
    steps = [json.loads(l).get("step") for l in (part / "train_log.jsonl").read_text().splitlines()]
    assert steps[:2] == [0, 1] and 2 in steps and 3 in steps  # the log continues at step 2
    # the run's config came from the BERT folder, its vocab is the BERT vocab, and the encoders were loaded
    assert a["config"]["text_norm_first"] is False and a["config"]["vocab_size"] == n_vocab
    assert a["vocab"] == VOCAB.read_text(encoding="utf-8").splitlines()
    assert a["init"]["image"]["layout"] == "timm" and a["init"]["image"]["unused"] == ["head.fc.bias", "head.fc.weight"]
    assert a["init"]["text"]["unused"] == ["cls.predictions.bias"]
    assert (part / "best.pt").is_file()

    # test metrics: both Dice conventions, from train's final evaluation and from tmca.eval
    m = json.loads((part / "test_metrics.json").read_text())
    assert m["n"] == 3 and {"dice_mean", "miou_mean", "dataset_dice"} <= set(m)
    capsys.readouterr()
    assert tmca_eval.main(["--checkpoint", str(part / "checkpoint.pt"), "--data", "qata", "--data-root", str(data),
                           "--split", "test", "--out", str(tmp_path / "eval.json")]) == 0
    e = json.loads((tmp_path / "eval.json").read_text())
    assert e["n"] == 3 and abs(e["dice_mean"] - m["dice_mean"]) < 1e-9 and abs(e["dataset_dice"] - m["dataset_dice"]) < 1e-9

    # export: a complete model folder
    out = tmp_path / "model"
    assert tmca_export.main(["--checkpoint", str(part / "checkpoint.pt"), "--out", str(out),
                             "--data-licence", "CC BY 4.0 (test)", "--intended-use", "research on test data"]) == 0
    for f in ("model.onnx", "manifest.json", "vocab.txt", "MODEL_CARD.md", "metrics.json", "checkpoint.pt",
              "reference/reference.json", "reference/prob.f32"):
        assert (out / f).is_file(), f
    onnx.checker.check_model(onnx.load(str(out / "model.onnx")), full_check=True)
    man = json.loads((out / "manifest.json").read_text())
    assert man["name"] == "tmca-qata-paper" and man["modalities"] == ["CR", "DX"]
    assert man["guide"] == {"forms": {"CR": "qata-cov19", "DX": "qata-cov19"}, "max_zones": 3}
    assert man["tokenizer"] == {"vocab": "vocab.txt", "max_length": 24, "lower_case": True, "strip_accents": True}
    assert man["inputs"][0]["shape"] == [-1, 1, 32, 32] and man["text_required"] is True
    assert load_vocab(out / "vocab.txt") == load_vocab(VOCAB)
    ref = json.loads((out / "reference/reference.json").read_text())
    assert ref["batch"] == 3 and ref["reports"][1] == TEXTS[1]
    card = (out / "MODEL_CARD.md").read_text()
    assert "CC BY 4.0 (test)" in card and "research on test data" in card and "QaTa-COV19" in card
    assert "NOT STATED" not in card and f"{m['dice_mean']:.4f}" in card


def test_amp_flag_on_cpu_runs_float32(tmp_path, capsys):
    """--amp is the CUDA path (float16 autocast + GradScaler); on CPU the run says so and trains in float32."""
    torch.set_num_threads(2)
    data = tmp_path / "q"
    write_qata(data, 4, 0, 1)
    out = tmp_path / "run"
    assert tmca_train.main(["--preset", "compact", "--data", "qata", "--data-root", str(data), "--vocab", str(VOCAB),
                            "--steps", "2", "--batch-size", "2", "--amp", "--warmup", "1", "--threads", "2",
                            "--out", str(out), *TINY]) == 0
    assert "--amp applies on CUDA only" in capsys.readouterr().out
    log = [json.loads(l) for l in (out / "train_log.jsonl").read_text().splitlines()]
    assert all(np.isfinite(r["total"]) for r in log)
    ck = torch.load(out / "checkpoint.pt")
    assert ck["config"]["text_norm_first"] is True and ck["init"] == {}
