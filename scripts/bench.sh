#!/usr/bin/env bash
# Runs the benchmarks; each measures tmcad against a peer in the same run and
# reports ratios. The engine, "Paper preset on CPU", "doors" and "load"
# sections of bench/RESULTS.md are rewritten from this run; the dicomio and writer programs print their tables (see their
# sections in bench/RESULTS.md for how they were recorded).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=/usr/bin/python3
MODEL=${MODEL:-models/tmca-cxr-compact}
THREADS=${THREADS:-2}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

ROUNDS=${ROUNDS:-3}
# COMPACT=0, PAPER=0, DOORS=0 or LOAD=0 skips that section.
COMPACT=${COMPACT:-1}
PAPER=${PAPER:-1}
DOORS=${DOORS:-1}
LOAD=${LOAD:-1}
# The load section's size: LOAD_N series, half CR, half CT of LOAD_CT_SLICES
# slices of 512², generated once into LOAD_CACHE (outside the repository;
# 52 MB per 100-slice CT).
LOAD_N=${LOAD_N:-40}
LOAD_CT_SLICES=${LOAD_CT_SLICES:-100}
LOAD_CACHE=${LOAD_CACHE:-/tmp/tmcad-load-cache}
# The paper-size model (random weights, 341 MB of ONNX) is exported once
# into this cache folder, outside the repository.
PAPER_MODEL=${PAPER_MODEL:-/tmp/tmcad-bench-cache/tmca-paper}
PAPER_ROUNDS=${PAPER_ROUNDS:-2}
go build -o "$tmp/bench-engine" ./bench/engine

if [ "$COMPACT" = 1 ]; then
echo "== engine: TMCA through ONNX Runtime (Go) vs PyTorch eager, same inputs, $THREADS threads"
$PY -m tmca.dicom_writer --seed 4800 --cr 0 --ct 1 --ct-slices 100 --ct-size 512 --out "$tmp/ct100" >/dev/null
# The same series declaring a Pixel Padding Value, as most scanners' CTs do.
$PY bench/engine/pad_series.py "$tmp/ct100" "$tmp/ct100p" >/dev/null
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
fi

if [ "$PAPER" = 1 ]; then
echo "== paper preset on CPU: Go engine vs PyTorch eager, batch 1 and 8, $THREADS threads"
$PY bench/engine/paper.py export --out "$PAPER_MODEL" --threads "$THREADS"
# ONNX Runtime session settings tried on the Go side (name graph-opt
# intra-op-threads concurrent-runs inter-op-threads); every round runs each
# of them, alternating with PyTorch, one process per measurement so that
# each peak RSS is its own.
configs="all-1run-2threads all 2 1 0
extended-1run-2threads extended 2 1 0
basic-1run-2threads basic 2 1 0
disable-1run-2threads disable 2 1 0
all-2runs-1thread all 1 2 0
all-1run-2threads-interop2 all 2 1 2"
for r in $(seq 1 "$PAPER_ROUNDS"); do
  echo "-- round $r/$PAPER_ROUNDS"
  $PY bench/engine/paper.py torch --threads "$THREADS" --batches 1,8 --seconds 6 --out "$tmp/paper-torch-$r.json"
  while read -r name opt intra conc inter; do
    if [ "$intra" = 2 ]; then intra=$THREADS; fi
    if [ "$conc" = 2 ]; then conc=$THREADS; fi
    "$tmp/bench-engine" -model "$PAPER_MODEL" -batches 1,8 -seconds 6 -graph-opt "$opt" \
      -threads "$intra" -concurrent "$conc" -inter-op "$inter" -out "$tmp/paper-go-$name-$r.json"
  done <<<"$configs"
done
$PY bench/engine/paper_report.py "$tmp" "$PAPER_ROUNDS" "$PAPER_MODEL" bench/RESULTS.md
fi

if [ "$DOORS" = 1 ]; then
echo "== doors: the DICOM receiver (with and without tmcad dicom-gate) vs storescp alone; the HL7 listener vs MLLP sinks"
ROUNDS="$ROUNDS" bench/doors.sh
fi

if [ "$LOAD" = 1 ]; then
echo "== load: the daemon end to end (tmcad run), $LOAD_N series, half CR, half ${LOAD_CT_SLICES}-slice CT; burst, then steady at 80% of the SQLite burst's capacity; SQLite and PostgreSQL"
go build -o "$tmp/tmcad" ./cmd/tmcad
go build -o "$tmp/bench-load" ./bench/load
# The run folder must share a filesystem with the cache (arrivals are hard links, renamed in).
lc=(-n "$LOAD_N" -ct-slices "$LOAD_CT_SLICES" -cache "$LOAD_CACHE" -bin "$tmp/tmcad" -out "$tmp/load" -work "$(dirname "$LOAD_CACHE")/tmcad-load-run")
# stable_after 1s in every run: a series still waits for files of its
# own that the cataloguing backlog holds.
"$tmp/bench-load" "${lc[@]}" -stable-after 1s -db sqlite -mode burst
"$tmp/bench-load" "${lc[@]}" -stable-after 1s -db postgres -mode burst
"$tmp/bench-load" "${lc[@]}" -stable-after 1s -db sqlite -mode steady -rate-from "$tmp/load/sqlite-burst-n$LOAD_N.json"
"$tmp/bench-load" "${lc[@]}" -stable-after 1s -db postgres -mode steady -rate-from "$tmp/load/sqlite-burst-n$LOAD_N.json"
"$tmp/bench-load" report -results-md bench/RESULTS.md -png-dir bench -intro bench/load/intro.md \
  "$tmp/load/sqlite-burst-n$LOAD_N.json" "$tmp/load/postgres-burst-n$LOAD_N.json" \
  "$tmp/load/sqlite-steady-n$LOAD_N.json" "$tmp/load/postgres-steady-n$LOAD_N.json"
fi

if [ "${BENCH_ALL:-0}" = 1 ]; then
  echo "== dicomio"; go run ./bench/dicomio -reps 3
  echo "== writer"; go run ./bench/writer -runs 21
fi
