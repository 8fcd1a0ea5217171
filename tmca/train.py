"""Train TMCA on the phantom benchmark (or anything `tmca.data_source` can load).

    /usr/bin/python3 -m tmca.train --preset compact --variant full --seed 0 --steps 600 --family mix --out runs/full-s0

Switches for the ablations (equivalent to --variant; the table is tmca.config.ABLATIONS): --no-tsd,
--align-levels 4, --no-lte, --no-text, --no-align. --variant also takes names joined by '+'
(no-tsd+no-lte); the switches win over --variant where both set one field.
Writes DIR/checkpoint.pt (config, weights, args), DIR/train_log.jsonl (one line per logged step)
and, unless --no-eval, DIR/test_metrics.json (the test split, see tmca.eval; with --family mix also
test_metrics_ct.json; each also as *_canonical.json, fed the canonical guide texts).
Reproducible by seed on one thread: the data, the initialisation and the batch order all follow --seed.

The paper's set-up (pretrained encoders, a public data set, one GPU):

    /usr/bin/python3 -m tmca.train --preset paper --data qata --data-root QaTa-COV19 \
        --init-image convnext_tiny.pth --init-text CXR-BERT-specialized/ \
        --device cuda --amp --batch-size 32 --lr 3e-4 --steps 20000 --val-every 1000 --out runs/qata

--data qata|mosmed reads the LViT / GuideDecoder layout (`tmca.datasets`): Train_Folder for training,
Val_Folder (if present) for --val-every (DIR/best.pt keeps the best validation Dice), Test_Folder
for the final DIR/test_metrics.json. --init-image loads ImageNet ConvNeXt weights
(`tmca.pretrained_image`), --init-text a local Hugging Face BERT folder (`tmca.pretrained_text`; its
config sets the text encoder's size and its vocab.txt becomes the run's vocab, stored in the
checkpoint). --resume continues DIR/checkpoint.pt + DIR/train_state.pt (optimiser, AMP scaler,
step; the batch order is replayed) up to --steps. --set KEY=VALUE overrides a config field
(e.g. --set widths=8,16,16,32 for a tiny test).
"""
from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import random
import sys
import time
from pathlib import Path

import numpy as np
import torch

from .config import ABLATIONS, VARIANTS, build_config, merge_ablations, variant_name, variant_overrides
from .losses import tmca_loss
from .model import TMCA, count_parameters

DEFAULT_VOCAB = "models/tmca-cxr-compact/vocab.txt"


def parse_args(argv=None):
    p = argparse.ArgumentParser(prog="tmca.train", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--preset", default="compact", choices=["compact", "paper"])
    add_ablation_arguments(p)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--steps", type=int, default=600)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--weight-decay", type=float, default=0.05)
    p.add_argument("--warmup", type=int, default=50)
    p.add_argument("--family", default="mix", help="phantom family: cxr, ct or mix (CXR + 25%% CT slices); appearance (tmca.phantoms_appearance: "
                        "appearance-cxr + 25%% appearance-ct slices), appearance-cxr or appearance-ct")
    p.add_argument("--n-train", type=int, default=4000)
    p.add_argument("--n-test", type=int, default=300)
    p.add_argument("--image-size", type=int, default=None, help="override the preset's input size")
    p.add_argument("--vocab", default=DEFAULT_VOCAB)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--log-every", type=int, default=25)
    p.add_argument("--ckpt-every", type=int, default=300)
    p.add_argument("--no-eval", action="store_true", help="skip the test-split evaluation at the end")
    p.add_argument("--data", default="phantom", choices=["phantom", "qata", "mosmed"],
                   help="phantom benchmark (default) or a public data set folder (--data-root)")
    p.add_argument("--data-root", default=None, help="QaTa-COV19 / MosMedData+ folder in the LViT layout")
    p.add_argument("--init-image", default=None, help="ConvNeXt weights: torchvision, timm or original layout")
    p.add_argument("--image-input-norm", default="imagenet", choices=["imagenet", "sum"],
                   help="how the RGB ImageNet stem becomes tmca's grey stem (tmca.pretrained_image)")
    p.add_argument("--init-text", default=None, help="local Hugging Face BERT folder (config.json, vocab.txt, weights)")
    p.add_argument("--freeze-text", action="store_true", help="keep the text encoder's weights fixed")
    p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1, ...")
    p.add_argument("--amp", action="store_true", help="mixed precision on CUDA: float16 autocast + loss scaling (ignored on CPU)")
    p.add_argument("--workers", type=int, default=0, help="data loader processes (--data qata|mosmed)")
    p.add_argument("--val-every", type=int, default=0, help="validation Dice every N steps; keeps DIR/best.pt")
    p.add_argument("--eval-batch", type=int, default=32)
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a TMCAConfig field (tuples as 8,16,16,32)")
    p.add_argument("--out", required=True)
    return p.parse_args(argv)


def _variant_arg(name: str) -> str:
    """argparse type of --variant: a name `variant_overrides` accepts."""
    try:
        variant_overrides(name)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None
    return name


def _switch_dest(name: str) -> str:
    """The args attribute of a variant's switch: "no-tsd" -> "no_tsd"."""
    return name.replace("-", "_")


def add_ablation_arguments(p: argparse.ArgumentParser) -> None:
    """--variant, one switch per table row that has one, and --align-levels (the valued form)."""
    p.add_argument("--variant", default="full", type=_variant_arg, metavar="|".join(VARIANTS),
                   help="an ablation variant, or several joined by '+' (e.g. no-tsd+no-lte)")
    for ab in ABLATIONS:
        if ab.switch:
            p.add_argument("--" + ab.name, dest=_switch_dest(ab.name), action="store_true", help=ab.help)
    p.add_argument("--align-levels", type=int, nargs="+", default=None,
                   help="levels to align, e.g. 4 (default 1 2 3 4)")


def ablation_flag_overrides(a: argparse.Namespace) -> dict:
    """The config overrides the ablation switches and --align-levels ask for, validated against
    the table (two switches that set one field differently are an error)."""
    parts = [("--" + ab.name, ab.overrides) for ab in ABLATIONS if ab.switch and getattr(a, _switch_dest(ab.name), False)]
    if getattr(a, "align_levels", None):
        parts.append(("--align-levels", {"align_levels": tuple(a.align_levels)}))
    try:
        return merge_ablations(parts)
    except ValueError as e:
        raise SystemExit(f"tmca.train: {e}") from None


def parse_overrides(items) -> dict:
    """["widths=8,16,16,32", "text_layers=1", "use_lte=false"] -> typed config overrides."""
    import dataclasses
    from .config import TMCAConfig
    types = {f.name: f.type for f in dataclasses.fields(TMCAConfig)}
    out = {}
    for it in items:
        k, _, v = it.partition("=")
        if k not in types:
            raise SystemExit(f"--set {it}: unknown config field {k!r}")
        t = str(types[k])

        def one(x):
            if "bool" in t:
                return x.lower() in ("1", "true", "yes")
            return float(x) if ("float" in t or "." in x) else int(x)
        out[k] = tuple(one(x) for x in v.split(",") if x) if "Tuple" in t else one(v)
    return out


def config_from_args(a, vocab_size: int, extra=None):
    """The run's config: the preset, then --variant, then `extra` and --set, then the image size,
    then the ablation switches (each later step wins where two set one field)."""
    over = {"vocab_size": vocab_size, **(extra or {})}
    over.update(parse_overrides(getattr(a, "overrides", [])))
    if a.image_size:
        over["image_size"] = a.image_size
    over.update(ablation_flag_overrides(a))
    return build_config(a.preset, a.variant, **over)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def cosine_lr(step: int, total: int, base: float, warmup: int) -> float:
    if step < warmup:
        return base * (step + 1) / warmup
    t = (step - warmup) / max(1, total - warmup)
    return base * 0.5 * (1.0 + math.cos(math.pi * min(1.0, t)))


def save_checkpoint(path: Path, model, cfg, args, step: int, extra=None) -> None:
    tmp = path.with_suffix(".tmp")
    sd = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    torch.save({"config": cfg.to_dict(), "state_dict": sd, "step": step,
                "args": vars(args), "variant": variant_name(cfg), **(extra or {})}, tmp)
    os.replace(tmp, path)


def save_train_state(path: Path, opt, scaler, step: int, extra=None) -> None:
    """What --resume needs besides the weights: optimiser and AMP scaler state, the step, RNG state."""
    tmp = path.with_suffix(".tmp")
    torch.save({"optimizer": opt.state_dict(), "scaler": scaler.state_dict(), "step": step,
                "torch_rng": torch.get_rng_state(), **(extra or {})}, tmp)
    os.replace(tmp, path)


def _optimizer(model, a):
    decay, no_decay = [], []
    for n, p in model.named_parameters():
        if not p.requires_grad:
            continue
        (no_decay if p.ndim <= 1 or n.endswith(".pos") or "logit_scale" in n else decay).append(p)
    return torch.optim.AdamW([{"params": decay, "weight_decay": a.weight_decay},
                              {"params": no_decay, "weight_decay": 0.0}], lr=a.lr)


def _log(msg: str) -> None:
    print(f"[tmca.train] {msg}", flush=True)


def main(argv=None) -> int:
    a = parse_args(argv)
    torch.set_num_threads(a.threads)
    from .data_source import load_split
    from .eval import TEXTS, evaluate_split
    from .real_data import (BatchOrder, has_split, loader, read_vocab_tokens, split_dataset, tokenizer_of)

    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    device = torch.device(a.device)
    real = a.data != "phantom"
    if real and not a.data_root:
        raise SystemExit("--data qata|mosmed needs --data-root")
    if not real and (a.init_text or a.init_image):
        _log("note: pretrained encoders with the phantom data (a tokenizer from --init-text's vocab)")

    # ---- configuration, vocab and weights: a new run, or the checkpoint being resumed
    ck = st = None
    if a.resume:
        ck = torch.load(out / "checkpoint.pt", map_location="cpu")
        st = torch.load(out / "train_state.pt", map_location="cpu")
    text_init = None
    if ck is not None:
        from .config import TMCAConfig
        cfg = TMCAConfig.from_dict(ck["config"])
        vocab_tokens = ck.get("vocab") or read_vocab_tokens(a.vocab)
        tok_flags = ck.get("tokenizer", {"lower_case": True, "strip_accents": True})
    elif a.init_text:
        from .pretrained_text import read_folder
        max_len = dict(parse_overrides(a.overrides)).get("max_length", 24)
        text_init = read_folder(a.init_text, max_len)
        cfg = config_from_args(a, text_init["overrides"]["vocab_size"], text_init["overrides"])
        vocab_tokens, tok_flags = read_vocab_tokens(text_init["vocab"]), text_init["tokenizer"]
    else:
        vocab_tokens, tok_flags = read_vocab_tokens(a.vocab), {"lower_case": True, "strip_accents": True}
        if not real and a.family.startswith("appearance"):
            # the appearance reports' words the vocab lacks become whole-word tokens of this run's vocab
            from .phantoms_appearance import appearance_vocab
            vocab_tokens = appearance_vocab(vocab_tokens)
        cfg = config_from_args(a, len(vocab_tokens))
    run_vocab = out / "vocab.txt"  # the run's vocab as a file (phantom loaders and tmca.export read files)
    run_vocab.write_text("\n".join(vocab_tokens) + "\n", encoding="utf-8")
    tok = tokenizer_of(vocab_tokens, **tok_flags)

    # ---- data
    seed_everything(a.seed)
    t0 = time.time()
    if real:
        train_ds = split_dataset(a.data_root, "train", cfg.image_size, cfg.max_length, tok, a.data)
        n = len(train_ds)
        _log(f"data: {n} {a.data} training cases under {a.data_root}")
    else:
        train = load_split("train", a.n_train, a.family, cfg.image_size, str(run_vocab), cfg.max_length, seed=a.seed)
        n = len(train["image"])
        _log(f"data: {n} {a.family} training cases in {time.time() - t0:.1f}s")

    seed_everything(a.seed)
    model = TMCA(cfg)
    init_info = {}
    if ck is not None:
        model.load_state_dict(ck["state_dict"])
        init_info = ck.get("init", {})
    else:
        if a.init_image:
            from .pretrained_image import load_convnext
            rep = load_convnext(model.image_encoder, a.init_image, a.image_input_norm)
            init_info["image"] = {"file": str(a.init_image), "layout": rep.layout, "loaded": len(rep.loaded),
                                  "unused": sorted(rep.unused), "notes": rep.notes}
            _log(f"image encoder <- {a.init_image}: {rep.summary()}")
        if text_init is not None:
            from .pretrained_text import load_bert
            rep = load_bert(model.text_encoder, text_init["state_dict"], cfg.max_length)
            init_info["text"] = {"folder": str(a.init_text), "layout": rep.layout, "loaded": len(rep.loaded),
                                 "unused": sorted(rep.unused), "notes": rep.notes}
            _log(f"text encoder <- {a.init_text}: {rep.summary()}")
    if a.freeze_text and model.text_encoder is not None:
        for p_ in model.text_encoder.parameters():
            p_.requires_grad_(False)
    model.to(device)
    model.train()
    _log(f"preset={a.preset} variant={variant_name(cfg)} seed={a.seed} steps={a.steps} batch={a.batch_size} "
         f"params={count_parameters(model)} (inference {count_parameters(model, True)}) device={device} "
         f"amp={a.amp} threads={torch.get_num_threads()}")
    opt = _optimizer(model, a)
    cuda = device.type == "cuda"
    if a.amp and not cuda:
        # torch 1.13's CPU autocast (bfloat16) hands LayerNorm a bfloat16 input with float32 weights
        # and fails; mixed precision is for the GPU, so the CPU runs float32
        _log("note: --amp applies on CUDA only; this CPU run uses float32")
        a.amp = False
    scaler = torch.cuda.amp.GradScaler(enabled=a.amp)
    start = 0
    if st is not None:
        opt.load_state_dict(st["optimizer"])
        scaler.load_state_dict(st["scaler"])
        torch.set_rng_state(st["torch_rng"])
        start = int(st["step"])
        _log(f"resumed at step {start}")
    ck_extra = {"vocab": vocab_tokens, "tokenizer": tok_flags, "init": init_info,
                "data": {"kind": a.data, "root": a.data_root, "family": a.family}}

    order = BatchOrder(n, a.batch_size, a.seed)
    order.skip(start)
    if real:
        batches = loader(train_ds, order.take(a.steps - start), a.workers, pin=cuda)
    else:
        images, masks = torch.from_numpy(train["image"]), torch.from_numpy(train["mask"])
        ids, am = torch.from_numpy(train["input_ids"]), torch.from_numpy(train["attention_mask"])

    val_ds = None
    if a.val_every and real and has_split(a.data_root, "val"):
        val_ds = split_dataset(a.data_root, "val", cfg.image_size, cfg.max_length, tok, a.data)
    best = float(st.get("best_val", -1.0)) if st is not None else -1.0

    log = open(out / "train_log.jsonl", "a" if start else "w")
    t_start = time.time()
    train_s0 = float(ck.get("train_seconds", 0.0)) if ck is not None else 0.0
    step = start
    for step in range(start, a.steps):
        if real:
            b = next(batches)
            xb, yb, ib, mb = b["image"], b["mask"], b["input_ids"], b["attention_mask"]
        else:
            idx = order.next()
            xb, yb, ib, mb = images[idx], masks[idx], ids[idx], am[idx]
        xb, yb, ib, mb = (t.to(device, non_blocking=True) for t in (xb, yb, ib, mb))
        lr = cosine_lr(step, a.steps, a.lr, a.warmup)
        for grp in opt.param_groups:
            grp["lr"] = lr
        with (torch.autocast(device_type="cuda", dtype=torch.float16) if a.amp else contextlib.nullcontext()):
            o = model.forward_train(xb, ib, mb, yb)
        # the losses in float32 (sigmoid / Dice sums lose too much in half precision)
        o["logits"] = o["logits"].float()
        o["lte_logits"] = [m.float() for m in o["lte_logits"]]
        if o.get("align") is not None:
            o["align"] = o["align"].float()
        terms = tmca_loss(o, yb, cfg)
        opt.zero_grad(set_to_none=True)
        scaler.scale(terms["total"]).backward()
        scaler.unscale_(opt)
        torch.nn.utils.clip_grad_norm_([p_ for p_ in model.parameters() if p_.requires_grad], 1.0)
        scaler.step(opt)
        scaler.update()
        if step % a.log_every == 0 or step == a.steps - 1:
            el = time.time() - t_start
            rec = {"step": step, "lr": lr, "elapsed_s": round(el, 1), **{k: round(float(v), 4) for k, v in terms.items()},
                   **{k: round(float(v), 4) for k, v in o["align_levels"].items()}}
            log.write(json.dumps(rec) + "\n")
            log.flush()
            eta = el / (step + 1 - start) * (a.steps - step - 1)
            _log(f"step {step:5d}/{a.steps} loss {float(terms['total']):.4f} dice {float(terms['dice']):.4f} "
                 f"bce {float(terms['bce']):.4f}" + (f" align {float(terms['align']):.3f}" if "align" in terms else "")
                 + (f" lte {float(terms['lte']):.3f}" if "lte" in terms else "")
                 + f" lr {lr:.2e} {el:.0f}s eta {eta:.0f}s")
        if val_ds is not None and (step + 1) % a.val_every == 0:
            from .eval import evaluate_dataset
            res = evaluate_dataset(model, val_ds, device, a.eval_batch, a.amp, a.workers)
            model.train()
            log.write(json.dumps({"step": step + 1, "val": res}) + "\n")
            log.flush()
            _log(f"val at step {step + 1}: dice {res['dice_mean']:.4f} miou {res['miou_mean']:.4f} "
                 f"dataset-dice {res['dataset_dice']:.4f}" + (" (best)" if res["dice_mean"] > best else ""))
            if res["dice_mean"] > best:
                best = res["dice_mean"]
                save_checkpoint(out / "best.pt", model, cfg, a, step + 1, {**ck_extra, "val": res})
        if a.ckpt_every and (step + 1) % a.ckpt_every == 0 and step + 1 < a.steps:
            save_checkpoint(out / "checkpoint.pt", model, cfg, a, step + 1,
                            {**ck_extra, "train_seconds": train_s0 + time.time() - t_start})
            save_train_state(out / "train_state.pt", opt, scaler, step + 1, {"best_val": best})
    train_s = train_s0 + time.time() - t_start
    end = max(a.steps, start)
    save_checkpoint(out / "checkpoint.pt", model, cfg, a, end, {**ck_extra, "train_seconds": train_s})
    save_train_state(out / "train_state.pt", opt, scaler, end, {"best_val": best})
    _log(f"done: {end} steps ({end - start} in this run) in {train_s:.0f}s -> {out / 'checkpoint.pt'}")
    if a.no_eval:
        return 0
    model.eval()
    if real:
        from .eval import evaluate_dataset
        if has_split(a.data_root, "test"):
            test_ds = split_dataset(a.data_root, "test", cfg.image_size, cfg.max_length, tok, a.data)
            res = evaluate_dataset(model, test_ds, device, a.eval_batch, a.amp, a.workers)
            res.update({"split": "test", "data": a.data, "variant": variant_name(cfg), "seed": a.seed,
                        "steps": end, "train_seconds": round(train_s, 1), "checkpoint": "checkpoint.pt"})
            (out / "test_metrics.json").write_text(json.dumps(res, indent=1) + "\n")
            _log(f"test: dice {res['dice_mean']:.4f} miou {res['miou_mean']:.4f} "
                 f"dataset-dice {res['dataset_dice']:.4f} (n={res['n']})")
        return 0
    model.to("cpu")
    # the table is on the CXR test split; a model that saw CT slices is also measured on CT;
    # each fed the reports as written and the canonical guide texts tmcad renders
    fams = {"cxr": ["cxr"], "ct": ["ct"], "mix": ["cxr", "ct"],
            "appearance": ["appearance-cxr", "appearance-ct"]}.get(a.family, [a.family])
    for fam in fams:
        for text in TEXTS:
            res = evaluate_split(model, cfg, "test", a.n_test, fam, str(run_vocab), text)
            res.update({"variant": variant_name(cfg), "seed": a.seed, "steps": end, "train_family": a.family,
                        "train_seconds": round(train_s, 1)})
            name = "test_metrics" + ("" if fam == fams[0] else f"_{fam}") + ("" if text == "report" else f"_{text}")
            (out / f"{name}.json").write_text(json.dumps(res, indent=1) + "\n")
            _log(f"test ({fam}, {text}): dice {res['dice_mean']:.4f} miou {res['miou_mean']:.4f} "
                 f"dataset-dice {res['dataset_dice']:.4f} (n={res['n']})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
