#!/usr/bin/env bash
# Installs what tmcad needs to build, test and run its demo, and nothing twice:
# quiet when nothing is missing. Run by `make deps` (and so by `make demo` and
# `make test`). Each failure says which step failed and what to do.
set -euo pipefail
cd "$(dirname "$0")/.."

ORT_VERSION=1.30.0
ORT_DIR=third_party/onnxruntime
ORT_LIB="$ORT_DIR/libonnxruntime.so.1"
ORT_NPM="onnxruntime-node@${ORT_VERSION}"
ORT_MEMBER="package/bin/napi-v6/linux/x64/libonnxruntime.so.1"

# Debian packages: the model's Python stack, the real peers the tests start
# (Orthanc, dcmtk, dicom3tools, PostgreSQL, systemd-analyze, python3-hl7's
# mllp_send), dcmtk's dcmsend for archive.kind = "dimse", the codec
# libraries dicomio links through cgo (CharLS for JPEG-LS, OpenJPEG for
# JPEG 2000), the encoders that write its compressed fixtures,
# examples/compressed and the compressed copies of the examples that
# `make test` processes (dcmtk, opj_compress, gdcmconv), and GDCM's Python
# binding, through which `make bench`'s pydicom peer decodes compressed
# series.
DEB_PACKAGES=(
  python3-torch python3-torchvision python3-onnx python3-numpy python3-pydicom python3-pytest
  python3-pil python3-skimage libopenblas0-pthread
  orthanc orthanc-dicomweb dcmtk dicom3tools postgresql systemd python3-hl7
  gcc pkg-config libcharls-dev libopenjp2-7-dev libopenjp2-tools libgdcm-tools python3-gdcm openjph-tools
)
# npm fetches ONNX Runtime and OHIF's SEG loader; Debian's npm (which brings
# Node.js) only where none is installed.
command -v npm >/dev/null || DEB_PACKAGES+=(npm)

fail() { echo "deps: $1" >&2; exit 1; }

# 1. Debian packages.
missing=()
for p in "${DEB_PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
if ((${#missing[@]})); then
  if [ "$(id -u)" -ne 0 ]; then
    echo "deps: missing Debian packages. Run as root:" >&2
    echo "  apt-get update && apt-get install -y ${missing[*]}" >&2
    exit 1
  fi
  echo "deps: installing Debian packages: ${missing[*]}"
  apt-get update -qq >/dev/null || fail "step 'apt-get update' failed: check the Debian mirror in /etc/apt/sources.list"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/tmp/tmcad-deps-apt.log 2>&1 \
    || { tail -20 /tmp/tmcad-deps-apt.log >&2; fail "step 'apt-get install ${missing[*]}' failed (log: /tmp/tmcad-deps-apt.log)"; }
fi

# 2. Go toolchain and modules.
command -v go >/dev/null || fail "step 'go' failed: Go 1.26 is not on PATH (install it to /usr/local/go)"
go mod download >/dev/null 2>&1 || fail "step 'go mod download' failed: check that the Go module proxy is reachable (go env GOPROXY)"

# 3. ONNX Runtime 1.30.0 from the npm package onnxruntime-node, checked
#    against the SHA-256 committed in third_party/onnxruntime.sha256.
want_sha=$(awk '{print $1}' third_party/onnxruntime.sha256)
have_sha() { [ -f "$ORT_LIB" ] && [ "$(sha256sum "$ORT_LIB" | awk '{print $1}')" = "$want_sha" ]; }
if ! have_sha; then
  echo "deps: fetching ONNX Runtime ${ORT_VERSION} (npm pack ${ORT_NPM})"
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  (cd "$tmp" && npm pack --silent "$ORT_NPM" >/dev/null 2>"$tmp/npm.err") \
    || { cat "$tmp/npm.err" >&2; fail "step 'npm pack ${ORT_NPM}' failed: check that the npm registry is reachable (npm ping)"; }
  tar -xzf "$tmp"/onnxruntime-node-*.tgz -C "$tmp" "$ORT_MEMBER" \
    || fail "step 'extract ${ORT_MEMBER}' failed: the npm package layout changed"
  got=$(sha256sum "$tmp/$ORT_MEMBER" | awk '{print $1}')
  [ "$got" = "$want_sha" ] || fail "step 'verify SHA-256' failed: got $got, want $want_sha (third_party/onnxruntime.sha256); refusing to install"
  mkdir -p "$ORT_DIR"
  install -m 0644 "$tmp/$ORT_MEMBER" "$ORT_LIB"
  echo "deps: installed $ORT_LIB"
fi

# 4. OHIF's SEG loader (the Cornerstone3D SEG adapter and dcmjs) for the test
#    that loads every SEG the way OHIF does: the npm packages pinned in
#    testdata/ohif/package-lock.json, installed with `npm ci` into
#    testdata/ohif/node_modules (git-ignored). A stamp of the lock file's
#    SHA-256 keeps a second run quiet.
OHIF_DIR=testdata/ohif
OHIF_STAMP="$OHIF_DIR/node_modules/.tmcad-lock.sha256"
command -v node >/dev/null || fail "step 'node' failed: Node.js is not on PATH (apt-get install nodejs npm)"
lock_sha=$(sha256sum "$OHIF_DIR/package-lock.json" | awk '{print $1}')
if [ ! -f "$OHIF_STAMP" ] || [ "$(cat "$OHIF_STAMP")" != "$lock_sha" ]; then
  command -v npm >/dev/null || fail "step 'npm ci in $OHIF_DIR' failed: npm is not on PATH (apt-get install npm)"
  echo "deps: installing OHIF's SEG loader (npm ci in $OHIF_DIR)"
  (cd "$OHIF_DIR" && npm ci --no-audit --no-fund --ignore-scripts --loglevel=error) >/tmp/tmcad-deps-npm.log 2>&1 \
    || { tail -20 /tmp/tmcad-deps-npm.log >&2; fail "step 'npm ci in $OHIF_DIR' failed (log: /tmp/tmcad-deps-npm.log): check that the npm registry is reachable (npm ping)"; }
  echo "$lock_sha" >"$OHIF_STAMP"
fi

# 5. Sanity: the model's interpreter has torch.
/usr/bin/python3 -c 'import torch, onnx, pydicom, numpy' 2>/dev/null \
  || fail "step 'python check' failed: /usr/bin/python3 cannot import torch/onnx/pydicom/numpy (apt-get install ${DEB_PACKAGES[*]:0:7})"
