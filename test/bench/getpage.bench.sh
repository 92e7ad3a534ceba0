#!/usr/bin/env bash
# GETPAGE benchmark (issue 5): how long a storage node takes to return a page
# rebuilt from the log, on loopback, and how fast the WAL-redo helpers apply
# records.
#
# Set-up: the local aurora cluster (src/tools/cluster.sh, release server),
# one protection group, the volume seeded from the initdb'ed data directory
# (aurora-ctl seed), coalescing off on the nodes (coalesce_threshold = 0) so
# that chains keep the length the benchmark gives them.  A table of one row
# is updated GETPAGE_UPDATES times, each in its own transaction (heap
# records, HOT updates and the pruning they trigger, all on block 0), and
# the LSN after every update is kept: asking for block 0 as of the LSN after
# update k makes the node apply the chain from the row's insert (which
# initializes the page) up to update k.  Then, one request at a time over one
# connection (aurora-ctl getpage --batch, the round trip measured in the
# client), three kinds of request, GETPAGE_REQUESTS each (long chains: a
# tenth of that):
#
#   image   seeded catalog pages (pg_proc) at the seed LSN: an image is read
#           from the page store and returned, no redo;
#   short   block 0 as of update 1..10, picked at random: 2-11 records;
#   long    block 0 as of the last 10% of updates: ~0.9-1x GETPAGE_UPDATES
#           records.
#
# Reported per kind: requests, p50, p99, mean (microseconds); for redo the
# records applied per second, measured as the marginal cost of a record
# between short and long chains (the fixed per-request cost, network, helper
# hand-off and page store lookups, cancels out) and, as a lower bound, long
# chains' records over their whole round trip.  Neon reports a getpage p99
# of about 0.75 ms in its own CI; that is another system on other hardware,
# quoted for scale, not a ratio measured here.
#
# Environment (all optional):
#   BENCH_DIR          working directory parent   (/var/tmp/aurora-bench)
#   BENCH_RESULTS      where the JSON goes         (test/bench/results)
#   BENCH_KEEP=1       keep the working directory
#   GETPAGE_UPDATES    updates of the row          (1000)
#   GETPAGE_REQUESTS   requests per kind           (2000)
#
# Writes $BENCH_RESULTS/getpage.json and prints a table.
set -euo pipefail

# shellcheck source=test/bench/lib.sh
. "$(dirname "$0")/lib.sh"
updates="${GETPAGE_UPDATES:-1000}"
requests="${GETPAGE_REQUESTS:-2000}"
user="$(bash "$repo/src/tools/ensure-user.sh")"

die() { echo "getpage: $*" >&2; exit 1; }
note() { echo "getpage: $*" >&2; }
as_user() {
	if [ "$(id -u)" -eq 0 ]; then runuser -u "$user" -- "$@"; else "$@"; fi
}

for v in "$updates" "$requests"; do
	[[ "$v" =~ ^[1-9][0-9]*$ ]] || die "GETPAGE_UPDATES and GETPAGE_REQUESTS must be positive integers"
done
[ "$updates" -ge 20 ] || die "GETPAGE_UPDATES must be at least 20"
[ -x "$ctl" ] || die "$ctl not built (run: make storage)"

bench_release_build || die "building the release PostgreSQL or the extension failed"
bench_git_state
load_start="$(awk '{ print $1 }' /proc/loadavg)"

mkdir -p "$bench_dir" "$results"
work="$(mktemp -d "$bench_dir/getpage.XXXXXX")"
chmod 755 "$work"
chown "$user:" "$work" 2>/dev/null || true
cluster="$work/cluster"
cleanup() {
	if [ -f "$cluster/cluster.env" ]; then
		bash "$repo/src/tools/cluster.sh" stop "$cluster" >/dev/null 2>&1 ||
			as_user "$ctl" --cluster "$cluster/nodes" stop all >/dev/null 2>&1 || true
	fi
	if [ "${BENCH_KEEP:-0}" = 1 ]; then
		echo "getpage: kept $work" >&2
	else
		rm -rf "$work"
	fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- cluster: seeded volume, one PG, no coalescing ---------------------------
base="$(bash "$repo/src/tools/free-ports.sh")" || die "no free ports"
pgport=$((base + 6))
bash "$repo/src/tools/cluster.sh" init "$cluster" "$prefix" "$base" "$pgport" >/dev/null
for conf in "$cluster"/nodes/*.conf; do
	echo "coalesce_threshold = 0" >>"$conf"
done
cat >>"$cluster/pgdata/postgresql.conf" <<CONF
aurora.protection_groups = 1
autovacuum = off
CONF
seed_lsn="$(as_user "$prefix/bin/pg_controldata" "$cluster/pgdata" | sed -n 's/^Latest checkpoint location: *//p')"
as_user "$ctl" --cluster "$cluster/nodes" start all >/dev/null
as_user "$ctl" --cluster "$cluster/nodes" seed --datadir "$cluster/pgdata" --postgres-bin "$prefix/bin" \
	--pgs 1 --blocks-per-segment 131072 >"$work/seed.log" || { cat "$work/seed.log" >&2; die "seeding failed"; }
bash "$repo/src/tools/cluster.sh" start "$cluster" >/dev/null
sql() { as_user "$prefix/bin/psql" -X -A -t -q -h 127.0.0.1 -p "$pgport" -U "$user" -d postgres -v ON_ERROR_STOP=1 "$@"; }
url="$(sed -n 's/^listen_url = //p' "$cluster/nodes/b1.conf")"

# ---- the chain: one row updated $updates times -------------------------------
sql -c "CREATE TABLE chain (v bigint)" -c "INSERT INTO chain VALUES (0)"
for ((i = 1; i <= updates; i++)); do
	echo "UPDATE chain SET v = v + 1;"
	echo "SELECT pg_current_wal_lsn();"
done >"$work/updates.sql"
chown "$user:" "$work/updates.sql"
sql -f "$work/updates.sql" >"$work/lsns"
[ "$(wc -l <"$work/lsns")" -eq "$updates" ] || die "expected $updates LSNs from the updates"
db="$(sql -c "SELECT oid FROM pg_database WHERE datname = 'postgres'")"
chain_rel="$(sql -c "SELECT pg_relation_filenode('chain')")"
proc_blocks="$(sql -c "SELECT pg_relation_size('pg_proc') / 8192")"
end="$(tail -n 1 "$work/lsns")"
for ((t = 0; t < 600; t++)); do
	[ "$(sql -c "SELECT vdl >= '$end' FROM aurora.watermarks()")" = t ] && break
	sleep 0.1
done

# ---- request lists -------------------------------------------------------------
long_requests=$(((requests + 9) / 10))
awk -v n="$requests" -v spc=1663 -v db="$db" -v rel=1255 -v blocks="$proc_blocks" -v lsn="$seed_lsn" \
	'BEGIN { for (i = 0; i < n; i++) printf "0 %s/%s/%s/0/%d %s\n", spc, db, rel, i % blocks, lsn }' \
	>"$work/image.list"
# short and long: "k" (the update) goes into a side file to count records
pick() { # FROM TO N -> N update numbers in [FROM, TO]
	awk -v a="$1" -v b="$2" -v n="$3" 'BEGIN { srand(42); for (i = 0; i < n; i++) print a + int(rand() * (b - a + 1)) }'
}
pick 1 10 "$requests" >"$work/short.k"
pick $((updates - updates / 10 + 1)) "$updates" "$long_requests" >"$work/long.k"
for kind in short long; do
	awk -v spc=1663 -v db="$db" -v rel="$chain_rel" 'NR == FNR { lsn[NR] = $1; next }
		{ printf "0 %s/%s/%s/0/0 %s\n", spc, db, rel, lsn[$1] }' "$work/lsns" "$work/$kind.k" >"$work/$kind.list"
done
chown "$user:" "$work"/*.list

# ---- measure ---------------------------------------------------------------------
# warm up: start the helpers, touch the pages
head -n 20 "$work/short.list" >"$work/warm.list"
as_user "$ctl" getpage --node "$url" --batch "$work/warm.list" --wait-ms 10000 -o /dev/null >/dev/null
declare -A p50 p99 mean count
for kind in image short long; do
	as_user "$ctl" getpage --node "$url" --batch "$work/$kind.list" --wait-ms 10000 -o /dev/null \
		>"$work/$kind.out" || die "$kind: aurora-ctl getpage --batch failed"
	if grep -v '^ok ' "$work/$kind.out" | head -n 3 | grep -q .; then
		grep -v '^ok ' "$work/$kind.out" | head -n 3 >&2
		die "$kind: some requests failed"
	fi
	sed -n 's/.* us \([0-9]*\)$/\1/p' "$work/$kind.out" | sort -n >"$work/$kind.us"
	count[$kind]=$(wc -l <"$work/$kind.us")
	p50[$kind]=$(awk -v n="${count[$kind]}" 'NR == int((n + 1) / 2) { print; exit }' "$work/$kind.us")
	p99[$kind]=$(awk -v n="${count[$kind]}" 'NR == int(n * 0.99 + 0.999999) { print; exit }' "$work/$kind.us")
	mean[$kind]=$(awk '{ s += $1 } END { printf "%.0f", s / NR }' "$work/$kind.us")
done

# records per request: the row's insert plus updates 1..k, plus the pruning
# records on block 0 up to that point, counted in the WAL (pg_waldump) and
# spread evenly over the updates
prunes_before() { # LSN -> pruning records on chain block 0 before it
	as_user "$prefix/bin/pg_waldump" -p "$cluster/pgdata/pg_wal" -r Heap2 -s "$(head -n 1 "$work/lsns")" \
		-e "$1" 2>/dev/null | grep -c "PRUNE.*rel 1663/$db/$chain_rel blk 0" || true
}
short_records=$(awk '{ s += $1 + 1 } END { printf "%.2f", s / NR }' "$work/short.k")
long_k=$(awk '{ s += $1 + 1 } END { printf "%.2f", s / NR }' "$work/long.k")
long_prunes=$(prunes_before "$end")
long_records=$(awk -v k="$long_k" -v p="$long_prunes" -v u="$updates" 'BEGIN { printf "%.2f", k + p * k / u }')
redo_marginal=$(awk -v ls="${mean[long]}" -v ss="${mean[short]}" -v lr="$long_records" -v sr="$short_records" \
	'BEGIN { d = (ls - ss) / 1e6; printf "%.0f", (d > 0 ? (lr - sr) / d : 0) }')
redo_whole=$(awk -v ls="${mean[long]}" -v lr="$long_records" 'BEGIN { printf "%.0f", lr / (ls / 1e6) }')

printf '\ngetpage: %s; one request at a time to node b1 over loopback; release build\n' "$(bench_fs "$work")"
printf '%-6s %9s %10s %10s %10s %12s\n' kind requests 'p50 us' 'p99 us' 'mean us' 'records/req'
printf '%-6s %9s %10s %10s %10s %12s\n' image "${count[image]}" "${p50[image]}" "${p99[image]}" "${mean[image]}" 0
printf '%-6s %9s %10s %10s %10s %12s\n' short "${count[short]}" "${p50[short]}" "${p99[short]}" "${mean[short]}" "$short_records"
printf '%-6s %9s %10s %10s %10s %12s\n' long "${count[long]}" "${p50[long]}" "${p99[long]}" "${mean[long]}" "$long_records"
printf 'redo: %s records/s (marginal, short vs long chains); %s records/s over whole long requests\n' \
	"$redo_marginal" "$redo_whole"
printf '(for scale only: Neon reports a getpage p99 of about 750 us in its own CI, another system)\n'

{
	echo "{"
	echo "  \"benchmark\": \"getpage\","
	bench_context_json "$work" "$bench_dir" "$load_start"
	echo "  \"updates\": $updates,"
	echo "  \"kinds\": {"
	sep=""
	for kind in image short long; do
		case $kind in image) r=0 ;; short) r=$short_records ;; long) r=$long_records ;; esac
		printf '%s    "%s": {"requests": %s, "p50_us": %s, "p99_us": %s, "mean_us": %s, "records_per_request": %s}' \
			"$sep" "$kind" "${count[$kind]}" "${p50[$kind]}" "${p99[$kind]}" "${mean[$kind]}" "$r"
		sep=$',\n'
	done
	echo
	echo "  },"
	echo "  \"redo_records_per_s_marginal\": $redo_marginal,"
	echo "  \"redo_records_per_s_whole_request\": $redo_whole"
	echo "}"
} >"$results/getpage.json"
note "wrote $results/getpage.json"
