"""Train TMCA on the phantom benchmark (or anything `tmca.data_source` can load).

    /usr/bin/python3 -m tmca.train --preset compact --variant full --seed 0 --steps 600 --family mix --out runs/full-s0

Switches for the ablations (equivalent to --variant): --no-tsd, --align-levels 4, --no-lte, --no-text.
Writes DIR/checkpoint.pt (config, weights, args), DIR/train_log.jsonl (one line per logged step)
and, unless --no-eval, DIR/test_metrics.json (the test split, see tmca.eval; with --family mix also
test_metrics_ct.json; each also as *_canonical.json, fed the canonical guide texts).
Reproducible by seed on one thread: the data, the initialisation and the batch order all follow --seed.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import random
import sys
import time
from pathlib import Path

import numpy as np
import torch

from .config import VARIANTS, build_config
from .losses import tmca_loss
from .model import TMCA, count_parameters

DEFAULT_VOCAB = "models/tmca-cxr-compact/vocab.txt"


def parse_args(argv=None):
    p = argparse.ArgumentParser(prog="tmca.train", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--preset", default="compact", choices=["compact", "paper"])
    p.add_argument("--variant", default="full", choices=sorted(VARIANTS))
    p.add_argument("--no-tsd", action="store_true", help="global average pooling instead of target pooling")
    p.add_argument("--align-levels", type=int, nargs="+", default=None, help="levels to align, e.g. 4 (default 1 2 3 4)")
    p.add_argument("--no-lte", action="store_true")
    p.add_argument("--no-text", action="store_true", help="image-only: no text to the decoder")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--steps", type=int, default=600)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--weight-decay", type=float, default=0.05)
    p.add_argument("--warmup", type=int, default=50)
    p.add_argument("--family", default="mix", help="phantom family: cxr, ct or mix (CXR + 25%% CT slices)")
    p.add_argument("--n-train", type=int, default=4000)
    p.add_argument("--n-test", type=int, default=300)
    p.add_argument("--image-size", type=int, default=None, help="override the preset's input size")
    p.add_argument("--vocab", default=DEFAULT_VOCAB)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--log-every", type=int, default=25)
    p.add_argument("--ckpt-every", type=int, default=300)
    p.add_argument("--no-eval", action="store_true", help="skip the test-split evaluation at the end")
    p.add_argument("--out", required=True)
    return p.parse_args(argv)


def config_from_args(a, vocab_size: int):
    over = {"vocab_size": vocab_size}
    if a.image_size:
        over["image_size"] = a.image_size
    cfg = build_config(a.preset, a.variant, **over)
    if a.no_tsd:
        cfg.use_tsd = False
    if a.align_levels:
        cfg.align_levels = tuple(a.align_levels)
    if a.no_lte:
        cfg.use_lte = False
    if a.no_text:
        cfg.use_text = False
    return cfg


def variant_name(cfg) -> str:
    if not cfg.use_text:
        return "no-text"
    parts = []
    if not cfg.use_tsd:
        parts.append("no-tsd")
    if not cfg.align_levels:
        parts.append("no-align")
    elif tuple(cfg.align_levels) != (1, 2, 3, 4):
        parts.append("align-levels-" + "".join(str(l) for l in cfg.align_levels))
    if not cfg.use_lte:
        parts.append("no-lte")
    return "+".join(parts) or "full"


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
    torch.save({"config": cfg.to_dict(), "state_dict": model.state_dict(), "step": step,
                "args": vars(args), "variant": variant_name(cfg), **(extra or {})}, tmp)
    os.replace(tmp, path)


def main(argv=None) -> int:
    a = parse_args(argv)
    torch.set_num_threads(a.threads)
    from .data_source import load_split, vocab_size

    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    cfg = config_from_args(a, vocab_size(a.vocab))
    seed_everything(a.seed)
    t0 = time.time()
    train = load_split("train", a.n_train, a.family, cfg.image_size, a.vocab, cfg.max_length, seed=a.seed)
    print(f"[tmca.train] data: {len(train['image'])} {a.family} training cases in {time.time() - t0:.1f}s", flush=True)

    seed_everything(a.seed)
    model = TMCA(cfg)
    model.train()
    print(f"[tmca.train] preset={a.preset} variant={variant_name(cfg)} seed={a.seed} steps={a.steps} "
          f"batch={a.batch_size} params={count_parameters(model)} (inference {count_parameters(model, True)}) "
          f"threads={torch.get_num_threads()}", flush=True)
    decay, no_decay = [], []
    for n, p in model.named_parameters():
        (no_decay if p.ndim <= 1 or n.endswith(".pos") or "logit_scale" in n else decay).append(p)
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": a.weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}], lr=a.lr)

    images = torch.from_numpy(train["image"])
    masks = torch.from_numpy(train["mask"])
    ids = torch.from_numpy(train["input_ids"])
    am = torch.from_numpy(train["attention_mask"])
    n = images.shape[0]
    g = torch.Generator().manual_seed(a.seed)
    perm, pos = torch.randperm(n, generator=g), 0
    log = open(out / "train_log.jsonl", "w")
    t_start = time.time()
    for step in range(a.steps):
        if pos + a.batch_size > n:
            perm, pos = torch.randperm(n, generator=g), 0
        idx = perm[pos: pos + a.batch_size]
        pos += a.batch_size
        lr = cosine_lr(step, a.steps, a.lr, a.warmup)
        for grp in opt.param_groups:
            grp["lr"] = lr
        y = masks[idx]
        o = model.forward_train(images[idx], ids[idx], am[idx], y)
        terms = tmca_loss(o, y, cfg)
        opt.zero_grad(set_to_none=True)
        terms["total"].backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        if step % a.log_every == 0 or step == a.steps - 1:
            el = time.time() - t_start
            rec = {"step": step, "lr": lr, "elapsed_s": round(el, 1), **{k: round(float(v), 4) for k, v in terms.items()},
                   **{k: round(float(v), 4) for k, v in o["align_levels"].items()}}
            log.write(json.dumps(rec) + "\n")
            log.flush()
            eta = el / (step + 1) * (a.steps - step - 1)
            print(f"[tmca.train] step {step:5d}/{a.steps} loss {float(terms['total']):.4f} dice {float(terms['dice']):.4f} "
                  f"bce {float(terms['bce']):.4f}" + (f" align {float(terms['align']):.3f}" if "align" in terms else "")
                  + (f" lte {float(terms['lte']):.3f}" if "lte" in terms else "")
                  + f" lr {lr:.2e} {el:.0f}s eta {eta:.0f}s", flush=True)
        if a.ckpt_every and (step + 1) % a.ckpt_every == 0 and step + 1 < a.steps:
            save_checkpoint(out / "checkpoint.pt", model, cfg, a, step + 1)
    train_s = time.time() - t_start
    save_checkpoint(out / "checkpoint.pt", model, cfg, a, a.steps, {"train_seconds": train_s})
    print(f"[tmca.train] done: {a.steps} steps in {train_s:.0f}s -> {out / 'checkpoint.pt'}", flush=True)
    if not a.no_eval:
        from .eval import TEXTS, evaluate_split
        model.eval()
        # the table is on the CXR test split; a model that saw CT slices is also measured on CT;
        # each fed the reports as written and the canonical guide texts tmcad renders
        fams = {"cxr": ["cxr"], "ct": ["ct"], "mix": ["cxr", "ct"]}.get(a.family, [a.family])
        for fam in fams:
            for text in TEXTS:
                res = evaluate_split(model, cfg, "test", a.n_test, fam, a.vocab, text)
                res.update({"variant": variant_name(cfg), "seed": a.seed, "steps": a.steps, "train_family": a.family,
                            "train_seconds": round(train_s, 1)})
                name = "test_metrics" + ("" if fam == fams[0] else f"_{fam}") + ("" if text == "report" else f"_{text}")
                (out / f"{name}.json").write_text(json.dumps(res, indent=1) + "\n")
                print(f"[tmca.train] test ({fam}, {text}): dice {res['dice_mean']:.4f} miou {res['miou_mean']:.4f} "
                      f"dataset-dice {res['dataset_dice']:.4f} (n={res['n']})", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
