"""Writes the engine section of bench/RESULTS.md from bench/engine (Go) and torch_bench.py JSON."""
from __future__ import annotations

import datetime
import json
import os
import platform
import re
import sys

BEGIN, END = "<!-- engine:begin -->", "<!-- engine:end -->"


def cpu_name() -> str:
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def best_of(rounds: list[dict], key: str) -> dict:
    """Each batch size's best images/s over the rounds."""
    out: dict = {}
    for r in rounds:
        for bs, v in r[key].items():
            out[bs] = max(out.get(bs, 0.0), v)
    return out


def pipeline_rows(label: str, series: str, runs: list[dict]) -> list[str]:
    """One table row: every repetition of every round, and the median round's breakdown."""
    if not runs or any(r is None for r in runs):
        return []
    every = sorted(o for r in runs for o in r["overheads"])
    med_round = sorted(runs, key=lambda r: r["overhead_fraction"])[len(runs) // 2]
    median = every[len(every) // 2]
    return [f"| {label} | {series} | **{100 * median:.1f}%** | {100 * every[0]:.1f}–{100 * every[-1]:.1f}% "
            f"({len(every)}) | {med_round['wall_s'] * 1e3:.0f} ms | {med_round['head_s'] * 1e3:.1f} / "
            f"{max(med_round['gaps_s'], 0) * 1e3:.1f} / {med_round['tail_s'] * 1e3:.1f} ms |"]


def as_pipeline(g: dict) -> dict:
    """The plain series' figures of a bench/engine result in PipelineResult's keys."""
    return {"frames": g["pipeline_frames"], "wall_s": g["pipeline_wall_s"], "run_s": g["pipeline_run_s"],
            "overhead_fraction": g["pipeline_overhead_fraction"], "head_s": g["pipeline_head_s"],
            "gaps_s": g["pipeline_gaps_s"], "tail_s": g["pipeline_tail_s"], "overheads": g["pipeline_overheads"]}


def overhead_lines(gos: list[dict], gos2: list[dict]) -> list[str]:
    """The pipeline-overhead paragraph and table."""
    g = gos[0]
    c = gos2[0]["concurrent_runs"]
    rows: list[str] = []
    for label, rs in ((f"{c} runs × 1 thread (the CPU default)", gos2), (f"1 run × {g['threads']} threads", gos)):
        rows += pipeline_rows(label, "plain", [as_pipeline(r) for r in rs])
        rows += pipeline_rows(label, "Pixel Padding Value declared", [r.get("pipeline_padded") for r in rs])
    return [
        f"Pipeline overhead, {g['pipeline_frames']}-slice 512×512 CT series through `daemon.Pipeline` "
        "(header pass, pixel decoding, tokenizer, pre-processing, model, post-processing to the source grid, mask "
        "packing, SEG encoding): the wall time during which no ONNX Runtime session run is in progress, as a "
        f"fraction of the whole. {len(g['pipeline_overheads'])} repetitions per round, each after a garbage "
        "collection (as a job after an idle spell would start), in every round; the table gives the median and the "
        "range of all of them, and for the median round where the remaining overhead sits: before the first run "
        "starts, between runs, after the last run. The model starts on the first frames while the rest of the "
        "series is decoded; a series that declares a Pixel Padding Value (most scanners' CTs) takes the same path, "
        f"its padding filled per frame. LoadSeries alone takes {g['pipeline_load_s'] * 1e3:.0f} ms. Goal: ≤ 10%.",
        "",
        "| Go configuration | series | overhead (median) | range (repetitions) | wall, median round | before / between / after runs |",
        "|---|---|---|---|---|---|",
    ] + rows


def main(folder: str, n: str, results: str) -> int:
    gos = [json.load(open(f"{folder}/engine-{i}.json")) for i in range(1, int(n) + 1)]
    pts = [json.load(open(f"{folder}/torch-{i}.json")) for i in range(1, int(n) + 1)]
    gos2 = [json.load(open(f"{folder}/engine2-{i}.json")) for i in range(1, int(n) + 1)]
    conc = best_of(gos2, "images_per_sec")
    go, pt = dict(gos[0]), dict(pts[0])
    go["images_per_sec"], pt["images_per_sec"] = best_of(gos, "images_per_sec"), best_of(pts, "images_per_sec")
    go["matmul_gflops"] = max(g.get("matmul_gflops", 0.0) for g in gos)
    pt["torch_matmul_gflops"] = max(p.get("torch_matmul_gflops", 0.0) for p in pts)
    flops = pt["flops_per_image"]
    peak = go.get("matmul_gflops", 0.0) * 1e9
    lines = [BEGIN, "## engine: TMCA through ONNX Runtime vs PyTorch eager (`make bench`)", "",
             f"Measured {datetime.date.today()} on {cpu_name()}, {os.cpu_count()} CPUs visible (shared "
             f"machine; compare ratios, not absolute rates), model `{go['model']}`, "
             f"{go['threads']} threads on both sides (ONNX Runtime intra-op threads, torch.set_num_threads). "
             f"Same inputs, same batch sizes, same run: {n} rounds alternating PyTorch and Go, each side's best round "
             "per batch size (a round's figure is the median run time after a warm-up).", "",
             f"Go engine in two configurations of the same {go['threads']} CPUs: one run at a time with "
             f"{go['threads']} intra-op threads, and {gos2[0]['concurrent_runs']} concurrent runs of one thread each "
             "(`model.concurrent_runs`); the ratio is the faster one against PyTorch.", "",
             f"| batch | Go, 1 run × {go['threads']} threads (images/s) | Go, {gos2[0]['concurrent_runs']} runs × 1 thread (images/s) | PyTorch eager (images/s) | ratio | achieved GFLOP/s | fraction of MatMul peak |",
             "|---|---|---|---|---|---|---|"]
    for bs, ips1 in sorted(go["images_per_sec"].items(), key=lambda kv: int(kv[0])):
        ips2 = conc.get(bs, 0.0)
        ips = max(ips1, ips2)
        t = pt["images_per_sec"].get(bs)
        achieved = ips * flops
        frac = achieved / peak if peak else float("nan")
        lines.append(f"| {bs} | {ips1:.1f} | {ips2:.1f} | {t:.1f} | **{ips / t:.2f}×** | {achieved / 1e9:.1f} | {frac:.2f} |")
    lines += ["",
              f"FLOPs per image: {flops / 1e9:.3f} GFLOP (2 × multiply-adds of convolutions, linear layers and "
              "matrix products, counted by torch.profiler with_flops). Machine peak: a "
              f"{go.get('matmul_n')}² float32 MatMul through the same ONNX Runtime reaches "
              f"{go.get('matmul_gflops', 0):.1f} GFLOP/s (PyTorch/OpenBLAS `mm`: {pt.get('torch_matmul_gflops', 0):.1f} GFLOP/s).",
              "",
              ] + overhead_lines(gos, gos2) + [
              END]
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
    sys.exit(main(*sys.argv[1:4]))
