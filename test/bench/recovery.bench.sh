#!/usr/bin/env bash
# Crash recovery benchmark (issue 19): time from restart to the first
# accepted commit after kill -9 of a server under write load, by WAL written
# since the last checkpoint, for the same release build of our patched
# PostgreSQL in two configurations, one after the other:
#
#   stock    the server alone, aurora not loaded, pages in local files:
#            PostgreSQL's own crash recovery (ARIES redo of every record);
#   aurora   the local aurora cluster (src/tools/cluster.sh, as `make run`
#            sets it up: six storage nodes, storage manager, full_page_writes
#            off): recovery skips every record that only changes pages storage
#            holds (src/redo_filter.c) and replays the rest.
#
# Per configuration: pgbench -i -s 10 once; then for each size in
# RECOVERY_WAL_MB: CHECKPOINT, a write load (pgbench, 4 clients: TPC-B-like
# transactions and transactions that insert 100 rows of 1 kB, half and half,
# so that the WAL grows quickly) until pg_current_wal_lsn() is SIZE MB past
# the checkpoint's redo point, then kill -9 of the postmaster and all its
# processes while the load runs.  The server is started again (stock:
# pg_ctl start; aurora: aurora-compute-init start on the surviving data
# directory, as cluster.sh start does, then pg_ctl start; the storage nodes
# keep running) and a client retries an INSERT until it commits: restart to
# first commit is the time from the first command to that commit.  Also reported: the redo time PostgreSQL logs ("redo done ...
# elapsed"), and for aurora the records replayed and skipped
# (aurora.recovery_stats()) and the time aurora-compute-init took.
# Checkpoints never intervene: max_wal_size = 16GB, checkpoint_timeout = 1h.
#
# Then, aurora only: creating a compute on an empty data directory (the old
# one deleted) to first commit; and the steady-state cost of keeping the
# start state current: pgbench (4 clients, 60 s) without checkpoints; with a
# checkpoint every 30 s (the shortest checkpoint_timeout) and aurora.store_start_states off; and with a
# checkpoint and a start state stored every 30 s: TPS and p99 latency, with
# the start states' size and store time from the log.
#
# Environment (all optional):
#   BENCH_DIR, BENCH_RESULTS, BENCH_KEEP=1   as for every benchmark (run.sh)
#   RECOVERY_WAL_MB     WAL sizes since the checkpoint ("10 100 1000")
#   RECOVERY_CONFIGS    configurations, in order ("stock aurora")
#
# Writes $BENCH_RESULTS/recovery.json and prints a table.
set -euo pipefail

# shellcheck source=test/bench/lib.sh
. "$(dirname "$0")/lib.sh"
sizes="${RECOVERY_WAL_MB:-10 100 1000}"
configs="${RECOVERY_CONFIGS:-stock aurora}"

die() { echo "recovery: $*" >&2; exit 1; }
note() { echo "recovery: $*" >&2; }

for s in $sizes; do [[ "$s" =~ ^[1-9][0-9]*$ ]] || die "RECOVERY_WAL_MB: '$s' is not a positive integer"; done
for c in $configs; do case "$c" in stock | aurora) ;; *) die "unknown configuration '$c' (stock, aurora)" ;; esac; done
[ -x "$ctl" ] || die "$ctl not built (run: make storage)"

user="$(bash "$repo/src/tools/ensure-user.sh")"
as_user() { if [ "$(id -u)" -eq 0 ]; then runuser -u "$user" -- "$@"; else "$@"; fi; }

bench_release_build || die "building the release PostgreSQL or the extension failed"
bench_git_state
pg() { echo "$prefix/bin/$1"; }
sql() { as_user "$(pg psql)" -X -A -t -q -h 127.0.0.1 -p "$1" -U "$user" -d postgres -v ON_ERROR_STOP=1 -c "$2"; }
load_start="$(awk '{ print $1 }' /proc/loadavg)"

mkdir -p "$bench_dir" "$results"
work="$(mktemp -d "$bench_dir/recovery.XXXXXX")"
chmod 755 "$work"
chown "$user:" "$work" 2>/dev/null || true
load_pid=""
running_datadir=""
running_cluster=""
cleanup() {
	[ -z "$load_pid" ] || { kill "$load_pid" 2>/dev/null || true; wait "$load_pid" 2>/dev/null || true; }
	[ -z "$running_datadir" ] || as_user "$(pg pg_ctl)" -D "$running_datadir" -m immediate -w stop >/dev/null 2>&1 || true
	[ -z "$running_cluster" ] || bash "$repo/src/tools/cluster.sh" stop "$running_cluster" >/dev/null 2>&1 || true
	if [ "${BENCH_KEEP:-0}" = 1 ]; then note "kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

settings=(
	"shared_buffers = 512MB"
	"max_wal_size = 16GB"
	"min_wal_size = 1GB"
	"checkpoint_timeout = 1h"
	"synchronous_commit = on"
	"fsync = on"
)

cat >"$work/filler.sql" <<'SQL'
INSERT INTO filler SELECT g, repeat('f', 1000) FROM generate_series(1, 100) g;
SQL
chmod 644 "$work/filler.sql"

# kill -9 the postmaster of DATADIR and every process it started
crash() {
	local pm kids
	pm="$(head -n 1 "$1/postmaster.pid")"
	kids="$(pgrep -P "$pm" || true)"
	# shellcheck disable=SC2086 # word splitting of the pid list is meant
	kill -9 "$pm" $kids 2>/dev/null || true
	while kill -0 "$pm" 2>/dev/null; do sleep 0.05; done
	for k in $kids; do while kill -0 "$k" 2>/dev/null; do sleep 0.05; done; done
}

# seconds since the epoch, with nanoseconds
now() { date +%s.%N; }

rows=()
measure() { # CONFIG DATADIR PORT SIZE_MB
	local cfg="$1" d="$2" port="$3" size="$4" redo ahead t0 t1 redo_s stats="" log init_s
	sql "$port" "CHECKPOINT" >/dev/null
	redo="$(sql "$port" "SELECT redo_lsn FROM pg_control_checkpoint()")"
	as_user "$(pg pgbench)" -n -c 4 -j 2 -T 3600 -b tpcb-like@1 -f "$work/filler.sql@1" \
		-h 127.0.0.1 -p "$port" -U "$user" postgres >"$work/load.log" 2>&1 &
	load_pid=$!
	while :; do
		ahead="$(sql "$port" "SELECT (pg_wal_lsn_diff(pg_current_wal_lsn(), '$redo') / 1048576)::int")"
		[ "$ahead" -ge "$size" ] && break
		kill -0 "$load_pid" 2>/dev/null || { cat "$work/load.log" >&2; die "the load stopped"; }
		sleep 0.2
	done
	crash "$d"
	wait "$load_pid" 2>/dev/null || true
	load_pid=""
	log="$d.log"
	t0="$(now)"
	if [ "$cfg" = aurora ]; then
		bash "$repo/src/tools/cluster.sh" prepare "$c" || die "aurora-compute-init start failed"
	fi
	as_user "$(pg pg_ctl)" -D "$d" -l "$log" start >/dev/null
	until sql "$port" "INSERT INTO probe VALUES (now())" >/dev/null 2>&1; do sleep 0.01; done
	t1="$(now)"
	redo_s="$(grep -o 'redo done at .*elapsed: [0-9.]* s' "$log" | tail -n 1 | sed 's/.*elapsed: \([0-9.]*\) s/\1/')"
	if [ "$cfg" = aurora ]; then
		stats="$(sql "$port" "SELECT records_replayed || ' ' || records_skipped || ' ' || pages_read FROM aurora.recovery_stats()")"
	fi
	init_s=null
	if [ "$cfg" = aurora ]; then
		init_s="$(sed -n 's/^took: \([0-9]*\) ms$/\1/p' "$c/compute-init.log" | awk '{ printf "%.3f", $1 / 1000 }')"
	fi
	rows+=("$cfg $size $ahead $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }') ${redo_s:-null} ${stats:-null null null} $init_s")
	note "$cfg: ${ahead} MB since the checkpoint: first commit $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }') s after the start (redo ${redo_s:-?} s)"
}

# A compute on an empty directory: the old one's disk is gone.
create_compute() { # CLUSTER DATADIR PORT
	local c="$1" d="$2" port="$3" t0 t1
	as_user "$(pg pg_ctl)" -D "$d" -m immediate stop >/dev/null 2>&1 || true
	rm -rf "$d"
	t0="$(now)"
	bash "$repo/src/tools/cluster.sh" prepare "$c" || die "aurora-compute-init start failed"
	as_user "$(pg pg_ctl)" -D "$d" -l "$d.log" start >/dev/null
	until sql "$port" "INSERT INTO probe VALUES (now())" >/dev/null 2>&1; do sleep 0.01; done
	t1="$(now)"
	create_s="$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')"
	create_init_s="$(sed -n 's/^took: \([0-9]*\) ms$/\1/p' "$c/compute-init.log" | awk '{ printf "%.3f", $1 / 1000 }')"
	create_wal="$(sed -n 's/^wal: \([0-9]*\) records, \([0-9]*\) bytes$/\2/p' "$c/compute-init.log")"
	note "aurora: a compute on an empty directory committed $create_s s after aurora-compute-init started ($create_init_s s preparing, ${create_wal:-?} bytes of WAL from storage)"
}

# pgbench TPS and p99 latency (ms) for 60 s: "TPS P99"
pgbench_run() { # PORT TAG
	local port="$1" tag="$2"
	rm -f "$work"/pgbench_log."$tag"*
	(cd "$work" && as_user "$(pg pgbench)" -n -c 4 -j 2 -T 60 -l --log-prefix="pgbench_log.$tag" \
		-h 127.0.0.1 -p "$port" -U "$user" postgres >"$work/pgbench.$tag.out" 2>&1) ||
		{ cat "$work/pgbench.$tag.out" >&2; die "pgbench failed"; }
	echo "$(sed -n 's/^tps = \([0-9.]*\) .*/\1/p' "$work/pgbench.$tag.out") $(cat "$work"/pgbench_log."$tag"* | awk '{ print $3 / 1000 }' | sort -n | awk '{ v[NR] = $1 } END { printf "%.2f", v[int(NR * 0.99)] }')"
}

writer_cost() { # DATADIR PORT
	local d="$1" port="$2" before after
	set_conf "$port" checkpoint_timeout "'1h'"
	sql "$port" "CHECKPOINT" >/dev/null
	without="$(pgbench_run "$port" without)"
	set_conf "$port" checkpoint_timeout "'30s'"
	set_conf "$port" aurora.store_start_states off
	checkpoints_only="$(pgbench_run "$port" checkpoints-only)"
	set_conf "$port" aurora.store_start_states on
	before="$(grep -c 'start state of checkpoint .* stored at' "$d.log" || true)"
	with="$(pgbench_run "$port" with)"
	after="$(grep -c 'start state of checkpoint .* stored at' "$d.log" || true)"
	states=$((after - before))
	state_bytes="$(grep -o 'stored at [^ ]* ([0-9]* files, [0-9]* bytes' "$d.log" | tail -n 1 | sed 's/.*, \([0-9]*\) bytes/\1/')"
	state_ms="$(grep -o 'of PG 0 in [0-9.]* ms' "$d.log" | tail -n "$states" | awk '{ s += $(NF - 1); n++ } END { if (n) printf "%.1f", s / n; else print "null" }')"
	note "aurora: pgbench (TPS p99 ms) without checkpoints $without; a checkpoint every 30 s, no start state $checkpoints_only; a checkpoint and a start state every 30 s $with; $states start states of ${state_bytes:-?} bytes, ${state_ms} ms each to store"
	sql "$port" "ALTER SYSTEM RESET checkpoint_timeout" >/dev/null
	sql "$port" "SELECT pg_reload_conf()" >/dev/null
}

# ALTER SYSTEM SET name = value, reloaded
set_conf() { # PORT NAME VALUE
	sql "$1" "ALTER SYSTEM SET $2 = $3" >/dev/null
	sql "$1" "SELECT pg_reload_conf()" >/dev/null
	sleep 1
}

prepare() { # PORT
	as_user "$(pg pgbench)" -i -q -s 10 -h 127.0.0.1 -p "$1" -U "$user" postgres >"$work/init.log" 2>&1 ||
		{ cat "$work/init.log" >&2; die "pgbench -i failed"; }
	sql "$1" "CREATE TABLE filler (id int, pad text); CREATE TABLE probe (at timestamptz)" >/dev/null
}

for cfg in $configs; do
	ports="$(bash "$repo/src/tools/free-ports.sh")" || die "no free loopback ports"
	if [ "$cfg" = stock ]; then
		d="$work/stock"
		port=$((ports + 6))
		as_user "$(pg initdb)" -D "$d" -A trust -U "$user" >"$work/initdb.log" 2>&1 || die "initdb failed"
		{
			echo "listen_addresses = '127.0.0.1'"
			echo "port = $port"
			printf '%s\n' "${settings[@]}"
		} >>"$d/postgresql.conf"
		running_datadir="$d"
		as_user "$(pg pg_ctl)" -D "$d" -l "$d.log" -w start >/dev/null || die "stock server did not start"
	else
		c="$work/aurora"
		port=$((ports + 6))
		bash "$repo/src/tools/cluster.sh" init "$c" "$prefix" "$ports" "$port" >/dev/null
		printf '%s\n' "${settings[@]}" >>"$c/pgdata/postgresql.conf"
		running_cluster="$c"
		bash "$repo/src/tools/cluster.sh" start "$c" >/dev/null 2>&1 || die "aurora cluster did not start"
		d="$c/pgdata"
		running_datadir="$d"
	fi
	prepare "$port"
	for s in $sizes; do measure "$cfg" "$d" "$port" "$s"; done
	if [ "$cfg" = aurora ]; then
		create_compute "$c" "$d" "$port"
		writer_cost "$d" "$port"
	fi
	as_user "$(pg pg_ctl)" -D "$d" -m fast -w stop >/dev/null 2>&1 || true
	running_datadir=""
	[ "$cfg" = aurora ] && { bash "$repo/src/tools/cluster.sh" stop "$c" >/dev/null 2>&1 || true; running_cluster=""; }
done

# ---- report ------------------------------------------------------------------
{
	echo "{"
	bench_context_json "$work" "$bench_dir" "$load_start"
	echo '  "runs": ['
	for i in "${!rows[@]}"; do
		read -r cfg size ahead first redo replayed skipped pages init <<<"${rows[$i]}"
		sep=","; [ "$i" -eq $((${#rows[@]} - 1)) ] && sep=""
		echo "    {\"config\": \"$cfg\", \"wal_mb_target\": $size, \"wal_mb\": $ahead, \"restart_to_first_commit_s\": $first, \"redo_s\": $redo, \"records_replayed\": $replayed, \"records_skipped\": $skipped, \"pages_read\": $pages, \"compute_init_s\": ${init:-null}}$sep"
	done
	echo "  ],"
	if [ -n "${create_s:-}" ]; then
		read -r wo_tps wo_p99 <<<"$without"
		read -r w_tps w_p99 <<<"$with"
		read -r c_tps c_p99 <<<"$checkpoints_only"
		echo "  \"create_compute\": {\"empty_dir_to_first_commit_s\": $create_s, \"compute_init_s\": ${create_init_s:-null}, \"wal_bytes_from_storage\": ${create_wal:-null}},"
		echo "  \"start_state_writer\": {\"without_checkpoints\": {\"tps\": ${wo_tps:-null}, \"p99_ms\": ${wo_p99:-null}}, \"checkpoint_every_30s_no_start_state\": {\"tps\": ${c_tps:-null}, \"p99_ms\": ${c_p99:-null}}, \"checkpoint_and_start_state_every_30s\": {\"tps\": ${w_tps:-null}, \"p99_ms\": ${w_p99:-null}}, \"start_states\": $states, \"bundle_bytes\": ${state_bytes:-null}, \"store_ms\": ${state_ms:-null}}"
	else
		echo '  "create_compute": null, "start_state_writer": null'
	fi
	echo "}"
} >"$results/recovery.json"

printf '%-8s %10s %22s %10s %12s %12s %10s\n' config "WAL MB" "restart->commit (s)" "redo (s)" replayed skipped "init (s)"
for r in "${rows[@]}"; do
	read -r cfg size ahead first redo replayed skipped pages init <<<"$r"
	printf '%-8s %10s %22s %10s %12s %12s %10s\n' "$cfg" "$ahead" "$first" "$redo" "$replayed" "$skipped" "$init"
done
if [ -n "${create_s:-}" ]; then
	echo "aurora compute on an empty directory to first commit: $create_s s (aurora-compute-init $create_init_s s, ${create_wal:-?} bytes of WAL)"
	echo "pgbench (TPS p99 ms) without checkpoints: $without; a checkpoint every 30 s, no start state: $checkpoints_only; a checkpoint and start state every 30 s: $with ($states start states, ${state_bytes:-?} bytes, ${state_ms} ms each)"
fi
for s in $sizes; do
	a="$(printf '%s\n' "${rows[@]}" | awk -v s="$s" '$1 == "aurora" && $2 == s { print $4 }')"
	b="$(printf '%s\n' "${rows[@]}" | awk -v s="$s" '$1 == "stock" && $2 == s { print $4 }')"
	if [ -n "$a" ] && [ -n "$b" ]; then
		echo "aurora/stock restart to first commit at $s MB: $(awk -v a="$a" -v b="$b" 'BEGIN { printf "%.3f", a / b }')"
	fi
done
