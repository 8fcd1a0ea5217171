#!/usr/bin/env bash
# bench/gpu.sh — the GPU check of the inference engine.
#
# Runs bench/engine with the CUDA execution provider and with CPU on the same
# host, same model and inputs, and writes the "engine on GPU" section of
# bench/RESULTS.md (images/s per batch size, CUDA against CPU).
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
out=${OUT:-$(mktemp -d)}
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | tee "$out/gpu.txt"
go run ./bench/engine -model "$MODEL" -provider cuda -batches 1,4,8,16,32 -threads 4 -out "$out/cuda.json"
go run ./bench/engine -model "$MODEL" -provider cpu -batches 1,4,8,16,32 -threads 4 -out "$out/cpu.json"
/usr/bin/python3 - "$out" <<'PY'
import json, sys, datetime, re, os
out = sys.argv[1]
cuda, cpu = json.load(open(f"{out}/cuda.json")), json.load(open(f"{out}/cpu.json"))
gpu = open(f"{out}/gpu.txt").read().strip()
rows = [f"| {b} | {cuda['images_per_sec'][b]:.1f} | {cpu['images_per_sec'][b]:.1f} | **{cuda['images_per_sec'][b]/cpu['images_per_sec'][b]:.1f}×** |" for b in cuda["images_per_sec"]]
sec = "\n".join(["<!-- gpu:begin -->", "## engine on GPU (`bench/gpu.sh`)", "",
    f"Measured {datetime.date.today()} on {gpu}; model `{cuda['model']}`; CPU side: same host, {cpu['threads']} threads.", "",
    "| batch | CUDA (images/s) | CPU (images/s) | ratio |", "|---|---|---|---|", *rows, "<!-- gpu:end -->"])
p = "bench/RESULTS.md"
t = open(p).read()
t = re.sub(r"<!-- gpu:begin -->.*?<!-- gpu:end -->", lambda _: sec, t, flags=re.S) if "<!-- gpu:begin -->" in t else t.rstrip() + "\n\n" + sec + "\n"
open(p, "w").write(t); print(sec)
PY
