"""Reproduce the model card's metrics table: every ablation variant x seed, then aggregate.

    /usr/bin/python3 -m tmca.reproduce --out runs/ablation            # train + evaluate all, write the table
    /usr/bin/python3 -m tmca.reproduce --out runs/ablation --aggregate-only --metrics models/tmca-cxr-compact/metrics.json

Runs `tmca.train` for each variant and seed (one thread each, `--parallel` at a time; a run whose
test_metrics.json exists is skipped, so an interrupted reproduction resumes), then writes
metrics.json: for each variant the per-image Dice and mIoU on the phantom CXR test split, mean and
std over seeds, and the seed count.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from .config import VARIANTS

#: the variants of the model card's table, in its order (the config's table order)
VARIANT_ORDER = list(VARIANTS)


def run_all(a) -> None:
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    jobs = []
    for seed in a.seeds:
        for v in a.variants:
            d = out / f"{v}-s{seed}"
            if (d / "test_metrics.json").exists():
                continue
            cmd = [sys.executable, "-m", "tmca.train", "--variant", v, "--seed", str(seed), "--steps", str(a.steps),
                   "--n-train", str(a.n_train), "--n-test", str(a.n_test), "--family", a.family,
                   "--threads", "1", "--out", str(d)]
            jobs.append((cmd, out / f"{v}-s{seed}.log"))
    running = []
    while jobs or running:
        while jobs and len(running) < a.parallel:
            cmd, log = jobs.pop(0)
            print("[tmca.reproduce] start", " ".join(cmd[2:]), flush=True)
            running.append((subprocess.Popen(cmd, stdout=open(log, "w"), stderr=subprocess.STDOUT), cmd, log))
        time.sleep(5)
        for r in list(running):
            if r[0].poll() is not None:
                running.remove(r)
                print(f"[tmca.reproduce] done rc={r[0].returncode} log={r[2]}", flush=True)
                if r[0].returncode != 0:
                    raise SystemExit(f"training failed, see {r[2]}")


def complete_evaluations(out: Path, n_test: int, threads: int = 1) -> None:
    """Evaluate on the CXR (and CT) test split every finished run whose test_metrics.json is not
    on the CXR split (runs trained before train.py split the evaluation by family)."""
    import torch
    from .eval import evaluate_split, load_checkpoint
    torch.set_num_threads(threads)
    for tm in sorted(out.glob("*-s*/test_metrics.json")):
        old = json.loads(tm.read_text())
        if old.get("family") == "cxr":
            continue
        ck = tm.parent / "checkpoint.pt"
        model = load_checkpoint(str(ck))
        fam_trained = torch.load(str(ck), map_location="cpu").get("args", {}).get("family", "mix")
        for fam in (["cxr", "ct"] if fam_trained == "mix" else [fam_trained]):
            res = evaluate_split(model, model.cfg, "test", n_test, fam, "models/tmca-cxr-compact/vocab.txt")
            res.update({k: old[k] for k in ("variant", "seed", "steps", "train_seconds") if k in old})
            res["train_family"] = fam_trained
            (tm.parent / ("test_metrics.json" if fam == "cxr" else f"test_metrics_{fam}.json")).write_text(
                json.dumps(res, indent=1) + "\n")
            print(f"[tmca.reproduce] re-evaluated {tm.parent.name} on {fam}: dice {res['dice_mean']:.4f}", flush=True)


def aggregate(out: Path, variants=VARIANT_ORDER, name: str = "test_metrics.json") -> dict:
    res = {}
    for v in variants:
        runs = sorted(out.glob(f"{v}-s*/{name}"))
        if not runs:
            continue
        ms = [json.loads(p.read_text()) for p in runs]
        dice = np.array([m["dice_mean"] for m in ms])
        miou = np.array([m["miou_mean"] for m in ms])
        ddice = np.array([m["dataset_dice"] for m in ms])
        res[v] = {"dice_mean": round(float(dice.mean()), 4), "dice_std": round(float(dice.std(ddof=1)) if len(ms) > 1 else 0.0, 4),
                  "miou_mean": round(float(miou.mean()), 4), "miou_std": round(float(miou.std(ddof=1)) if len(ms) > 1 else 0.0, 4),
                  "dataset_dice_mean": round(float(ddice.mean()), 4),
                  "seeds": len(ms), "seed_list": [m["seed"] for m in ms], "n_test": ms[0]["n"],
                  "steps": ms[0]["steps"], "train_seconds_mean": round(float(np.mean([m["train_seconds"] for m in ms])), 1)}
    return res


def markdown_table(res: dict) -> str:
    """The model card's table from the aggregate."""
    lines = ["| variant | Dice (per image) | mIoU (per image) | dataset Dice | seeds |",
             "|---|---|---|---|---|"]
    for v, r in res.items():
        lines.append(f"| {v} | {r['dice_mean']:.3f} ± {r['dice_std']:.3f} | {r['miou_mean']:.3f} ± {r['miou_std']:.3f} "
                     f"| {r['dataset_dice_mean']:.3f} | {r['seeds']} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="tmca.reproduce", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="runs/ablation")
    p.add_argument("--variants", nargs="+", default=VARIANT_ORDER)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--steps", type=int, default=600)
    p.add_argument("--n-train", type=int, default=4000)
    p.add_argument("--n-test", type=int, default=300)
    p.add_argument("--family", default="mix")
    p.add_argument("--parallel", type=int, default=2)
    p.add_argument("--card", default=None, help="also replace the table between <!-- table --> markers in this card")
    p.add_argument("--aggregate-only", action="store_true")
    p.add_argument("--metrics", default=None, help="also write the aggregate here (e.g. models/tmca-cxr-compact/metrics.json)")
    a = p.parse_args(argv)
    if not a.aggregate_only:
        run_all(a)
    complete_evaluations(Path(a.out), a.n_test)
    res = aggregate(Path(a.out), a.variants)
    doc = {"split": "phantom CXR test (tmca.phantoms, split seed 3000)", "n_test": a.n_test, "threshold": 0.5,
           "metric_note": "dice/miou: per-image at threshold 0.5, averaged over the split (LViT convention); "
                          "mean and sample std over seeds; dataset_dice: GuideDecoder convention",
           "variants": res,
           "ct_test": {"split": "phantom CT test slices (tmca.phantoms family ct); frames with no target count 1 "
                                "when the prediction is empty too",
                       "variants": aggregate(Path(a.out), a.variants, "test_metrics_ct.json")}}
    text = json.dumps(doc, indent=1) + "\n"
    print(text)
    print(markdown_table(res))
    if a.metrics:
        # keep what else the file holds (the shipped model's own metrics)
        mp = Path(a.metrics)
        kept = json.loads(mp.read_text()) if mp.exists() else {}
        mp.write_text(json.dumps({**kept, **doc}, indent=1) + "\n")
    if a.card:
        card = Path(a.card).read_text()
        i, j = card.index("<!-- table -->"), card.index("<!-- /table -->")
        ct = doc["ct_test"]["variants"]
        extra = ""
        if ct:
            extra = ("\n\nThe same runs on 300 slices of the phantom CT test split (per-image Dice; a slice with no "
                     "target counts 1 when the prediction is empty too):\n\n" + markdown_table(ct))
        Path(a.card).write_text(card[:i] + "<!-- table -->\n" + markdown_table(res) + extra + "\n" + card[j:])
    return 0


if __name__ == "__main__":
    sys.exit(main())
