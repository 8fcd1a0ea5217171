"""Dice per report phrasing family, end to end through ``tmcad process``.

``/usr/bin/python3 -m tmca.report_eval --tmcad bin/tmcad --model models/tmca-cxr-compact --seed 4712 --n 40 --out runs/report-eval [--update-card]``

1. Writes ``--n`` phantom CR studies of ``--seed`` (4712 is used by nothing
   else) with ``tmca.dicom_writer`` into ``OUT/data`` once: the images and the
   truth masks are the same for every family.
2. For every CR family of ``tmca.report_corpus`` and the left/right-swapped
   controls, writes ``OUT/reports/<family>/<AccessionNumber>.txt`` (and the
   expected guide texts to ``OUT/expected/<family>.jsonl``), runs
   ``tmcad process --input OUT/data/dicom --reports ... --masks-png OUT/masks/<family>``
   and scores each image's PNG mask against its truth (per-image Dice; an image
   without a mask counts as an empty prediction).
3. Prints a markdown table (family | held out | n | Dice mean | Δ vs template)
   and a line for the ``negative`` family (reports with no target: how many
   series got no SEG), and writes ``OUT/results.json``.

``--update-card`` puts the table between ``<!-- realistic-reports -->`` and
``<!-- /realistic-reports -->`` in ``<model>/MODEL_CARD.md`` (appending it under
"## Metrics — realistic reports" when the markers are missing) and sets
``"realistic_reports"`` in ``<model>/metrics.json``.
"""
from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
import zlib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from .dicom_writer import write_cr_study
from .phantoms import PhantomCase, cxr_case
from .report_corpus import FAMILIES, SWAPPED_CONTROLS, realistic_report, swapped_report

DEFAULT_SEED = 4712
CARD_START = "<!-- realistic-reports -->"
CARD_END = "<!-- /realistic-reports -->"
CARD_HEADING = "## Metrics — realistic reports"


@dataclass
class Variant:
    """One column of reports to run: a family, or a swapped control of one."""

    name: str
    base: str  # the family whose text generator is used
    held_out: bool
    control: bool = False  # a left/right-swapped control


@dataclass
class Score:
    """What one ``tmcad process`` run gave for a variant."""

    name: str
    held_out: bool
    control: bool
    n: int
    dice_mean: float | None
    no_seg: int  # series with no SEG written
    no_target: int  # series whose summary row says "no target"
    exit_code: int
    dice: list[float] = field(default_factory=list)
    dice_mean_raw: float | None = None  # the model alone: the report's sections as they are, no normaliser


def variants() -> list[Variant]:
    """Every CR family, then the swapped controls."""
    out = [Variant(f.name, f.name, f.held_out) for f in FAMILIES if f.modality == "CR"]
    held = {f.name: f.held_out for f in FAMILIES}
    out += [Variant(c, base, held[base], control=True) for c, base in SWAPPED_CONTROLS]
    return out


# ----------------------------------------------------------------------------- pure parts


def dice(pred: np.ndarray, truth: np.ndarray) -> float:
    """Dice of two boolean masks; 1 when both are empty (the convention of ``tmca.eval``)."""
    p, t = np.asarray(pred, bool), np.asarray(truth, bool)
    if p.shape != t.shape:
        raise ValueError(f"mask shapes differ: {p.shape} vs {t.shape}")
    total = int(p.sum()) + int(t.sum())
    return 1.0 if total == 0 else 2.0 * int((p & t).sum()) / total


def read_mask(path: Path) -> np.ndarray:
    """A 0/255 PNG mask as booleans (``> 127``)."""
    return np.asarray(Image.open(path).convert("L")) > 127


def _has_seg(row: dict[str, Any]) -> bool:
    """A summary row names a stored SEG (its ``output`` is a path, not a parenthesised note)."""
    out = str(row.get("output") or "")
    return bool(out) and not out.startswith("(") and not row.get("error")


def score_run(summary: dict[str, Any], masks_dir: Path, truth: dict[str, Path]) -> tuple[list[float], int, int]:
    """Per-image Dice over ``truth`` (SOP UID -> truth PNG), and the no-SEG / no-target series counts.

    ``summary`` is tmcad's ``summary.json``; an image it wrote no mask for is
    scored as an empty prediction.
    """
    masks: dict[str, Path] = {}
    no_seg = no_target = 0
    for row in summary.get("series", []):
        if row.get("skipped"):
            continue
        no_seg += not _has_seg(row)
        no_target += row.get("no_target") is True
        for m in row.get("masks") or []:
            masks[m["sop_instance_uid"]] = masks_dir / m["file"]
    scores = []
    for sop, tp in truth.items():
        t = read_mask(tp)
        p = read_mask(masks[sop]) if sop in masks and masks[sop].exists() else np.zeros_like(t)
        scores.append(dice(p, t))
    return scores, no_seg, no_target


def _fmt(x: float | None) -> str:
    return "—" if x is None else f"{x:.3f}"


def render_table(scores: list[Score], header: str = "") -> str:
    """The markdown table (family | held out | n | Dice mean | Δ vs template) and the negative line."""
    ref = next((s.dice_mean for s in scores if s.name == "template"), None)
    lines = [header, ""] if header else []
    lines += ["| family | held out | n | Dice mean | Δ vs template | model alone (no normaliser) |",
              "|---|---|---|---|---|---|"]
    for s in scores:
        if s.name == "negative":
            continue
        name = f"{s.name} (control)" if s.control else s.name
        if s.name == "template" or s.dice_mean is None or ref is None:
            delta = "—"
        else:
            delta = f"{s.dice_mean - ref:+.3f}"
        lines.append(f"| {name} | {'yes' if s.held_out else 'no'} | {s.n} | {_fmt(s.dice_mean)} | {delta} "
                     f"| {_fmt(s.dice_mean_raw)} |")
    neg = next((s for s in scores if s.name == "negative"), None)
    if neg is not None:
        lines += ["", f"Negative reports (no target described; outcome only, no Dice): {neg.no_target}/{neg.n} "
                      f"recorded as \"no target\" without a model run; {neg.n - neg.no_seg} of them with an empty "
                      f"SEG (seg.write_when_empty), {neg.no_seg} with none."]
    return "\n".join(lines)


def replace_card_block(card: str, block: str) -> str:
    """``card`` with the text between the realistic-reports markers replaced by ``block``.

    Without the markers, the block is appended under ``CARD_HEADING``.
    """
    wrapped = f"{CARD_START}\n{block.strip()}\n{CARD_END}"
    i, j = card.find(CARD_START), card.find(CARD_END)
    if i >= 0 and j > i:
        return card[:i] + wrapped + card[j + len(CARD_END):]
    if i >= 0 or j >= 0:
        raise ValueError(f"the model card has only one of {CARD_START} and {CARD_END}: fix it by hand")
    return card.rstrip("\n") + f"\n\n{CARD_HEADING}\n\n{wrapped}\n"


def results_doc(scores: list[Score], seed: int, n: int, model: str, tmcad_version: str) -> dict[str, Any]:
    """``results.json`` (and ``metrics.json``'s ``realistic_reports``): scores without the per-image lists."""
    ref = next((s.dice_mean for s in scores if s.name == "template"), None)
    fams = {}
    for s in scores:
        d = {k: v for k, v in asdict(s).items() if k not in ("name", "dice")}
        for k in ("dice_mean", "dice_mean_raw"):
            if d[k] is not None:
                d[k] = round(d[k], 4)
        d["delta_vs_template"] = None if (s.dice_mean is None or ref is None or s.name == "template") \
            else round(s.dice_mean - ref, 4)
        fams[s.name] = d
    return {"seed": seed, "n": n, "model": model, "tmcad": tmcad_version,
            "metric": "per-image Dice of tmcad's PNG masks against the phantom truth; no mask = empty prediction",
            "held_out": [s.name for s in scores if s.held_out and not s.control], "families": fams}


# ----------------------------------------------------------------------------- running


def _family_rng(seed: int, family: str, index: int) -> np.random.Generator:
    """The phrasing generator of one report: fixed by seed, family name and case index."""
    return np.random.default_rng([seed, zlib.crc32(family.encode()), index])


def write_data(out: Path, seed: int, n: int, size: int = 256) -> list[tuple[PhantomCase, dict[str, Any]]]:
    """``n`` CR studies of ``seed`` under ``out`` (dicom/, truth/, cases.json); returns (case, entry) pairs."""
    if out.exists():
        shutil.rmtree(out)
    for sub in ("dicom", "truth"):
        (out / sub).mkdir(parents=True)
    pairs = []
    for i in range(n):
        case = cxr_case(seed, i, size=size)
        pairs.append((case, write_cr_study(out, seed, i + 1, case, i)))
    doc = {"generator": "tmca.report_eval", "seed": seed, "series": [e for _, e in pairs]}
    (out / "cases.json").write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
    return pairs


def write_reports(folder: Path, expected: Path, v: Variant, pairs: list[tuple[PhantomCase, dict[str, Any]]],
                  seed: int) -> None:
    """One ``<AccessionNumber>.txt`` per study with the variant's report; expected guides as JSON lines."""
    folder.mkdir(parents=True, exist_ok=True)
    expected.parent.mkdir(parents=True, exist_ok=True)
    with open(expected, "w", encoding="utf-8") as f:
        for i, (case, entry) in enumerate(pairs):
            rng = _family_rng(seed, v.base, i)
            text, guide = swapped_report(v.name, case, rng) if v.control else realistic_report(v.name, case, rng)
            (folder / f"{entry['accession']}.txt").write_text(text + "\n", encoding="utf-8")
            f.write(json.dumps({"accession": entry["accession"], "report": text, "guide": guide}) + "\n")


def run_tmcad(tmcad: str, dicom: Path, reports: Path, masks: Path, model: str) -> int:
    """``tmcad process`` on one reports folder; returns its exit code (0, or 1 when a series failed)."""
    if masks.exists():
        shutil.rmtree(masks)
    masks.mkdir(parents=True)  # tmcad writes summary.json there even when no series has a mask
    with tempfile.TemporaryDirectory(prefix="tmca-report-eval-") as archive:
        cmd = [tmcad, "process", "--input", str(dicom), "--reports", str(reports), "--archive", archive,
               "--masks-png", str(masks), "--model", model, "--log-level", "warn"]
        proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode not in (0, 1) or not (masks / "summary.json").exists():
        raise RuntimeError(f"{' '.join(cmd)} exited {proc.returncode} without summary.json:\n"
                           f"{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    return proc.returncode


def model_without_guide(model: str, folder: Path) -> str:
    """A copy of the model folder whose manifest declares no guide-text form.

    tmcad then feeds the report's sections as they are (truncated to the
    model's token budget): the model alone, without the report normaliser.
    """
    src = Path(model).resolve()
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    for p in src.iterdir():
        if p.name != "manifest.json":
            (folder / p.name).symlink_to(p)
    manifest = json.loads((src / "manifest.json").read_text(encoding="utf-8"))
    manifest.pop("guide", None)
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return str(folder)


def tmcad_version(tmcad: str) -> str:
    """The first line of ``tmcad version`` (or "unknown")."""
    try:
        out = subprocess.run([tmcad, "version"], capture_output=True, text=True, timeout=60).stdout
    except OSError:
        return "unknown"
    return out.splitlines()[0].strip() if out.strip() else "unknown"


def update_card(model_dir: Path, table: str, doc: dict[str, Any], command: str) -> None:
    """Write the table into MODEL_CARD.md and the results into metrics.json's ``realistic_reports``."""
    card_p = model_dir / "MODEL_CARD.md"
    block = (f"{doc['n']} phantom CR studies of seed {doc['seed']} (used by nothing else), the same images for "
             f"every family; each family's reports go through `tmcad process` ({doc['tmcad']}), per-image Dice "
             f"of its PNG masks against the truth (an image with no mask counts as an empty prediction). "
             f"Held-out families are never used to tune the report normaliser. \"Model alone\" feeds the same "
             f"reports' sections to the model as they are (the manifest without its guide-text form), truncated "
             f"to its 24 tokens.\n\n{table}\n\n"
             f"Reproduce: `{command}` (or `make eval-reports`).")
    card_p.write_text(replace_card_block(card_p.read_text(encoding="utf-8"), block), encoding="utf-8")
    metrics_p = model_dir / "metrics.json"
    metrics = json.loads(metrics_p.read_text(encoding="utf-8")) if metrics_p.exists() else {}
    metrics["realistic_reports"] = doc
    metrics_p.write_text(json.dumps(metrics, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


def evaluate(tmcad: str, model: str, seed: int, n: int, out: Path) -> list[Score]:
    """Write the studies once, then run and score every variant."""
    pairs = write_data(out / "data", seed, n)
    truth = {e["sop_instance_uids"][0]: out / "data" / "truth" / f"{e['sop_instance_uids'][0]}.png"
             for _, e in pairs}
    raw_model = model_without_guide(model, out / "model-without-guide")
    scores = []
    for v in variants():
        t0 = time.time()
        reports = out / "reports" / v.name
        if reports.exists():
            shutil.rmtree(reports)
        write_reports(reports, out / "expected" / f"{v.name}.jsonl", v, pairs, seed)
        masks = out / "masks" / v.name
        code = run_tmcad(tmcad, out / "data" / "dicom", reports, masks, model)
        summary = json.loads((masks / "summary.json").read_text(encoding="utf-8"))
        d, no_seg, no_target = score_run(summary, masks, truth)
        mean = None if v.name == "negative" else float(np.mean(d))
        score = Score(v.name, v.held_out, v.control, len(d), mean, no_seg, no_target, code, d)
        if v.name != "negative":
            raw_masks = out / "masks-without-guide" / v.name
            run_tmcad(tmcad, out / "data" / "dicom", reports, raw_masks, raw_model)
            summary = json.loads((raw_masks / "summary.json").read_text(encoding="utf-8"))
            score.dice_mean_raw = float(np.mean(score_run(summary, raw_masks, truth)[0]))
        scores.append(score)
        print(f"{v.name:22s} Dice {_fmt(mean)}  no SEG {no_seg}/{len(d)}  ({time.time() - t0:.1f}s)",
              file=sys.stderr, flush=True)
    return scores


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tmcad", default="bin/tmcad", help="the tmcad binary")
    ap.add_argument("--model", default="models/tmca-cxr-compact", help="model folder (tmcad --model)")
    ap.add_argument("--seed", type=int, default=DEFAULT_SEED, help="phantom seed (4712: used by nothing else)")
    ap.add_argument("--n", type=int, default=100, help="CR studies")
    ap.add_argument("--out", type=Path, default=Path("runs/report-eval"))
    ap.add_argument("--update-card", action="store_true",
                    help="write the table into <model>/MODEL_CARD.md and metrics.json")
    args = ap.parse_args(argv)
    if not Path(args.tmcad).exists():
        ap.error(f"--tmcad {args.tmcad} does not exist: build it with `make build`")
    t0 = time.time()
    scores = evaluate(args.tmcad, args.model, args.seed, args.n, args.out)
    model_name = Path(args.model).name
    version = tmcad_version(args.tmcad)
    doc = results_doc(scores, args.seed, args.n, model_name, version)
    (args.out / "results.json").write_text(json.dumps(doc, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    table = render_table(scores)
    print(table)
    command = (f"/usr/bin/python3 -m tmca.report_eval --tmcad {args.tmcad} --model {args.model} "
               f"--seed {args.seed} --n {args.n} --out {args.out} --update-card")
    if args.update_card:
        update_card(Path(args.model), table, doc, command)
    print(f"\n{len(scores)} runs in {time.time() - t0:.0f}s; results in {args.out / 'results.json'}", file=sys.stderr)


if __name__ == "__main__":
    main()
