"""Reproduce the model card's metrics table: every ablation variant x seed, then aggregate.

    /usr/bin/python3 -m tmca.reproduce --out runs/ablation            # train + evaluate all, write the table
    /usr/bin/python3 -m tmca.reproduce --out runs/ablation --aggregate-only --metrics models/tmca-cxr-compact/metrics.json

    /usr/bin/python3 -m tmca.reproduce --family appearance --out runs/appearance --steps 800 --seeds 0 1 2 3 4 5 \\
        --metrics models/tmca-cxr-compact/metrics.json --card models/tmca-cxr-compact/MODEL_CARD.md

Runs `tmca.train` for each variant and seed (one thread each, `--parallel` at a time; a run whose
test_metrics.json exists is skipped, so an interrupted reproduction resumes), then writes
metrics.json: for each variant the per-image Dice and mIoU on the phantom CXR test split, mean and
std over seeds, and the seed count. With `--family appearance` it trains on the appearance
benchmark (`tmca.phantoms_appearance`) and writes `appearance_variants` instead (both appearance
test splits, each variant's paired difference to `full` over seeds with a paired t-test and an
exact sign-flip test, and Welch tests for the position table already in metrics.json), leaving the
position table's keys and card section as they are.
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
        if old.get("family") == "cxr" or str(old.get("family", "")).startswith("appearance"):
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


def per_seed(out: Path, variant: str, name: str = "test_metrics.json") -> dict[int, float]:
    """{seed: per-image Dice} of a variant's finished runs."""
    res = {}
    for p in sorted(out.glob(f"{variant}-s*/{name}")):
        m = json.loads(p.read_text())
        res[int(m["seed"])] = float(m["dice_mean"])
    return res


def paired_vs(out: Path, variant: str, reference: str, name: str = "test_metrics.json") -> dict | None:
    """`variant` against `reference` on the seeds both have: the per-seed Dice difference
    (variant - reference), a paired t-test and the exact sign-flip test; None below 2 seeds."""
    from .paired_stats import paired_t, sign_flip_p
    ref, other = per_seed(out, reference, name), per_seed(out, variant, name)
    seeds = sorted(set(ref) & set(other))
    if len(seeds) < 2:
        return None
    x, y = [other[s] for s in seeds], [ref[s] for s in seeds]
    t = paired_t(x, y)
    return {"seeds": seeds, "diff_mean": round(t["diff_mean"], 4), "diff_std": round(t["diff_std"], 4),
            "t": round(t["t"], 3), "p_paired_t": float(f"{t['p']:.3g}"),
            "p_sign_flip": float(f"{sign_flip_p(x, y):.3g}")}


def paired_vs_full(out: Path, variants, name: str = "test_metrics.json") -> dict:
    """Each variant against `full` (see `paired_vs`)."""
    res = {}
    for v in variants:
        q = paired_vs(out, v, "full", name) if v != "full" else None
        if q:
            res[v] = q
    return res


#: comparisons besides "against full" that read the alignment rows: each alignment form against none
EXTRA_PAIRS = (("full", "no-align"), ("align-levels-4", "no-align"), ("no-tsd", "no-align"))


def position_vs_full(variants: dict) -> dict:
    """Welch's unpaired t-test of each variant against `full` from a table's mean / std / seeds
    (for tables whose per-seed values were not kept)."""
    from .paired_stats import welch_t
    if "full" not in variants:
        return {}
    f = variants["full"]
    res = {}
    for v, r in variants.items():
        if v == "full" or r["seeds"] < 2 or f["seeds"] < 2:
            continue
        w = welch_t(r["dice_mean"], r["dice_std"], r["seeds"], f["dice_mean"], f["dice_std"], f["seeds"])
        res[v] = {"diff_mean": round(w["diff_mean"], 4), "t": round(w["t"], 3), "df": round(w["df"], 2),
                  "p_welch": float(f"{w['p']:.3g}")}
    return res


def markdown_table(res: dict) -> str:
    """The model card's table from the aggregate."""
    lines = ["| variant | Dice (per image) | mIoU (per image) | dataset Dice | seeds |",
             "|---|---|---|---|---|"]
    for v, r in res.items():
        lines.append(f"| {v} | {r['dice_mean']:.3f} ± {r['dice_std']:.3f} | {r['miou_mean']:.3f} ± {r['miou_std']:.3f} "
                     f"| {r['dataset_dice_mean']:.3f} | {r['seeds']} |")
    return "\n".join(lines)


def paired_table(agg: dict, paired: dict) -> str:
    """Dice per variant with its paired difference to `full` and the two p-values."""
    lines = ["| variant | Dice (per image) | Δ vs full (paired, mean ± std) | paired t p | sign-flip p | seeds |",
             "|---|---|---|---|---|---|"]
    for v, r in agg.items():
        q = paired.get(v)
        diff = f"{q['diff_mean']:+.3f} ± {q['diff_std']:.3f}" if q else "—"
        pt = f"{q['p_paired_t']:.2g}" if q else "—"
        ps = f"{q['p_sign_flip']:.2g}" if q else "—"
        lines.append(f"| {v} | {r['dice_mean']:.3f} ± {r['dice_std']:.3f} | {diff} | {pt} | {ps} | {r['seeds']} |")
    return "\n".join(lines)


APPEARANCE_CT_METRICS = "test_metrics_appearance-ct.json"


def appearance_doc(out: Path, variants, a, wall_s: float | None) -> dict:
    """metrics.json's `appearance_variants`: both appearance test splits, per variant, with the
    paired tests against `full`."""
    cxr = aggregate(out, variants)
    ct = aggregate(out, variants, APPEARANCE_CT_METRICS)
    runs = sorted(out.glob("*-s*/test_metrics.json"))
    train_s = sum(json.loads(p.read_text()).get("train_seconds", 0.0) for p in runs)
    # wall-clock span of the reproduction: first run's start (its vocab.txt) to the last metrics file
    starts = [p.stat().st_mtime for p in out.glob("*-s*/vocab.txt")]
    ends = [p.stat().st_mtime for p in out.glob("*-s*/test_metrics*.json")]
    span = round(max(ends) - min(starts), 1) if starts and ends else None
    doc = {"benchmark": "tmca.phantoms_appearance: 2-3 opacities of different appearance per frame, the "
                        "report names 1-2 of them by appearance (zone in about half)",
           "split": "test (split seed 3000)", "n_test": a.n_test, "threshold": 0.5,
           "train_family": "appearance", "steps": sorted({r["steps"] for r in cxr.values()}) or [a.steps],
           "runs": len(runs),
           "train_seconds_total": round(train_s, 1), "wall_span_seconds": span,
           "command": (f"/usr/bin/python3 -m tmca.reproduce --family appearance --out {a.out} --steps {a.steps} "
                       f"--seeds {' '.join(map(str, a.seeds))}"),
           "metric_note": "dice: per-image Dice at threshold 0.5 averaged over the split, then mean and sample "
                          "std over seeds; paired: per-seed Dice(variant) - Dice(full) on the same seeds, "
                          "two-sided paired t-test and exact sign-flip test",
           "cxr": {"variants": cxr, "paired_vs_full": paired_vs_full(out, variants)},
           "ct": {"variants": ct, "paired_vs_full": paired_vs_full(out, variants, APPEARANCE_CT_METRICS)}}
    for fam, name in (("cxr", "test_metrics.json"), ("ct", APPEARANCE_CT_METRICS)):
        extra = {f"{v} vs {r}": paired_vs(out, v, r, name) for v, r in EXTRA_PAIRS}
        doc[fam]["paired_extra"] = {k: q for k, q in extra.items() if q}
    if wall_s is not None:
        doc["wall_seconds_last_reproduce"] = round(wall_s, 1)
    return doc


def write_appearance(doc: dict, metrics: str | None, card: str | None, position: dict | None) -> None:
    """Write `appearance_variants` (and the position table's Welch tests) into metrics.json and the
    card's tables between the <!-- appearance-table --> markers."""
    if metrics:
        mp = Path(metrics)
        kept = json.loads(mp.read_text()) if mp.exists() else {}
        if position is None and kept.get("variants"):
            position = {"cxr": position_vs_full(kept["variants"]),
                        "ct": position_vs_full(kept.get("ct_test", {}).get("variants", {}))}
        doc = {**doc, "position_vs_full_welch": position or {}}
        mp.write_text(json.dumps({**kept, "appearance_variants": doc}, indent=1) + "\n")
    if card:
        text = Path(card).read_text()
        body = ("Appearance CXR test split (300 frames):\n\n" + paired_table(doc["cxr"]["variants"], doc["cxr"]["paired_vs_full"])
                + "\n\nAppearance CT test slices (300 frames):\n\n"
                + paired_table(doc["ct"]["variants"], doc["ct"]["paired_vs_full"]))
        extra = [(k, doc["cxr"].get("paired_extra", {}).get(k), doc["ct"].get("paired_extra", {}).get(k))
                 for k in (f"{v} vs {r}" for v, r in EXTRA_PAIRS)]
        extra = [e for e in extra if e[1] or e[2]]
        if extra:
            fmt = lambda q: f"{q['diff_mean']:+.3f} ± {q['diff_std']:.3f} | {q['p_paired_t']:.2g}" if q else "— | —"  # noqa: E731
            lines = ["| comparison | CXR Δ (paired) | paired t p | CT Δ (paired) | paired t p |", "|---|---|---|---|---|"]
            lines += [f"| {k} | {fmt(c)} | {fmt(t)} |" for k, c, t in extra]
            body += "\n\nEach form of alignment against no alignment (same seeds, paired):\n\n" + "\n".join(lines)
        if position and position.get("cxr"):
            ct = position.get("ct", {})
            lines = ["| variant | CXR Δ vs full | Welch p | CT Δ vs full | Welch p |", "|---|---|---|---|---|"]
            for v, r in position["cxr"].items():
                c = ct.get(v)
                lines.append(f"| {v} | {r['diff_mean']:+.3f} | {r['p_welch']:.2g} | "
                             + (f"{c['diff_mean']:+.3f} | {c['p_welch']:.2g} |" if c else "— | — |"))
            body += ("\n\nPosition benchmark (the 1.0.0 tables above, 3 seeds; their per-seed values were not kept, "
                     "so Welch's unpaired t-test from mean, std and seed count):\n\n" + "\n".join(lines))
        start, end = "<!-- appearance-table -->", "<!-- /appearance-table -->"
        if start not in text:
            anchor = "## Export and parity"
            text = text.replace(anchor, f"{start}\n{end}\n\n{anchor}", 1)
        i, j = text.index(start), text.index(end)
        Path(card).write_text(text[:i] + start + "\n" + body + "\n" + text[j:])


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="tmca.reproduce", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="runs/ablation")
    p.add_argument("--variants", nargs="+", default=VARIANT_ORDER)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--steps", type=int, default=600)
    p.add_argument("--n-train", type=int, default=4000)
    p.add_argument("--n-test", type=int, default=300)
    p.add_argument("--family", default="mix",
                   help="mix (the position benchmark, the card's main table) or appearance "
                        "(tmca.phantoms_appearance; writes metrics.json's appearance_variants and the card's "
                        "appearance tables, with paired tests against full)")
    p.add_argument("--parallel", type=int, default=2)
    p.add_argument("--card", default=None, help="also replace the table between <!-- table --> markers in this card")
    p.add_argument("--aggregate-only", action="store_true")
    p.add_argument("--metrics", default=None, help="also write the aggregate here (e.g. models/tmca-cxr-compact/metrics.json)")
    a = p.parse_args(argv)
    t0 = time.time()
    if not a.aggregate_only:
        run_all(a)
    if a.family.startswith("appearance"):
        doc = appearance_doc(Path(a.out), a.variants, a, None if a.aggregate_only else time.time() - t0)
        print(json.dumps(doc, indent=1))
        print(paired_table(doc["cxr"]["variants"], doc["cxr"]["paired_vs_full"]))
        print(paired_table(doc["ct"]["variants"], doc["ct"]["paired_vs_full"]))
        write_appearance(doc, a.metrics, a.card, None)
        return 0
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
