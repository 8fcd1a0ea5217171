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
ROUNDS=${ROUNDS:-3}
$PY -m tmca.dicom_writer --seed 4800 --cr 0 --ct 1 --ct-slices 100 --ct-size 512 --out "$tmp/ct100" >/dev/null
# The same series declaring a Pixel Padding Value, as most scanners' CTs do.
$PY bench/engine/pad_series.py "$tmp/ct100" "$tmp/ct100p" >/dev/null
go build -o "$tmp/bench-engine" ./bench/engine
# Rounds alternate the two sides, so that a noisy neighbour on a shared
# machine hits both; report.py takes each side's best round per batch size.
for r in $(seq 1 "$ROUNDS"); do
  echo "-- round $r/$ROUNDS"
  $PY bench/engine/torch_bench.py --checkpoint "$MODEL/checkpoint.pt" --threads "$THREADS" --seconds 4 \
    --out "$tmp/torch-$r.json" --write-matmul "$tmp/matmul.onnx"
  "$tmp/bench-engine" -model "$MODEL" -threads "$THREADS" -seconds 4 -matmul "$tmp/matmul.onnx" -ct "$tmp/ct100" -ct-padded "$tmp/ct100p" -out "$tmp/engine-$r.json"
  # The same CPUs as $THREADS concurrent runs of one thread each (model.concurrent_runs).
  "$tmp/bench-engine" -model "$MODEL" -threads 1 -concurrent "$THREADS" -seconds 4 -ct "$tmp/ct100" -ct-padded "$tmp/ct100p" -out "$tmp/engine2-$r.json"
done
$PY bench/engine/report.py "$tmp" "$ROUNDS" bench/RESULTS.md

if [ "${BENCH_ALL:-0}" = 1 ]; then
  echo "== dicomio"; go run ./bench/dicomio -reps 3
  echo "== writer"; go run ./bench/writer -runs 21
fi
