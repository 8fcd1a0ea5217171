"""Writes the "Paper preset on CPU" section of bench/RESULTS.md from scripts/bench.sh's paper run.

    /usr/bin/python3 bench/engine/paper_report.py TMPDIR ROUNDS PAPER_MODEL bench/RESULTS.md

Reads TMPDIR/paper-torch-R.json (bench/engine/paper.py torch) and TMPDIR/paper-go-NAME-R.json
(bench/engine, one per ONNX Runtime setting NAME) for rounds R = 1..ROUNDS. Throughput is each
side's best round per batch size; peak RSS the highest round (the least favourable reading).
"""
from __future__ import annotations

import datetime
import glob
import json
import math
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from report import best_of, cpu_name  # noqa: E402

BEGIN, END = "<!-- paper:begin -->", "<!-- paper:end -->"


def load_avg() -> str:
    try:
        return open("/proc/loadavg").read().split()[1]
    except OSError:
        return "?"


def summary(rounds: list[dict]) -> dict:
    """Best images/s per batch over the rounds, highest peak RSS, and the first round's settings."""
    s = dict(rounds[0])
    s["images_per_sec"] = best_of(rounds, "images_per_sec")
    s["peak_rss_mb"] = max(r["peak_rss_mb"] for r in rounds)
    s["rss_loaded_mb"] = max(r["rss_loaded_mb"] for r in rounds)
    s["load_s"] = min(r["load_s"] for r in rounds)
    return s


def geomean(ips: dict) -> float:
    return math.exp(sum(math.log(v) for v in ips.values()) / len(ips))


def main(folder: str, n: str, model_dir: str, results: str) -> int:
    rounds = range(1, int(n) + 1)
    pt = summary([json.load(open(f"{folder}/paper-torch-{r}.json")) for r in rounds])
    names = sorted({re.sub(r"^paper-go-(.*)-\d+\.json$", r"\1", os.path.basename(p))
                    for p in glob.glob(f"{folder}/paper-go-*-1.json")})
    gos = {name: summary([json.load(open(f"{folder}/paper-go-{name}-{r}.json")) for r in rounds]) for name in names}
    best = max(gos, key=lambda k: geomean(gos[k]["images_per_sec"]))
    g = gos[best]
    onnx_mb = os.path.getsize(os.path.join(model_dir, "model.onnx")) / 1e6
    batches = sorted(pt["images_per_sec"], key=int)

    def setting(s: dict) -> str:
        runs = s["concurrent_runs"]
        inter = f", parallel execution with {s['inter_op_threads']} inter-op threads" if s["inter_op_threads"] else ""
        return (f"graph optimisation `{s['graph_optimization'] or 'default'}`, {runs} concurrent run{'s' if runs > 1 else ''} "
                f"× {s['threads']} intra-op thread{'s' if s['threads'] > 1 else ''}{inter}")

    lines = [BEGIN, "## Paper preset on CPU", "",
             f"Measured {datetime.date.today()} on {cpu_name()}, {os.cpu_count()} CPUs visible, **shared with other "
             f"work** (load average {load_avg()} over the 5 minutes before the report; compare ratios, not absolute "
             f"rates), {pt['threads']} threads on each side, by `make bench` (`scripts/bench.sh`, section `PAPER`). "
             f"Model: the `paper` preset (ConvNeXt-Tiny image encoder at 224×224, BERT-base-sized text encoder, 24 "
             f"tokens) on **random weights** (`tmca.export --preset paper --random-init`, seed 0; no trained paper-size "
             f"model exists here), so these figures are speed and memory only, never accuracy. ONNX file {onnx_mb:.1f} MB; "
             f"the PyTorch peer builds the same module with the same seed ({pt['params'] / 1e6:.1f} M parameters in the "
             "module; the exported graph holds only the weights its forward reaches). Same inputs, same batch sizes, "
             f"same run: {n} rounds, each running PyTorch eager then every Go setting below, one process per "
             "measurement; each side's best round per batch size (a round's figure is the median run time after a "
             "warm-up, over ≥ 6 s and ≥ 3 runs). Peak RSS is the process's VmHWM at the end of its measurement (model "
             "loaded, batch 1 and batch 8 run), the highest round.", "",
             f"Go engine with the best setting tried, {setting(g)}:", "",
             "| | Go engine | PyTorch eager | ratio (Go / PyTorch) |", "|---|---|---|---|"]
    for bs in batches:
        a, b = g["images_per_sec"][bs], pt["images_per_sec"][bs]
        lines.append(f"| images/s, batch {bs} | {a:.2f} | {b:.2f} | **{a / b:.2f}×** |")
    lines += [f"| peak RSS | {g['peak_rss_mb']:.0f} MB | {pt['peak_rss_mb']:.0f} MB | {g['peak_rss_mb'] / pt['peak_rss_mb']:.2f}× |",
              f"| RSS once the model is loaded | {g['rss_loaded_mb']:.0f} MB | {pt['rss_loaded_mb']:.0f} MB | "
              f"{g['rss_loaded_mb'] / pt['rss_loaded_mb']:.2f}× |",
              f"| load time (Go: session creation, graph optimisation included; PyTorch: building the module) | "
              f"{g['load_s']:.1f} s | {pt['load_s']:.1f} s | |",
              "",
              "ONNX Runtime settings tried on the Go side (`segment.Options`: GraphOptimization, IntraOpThreads, "
              "ConcurrentRuns, InterOpThreads), the same rounds; the ratio columns are against the PyTorch figures above:",
              "",
              "| setting | graph optimisation | runs × intra-op threads | inter-op threads | "
              + " | ".join(f"images/s, batch {bs} (ratio)" for bs in batches)
              + " | session creation | RSS loaded | peak RSS |",
              "|---|---|---|---|" + "---|" * len(batches) + "---|---|---|"]
    for name in sorted(gos, key=lambda k: -geomean(gos[k]["images_per_sec"])):
        s = gos[name]
        cells = " | ".join(f"{s['images_per_sec'][bs]:.2f} ({s['images_per_sec'][bs] / pt['images_per_sec'][bs]:.2f}×)"
                           for bs in batches)
        mark = "**" if name == best else ""
        lines.append(f"| {mark}{name}{mark} | {s['graph_optimization'] or 'default'} | {s['concurrent_runs']} × {s['threads']} | "
                     f"{s['inter_op_threads'] or '— (sequential)'} | {cells} | {s['load_s']:.1f} s | "
                     f"{s['rss_loaded_mb']:.0f} MB | {s['peak_rss_mb']:.0f} MB |")
    lines.append(END)
    section = "\n".join(lines)
    text = open(results).read() if os.path.exists(results) else "# Benchmark results\n"
    if BEGIN in text:
        text = re.sub(re.escape(BEGIN) + ".*?" + re.escape(END), lambda _: section, text, flags=re.S)
    else:
        text = text.rstrip() + "\n\n" + section + "\n"
    open(results, "w").write(text)
    print(section)
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:5]))
