#!/usr/bin/env bash
# Writes examples/compressed/ (or the folder given) from the native example
# studies: the CR studies 001–004 in RLE Lossless, JPEG Lossless SV1,
# JPEG-LS lossless and JPEG 2000 lossless, the CT series of study 005 in
# JPEG 2000 lossless and that of study 006 in HTJ2K lossless, with the
# reports of those studies. The encoders (dcmtk's dcmcrle, dcmcjpeg,
# dcmcjpls, GDCM's gdcmconv, and htj2k.py beside this script, which runs
# OpenJPH's ojph_compress on each frame; all installed by `make deps`) keep
# every UID and are deterministic: re-running rewrites byte-identical
# files. Run from anywhere:
#
#     examples/compressed/gen.sh [OUT]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
examples=$(dirname "$here")
out=${1:-$examples/compressed}

for tool in dcmcrle dcmcjpeg dcmcjpls gdcmconv dcmdump ojph_compress; do
  command -v "$tool" >/dev/null || { echo "gen.sh: $tool is not installed (make deps)" >&2; exit 1; }
done

rm -rf "$out/dicom" "$out/reports"
mkdir -p "$out/dicom" "$out/reports"

# encode STUDY ENCODER...: every file of the study's series, re-encoded.
encode() {
  local study=$1
  shift
  local f rel
  for f in "$examples/dicom/$study"/*/*.dcm; do
    rel=${f#"$examples/dicom/"}
    mkdir -p "$out/dicom/$(dirname "$rel")"
    "$@" "$f" "$out/dicom/$rel"
  done
  # The study's report, named by its accession number as in examples/reports.
  local acc
  acc=$(dcmdump -s -q +P 0008,0050 "$f" | sed -n 's/.*\[\(.*\)\].*/\1/p')
  [ -n "$acc" ] || { echo "gen.sh: no AccessionNumber in $f" >&2; exit 1; }
  cp "$examples/reports/$acc.txt" "$out/reports/$acc.txt"
}

encode study-001 dcmcrle               # RLE Lossless (1.2.840.10008.1.2.5)
encode study-002 dcmcjpeg +e1          # JPEG Lossless SV1 (1.2.840.10008.1.2.4.70)
encode study-003 dcmcjpls +el          # JPEG-LS lossless (1.2.840.10008.1.2.4.80)
encode study-004 gdcmconv --j2k        # JPEG 2000 lossless (1.2.840.10008.1.2.4.90)
encode study-005 gdcmconv --j2k        # JPEG 2000 lossless, CT series of 20 slices
encode study-006 "$here/htj2k.py"      # HTJ2K lossless (1.2.840.10008.1.2.4.201), CT series of 20 slices
