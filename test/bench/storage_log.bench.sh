#!/usr/bin/env bash
# Storage log benchmark (issue 3): quorum append to six storage nodes on
# loopback versus a single local append + fdatasync loop on the same disk.
#
# For every run PAYLOAD:BATCH it
#   * streams synthetic records to a fresh protection group with the real
#     quorum writer (`aurora-ctl stream`, common/pgwriter.c): each batch goes
#     to six segments, the next is sent once PGCL (the 4th highest SCL, i.e.
#     the 4th acknowledgement) covers it;
#   * appends the same records (36-byte header + payload each) to one local
#     file with one write() + fdatasync() per batch (local_append.c);
# and reports records/s, MiB/s of payload, p50/p99 per-batch latency of both
# sides and their ratios (aurora / local).  The six nodes' data directories
# and the local file live in one working directory under $BENCH_DIR, hence on
# the same filesystem; all six nodes share this one disk.
#
# Environment (all optional):
#   BENCH_DIR              working directory parent   (/var/tmp/aurora-bench)
#   BENCH_RESULTS          where the JSON goes         (test/bench/results)
#   BENCH_KEEP=1           keep the working directory (node data, logs)
#   STORAGE_LOG_RUNS       PAYLOAD:BATCH list ("200:1 200:8 200:64 200:256 8192:1 8192:8 8192:64")
#   STORAGE_LOG_BATCHES    batches per run (3000), reduced so that a run sends at
#                          most STORAGE_LOG_MAX_MIB MiB of payload (128), but
#                          never below STORAGE_LOG_MIN_BATCHES (100)
#
# Writes $BENCH_RESULTS/storage_log.json and prints a table.  Needs the
# storage service built (make storage); `make bench` does that.
set -euo pipefail

# shellcheck source=test/bench/lib.sh
. "$(dirname "$0")/lib.sh"
runs="${STORAGE_LOG_RUNS:-200:1 200:8 200:64 200:256 8192:1 8192:8 8192:64}"
max_batches="${STORAGE_LOG_BATCHES:-3000}"
max_mib="${STORAGE_LOG_MAX_MIB:-128}"
min_batches="${STORAGE_LOG_MIN_BATCHES:-100}"
header_bytes=36      # a segment's record header (node/segment.c)
latency_window=4096  # quorum latency samples the writer keeps (common/pgwriter.c)

die() { echo "storage_log: $*" >&2; exit 1; }

[ -x "$ctl" ] || die "$ctl not built (run: make storage)"
for v in "$max_batches" "$max_mib" "$min_batches"; do
	[[ "$v" =~ ^[1-9][0-9]*$ ]] || die "STORAGE_LOG_BATCHES, _MAX_MIB and _MIN_BATCHES must be positive integers"
done
for r in $runs; do
	[[ "$r" =~ ^[0-9]+:[1-9][0-9]*$ ]] || die "bad run '$r' in STORAGE_LOG_RUNS (want PAYLOAD:BATCH)"
done

# Records of one run: as many batches as allowed by the count and size caps.
run_records() {
	local payload="$1" batch="$2" n="$max_batches" cap
	if [ "$payload" -gt 0 ]; then
		cap=$((max_mib * 1048576 / (payload * batch)))
		[ "$cap" -lt "$n" ] && n="$cap"
	fi
	[ "$n" -lt "$min_batches" ] && n="$min_batches"
	echo $((n * batch))
}

load_start="$(awk '{ print $1 }' /proc/loadavg)"

# ---- working directory, on the filesystem being measured -------------------
mkdir -p "$bench_dir" "$results"
work="$(mktemp -d "$bench_dir/storage_log.XXXXXX")"
chmod 755 "$work"
nodes_started=0
cleanup() {
	if [ "$nodes_started" = 1 ]; then
		"$ctl" --cluster "$work/nodes" stop all >/dev/null 2>&1 || true
	fi
	if [ "${BENCH_KEEP:-0}" = 1 ]; then
		echo "storage_log: kept $work" >&2
	else
		rm -rf "$work"
	fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Disk: six segments plus the local file hold every run's bytes.
need=0
for r in $runs; do
	p="${r%%:*}" b="${r##*:}"
	need=$((need + $(run_records "$p" "$b") * (p + header_bytes) * 7))
done
avail=$(($(df -P -k "$work" | awk 'NR == 2 { print $4 }') * 1024))
[ "$avail" -gt $((need + (1 << 30))) ] ||
	die "$work: needs about $((need >> 20)) MiB (+1 GiB margin), $((avail >> 20)) MiB free"


# ---- the local peer -------------------------------------------------------
local_bin="$work/local_append"
cc -std=c11 -O2 -Wall -Wextra -Werror -o "$local_bin" "$here/local_append.c"

# ---- six storage nodes on free loopback ports -----------------------------
free_base() { bash "$repo/src/tools/free-ports.sh" 6 || die "no six free loopback ports"; }
base="$(free_base)"
mkdir -p "$work/nodes"
i=0
for n in a1:a a2:a b1:b b2:b c1:c c2:c; do
	id="${n%%:*}"
	cat >"$work/nodes/$id.conf" <<CONF
# storage node $id of the storage log benchmark (test/bench/storage_log.bench.sh)
node_id = $id
az = ${n##*:}
listen_url = tcp://127.0.0.1:$((base + i))
data_dir = $work/nodes/$id
CONF
	i=$((i + 1))
done
# Servers never run as root: aurora-ctl started by root runs each node as the
# owner of its configuration file.
if [ "$(id -u)" -eq 0 ]; then
	user="$(bash "$repo/src/tools/ensure-user.sh")"
	chown -R "$user:" "$work/nodes"
fi
nodes_started=1
"$ctl" --cluster "$work/nodes" start all >"$work/start.log" 2>&1 ||
	{ cat "$work/start.log" >&2; die "storage nodes did not start"; }

# Field NAME of a "key value key value ..." line.
field() { awk -v k="$1" '{ for (i = 1; i < NF; i++) if ($i == k) { print $(i + 1); exit } }'; }

# aurora-ctl stream PG RECORDS BATCH PAYLOAD -> the line "stream: ..."
aurora_run() {
	local out="$work/stream-$1.log"
	if ! "$ctl" --cluster "$work/nodes" stream --pg "$1" --records "$2" --batch "$3" \
		--payload "$4" >"$out" 2>&1; then
		cat "$out" >&2
		die "aurora-ctl stream --pg $1 failed"
	fi
	grep '^stream:' "$out" | tail -n 1
}

# local_append RECORDS BATCH PAYLOAD -> the line "local: ..."
local_run() {
	local out
	out="$("$local_bin" "$work/local.log" "$1" "$2" "$3" "$header_bytes")" ||
		die "local_append failed"
	rm -f "$work/local.log"
	echo "$out"
}

# records elapsed_ms payload -> "records_per_s mb_per_s" with more digits
# than the tools print (both sides computed the same way).
rates() {
	awk -v n="$1" -v ms="$2" -v p="$3" 'BEGIN {
		if (ms <= 0) { print "0 0"; exit }
		printf "%.1f %.4f\n", n * 1000 / ms, n * p / 1048576 / (ms / 1000) }'
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.3f\n", a / b; else print "null" }'; }

# Warm-up (not reported): connections, page cache, first file extents.
aurora_run 9999 800 8 200 >/dev/null
local_run 800 8 200 >/dev/null

echo "storage log: six nodes on loopback (write quorum 4/6) vs local write+fdatasync; $(bench_fs "$work") ($work)"
printf '%7s %5s %7s | %10s %8s %8s %8s | %10s %8s %8s %8s | %6s %6s %6s\n' \
	payload batch records "aurora r/s" "MiB/s" "p50 ms" "p99 ms" "local r/s" "MiB/s" "p50 ms" \
	"p99 ms" "thr x" "p50 x" "p99 x"

json_runs=""
pg=0
for r in $runs; do
	payload="${r%%:*}" batch="${r##*:}"
	records="$(run_records "$payload" "$batch")"
	batches=$(((records + batch - 1) / batch))
	[ "$batches" -le "$latency_window" ] ||
		echo "storage_log: note: $batches batches; quorum percentiles cover the last $latency_window" >&2
	pg=$((pg + 1))

	a="$(aurora_run "$pg" "$records" "$batch" "$payload")"
	[ "$(field acked_records <<<"$a")" = "$records" ] || die "pg $pg: not every record acknowledged: $a"
	read -r a_rps a_mbs <<<"$(rates "$records" "$(field elapsed_ms <<<"$a")" "$payload")"
	a_p50="$(field quorum_p50_ms <<<"$a")" a_p99="$(field quorum_p99_ms <<<"$a")"
	a_ms="$(field elapsed_ms <<<"$a")"

	l="$(local_run "$records" "$batch" "$payload")"
	read -r l_rps l_mbs <<<"$(rates "$records" "$(field elapsed_ms <<<"$l")" "$payload")"
	l_p50="$(field p50_ms <<<"$l")" l_p99="$(field p99_ms <<<"$l")"
	l_ms="$(field elapsed_ms <<<"$l")"

	x_thr="$(ratio "$a_rps" "$l_rps")"
	x_p50="$(ratio "$a_p50" "$l_p50")"
	x_p99="$(ratio "$a_p99" "$l_p99")"

	printf '%7s %5s %7s | %10.0f %8.2f %8.3f %8.3f | %10.0f %8.2f %8.3f %8.3f | %6s %6s %6s\n' \
		"$payload" "$batch" "$records" "$a_rps" "$a_mbs" "$a_p50" "$a_p99" \
		"$l_rps" "$l_mbs" "$l_p50" "$l_p99" "$x_thr" "$x_p50" "$x_p99"

	json_runs="$json_runs${json_runs:+,
}    {\"payload_bytes\": $payload, \"batch_records\": $batch, \"records\": $records, \"batches\": $batches,
     \"bytes_per_batch\": $((batch * (payload + header_bytes))),
     \"aurora\": {\"elapsed_ms\": $a_ms, \"records_per_s\": $a_rps, \"mb_per_s\": $a_mbs, \"p50_ms\": $a_p50, \"p99_ms\": $a_p99},
     \"local\": {\"elapsed_ms\": $l_ms, \"records_per_s\": $l_rps, \"mb_per_s\": $l_mbs, \"p50_ms\": $l_p50, \"p99_ms\": $l_p99},
     \"ratio\": {\"throughput\": $x_thr, \"p50\": $x_p50, \"p99\": $x_p99}}"
done
echo "(thr x = aurora/local records/s; p50 x, p99 x = aurora/local batch latency: aurora to the 4th ack, local write+fdatasync)"

# ---- JSON ------------------------------------------------------------------
bench_git_state
# shellcheck disable=SC2086 # one JSON string per word of the run list
list_json="$(printf '"%s",' $runs)"

tmp="$results/storage_log.json.tmp"
cat >"$tmp" <<JSON
{
  "benchmark": "storage_log",
  "description": "Quorum append to six storage nodes on loopback (aurora-ctl stream: each batch to six segments, next batch once PGCL, the 4th highest SCL, covers it) versus one local write()+fdatasync() per batch of the same bytes on the same filesystem",
$(bench_context_json "$work" "$bench_dir" "$load_start")
  "parameters": {
    "copies": 6,
    "write_quorum": 4,
    "node_transport": "tcp://127.0.0.1",
    "record_header_bytes": $header_bytes,
    "runs": [${list_json%,}],
    "max_batches_per_run": $max_batches,
    "max_payload_mib_per_run": $max_mib,
    "min_batches_per_run": $min_batches
  },
  "units": {
    "records_per_s": "records acknowledged (aurora) or made durable (local) per second over the whole run",
    "mb_per_s": "MiB of record payload per second (headers not counted), both sides",
    "p50_ms/p99_ms": "per batch: aurora from sending the batch to its 4th acknowledgement (PGCL covers it; last $latency_window batches), local from write() to the end of fdatasync()",
    "ratio": "aurora / local: throughput below 1 means aurora is slower, latency above 1 means aurora is slower"
  },
  "results": [
$json_runs
  ]
}
JSON
mv "$tmp" "$results/storage_log.json"
echo "storage_log: wrote $results/storage_log.json"
