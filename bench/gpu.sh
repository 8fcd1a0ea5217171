#!/usr/bin/env bash
# bench/gpu.sh — the GPU check of the inference engine.
#
# Runs bench/engine with the CUDA execution provider and with CPU on the same
# host, same inputs, for the compact model and the paper preset (random
# weights), checks parity with PyTorch's reference on CUDA (max abs <= 1e-4),
# runs `tmcad process` on the example studies with the paper preset on CUDA
# while sampling the GPU's utilisation, and writes the "engine on GPU"
# section of bench/RESULTS.md. DRY_RUN=1 runs the same steps without a GPU.
#
# What the host needs:
#  - third_party/onnxruntime/libonnxruntime.so.1 (1.30.0, `make deps`);
#  - the CUDA provider libraries beside it: libonnxruntime_providers_cuda.so and
#    libonnxruntime_providers_shared.so. They come from the npm package
#    com.github.asus4.onnxruntime.linux-x64-gpu@0.4.9 (Plugins/Linux/x64/, ONNX Runtime 1.29.0
#    built for CUDA 13). `bench/gpu.sh fetch` puts them there on a machine that reaches npm;
#    a host without network gets them carried (the 230 MB library may travel in pieces:
#    `bench/gpu.sh split DIR` / `bench/gpu.sh join DIR`);
#  - CUDA 13 and cuDNN 9 at run time (libcublasLt.so.13, libcublas.so.13, libcurand.so.10,
#    libcudart.so.13, libcudnn*.so.9): on LD_LIBRARY_PATH, or in a Python site folder with
#    the pip packages nvidia-cublas, nvidia-cuda-runtime, nvidia-curand, nvidia-cudnn-cu13
#    (NVIDIA_SITE=/path/to/site-packages adds their lib/ folders).
# Whether the 1.29.0 provider runs under the 1.30.0 core was unknown when this was written;
# the engine names the missing file or library when it does not.
set -euo pipefail
cd "$(dirname "$0")/.."
ORT_DIR=third_party/onnxruntime
PKG=com.github.asus4.onnxruntime.linux-x64-gpu@0.4.9
MODEL=${MODEL:-models/tmca-cxr-compact}

case "${1:-run}" in
fetch)
  tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
  (cd "$tmp" && npm pack --silent "$PKG" >/dev/null)
  tar -xzf "$tmp"/*.tgz -C "$tmp"
  for f in libonnxruntime_providers_cuda.so libonnxruntime_providers_shared.so; do
    install -m 0644 "$(find "$tmp" -name "$f" | head -1)" "$ORT_DIR/$f"
  done
  ls -la "$ORT_DIR"; exit 0 ;;
split)
  mkdir -p "$2"; zstd -19 -q -c "$ORT_DIR/libonnxruntime_providers_cuda.so" | split -b 60m - "$2/cuda.zst."
  cp "$ORT_DIR/libonnxruntime_providers_shared.so" "$2/"; ls -la "$2"; exit 0 ;;
join)
  cat "$2"/cuda.zst.* | zstd -d -q -o "$ORT_DIR/libonnxruntime_providers_cuda.so" -f
  cp "$2/libonnxruntime_providers_shared.so" "$ORT_DIR/"; exit 0 ;;
run) ;;
*) echo "usage: bench/gpu.sh [fetch|split DIR|join DIR|run]" >&2; exit 2 ;;
esac

if [ -n "${NVIDIA_SITE:-}" ]; then
  for d in "$NVIDIA_SITE"/nvidia/*/lib; do LD_LIBRARY_PATH="$d:${LD_LIBRARY_PATH:-}"; done
  export LD_LIBRARY_PATH
fi
# DRY_RUN=1 runs every step on a host without a GPU: the CPU provider stands
# in for CUDA, batches and measuring times are small, no utilisation is
# sampled, and the section goes to $OUT/RESULTS.md instead of bench/RESULTS.md
# (make test runs it so, and so proves the script before a GPU host runs it).
DRY_RUN=${DRY_RUN:-0}
out=${OUT:-$(mktemp -d)}
mkdir -p "$out"
PROVIDER=cuda BATCHES=1,4,8,16,32 SECS=6 THREADS=4 RESULTS=bench/RESULTS.md
if [ "$DRY_RUN" = 1 ]; then
  PROVIDER=cpu BATCHES=1,2 SECS=0.3 THREADS=1 RESULTS="$out/RESULTS.md"
  cp bench/RESULTS.md "$RESULTS"
  echo "dry run (no GPU)" >"$out/gpu.txt"
else
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | tee "$out/gpu.txt"
fi
go build -o "$out/engine" ./bench/engine
go build -o "$out/tmcad" ./cmd/tmcad

# The paper preset on random weights (its speed, not its accuracy), with the
# PyTorch reference tmca.export writes, so that parity is checked on CUDA too.
PAPER=${PAPER:-$out/tmca-paper}
if [ ! -f "$PAPER/model.onnx" ]; then
  /usr/bin/python3 -m tmca.export --preset paper --random-init --name tmca-paper-random --version 0.0.0 \
    --out "$PAPER" --threads "$THREADS" >"$out/paper-export.log"
  cp "$MODEL/vocab.txt" "$PAPER/vocab.txt"  # token ids of the compact vocab are within the paper preset's
fi

for m in compact paper; do
  dir=$MODEL; [ "$m" = paper ] && dir=$PAPER
  "$out/engine" -model "$dir" -provider "$PROVIDER" -batches "$BATCHES" -seconds "$SECS" -threads "$THREADS" \
    -reference -out "$out/$m-cuda.json"
  "$out/engine" -model "$dir" -provider cpu -batches "$BATCHES" -seconds "$SECS" -threads "$THREADS" -out "$out/$m-cpu.json"
done

# tmcad process on the example studies with the paper preset, the GPU's
# utilisation sampled every 100 ms while it runs.
if [ "$DRY_RUN" != 1 ]; then
  nvidia-smi --query-gpu=utilization.gpu --format=csv,noheader,nounits -lms 100 >"$out/util.txt" &
  smi=$!
fi
start=$(date +%s.%N)
"$out/tmcad" process --input examples/dicom --reports examples/reports --archive "$out/archive" --model "$PAPER" \
  --provider "$PROVIDER" --log-level warn >"$out/process.txt"
end=$(date +%s.%N)
if [ "$DRY_RUN" != 1 ]; then kill "$smi"; fi
echo "$start $end" >"$out/process-time.txt"

/usr/bin/python3 - "$out" "$RESULTS" "$PROVIDER" <<'PY'
import datetime, json, os, re, sys
out, results, provider = sys.argv[1], sys.argv[2], sys.argv[3]
gpu = open(f"{out}/gpu.txt").read().strip()
lines = ["<!-- gpu:begin -->", "## engine on GPU (`bench/gpu.sh`)", "",
         f"Measured {datetime.date.today()} on {gpu}; provider `{provider}` against the CPU of the same host.", ""]
for m in ("compact", "paper"):
    fast, cpu = json.load(open(f"{out}/{m}-cuda.json")), json.load(open(f"{out}/{m}-cpu.json"))
    parity = fast.get("reference_max_abs_diff")
    if parity is None or parity > 1e-4:
        sys.exit(f"{m}: max |engine - PyTorch| = {parity} on {provider}, over 1e-4")
    lines += [f"`{fast['model']}`: parity with PyTorch on {provider}, max abs {parity:.2g}.", "",
              f"| batch | {provider} (images/s) | CPU (images/s) | ratio |", "|---|---|---|---|"]
    lines += [f"| {b} | {fast['images_per_sec'][b]:.1f} | {cpu['images_per_sec'][b]:.1f} | "
              f"**{fast['images_per_sec'][b] / cpu['images_per_sec'][b]:.1f}×** |" for b in fast["images_per_sec"]]
    lines.append("")
t0, t1 = map(float, open(f"{out}/process-time.txt").read().split())
summary = open(f"{out}/process.txt").read().strip().splitlines()[-1]
util = "not sampled (dry run)"
if os.path.exists(f"{out}/util.txt"):
    vals = [float(v) for v in open(f"{out}/util.txt").read().split() if v.strip().replace(".", "").isdigit()]
    if vals:
        busy = sum(1 for v in vals if v > 0) / len(vals)
        util = f"mean {sum(vals) / len(vals):.0f} %, busy in {busy:.0%} of {len(vals)} samples"
lines += [f"`tmcad process` on the example studies with the paper preset: {t1 - t0:.1f} s, GPU utilisation {util}.",
          f"Its summary: {summary}", "<!-- gpu:end -->"]
sec = "\n".join(lines)
t = open(results).read()
t = re.sub(r"<!-- gpu:begin -->.*?<!-- gpu:end -->", lambda _: sec, t, flags=re.S) if "<!-- gpu:begin -->" in t else t.rstrip() + "\n\n" + sec + "\n"
open(results, "w").write(t)
print(sec)
PY
