#!/usr/bin/env bash
# The test driver behind `make check`: runs every suite, in order, against the
# patched (assert-enabled) PostgreSQL and real storage node processes.
#
#   test/check.sh [setup|lint|unit|sanitize|sql|cluster|postgres|shipping|fuzz|soak]...
#   (default: all of them but soak)
#
#   setup     a clone under a mode-0700 directory: make run, a query, make
#             stop, the unit stage there
#   lint      shellcheck over every shell script
#   unit      C unit tests of the storage service (codec, config, quorum,
#             daemon end to end) and of aurora-compute-init, through prove
#   sanitize  the unit tests under AddressSanitizer + UndefinedBehaviorSanitizer,
#             the threaded ones under ThreadSanitizer
#   sql       a local cluster (six nodes + compute) started from scratch, then
#             pg_regress (sql/, expected/) and pgTAP (test/pgtap/, pg_prove)
#   cluster   Perl TAP cluster and fault tests (test/cluster/), through prove
#             (CLUSTER_TESTS="012 019": only the files whose names begin so)
#   postgres  PostgreSQL's own regression suite on the patched server, hook unset
#   shipping  the same suite against a compute that ships its WAL to six storage
#             nodes, every commit waiting for VDL; then storage must agree
#   fuzz      the wire decoder fuzz target, bounded time
#   soak      (make soak) the page oracle 10 times under CPU load
set -euo pipefail

repo="$(cd "$(dirname "$0")/.." && pwd)"
cd "$repo"
user="$(bash src/tools/ensure-user.sh)"

# The tests run as the server user: from a clone it cannot reach (under a
# mode-0700 home directory, say), run them from a copy of the built working
# tree that it can read, removed afterwards (src/tools/server-tree.sh).
if ! bash src/tools/server-tree.sh reachable "$repo"; then
	copy="$(mktemp -d /tmp/aurora-tree.XXXXXX)"
	chmod 755 "$copy"
	bash src/tools/server-tree.sh tree "$copy/tree" >/dev/null
	rc=0
	bash "$copy/tree/test/check.sh" "$@" || rc=$?
	rm -rf "$copy"
	exit $rc
fi
prefix="$(bash src/postgres/build.sh debug)"
pg_build="$(dirname "$prefix")/build"
stages=("$@")
[ ${#stages[@]} -gt 0 ] || stages=(setup lint unit sanitize sql cluster postgres shipping fuzz)

as_user() {
	if [ "$(id -u)" -eq 0 ]; then runuser -u "$user" -- "$@"; else "$@"; fi
}

# Scratch space owned by the server user; removed at exit unless KEEP_TMP=1.
tmp="$(mktemp -d /tmp/aurora-check.XXXXXX)"
chmod 755 "$tmp"
chown "$user:" "$tmp" 2>/dev/null || true
bg_pids=()        # background load of the soak stage
more_clusters=()  # clusters started elsewhere than $tmp (the setup stage)
cleanup() {
	local rc=$?
	[ ${#bg_pids[@]} -eq 0 ] || kill "${bg_pids[@]}" 2>/dev/null || true
	for c in "$tmp/sql-cluster" "$tmp/shipping-cluster" "${more_clusters[@]}"; do
		if [ -f "$c/cluster.env" ]; then
			bash src/tools/cluster.sh stop "$c" >/dev/null 2>&1 || true
		fi
	done
	if [ "${KEEP_TMP:-0}" = 1 ] || [ $rc -ne 0 ]; then
		echo "check: logs and data kept in $tmp" >&2
	else
		rm -rf "$tmp"
	fi
}
trap cleanup EXIT

# A run of 7 free loopback ports (six nodes, one compute).
free_ports() { bash src/tools/free-ports.sh; }

# A newcomer's clone under a mode-0700 directory (as in root's home): make run
# (the optimized server) starts a cluster that answers, make stop stops it,
# and the unit stage (whose WAL-redo tests run as the server user) passes in
# it, all without the directory's mode changing.
stage_setup() {
	if [ "$(id -u)" -ne 0 ]; then
		echo "setup: skipped (only root can make a directory the server user cannot enter)"
		return 0
	fi
	local home clone base answer run_dir tree
	home="$(mktemp -d /tmp/aurora-home.XXXXXX)" # mode 0700, owned by root
	clone="$home/aurora"
	mkdir "$clone"
	# the working tree as a fresh clone has it: no build products
	tar -C "$repo" --exclude=./.git --exclude=./.run --exclude=./storage_service/build \
		--exclude='*.o' --exclude='*.so' --exclude='*.bc' -cf - . | tar -C "$clone" -xf -
	base="$(free_ports)"
	more_clusters+=("$clone/.run")
	make -s -C "$clone" run RUN_NODE_PORT="$base" RUN_PG_PORT=$((base + 6))
	run_dir="$(readlink -f "$clone/.run")"
	tree="$(sed -n 's/^tree=//p' "$run_dir/cluster.env")"
	answer="$(
		# shellcheck disable=SC1091
		. "$clone/.run/env" &&
			psql -XAtq -c 'SELECT count(*) FROM aurora.storage_node_status() WHERE reachable' \
				-c 'CREATE TABLE setup_check AS SELECT generate_series(1, 1000) g' \
				-c 'SELECT sum(g) FROM setup_check'
	)"
	[ "$(echo "$answer" | tr '\n' ' ')" = "6 500500 " ] ||
		{ echo "setup: the cluster make run started answered '$answer' (6 nodes and 500500 expected)" >&2; return 1; }
	make -s -C "$clone" stop
	make -s -C "$clone" check-unit
	[ "$(stat -c %a "$home")" = 700 ] || { echo "setup: the clone's parent directory changed mode" >&2; return 1; }
	rm -rf "$home" "$run_dir" "$tree"
	more_clusters=()
}

# The shell scripts: *.sh and any file that starts with a shell's #! line
# (.ci/run); the files git tracks, or in a copy of the tree (no .git) every
# file but build products.
shell_scripts() {
	local f
	{ git ls-files 2>/dev/null ||
		find . -path ./.git -prune -o -path ./storage_service/build -prune -o -type f -print | sed 's|^\./||'; } |
		while read -r f; do
			case "$f" in
			*.sh) echo "$f" ;;
			*) head -n 1 "$f" 2>/dev/null | grep -qE '^#!.*[/ ](ba|da)?sh( |$)' && echo "$f" ;;
			esac
		done
}

stage_lint() {
	command -v shellcheck >/dev/null || { echo "lint: shellcheck is missing (make deps installs it)" >&2; return 1; }
	local scripts=()
	mapfile -t scripts < <(shell_scripts | grep -vx src/postgres/build.sh)
	echo "== shellcheck -x over ${#scripts[@]} scripts"
	shellcheck -x "${scripts[@]}"
	# build.sh is hashed into the PostgreSQL cache key: any edit to it (an
	# inline directive too) rebuilds PostgreSQL on every machine.  Its one
	# finding (SC2012, ls for the single .dsc apt-get fetched) waits for the
	# next change to it that needs a rebuild anyway.
	shellcheck -x -e SC2012 src/postgres/build.sh
}

# The unit tests through storage_service/Makefile's target $1 (check,
# check-asan or check-tsan), then redo.t again: the WAL-redo helper tests
# start the patched server, which refuses to run as root, so they run as the
# server user, with the server, where they cannot skip.
unit_tests_and_redo() {
	local target="$1" as=()
	[ "$(id -u)" -ne 0 ] || as=(runuser -u "$user" --)
	make -s -C storage_service "$target"
	make -s -C storage_service "$target" TESTS=redo PROVE_AS="${as[*]} env AURORA_PG_PREFIX=$prefix"
}

stage_unit() {
	unit_tests_and_redo check
	# aurora-compute-init's walk and WAL layout (PostgreSQL frontend code)
	make -s -f src/compute_init/Makefile PG_CONFIG="$prefix/bin/pg_config" check-unit
}

stage_sanitize() {
	unit_tests_and_redo check-asan
	unit_tests_and_redo check-tsan
}

stage_sql() {
	local c="$tmp/sql-cluster" base
	base="$(free_ports)"
	bash src/tools/cluster.sh init "$c" "$prefix" "$base" $((base + 6))
	bash src/tools/cluster.sh start "$c"
	# shellcheck disable=SC1091
	. "$c/env"

	echo "== pg_regress (sql/, expected/)"
	# sql/NAME.sql but the extension's scripts (aurora--1.0.sql ...), in order
	local tests=() f
	for f in sql/*.sql; do
		f="${f#sql/}"
		[[ $f == *--* ]] || tests+=("${f%.sql}")
	done
	mkdir -p "$tmp/regress"
	"$prefix/lib/postgresql/pgxs/src/test/regress/pg_regress" \
		--inputdir="$repo" --outputdir="$tmp/regress" --bindir="$prefix/bin" \
		--host=127.0.0.1 --port="$PGPORT" --user="$PGUSER" --dbname=contrib_regression \
		"${tests[@]}" || { cat "$tmp/regress/regression.diffs" >&2 || true; return 1; }

	echo "== pgTAP (test/pgtap/)"
	psql -X -q -c "CREATE DATABASE aurora_pgtap" >/dev/null
	psql -X -q -d aurora_pgtap -c "CREATE EXTENSION pgtap; CREATE EXTENSION pg_walinspect; CREATE EXTENSION aurora" >/dev/null
	pg_prove --dbname aurora_pgtap --host 127.0.0.1 --port "$PGPORT" --username "$PGUSER" \
		test/pgtap/*.sql

	bash src/tools/cluster.sh stop "$c"
}

# prove over cluster test files, as the server user, in a scratch directory
run_tap() {
	# test-only module for the smgr hook test; installed into the debug server
	make -s -C test/modules/smgr_probe PG_CONFIG="$prefix/bin/pg_config" install >/dev/null
	mkdir -p "$tmp/tap"
	chown "$user:" "$tmp/tap" 2>/dev/null || true
	(cd "$tmp/tap" && as_user env \
		PATH="$prefix/bin:$repo/storage_service/build:$PATH" \
		PERL5LIB="$prefix/lib/postgresql/pgxs/src/test/perl:$repo/test/lib" \
		AURORA_REPO="$repo" AURORA_PG_PREFIX="$prefix" \
		TESTDIR="$tmp/tap" PG_REGRESS="$prefix/lib/postgresql/pgxs/src/test/regress/pg_regress" \
		prove "$@")
}

# CLUSTER_TESTS="012 019" runs only the files whose names begin so
stage_cluster() {
	local files=() p
	if [ -n "${CLUSTER_TESTS:-}" ]; then
		for p in $CLUSTER_TESTS; do files+=("$repo"/test/cluster/"$p"*.t); done
	else
		files=("$repo"/test/cluster/*.t)
	fi
	echo "== cluster tests (test/cluster/)"
	run_tap -v "${files[@]}"
}

# Not in the default list (`make soak`): the page oracle, SOAK_RUNS times in
# a row (default 10), with SOAK_LOAD CPU-bound loops beside it (default 2),
# since load is what once made it fail (bulk extension under contention).
stage_soak() {
	local runs="${SOAK_RUNS:-10}" load="${SOAK_LOAD:-2}" i t0
	echo "== soak: 009_page_oracle.t, $runs runs, $load CPU-bound loops beside it"
	for ((i = 0; i < load; i++)); do
		bash -c 'while :; do :; done' &
		bg_pids+=($!)
	done
	for ((i = 1; i <= runs; i++)); do
		t0=$(date +%s)
		if ! run_tap -v "$repo/test/cluster/009_page_oracle.t"; then
			echo "soak: run $i of $runs failed" >&2
			return 1
		fi
		echo "soak: run $i of $runs passed in $(( $(date +%s) - t0 )) s"
	done
	kill "${bg_pids[@]}" 2>/dev/null || true
	bg_pids=()
}

stage_postgres() {
	echo "== PostgreSQL regression suite on the patched server (no smgr hook set)"
	as_user make -s -C "$pg_build/src/test/regress" check NO_LOCALE=1 ||
		{ cat "$pg_build/src/test/regress/regression.diffs" >&2 || true; return 1; }
}

stage_shipping() {
	local c="$tmp/shipping-cluster" base lag out hits
	base="$(free_ports)"
	# a shipping compute with the storage manager (cluster.sh's default), and
	# a buffer cache as small as the suite tolerates (with 128 kB it runs out
	# of unpinned buffers, as stock PostgreSQL does): nearly every page it
	# touches is evicted and read back from storage (no local page cache
	# first, then a small one)
	bash src/tools/cluster.sh init "$c" "$prefix" "$base" $((base + 6)) --page-cache 0
	echo "shared_buffers = 1MB" >>"$c/pgdata/postgresql.conf"
	bash src/tools/cluster.sh start "$c"
	# shellcheck disable=SC1091
	. "$c/env"

	echo "== PostgreSQL regression suite against an aurora compute (pages from storage, 1 MB of shared buffers)"
	as_user env PGHOST=127.0.0.1 PGPORT=$((base + 6)) \
		make -s -C "$pg_build/src/test/regress" installcheck NO_LOCALE=1 ||
		{ cat "$pg_build/src/test/regress/regression.diffs" >&2 || true; return 1; }

	echo "== pg_amcheck (heapallindexed) over every database the suite left"
	out="$(as_user "$prefix/bin/pg_amcheck" --install-missing --heapallindexed --parent-check \
		-h 127.0.0.1 -p $((base + 6)) --all 2>&1)" || { echo "$out" >&2; return 1; }
	[ -z "$out" ] || { echo "$out" >&2; echo "pg_amcheck reported the above" >&2; return 1; }

	echo "== a new compute from the volume alone (the data directory deleted), with an 8 MB page cache"
	as_user "$prefix/bin/pg_ctl" -D "$c/pgdata" -m fast -w stop >/dev/null
	rm -rf "$c/pgdata"
	bash src/tools/cluster.sh prepare "$c"
	grep -q '^how: from-storage$' "$c/compute-init.log" ||
		{ cat "$c/compute-init.log" >&2; echo "the compute was not created from storage" >&2; return 1; }
	echo "aurora.local_page_cache = 8MB" >>"$c/pgdata/postgresql.conf"
	as_user "$prefix/bin/pg_ctl" -D "$c/pgdata" -l "$c/postgres.log" -w -t 60 start >/dev/null
	echo "== PostgreSQL regression suite against it"
	as_user env PGHOST=127.0.0.1 PGPORT=$((base + 6)) \
		make -s -C "$pg_build/src/test/regress" installcheck NO_LOCALE=1 ||
		{ cat "$pg_build/src/test/regress/regression.diffs" >&2 || true; return 1; }
	echo "== PostgreSQL isolation suite against it"
	as_user env PGHOST=127.0.0.1 PGPORT=$((base + 6)) \
		make -s -C "$pg_build/src/test/isolation" installcheck NO_LOCALE=1 ||
		{ cat "$pg_build/src/test/isolation/output_iso/regression.diffs" >&2 || true; return 1; }
	hits="$(as_user psql -XAtc 'SELECT cache_hits FROM aurora.storage_manager_stats()')"
	[ "${hits:-0}" -gt 0 ] || { echo "the local page cache served nothing" >&2; return 1; }
	echo "local page cache hits: $hits"

	echo "== storage agrees: VDL reaches the local flush, nothing was refused"
	for _ in $(seq 1 100); do
		lag="$(as_user psql -XAtc 'SELECT vdl_lag_bytes FROM aurora.watermarks()')"
		[ "$lag" = 0 ] && break
		sleep 0.1
	done
	[ "$lag" = 0 ] || { echo "VDL stays $lag bytes behind the local flush" >&2; return 1; }
	# (a peer not listening yet at start is "Connection refused": not a refusal of records)
	if grep -h "refused\|INCONSISTENT\|CORRUPT" "$c"/nodes/*/aurora-storage.log | grep -v "Connection refused"; then
		echo "a storage node refused or could not read records (above)" >&2
		return 1
	fi
	bash src/tools/cluster.sh stop "$c"
}

stage_fuzz() {
	make -s -C storage_service fuzz FUZZ_SECONDS="${FUZZ_SECONDS:-30}"
}

for s in "${stages[@]}"; do
	start=$(date +%s)
	"stage_$s"
	echo "check: stage '$s' passed in $(( $(date +%s) - start )) s"
done
