#!/usr/bin/env bash
# Runs the benchmarks; each measures tmcad against a peer in the same run and
# reports ratios. The engine section of bench/RESULTS.md is rewritten from
# this run; the dicomio and writer programs print their tables (see their
# sections in bench/RESULTS.md for how they were recorded).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=/usr/bin/python3
MODEL=${MODEL:-models/tmca-cxr-compact}
THREADS=${THREADS:-2}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

echo "== engine: TMCA through ONNX Runtime (Go) vs PyTorch eager, same inputs, $THREADS threads"
$PY bench/engine/torch_bench.py --checkpoint "$MODEL/checkpoint.pt" --threads "$THREADS" --out "$tmp/torch.json" --write-matmul "$tmp/matmul.onnx"
$PY -m tmca.dicom_writer --seed 4800 --cr 0 --ct 1 --ct-slices 100 --ct-size 512 --out "$tmp/ct100" >/dev/null
go run ./bench/engine -model "$MODEL" -threads "$THREADS" -matmul "$tmp/matmul.onnx" -ct "$tmp/ct100" -out "$tmp/engine.json"
$PY bench/engine/report.py "$tmp/engine.json" "$tmp/torch.json" bench/RESULTS.md

if [ "${BENCH_ALL:-0}" = 1 ]; then
  echo "== dicomio"; go run ./bench/dicomio -reps 3
  echo "== writer"; go run ./bench/writer -runs 21
fi
