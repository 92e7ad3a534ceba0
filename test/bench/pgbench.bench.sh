#!/usr/bin/env bash
# pgbench benchmark (issue 4): what commit durability costs a real workload.
# The same release build of our patched PostgreSQL, with the same server
# settings, in four configurations, one after the other (never two at once):
#
#   stock       the server alone, aurora not loaded: commits wait for the
#               local WAL fsync only;
#   syncrep     the same server with six physical standbys on loopback
#               (pg_basebackup, own data directory, port and replication slot
#               each, application_name s1..s6) and quorum synchronous
#               replication synchronous_standby_names =
#               'ANY 4 (s1,s2,s3,s4,s5,s6)': commits also wait until four
#               standbys have flushed them;
#   aurora      the local aurora cluster (src/tools/cluster.sh: six storage
#               nodes a1 a2 | b1 b2 | c1 c2, compute with aurora preloaded)
#               with aurora.shipping = on: commits also wait until VDL covers them (a
#               write quorum of 4/6 segments holds their WAL); a volume of ONE
#               protection group (aurora.protection_groups = 1): the same
#               fan-out as syncrep, every WAL byte to six replicas, one log
#               per replica;
#               The compute runs as `make run` sets it up, with the aurora
#               storage manager: relation pages live in storage, evictions
#               and checkpoints write nothing, full_page_writes = off
#               (cluster.sh: no page the compute writes can be read back
#               torn) and a 256 MB local page cache (pages that fall out of
#               shared_buffers are read back from a local file, as stock
#               PostgreSQL reads them from the operating system's page
#               cache); every other server setting is the common one;
#   aurora-4pg  the same with aurora.protection_groups = 4 (the extension's
#               default): the WAL is routed over four protection groups, all
#               placed on the same six nodes, so each node keeps four logs and
#               gets up to four messages (and fdatasyncs) per flush;
#   aurora-fpw  aurora with full_page_writes = on, as the other
#               configurations have it (what the full-page images cost);
#   aurora-nocache  aurora without the local page cache (cluster.sh
#               --page-cache 0): every page that falls out of shared_buffers
#               is read back from a storage node;
#   aurora-local  aurora without the storage manager (cluster.sh
#               --local-pages): pages stay in local files, only the WAL is
#               shipped, full_page_writes = on (issue 4's configuration).
#
# Each configuration: pgbench -i -s SCALE, CHECKPOINT, then a TPC-B-like
# read-write run (rw: pgbench -c CLIENTS -j 2 -T DURATION) and a read-only run
# (ro: the same with -S, after a VACUUM), each after the replicas have caught up (syncrep:
# every standby replayed the primary's WAL; aurora*: vdl_lag_bytes = 0 and a
# write quorum for every protection group, and every storage node's
# page-service backlog, INDEX_LAG and COALESCE_LAG of aurora-ctl status, is
# 0).  Per configuration and run it
# reports TPS (without connection time), the average, p50 and p99 transaction
# latency (computed from pgbench's per-transaction log, -l), transactions,
# WAL bytes per transaction (pg_current_wal_lsn() before/after), and network
# bytes per transaction of the durability traffic: TCP payload bytes
# (ss -ti bytes_sent/bytes_received) of the primary's walsender sockets to the
# standbys (syncrep) or of the shipper's sockets to the storage nodes
# (aurora*), snapshot before and after the run; for aurora* also the
# application bytes of aurora.shipping_stats().  It also records the CPU
# seconds of the sender (walsenders; the shipper) and of the
# receivers (six standbys; six storage nodes) over the run, and the machine's
# busy CPU share.  Ratios aurora/syncrep, aurora/stock, aurora-4pg/syncrep,
# aurora-4pg/stock and syncrep/stock follow the table.
#
# Environment (all optional):
#   BENCH_DIR          working directory parent         (/var/tmp/aurora-bench)
#   BENCH_RESULTS      where the JSON goes               (test/bench/results)
#   BENCH_KEEP=1       keep the working directory (data directories, server and
#                      pgbench logs; otherwise each configuration's data is
#                      removed once it is measured)
#   PGBENCH_DURATION   seconds per run                   (60)
#   PGBENCH_SCALE      pgbench scale factor              (10)
#   PGBENCH_CLIENTS    clients per run, on 2 threads     (8)
#   PGBENCH_CONFIGS    configurations, in order
#                      ("stock syncrep aurora aurora-4pg"; also aurora-fpw,
#                      aurora-nocache, aurora-local)
#   PGBENCH_SHARED_BUFFERS  shared_buffers of every configuration (512MB; scale
#                      10 is about 160 MB: 64MB makes the data 2.5 times the
#                      buffer cache, so pages are evicted and read back)
#   PGBENCH_NODE_CONF  extra storage node settings, "key = value;key = value"
#                      (e.g. "coalesce_threshold = 0"; default none)
#
# Writes $BENCH_RESULTS/pgbench.json and prints a table.  Builds what it needs
# if missing (quick when cached): the release PostgreSQL (src/postgres/build.sh
# release) and the extension for it, compiled from a copy of the sources in
# the server's cache directory so that the checkout's (debug) objects are left
# alone.  Needs the storage service built (make storage); `make bench` does it.
set -euo pipefail

# shellcheck source=test/bench/lib.sh
. "$(dirname "$0")/lib.sh"
duration="${PGBENCH_DURATION:-60}"
scale="${PGBENCH_SCALE:-10}"
clients="${PGBENCH_CLIENTS:-8}"
configs="${PGBENCH_CONFIGS:-stock syncrep aurora aurora-4pg}"
threads=2
standbys=6
# the aurora configurations: name -> aurora.protection_groups of the volume
declare -A aurora_pgs=([aurora]=1 [aurora-4pg]=4 [aurora-fpw]=1 [aurora-nocache]=1 [aurora-local]=1)
is_aurora() { [ -n "${aurora_pgs[$1]:-}" ]; }
catchup_timeout=600  # seconds to wait for replicas to catch up before a run

# Server settings of every configuration (the primary/compute; standbys copy
# them with pg_basebackup).  Checkpoints are far enough apart that none falls
# into a run; the CHECKPOINT before the runs is explicit.
server_settings=(
	"shared_buffers = ${PGBENCH_SHARED_BUFFERS:-512MB}"
	"max_wal_size = 8GB"
	"min_wal_size = 1GB"
	"checkpoint_timeout = 30min"
	"synchronous_commit = on"
	"fsync = on"
	"full_page_writes = on"
	"wal_level = replica"
	"max_wal_senders = 16"
	"max_replication_slots = 16"
)

die() { echo "pgbench: $*" >&2; exit 1; }
note() { echo "pgbench: $*" >&2; }

for v in "$duration" "$scale" "$clients"; do
	[[ "$v" =~ ^[1-9][0-9]*$ ]] || die "PGBENCH_DURATION, PGBENCH_SCALE and PGBENCH_CLIENTS must be positive integers"
done
[ -n "$configs" ] || die "PGBENCH_CONFIGS is empty"
seen_configs=" "
for c in $configs; do
	case "$c" in stock | syncrep | aurora | aurora-4pg | aurora-fpw | aurora-nocache | aurora-local) ;; *) die "unknown configuration '$c' in PGBENCH_CONFIGS (stock, syncrep, aurora, aurora-4pg, aurora-fpw, aurora-nocache, aurora-local)" ;; esac
	[[ "$seen_configs" != *" $c "* ]] || die "configuration '$c' given twice in PGBENCH_CONFIGS"
	seen_configs="$seen_configs$c "
done
[ "$clients" -ge "$threads" ] || threads=1
[ -x "$ctl" ] || die "$ctl not built (run: make storage)"
for t in ss perl awk sort runuser; do
	command -v "$t" >/dev/null || die "needs $t"
done

user="$(bash "$repo/src/tools/ensure-user.sh")"
as_user() {
	if [ "$(id -u)" -eq 0 ]; then runuser -u "$user" -- "$@"; else "$@"; fi
}
[ "$(id -u)" -eq 0 ] || note "not root: ss sees only sockets of processes of $(id -un)"

# ---- builds: release server, extension installed into it ------------------
bench_release_build || die "building the release PostgreSQL or the extension failed"
[ -x "$prefix/bin/pgbench" ] || die "$prefix/bin/pgbench missing"

# the sources just built: the commit is taken now, not when the runs are over
bench_git_state

pg() { echo "$prefix/bin/$1"; }
# psql PORT SQL -> unaligned, tuples only
sql() { as_user "$(pg psql)" -X -A -t -q -h 127.0.0.1 -p "$1" -U "$user" -d postgres -v ON_ERROR_STOP=1 -c "$2"; }

load_start="$(awk '{ print $1 }' /proc/loadavg)"

# ---- working directory, on the filesystem being measured -------------------
mkdir -p "$bench_dir" "$results"
work="$(mktemp -d "$bench_dir/pgbench.XXXXXX")"
chmod 755 "$work"
chown "$user:" "$work" 2>/dev/null || true
started_pg=()        # data directories of running servers (stopped in reverse)
started_cluster=""   # the aurora cluster directory while it runs
stop_pg() { # DATADIR [MODE]
	local d="$1" mode="${2:-fast}"
	if as_user "$(pg pg_ctl)" -D "$d" status >/dev/null 2>&1; then
		as_user "$(pg pg_ctl)" -D "$d" -m "$mode" -w -t 60 stop >/dev/null 2>&1 ||
			as_user "$(pg pg_ctl)" -D "$d" -m immediate -w -t 60 stop >/dev/null 2>&1 || true
	fi
}
stop_all() {
	local i
	for ((i = ${#started_pg[@]} - 1; i >= 0; i--)); do
		stop_pg "${started_pg[$i]}" "$@"
	done
	started_pg=()
	if [ -n "$started_cluster" ]; then
		# A fast shutdown also ends the shipper, so sessions whose commits wait
		# for VDL (refusing to end before it) would hold it up until pg_ctl's
		# timeout: when interrupted, stop the compute immediately.
		[ "${1:-fast}" = fast ] || stop_pg "$started_cluster/pgdata" "$1"
		if ! bash "$repo/src/tools/cluster.sh" stop "$started_cluster" >/dev/null 2>&1; then
			stop_pg "$started_cluster/pgdata" immediate
			as_user "$ctl" --cluster "$started_cluster/nodes" stop all >/dev/null 2>&1 || true
		fi
		started_cluster=""
	fi
}
# pgbench (a client: it need not run as the server user) runs in the
# background so that a signal is handled at once, not only when the run ends;
# cleanup stops it by its pid.
client_pid=""
client() { # OUT COMMAND... : output to OUT
	local out="$1" rc=0
	shift
	"$@" >"$out" 2>&1 &
	client_pid=$!
	wait "$client_pid" || rc=$?
	client_pid=""
	return "$rc"
}
cleanup() {
	if [ -n "$client_pid" ]; then
		kill "$client_pid" 2>/dev/null || true
		wait "$client_pid" 2>/dev/null || true
	fi
	stop_all immediate
	if [ "${BENCH_KEEP:-0}" = 1 ]; then
		echo "pgbench: kept $work" >&2
	else
		rm -rf "$work"
	fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

avail=$(($(df -P -k "$work" | awk 'NR == 2 { print $4 }') / 1024))
need=$((scale * 16 * 8 + 4096)) # MiB: data and WAL of up to 8 copies, plus WAL of the runs
[ "$avail" -gt "$need" ] || die "$work: needs about $need MiB, $avail MiB free"


# A run of 7 free loopback ports (the same helper test/check.sh uses).
free_ports() { bash "$repo/src/tools/free-ports.sh" || die "no seven free loopback ports"; }

# Common settings appended to a postgresql.conf (later lines win).
write_settings() { # CONF PORT
	{
		echo
		echo "# ---- pgbench benchmark (test/bench/pgbench.bench.sh) ----"
		echo "listen_addresses = '127.0.0.1'"
		echo "port = $2"
		echo "unix_socket_directories = ''"
		printf '%s\n' "${server_settings[@]}"
	} >>"$1"
}

start_pg() { # DATADIR
	started_pg+=("$1")
	as_user "$(pg pg_ctl)" -D "$1" -l "$1.log" -w -t 120 start >/dev/null ||
		{ tail -n 20 "$1.log" >&2; die "server in $1 did not start"; }
}

# Wait until SQL (on PORT) prints "t"; die with WHAT after TIMEOUT seconds.
wait_for() { # PORT TIMEOUT WHAT SQL
	local deadline=$((SECONDS + $2)) out
	while :; do
		out="$(sql "$1" "$4" 2>/dev/null || true)"
		[ "$out" = t ] && return 0
		[ $SECONDS -lt $deadline ] || die "timed out after $2 s waiting for $3"
		sleep 0.5
	done
}

# ---- measurement helpers -------------------------------------------------
clk_tck="$(getconf CLK_TCK)"
# CPU ticks (user + system, all threads) of the given processes.
cpu_ticks() {
	local p t=0 v
	for p in "$@"; do
		v="$(sed 's/.*) //' "/proc/$p/stat" 2>/dev/null | awk '{ print $12 + $13 }')" || v=0
		t=$((t + ${v:-0}))
	done
	echo "$t"
}
# "busy total" jiffies of the whole machine
machine_ticks() { awk '/^cpu / { t = 0; for (i = 2; i <= 9; i++) t += $i; print t - $5 - $6, t; exit }' /proc/stat; }
# pids of a PostgreSQL instance: postmaster and its children
instance_pids() { # DATADIR
	local pm
	pm="$(head -n 1 "$1/postmaster.pid" 2>/dev/null)" || return 0
	[ -n "$pm" ] || return 0
	echo "$pm"
	pgrep -P "$pm" || true
}

# TCP sockets of processes PIDS to peers on PORTS: "LOCAL-PEER bytes_sent bytes_received"
net_snapshot() { # "PIDS" "PORTS"
	ss -tinpHO state established | awk -v pids=" $1 " -v ports=" $2 " '
		{
			n = split($4, peer, ":")
			if (index(ports, " " peer[n] " ") == 0) next
			mine = 0; rest = $0
			while (match(rest, /pid=[0-9]+/)) {
				if (index(pids, " " substr(rest, RSTART + 4, RLENGTH - 4) " ")) mine = 1
				rest = substr(rest, RSTART + RLENGTH)
			}
			if (!mine) next
			s = 0; r = 0
			if (match($0, /bytes_sent:[0-9]+/)) s = substr($0, RSTART + 11, RLENGTH - 11)
			if (match($0, /bytes_received:[0-9]+/)) r = substr($0, RSTART + 15, RLENGTH - 15)
			print $3 "-" $4, s, r
		}'
}
# BEFORE AFTER -> "connections_before connections_after sent received changed"
# (a connection opened during the run counts whole; one closed during it is
# lost from the sum, which is then a lower bound: "changed" says so)
net_delta() {
	awk 'NR == FNR { b[$1] = $2; br[$1] = $3; nb++; next }
		{ na++
		  if ($1 in b) { s += $2 - b[$1]; r += $3 - br[$1]; seen[$1] = 1 }
		  else { s += $2; r += $3; changed = 1 } }
		END { for (k in b) if (!(k in seen)) changed = 1
		      print nb + 0, na + 0, s + 0, r + 0, changed + 0 }' "$1" "$2"
}

# Latencies (µs, third field) of pgbench -l logs -> "count avg_ms p50_ms p99_ms"
lat_stats() { # LOGS...
	local sorted="$work/latencies.sorted" n
	awk '$3 ~ /^[0-9]+$/ { print $3 }' "$@" | sort -n -S 64M >"$sorted"
	n="$(wc -l <"$sorted")"
	[ "$n" -gt 0 ] || { rm -f "$sorted"; echo "0 null null null"; return; }
	awk -v n="$n" 'BEGIN { k50 = int((n * 50 + 99) / 100); k99 = int((n * 99 + 99) / 100) }
		{ s += $1 } NR == k50 { p50 = $1 } NR == k99 { p99 = $1 }
		END { printf "%d %.3f %.3f %.3f\n", n, s / n / 1000, p50 / 1000, p99 / 1000 }' "$sorted"
	rm -f "$sorted"
}

# WAL between two LSNs of the server on PORT -> "records fpi_bytes" (pg_waldump --stats)
wal_stats() { # PORT START END
	local datadir
	datadir="$(sql "$1" "SHOW data_directory")"
	if [ "$2" = "$3" ]; then echo "0 0"; return; fi
	as_user "$(pg pg_waldump)" --stats -p "$datadir/pg_wal" -s "$2" -e "$3" 2>"$work/waldump.err" |
		awk '/^Total/ { gsub(/[][%]/, ""); print $2, $5; found = 1 } END { if (!found) print "null null" }'
}
# sums of aurora.shipping_stats(): "bytes batches records"
shipping_sums="SELECT coalesce(sum(bytes), 0) || ' ' || coalesce(sum(batches), 0) || ' ' || coalesce(sum(records), 0) FROM aurora.shipping_stats()"

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a != "null" && b != "null" && b + 0 > 0) printf "%.3f\n", a / b; else print "null" }'; }
per_xact() { awk -v a="$1" -v n="$2" 'BEGIN { if (n > 0) printf "%.1f\n", a / n; else print "null" }'; }

declare -A R  # R[config:run:metric]

# Processes whose sockets/CPU are measured, set by each configuration before
# a run: sender pids, peer ports, receiver pids (space-separated lists).
sender_pids="" peer_ports="" receiver_pids=""

# One pgbench run: CONFIG RUN PORT [pgbench options]
measure() {
	local cfg="$1" run="$2" port="$3"
	shift 3
	local d="$work/$cfg" k="$cfg:$run" out lsn0 lsn1 wal app0="" app1 tb ta mb ma sb sa rb ra
	local n avg p50 p99 xacts tps failed conns0 conns1 sent recv changed v1 v2 v3
	out="$d/$run.out"
	rm -f "$d/$run".log.*

	R[$k:loadavg]="$(awk '{ print $1 }' /proc/loadavg)"
	lsn0="$(sql "$port" "SELECT pg_current_wal_lsn()")"
	if is_aurora "$cfg"; then app0="$(sql "$port" "$shipping_sums")"; fi
	net_snapshot "$sender_pids" "$peer_ports" >"$d/$run.net0"
	read -r mb tb <<<"$(machine_ticks)"
	# shellcheck disable=SC2086 # pid lists
	sb="$(cpu_ticks $sender_pids)" rb="$(cpu_ticks $receiver_pids)"

	if ! client "$out" "$(pg pgbench)" -h 127.0.0.1 -p "$port" -U "$user" -n -c "$clients" -j "$threads" \
		-T "$duration" -l --log-prefix="$d/$run.log" "$@" postgres; then
		cat "$out" >&2
		die "$cfg $run: pgbench failed"
	fi

	# shellcheck disable=SC2086
	sa="$(cpu_ticks $sender_pids)" ra="$(cpu_ticks $receiver_pids)"
	read -r ma ta <<<"$(machine_ticks)"
	net_snapshot "$sender_pids" "$peer_ports" >"$d/$run.net1"
	lsn1="$(sql "$port" "SELECT pg_current_wal_lsn()")"
	wal="$(sql "$port" "SELECT pg_wal_lsn_diff('$lsn1', '$lsn0')::bigint")"
	if is_aurora "$cfg"; then
		app1="$(sql "$port" "$shipping_sums")"
		read -r v1 v2 v3 <<<"$(awk -v a="$app0" -v b="$app1" \
			'BEGIN { split(a, x); split(b, y); print y[1] - x[1], y[2] - x[2], y[3] - x[3] }')"
		R[$k:app_bytes]=$v1 R[$k:app_batches]=$v2 R[$k:app_records]=$v3
		# the shipper's quorum latency over its last 4096 batches, i.e. this run's end
		read -r v1 v2 <<<"$(sql "$port" "SELECT coalesce(round(max(ack_latency_p50)::numeric, 3)::text, 'null')
			|| ' ' || coalesce(round(max(ack_latency_p99)::numeric, 3)::text, 'null') FROM aurora.protection_groups")"
		R[$k:ack_p50]=$v1 R[$k:ack_p99]=$v2
	fi
	# what the run's WAL is made of: records and full-page images
	read -r v1 v2 <<<"$(wal_stats "$port" "$lsn0" "$lsn1")"
	R[$k:wal_records]=$v1 R[$k:wal_fpi]=$v2

	xacts="$(sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p' "$out")"
	tps="$(sed -n 's/^tps = \([0-9.]*\) (without initial connection time).*/\1/p' "$out")"
	failed="$(sed -n 's/^number of failed transactions: \([0-9]*\).*/\1/p' "$out")"
	if [ -z "$xacts" ] || [ -z "$tps" ]; then
		cat "$out" >&2
		die "$cfg $run: cannot read pgbench's summary"
	fi
	read -r n avg p50 p99 <<<"$(lat_stats "$d/$run".log.*)"
	[ "$n" = "$xacts" ] ||
		note "$cfg $run: $n latencies logged for $xacts transactions reported"
	[ "${BENCH_KEEP:-0}" = 1 ] || rm -f "$d/$run".log.*

	read -r conns0 conns1 sent recv changed <<<"$(net_delta "$d/$run.net0" "$d/$run.net1")"
	if [ -n "$sender_pids" ]; then
		[ "$conns1" -gt 0 ] || die "$cfg $run: no durability connections found (pids $sender_pids, ports $peer_ports)"
		[ "$changed" = 0 ] ||
			note "$cfg $run: durability connections changed during the run ($conns0 before, $conns1 after): net bytes are a lower bound"
	fi

	R[$k:xacts]=$xacts R[$k:failed]=${failed:-0} R[$k:tps]=$tps
	R[$k:samples]=$n R[$k:avg]=$avg R[$k:p50]=$p50 R[$k:p99]=$p99
	R[$k:wal]=$wal R[$k:wal_x]="$(per_xact "$wal" "$xacts")"
	R[$k:conns]=$conns1 R[$k:conns_changed]=$changed
	R[$k:sent]=$sent R[$k:recv]=$recv
	R[$k:net_x]="$(per_xact "$sent" "$xacts")" R[$k:netr_x]="$(per_xact "$recv" "$xacts")"
	R[$k:fpi_pct]="$(awk -v f="${R[$k:wal_fpi]}" -v w="$wal" 'BEGIN { if (f != "null" && w > 0) printf "%.1f\n", 100 * f / w; else print "null" }')"
	if is_aurora "$cfg"; then
		R[$k:app_x]="$(per_xact "${R[$k:app_bytes]}" "$xacts")"
		R[$k:batches_x]="$(awk -v a="${R[$k:app_batches]}" -v n="$xacts" 'BEGIN { if (n > 0) printf "%.2f\n", a / n; else print "null" }')"
	fi
	R[$k:busy]="$(awk -v b=$((ma - mb)) -v t=$((ta - tb)) 'BEGIN { printf "%.1f\n", (t > 0 ? 100 * b / t : 0) }')"
	R[$k:sender_cpu]="$(awk -v t=$((sa - sb)) -v h="$clk_tck" 'BEGIN { printf "%.2f\n", t / h }')"
	R[$k:receivers_cpu]="$(awk -v t=$((ra - rb)) -v h="$clk_tck" 'BEGIN { printf "%.2f\n", t / h }')"
	if [ -z "$sender_pids" ]; then R[$k:sender_cpu]=null; fi
	if [ -z "$receiver_pids" ]; then R[$k:receivers_cpu]=null; fi
	printf 'pgbench: %-10s %s: %s xacts, %.1f tps, avg %s ms, p99 %s ms, WAL %s B/xact, net %s B/xact, CPU busy %s %%\n' \
		"$cfg" "$run" "$xacts" "$tps" "$avg" "$p99" "${R[$k:wal_x]}" "${R[$k:net_x]}" "${R[$k:busy]}"
}

# init, CHECKPOINT, then rw and ro, each once the replicas are idle
run_workload() { # CONFIG PORT CATCHUP_FUNCTION
	local cfg="$1" port="$2" catchup="$3"
	client "$work/$cfg/init.log" "$(pg pgbench)" -h 127.0.0.1 -p "$port" -U "$user" -i -q -s "$scale" postgres ||
		{ cat "$work/$cfg/init.log" >&2; die "$cfg: pgbench -i failed"; }
	"$catchup"
	sql "$port" "CHECKPOINT" >/dev/null
	"$catchup"
	measure "$cfg" rw "$port"
	# the read-only run starts from a vacuumed database, as the rw run did
	# (pgbench -i vacuums): otherwise it prunes the rw run's dead tuples as it
	# reads, more of them the faster a configuration wrote
	sql "$port" "VACUUM" >/dev/null
	"$catchup"
	measure "$cfg" ro "$port" -S
}

no_catchup() { :; }

# ---- stock ---------------------------------------------------------------
run_stock() {
	local d="$work/stock" port
	port="$(free_ports)"
	mkdir -p "$d" && chown "$user:" "$d"
	as_user "$(pg initdb)" -D "$d/data" -A trust -U "$user" --no-sync >"$d/initdb.log" 2>&1 ||
		{ cat "$d/initdb.log" >&2; die "stock: initdb failed"; }
	write_settings "$d/data/postgresql.conf" "$port"
	start_pg "$d/data"
	sender_pids="" peer_ports="" receiver_pids=""
	run_workload stock "$port" no_catchup
	stop_all fast
}

# ---- syncrep: six physical standbys, ANY 4 ---------------------------------
syncrep_port=""
syncrep_catchup() {
	wait_for "$syncrep_port" "$catchup_timeout" "six standbys to replay the primary's WAL" \
		"SELECT count(*) = $standbys AND bool_and(replay_lsn >= pg_current_wal_lsn()) FROM pg_stat_replication WHERE application_name ~ '^s[0-9]+\$' AND state = 'streaming'"
}
run_syncrep() {
	local d="$work/syncrep" base names="" i sdir pids="" ports="" p
	base="$(free_ports)"
	syncrep_port="$base"
	mkdir -p "$d" && chown "$user:" "$d"
	as_user "$(pg initdb)" -D "$d/primary" -A trust -U "$user" --no-sync >"$d/initdb.log" 2>&1 ||
		{ cat "$d/initdb.log" >&2; die "syncrep: initdb failed"; }
	write_settings "$d/primary/postgresql.conf" "$base"
	for i in $(seq 1 $standbys); do names="$names${names:+,}s$i"; done
	echo "synchronous_standby_names = 'ANY 4 ($names)'" >>"$d/primary/postgresql.conf"
	start_pg "$d/primary"
	for i in $(seq 1 $standbys); do
		sdir="$d/s$i"
		as_user "$(pg pg_basebackup)" -h 127.0.0.1 -p "$base" -U "$user" -D "$sdir" -X stream \
			-C -S "s$i" --checkpoint=fast >"$d/basebackup-s$i.log" 2>&1 ||
			{ cat "$d/basebackup-s$i.log" >&2; die "syncrep: pg_basebackup of s$i failed"; }
		cat >>"$sdir/postgresql.conf" <<CONF

# ---- standby s$i of the pgbench benchmark ----
port = $((base + i))
primary_conninfo = 'host=127.0.0.1 port=$base user=$user application_name=s$i'
primary_slot_name = 's$i'
hot_standby = on
CONF
		as_user touch "$sdir/standby.signal"
		start_pg "$sdir"
	done
	wait_for "$base" 120 "six standbys streaming in quorum (pg_stat_replication)" \
		"SELECT count(*) = $standbys FROM pg_stat_replication WHERE application_name ~ '^s[0-9]+\$' AND state = 'streaming' AND sync_state = 'quorum'"

	pids="$(sql "$base" "SELECT string_agg(pid::text, ' ') FROM pg_stat_replication WHERE application_name ~ '^s[0-9]+\$'")"
	ports="$(sql "$base" "SELECT string_agg(client_port::text, ' ') FROM pg_stat_replication WHERE application_name ~ '^s[0-9]+\$'")"
	sender_pids="$pids" peer_ports="$ports" receiver_pids=""
	for i in $(seq 1 $standbys); do
		for p in $(instance_pids "$d/s$i"); do receiver_pids="$receiver_pids $p"; done
	done
	R[syncrep:standby_states]="$(sql "$base" "SELECT string_agg(application_name || '=' || state || '/' || sync_state, ' ' ORDER BY application_name) FROM pg_stat_replication")"
	echo "pgbench: syncrep: standbys attached: ${R[syncrep:standby_states]}"
	run_workload syncrep "$base" syncrep_catchup
	# the walsenders must be the ones measured
	[ "$(sql "$base" "SELECT string_agg(pid::text, ' ') FROM pg_stat_replication WHERE application_name ~ '^s[0-9]+\$'")" = "$pids" ] ||
		note "syncrep: a walsender was replaced during the runs"
	stop_all fast
}

# ---- aurora, aurora-4pg: six storage nodes, compute shipping ---------------
aurora_port="" aurora_cfg=""
# Run COMMAND (it prints a count) every INTERVAL seconds until it prints 0
# or TIMEOUT seconds have passed; print the last count.
count_until_zero() { # TIMEOUT INTERVAL COMMAND...
	local deadline=$((SECONDS + $1)) interval="$2" n
	shift 2
	while :; do
		n="$("$@")"
		if [ "$n" = 0 ] || [ $SECONDS -ge $deadline ]; then
			break
		fi
		sleep "$interval"
	done
	echo "$n"
}
segments_not_up() {
	sql "$aurora_port" "SELECT count(*) FROM aurora.segments WHERE state <> 'up'"
}
nodes_with_backlog() {
	as_user "$ctl" --cluster "$work/$aurora_cfg/nodes" status 2>/dev/null |
		awk '/serving/ { if ($(NF-1) != 0 || $NF != 0) n++ } END { print n + 0 }'
}
aurora_catchup() {
	wait_for "$aurora_port" "$catchup_timeout" "VDL to reach the local flush and a write quorum for every protection group ($aurora_cfg)" \
		"SELECT (SELECT vdl_lag_bytes = 0 FROM aurora.watermarks())
		    AND (SELECT count(*) > 0 AND bool_and(write_quorum_available) FROM aurora.protection_groups)"
	# segments still catching up would gossip during the run: give them a moment
	local behind lag t0
	behind="$(count_until_zero 30 0.5 segments_not_up)"
	[ "$behind" = 0 ] || note "$aurora_cfg: $behind segments not 'up' before the run"
	# and the storage nodes have done their background work (indexing the
	# log, coalescing), as syncrep's standbys have replayed theirs: each
	# node's STATUS backlog (aurora-ctl status: INDEX_LAG COALESCE_LAG) is 0
	t0=$SECONDS
	lag="$(count_until_zero "$catchup_timeout" 1 nodes_with_backlog)"
	[ "$lag" = 0 ] || note "$aurora_cfg: $lag storage nodes still have page-service backlog before the run"
	[ $((SECONDS - t0)) -lt 2 ] || note "$aurora_cfg: waited $((SECONDS - t0)) s for the storage nodes' page service to catch up"
}
# the shipper is a background worker without a database connection, hence not
# in pg_stat_activity: find it among the postmaster's children by its title
shipper_pid() { # CLUSTER_DIR
	local pm
	pm="$(head -n 1 "$1/pgdata/postmaster.pid" 2>/dev/null)" || return 0
	ps -o pid=,args= --ppid "$pm" | awk '/aurora WAL shipper/ { print $1; exit }'
}
run_aurora() { # CONFIG PROTECTION_GROUPS
	local cfg="$1" pgs="$2" d="$work/$1" base id p n init_opts=()
	base="$(free_ports)"
	aurora_port=$((base + 6)) aurora_cfg="$cfg"
	case "$cfg" in
	aurora-local) init_opts=(--local-pages) ;;
	aurora-nocache) init_opts=(--page-cache 0) ;;
	esac
	bash "$repo/src/tools/cluster.sh" init "$d" "$prefix" "$base" "$aurora_port" \
		"${init_opts[@]}" 2>"$work/$cfg-init.log" ||
		{ cat "$work/$cfg-init.log" >&2; die "$cfg: cluster.sh init failed"; }
	write_settings "$d/pgdata/postgresql.conf" "$aurora_port"
	case "$cfg" in
	# the common settings above say full_page_writes = on: the storage
	# manager's configurations get cluster.sh's setting back
	aurora | aurora-4pg | aurora-nocache) echo "full_page_writes = off" >>"$d/pgdata/postgresql.conf" ;;
	esac
	# what test/check.sh's shipping stage runs (explicit, whatever cluster.sh's
	# default), with the configuration's number of protection groups: the
	# volume is created with it when the shipper first starts
	cat >>"$d/pgdata/postgresql.conf" <<CONF
aurora.shipping = on
aurora.protection_groups = $pgs
CONF
	# extra storage node settings, e.g. to see what the page service costs
	if [ -n "${PGBENCH_NODE_CONF:-}" ]; then
		for conf in "$d"/nodes/*.conf; do
			tr ';' '\n' <<<"$PGBENCH_NODE_CONF" >>"$conf"
		done
	fi
	started_cluster="$d"
	bash "$repo/src/tools/cluster.sh" start "$d" >"$work/$cfg-start.log" 2>&1 ||
		{ cat "$work/$cfg-start.log" >&2; tail -n 20 "$d/postgres.log" >&2 || true; die "$cfg: cluster.sh start failed"; }
	wait_for "$aurora_port" 60 "the shipper to ship (VDL in aurora.watermarks())" \
		"SELECT vdl IS NOT NULL FROM aurora.watermarks()"
	aurora_catchup
	# the volume is the one this configuration is about
	n="$(sql "$aurora_port" "SELECT (SELECT count(*) FROM aurora.protection_groups) || ' ' || (SELECT count(*) FROM aurora.segments) || ' ' || (SELECT count(DISTINCT node_id) FROM aurora.segments)")"
	[ "$n" = "$pgs $((pgs * 6)) 6" ] ||
		die "$cfg: expected $pgs protection groups of six segments on six nodes, found (PGs segments nodes) $n"
	echo "pgbench: $cfg: $pgs protection group(s), $((pgs * 6)) segments on six storage nodes"

	local shipper
	shipper="$(shipper_pid "$d")"
	[ -n "$shipper" ] || die "$cfg: shipper not found"
	sender_pids="$shipper" peer_ports="" receiver_pids=""
	for p in $(seq "$base" $((base + 5))); do peer_ports="$peer_ports $p"; done
	for id in a1 a2 b1 b2 c1 c2; do
		p="$(head -n 1 "$d/nodes/$id/aurora-storage.pid" 2>/dev/null | tr -dc 0-9)"
		[ -n "$p" ] || die "$cfg: no pid file for node $id"
		receiver_pids="$receiver_pids $p"
	done
	run_workload "$cfg" "$aurora_port" aurora_catchup
	[ "$(shipper_pid "$d")" = "$shipper" ] ||
		note "$cfg: the shipper restarted during the runs"
	R[$cfg:node_errors]="$(sql "$aurora_port" "SELECT coalesce(sum(errors), 0) FROM aurora.shipping_stats()")"
	[ "${R[$cfg:node_errors]}" = 0 ] || note "$cfg: shipping_stats reports ${R[$cfg:node_errors]} failed requests"
	stop_all fast
}

# ---- run -----------------------------------------------------------------
echo "pgbench: scale $scale, $clients clients on $threads threads, $duration s per run; configurations: $configs"
echo "pgbench: server $prefix; $(bench_fs "$work") ($work)"
for c in $configs; do
	echo "pgbench: == $c"
	mkdir -p "$work/$c"
	case "$c" in
	stock) run_stock ;;
	syncrep) run_syncrep ;;
	*) run_aurora "$c" "${aurora_pgs[$c]}" ;;
	esac
	[ "${BENCH_KEEP:-0}" = 1 ] || rm -rf "${work:?}/$c"
done

# ---- table ---------------------------------------------------------------
echo
printf '%-12s %-3s | %9s %9s %8s %8s %8s | %9s %5s %9s %9s | %6s %8s %9s\n' \
	config run xacts tps "avg ms" "p50 ms" "p99 ms" "WAL B/x" "FPI%" "net B/x" "app B/x" "busy%" "send s" "recv s"
for c in $configs; do
	for r in rw ro; do
		k="$c:$r"
		printf '%-12s %-3s | %9s %9.1f %8s %8s %8s | %9s %5s %9s %9s | %6s %8s %9s\n' \
			"$c" "$r" "${R[$k:xacts]}" "${R[$k:tps]}" "${R[$k:avg]}" "${R[$k:p50]}" "${R[$k:p99]}" \
			"${R[$k:wal_x]}" "${R[$k:fpi_pct]/null/-}" "$([ "$c" = stock ] && echo - || echo "${R[$k:net_x]}")" "${R[$k:app_x]:--}" \
			"${R[$k:busy]}" "${R[$k:sender_cpu]/null/-}" "${R[$k:receivers_cpu]/null/-}"
	done
done
echo "(FPI%: share of the run's WAL bytes that are full-page images (pg_waldump --stats);"
echo " net B/x: TCP payload bytes sent by the primary's walsenders to the standbys / by the shipper to the storage nodes, per transaction;"
echo " app B/x: aurora.shipping_stats() bytes; busy%: whole machine; send s / recv s: CPU seconds of walsenders or the shipper / of standbys or storage nodes;"
echo " aurora: one protection group, aurora-4pg: four, both on the same six storage nodes)"

# Ratios FIRST/SECOND of every pair; the table shows the pairs whose two
# configurations ran, the JSON always has every pair (null where one did not).
all_pairs=(aurora:syncrep aurora:stock aurora-4pg:syncrep aurora-4pg:stock aurora-fpw:syncrep
	aurora-fpw:stock aurora-fpw:aurora aurora-nocache:syncrep aurora:aurora-nocache aurora-local:syncrep
	aurora:aurora-local syncrep:stock)
pairs=()
for p in "${all_pairs[@]}"; do
	a="${p%%:*}" b="${p##*:}"
	[[ " $configs " == *" $a "* && " $configs " == *" $b "* ]] && pairs+=("$p")
done
if [ ${#pairs[@]} -gt 0 ]; then
	echo
	printf '%-3s %-6s' run metric
	for p in "${pairs[@]}"; do printf ' | %18s' "${p/:/\/}"; done
	echo
fi
json_ratios=""
for r in rw ro; do
	for m in tps avg p99 wal_x net_x; do
		[ ${#pairs[@]} -eq 0 ] || printf '%-3s %-6s' "$r" "$m"
		entry=""
		for p in "${all_pairs[@]}"; do
			a="${p%%:*}" b="${p##*:}"
			x="$(ratio "${R[$a:$r:$m]:-null}" "${R[$b:$r:$m]:-null}")"
			if [[ " ${pairs[*]} " == *" $p "* ]]; then printf ' | %18s' "$x"; fi
			entry="$entry, \"${a}_over_$b\": $x"
		done
		[ ${#pairs[@]} -eq 0 ] || echo
		json_ratios="$json_ratios${json_ratios:+,
}    {\"run\": \"$r\", \"metric\": \"$m\"$entry}"
	done
done
if [ ${#pairs[@]} -gt 0 ]; then
	echo "(tps below 1 and latency, WAL or network above 1 mean the first configuration is worse; null: zero or no value)"
fi

# ---- JSON ------------------------------------------------------------------
jnum() { if [ -n "${1:-}" ]; then echo "$1"; else echo null; fi; }
# shellcheck disable=SC2086
configs_json="$(printf '"%s",' $configs)"
settings_json=""
for s in "${server_settings[@]}"; do
	settings_json="$settings_json${settings_json:+, }$(jstr "${s%% = *}"): $(jstr "${s#* = }")"
done

json_runs=""
for c in $configs; do
	for r in rw ro; do
		k="$c:$r"
		net="null"
		[ "$c" = stock ] || net="{\"connections\": ${R[$k:conns]}, \"connections_changed\": $([ "${R[$k:conns_changed]}" = 1 ] && echo true || echo false), \"bytes_sent\": ${R[$k:sent]}, \"bytes_received\": ${R[$k:recv]}, \"bytes_sent_per_xact\": ${R[$k:net_x]}, \"bytes_received_per_xact\": ${R[$k:netr_x]}}"
		app="null"
		if is_aurora "$c"; then app="{\"bytes\": ${R[$k:app_bytes]}, \"bytes_per_xact\": ${R[$k:app_x]}, \"batches\": ${R[$k:app_batches]}, \"batches_per_xact\": ${R[$k:batches_x]}, \"records\": ${R[$k:app_records]}, \"ack_latency_p50_ms_max_pg\": ${R[$k:ack_p50]}, \"ack_latency_p99_ms_max_pg\": ${R[$k:ack_p99]}}"; fi
		json_runs="$json_runs${json_runs:+,
}    {\"config\": \"$c\", \"run\": \"$r\", \"loadavg_1m_at_start\": ${R[$k:loadavg]},
     \"transactions\": ${R[$k:xacts]}, \"failed\": ${R[$k:failed]}, \"tps\": ${R[$k:tps]},
     \"latency_samples\": ${R[$k:samples]}, \"latency_avg_ms\": ${R[$k:avg]}, \"latency_p50_ms\": ${R[$k:p50]}, \"latency_p99_ms\": ${R[$k:p99]},
     \"wal_bytes\": ${R[$k:wal]}, \"wal_bytes_per_xact\": ${R[$k:wal_x]}, \"wal_records\": ${R[$k:wal_records]}, \"wal_fpi_bytes\": ${R[$k:wal_fpi]}, \"wal_fpi_pct\": ${R[$k:fpi_pct]},
     \"net\": $net, \"aurora_shipping_stats\": $app,
     \"cpu\": {\"machine_busy_pct\": ${R[$k:busy]}, \"sender_s\": ${R[$k:sender_cpu]}, \"receivers_s\": ${R[$k:receivers_cpu]}}}"
	done
done

tmp="$results/pgbench.json.tmp"
cat >"$tmp" <<JSON
{
  "benchmark": "pgbench",
  "description": "pgbench TPC-B-like (rw) and select-only (ro) runs on the same release build and settings: stock (local fsync only), syncrep (quorum synchronous replication ANY 4 of six physical standbys on loopback), aurora (WAL shipped to six storage nodes on loopback, commits wait for VDL, write quorum 4/6; a volume of one protection group, one log per node), aurora-4pg (the same with four protection groups, the extension's default, all on the same six nodes: four logs per node), aurora-fpw (aurora with full_page_writes on), aurora-nocache (aurora without the local page cache), aurora-local (aurora without the storage manager: pages in local files); aurora, aurora-4pg, aurora-fpw and aurora-nocache keep relation pages in storage (aurora.storage_manager); aurora, aurora-4pg and aurora-fpw have the 256 MB local page cache make run sets up; aurora, aurora-4pg and aurora-nocache run with full_page_writes off as make run sets them up, the others with the common settings",
$(bench_context_json "$work" "$bench_dir" "$load_start")
  "parameters": {
    "server": $(jstr "$prefix"),
    "scale": $scale,
    "clients": $clients,
    "threads": $threads,
    "duration_s": $duration,
    "configs": [${configs_json%,}],
    "server_settings": {$settings_json},
    "syncrep": {"standbys": $standbys, "synchronous_standby_names": "ANY 4 (s1,s2,s3,s4,s5,s6)", "transport": "tcp://127.0.0.1"},
    "aurora": {"storage_nodes": 6, "protection_groups": ${aurora_pgs[aurora]}, "write_quorum": 4, "commit_wait": "aurora (syncrep_wait_hook)", "transport": "tcp://127.0.0.1"},
    "aurora-4pg": {"storage_nodes": 6, "protection_groups": ${aurora_pgs[aurora-4pg]}, "write_quorum": 4, "commit_wait": "aurora (syncrep_wait_hook)", "transport": "tcp://127.0.0.1"}
  },
  "units": {
    "tps": "pgbench's tps without initial connection time",
    "latency_*_ms": "per transaction, from pgbench's per-transaction log (-l): mean, and nearest-rank p50/p99",
    "wal_bytes": "pg_current_wal_lsn() after the run minus before it, on the primary/compute",
    "net": "TCP payload bytes (ss -ti bytes_sent/bytes_received) of the durability connections over the run: syncrep the primary's walsender sockets to the six standbys, aurora and aurora-4pg the shipper's sockets to the six storage nodes; sent = primary/compute to replicas",
    "wal_records/wal_fpi_bytes": "pg_waldump --stats over the run's WAL: records, and bytes of full-page images in them",
    "aurora_shipping_stats": "aurora and aurora-4pg only: sums of aurora.shipping_stats() over the run: bytes of the messages the shipper sent to the nodes (headers included), LOG_APPEND batches, WAL records (each counted once per node it went to); ack_latency_*: the largest over protection groups of aurora.protection_groups' quorum acknowledgement latency (batches of the last minute, at most 4096) after the run",
    "cpu": "machine_busy_pct: non-idle, non-iowait share of all CPUs over the run (/proc/stat); sender_s: CPU seconds of the walsenders (syncrep) or the shipper (aurora, aurora-4pg); receivers_s: CPU seconds of all processes of the six standbys (syncrep) or of the six storage nodes (aurora, aurora-4pg)",
    "ratios": "A_over_B: A's figure / B's for the run and metric (tps, avg and p99 latency, WAL and network bytes per transaction); null where A or B did not run or B's figure is 0"
  },
  "results": [
$json_runs
  ],
  "ratios": [
$json_ratios
  ]
}
JSON
mv "$tmp" "$results/pgbench.json"
echo "pgbench: wrote $results/pgbench.json"
