#!/usr/bin/env bash
# doors: tmcad's two network doors against peers measured in the same run.
#
#  (a) DICOM: a 100-slice 512x512 CT (tmca.dicom_writer) sent by storescu
#      over one association to (1) storescp writing to disk alone, (2) the
#      shipped receiver, scripts/tmcad-receiver (storescp --fork, each
#      instance renamed into the drop folder by the deliver step), and (3)
#      the same receiver behind `tmcad dicom-gate` (TMCAD_ALLOW_AETS set).
#      Time = storescu's start until all 100 files are in the destination.
#  (b) HL7: ORU^R01 messages acknowledged per second, one at a time over
#      one connection, by tmcad run's MLLP listener (parse, validate,
#      durable store, ACK) against bench/mllp's own sinks (ACK only; ACK
#      after the same fsync + rename + folder fsync, no parsing).
#
# Rounds alternate the sides; the section "## doors" of bench/RESULTS.md is
# rewritten from this run (medians of the rounds). ROUNDS (3) and HL7_N
# (300 messages per round and listener) tune it; BENCH_TMP is the folder
# on disk (not tmpfs) to work in.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=/usr/bin/python3
ROUNDS=${ROUNDS:-3}
HL7_N=${HL7_N:-300}
RESULTS=${RESULTS:-bench/RESULTS.md}
work=$(mktemp -d -p "${BENCH_TMP:-/var/tmp}" tmcad-doors-XXXXXX)
pgids=()
cleanup() {
	local g
	for g in "${pgids[@]}"; do kill -TERM -- "-$g" 2>/dev/null || true; done
	rm -rf "$work"
}
trap cleanup EXIT

for tool in storescp storescu setsid; do
	command -v "$tool" >/dev/null || { echo "doors: $tool is required (make deps)" >&2; exit 1; }
done
go build -o "$work/tmcad" ./cmd/tmcad
go build -o "$work/bench-mllp" ./bench/mllp
$PY -m tmca.dicom_writer --seed 4800 --cr 0 --ct 1 --ct-slices 100 --ct-size 512 --out "$work/ct100" >/dev/null
files=("$work"/ct100/dicom/study-*/series-*/*.dcm)
[ ${#files[@]} = 100 ] || { echo "doors: generated ${#files[@]} CT files, want 100" >&2; exit 1; }
bytes=$(du -cb "${files[@]}" | tail -1 | cut -f1)

free_port() { $PY -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
wait_port() {
	local i
	for i in $(seq 200); do
		(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
		sleep 0.05
	done
	echo "doors: nothing listens on port $1" >&2
	return 1
}
# start runs a command in a process group of its own (stopped by stop).
start() {
	setsid "$@" >>"$work/servers.log" 2>&1 &
	pgid=$!
	pgids+=("$pgid")
}
stop() { kill -TERM -- "-$pgid" 2>/dev/null || true; sleep 0.3; kill -KILL -- "-$pgid" 2>/dev/null || true; }
now() { date +%s.%N; }

# store_into SIDE ROUND: one measurement; prints seconds.
store_into() {
	local side=$1 r=$2 port dest staging t0 t1
	port=$(free_port)
	dest="$work/$side-$r/dicom"
	staging="$work/$side-$r/incoming"
	mkdir -p "$dest" "$staging"
	case $side in
	storescp) start storescp -aet TMCAD --output-directory "$dest" --filename-extension .dcm "$port" ;;
	receiver) start env TMCAD_PORT="$port" TMCAD_DROP_DIR="$dest" TMCAD_STAGING_DIR="$staging" scripts/tmcad-receiver ;;
	gate) start env TMCAD_PORT="$port" TMCAD_DROP_DIR="$dest" TMCAD_STAGING_DIR="$staging" TMCAD_ALLOW_AETS=PACS \
		TMCAD_UPSTREAM_PORT="$(free_port)" TMCAD_BIN="$work/tmcad" scripts/tmcad-receiver ;;
	esac
	wait_port "$port"
	t0=$(now)
	storescu -aet PACS -aec TMCAD 127.0.0.1 "$port" "${files[@]}" >>"$work/storescu.log" 2>&1
	while [ "$(find "$dest" -name '*.dcm' | wc -l)" -lt 100 ]; do sleep 0.01; done
	t1=$(now)
	stop
	echo "$t0 $t1" | awk '{printf "%.3f\n", $2 - $1}'
}

echo "== doors (a): 100-slice CT, one association, $ROUNDS rounds" >&2
declare -A dicom
for r in $(seq 1 "$ROUNDS"); do
	# the order rotates, so that a noisy neighbour hits every side
	case $((r % 3)) in 1) order="storescp receiver gate" ;; 2) order="receiver gate storescp" ;; 0) order="gate storescp receiver" ;; esac
	for side in $order; do
		s=$(store_into "$side" "$r")
		dicom[$side]+="$s "
		echo "round $r $side ${s}s" >&2
	done
done

echo "== doors (b): ORU^R01 over MLLP, $HL7_N messages per round and listener" >&2
hport=$(free_port)
mkdir -p "$work/hl7/state" "$work/hl7/dicom" "$work/hl7/reports" "$work/hl7/archive" "$work/hl7/sink"
cat >"$work/hl7/tmcad.toml" <<EOF
state_dir = "$work/hl7/state"

[log]
level = "info"
format = "json"

[model]
dir = "$PWD/models/tmca-cxr-compact"

[watch]
dicom_dir = "$work/hl7/dicom"
reports_dir = "$work/hl7/reports"

[archive]
kind = "filesystem"
dir = "$work/hl7/archive"

[http]
listen = "127.0.0.1:$(free_port)"

[hl7]
listen = "127.0.0.1:$hport"
allow = ["127.0.0.1/32"]
EOF
start "$work/tmcad" run --config "$work/hl7/tmcad.toml"
wait_port "$hport"
hl7=$("$work/bench-mllp" -target "127.0.0.1:$hport" -dir "$work/hl7/sink" -n "$HL7_N" -rounds "$ROUNDS")
stored=$(find "$work/hl7/reports" -name '*.hl7' | wc -l)
stop
[ "$stored" = $((HL7_N * ROUNDS)) ] || { echo "doors: tmcad stored $stored messages, want $((HL7_N * ROUNDS))" >&2; exit 1; }

machine="$(nproc) vCPU $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo)"
$PY - "$RESULTS" "$ROUNDS" "$HL7_N" "$bytes" "$machine" "$(storescp --version | head -1 | tr -d '$' | sed 's/^dcmtk: //; s/ *$//')" "$(go env GOVERSION)" \
	"${dicom[storescp]}" "${dicom[receiver]}" "${dicom[gate]}" "$hl7" "$(cut -d' ' -f1 /proc/loadavg)" <<'EOF'
import datetime, json, re, statistics, sys
path, rounds, n, size, machine, dcmtk, gover, scp, rcv, gate, hl7, load = sys.argv[1:]
med = lambda v: statistics.median(v)
secs = {k: [float(x) for x in v.split()] for k, v in (("storescp", scp), ("receiver", rcv), ("gate", gate))}
ips = {k: 100 / med(v) for k, v in secs.items()}
h = json.loads(hl7)
mps = {k: med(v) for k, v in h.items()}
fmt = lambda v, d=2: " / ".join(f"{x:.{d}f}" for x in v)
ratio = lambda x: f"{x:.3g}×"
lines = [
    "## doors: DICOM receiver and HL7 listener (`bench/doors.sh`)",
    "",
    f"Measured {datetime.date.today()} on the shared sandbox VM: {machine}, {gover}, dcmtk {dcmtk},",
    f"load average {load} at the end of the run (other jobs share the machine). Files on the",
    "VM's local ext4 disk. Medians of the rounds; sides alternate within each round.",
    "",
    f"**(a) 100-slice CT (512×512, {int(size) / 1e6:.1f} MB, tmca.dicom_writer seed 4800), storescu, one association.**",
    "Time from storescu's start until all 100 files are in the destination folder",
    "(for the receiver: renamed into the drop folder).",
    "",
    "| receiving side | seconds per round | instances/s | vs storescp alone |",
    "|---|---|---|---|",
    f"| storescp writing to disk alone (peer) | {fmt(secs['storescp'])} | {ips['storescp']:.1f} | 1 |",
    f"| tmcad-receiver: storescp --fork + deliver (rename) | {fmt(secs['receiver'])} | {ips['receiver']:.1f} | **{ips['receiver'] / ips['storescp']:.2f}×** |",
    f"| tmcad-receiver behind tmcad dicom-gate | {fmt(secs['gate'])} | {ips['gate']:.1f} | **{ips['gate'] / ips['storescp']:.2f}×** |",
    "",
    f"Gate vs receiver without it: {ips['gate'] / ips['receiver']:.2f}× the instances/s "
    f"({(med(secs['gate']) - med(secs['receiver'])) * 10:.1f} ms more per instance, about {int(size) / 100 / 1e3:.0f} kB each).",
    "",
    f"**(b) ORU^R01 (reports/testdata/oru_final.hl7, MSH-10 numbered), {n} messages per round and listener,",
    "one at a time over one connection (send, wait for the ACK).** The peers are bench/mllp's own",
    "listeners in the same process as the client: *sink* reads the frame, parses the MSH and answers",
    "AA with the same reports/mllp code as tmcad, storing nothing; *sink+fsync* also writes each",
    "message to a new file, fsyncs it, renames it into place and fsyncs the folder (tmcad's durable",
    "steps, no parsing). tmcad is `tmcad run` (log level info, the watcher cataloguing each stored",
    "report meanwhile).",
    "",
    "| listener | msg/s per round | msg/s | vs sink | vs sink+fsync |",
    "|---|---|---|---|---|",
]
for k, label in (("sink", "sink: ACK only (peer)"), ("sink+fsync", "sink+fsync: durable store, then ACK (peer)"), ("tmcad", "**tmcad run** (parse, validate, durable store, ACK)")):
    lines.append(f"| {label} | {fmt(h[k], 0)} | {mps[k]:.0f} | {ratio(mps[k] / mps['sink'])} | {ratio(mps[k] / mps['sink+fsync'])} |")
lines += [
    "",
    "Both durable sides wait for two fsyncs per message (the file, then the folder) on a disk shared",
    "with other jobs, so their rounds vary widely; what tmcad does beyond them (parsing, validation,",
    "logging) is small beside the fsyncs. Without durability, framing and the ACK alone run at the",
    "*sink* rate.",
    "",
]
section = "\n".join(lines) + "\n"
text = open(path).read()
m = re.search(r"^## doors:.*?(?=^## |\Z)", text, flags=re.S | re.M)
text = text[:m.start()] + section + "\n" + text[m.end():] if m else text.rstrip("\n") + "\n\n" + section
open(path, "w").write(text.rstrip("\n") + "\n")
print(section)
EOF
