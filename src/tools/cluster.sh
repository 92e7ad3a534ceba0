#!/usr/bin/env bash
# A local aurora cluster in one directory: six storage nodes in three AZs
# (a1 a2 | b1 b2 | c1 c2) on loopback and one compute (the patched PostgreSQL
# with aurora preloaded and created).  `make run` and the test harness both use
# it, so what the tests start is what an operator starts.
#
#   cluster.sh init  DIR PG_PREFIX NODE_BASE_PORT PG_PORT [--no-shipping|--local-pages]
#                    [--page-cache SIZE]
#                                                           create configs and initdb; the
#                                                           compute ships its WAL, every
#                                                           commit waits for VDL, and the
#                                                           first start seeds the volume
#                                                           with the initdb'ed pages and
#                                                           removes them locally: pages
#                                                           live in storage from then on
#                                                           (aurora.storage_manager,
#                                                           full_page_writes off, a local
#                                                           page cache of SIZE, 256MB
#                                                           unless given; 0: none).
#                                                           --local-pages: pages stay in
#                                                           local files (shipping only);
#                                                           --no-shipping: neither
#   cluster.sh start DIR [PG_PREFIX]                        start nodes, then compute
#                                                           (PG_PREFIX: switch to this server
#                                                           build, e.g. after a rebuild)
#                                                           (a shipping compute is prepared
#                                                           from the volume first:
#                                                           aurora-compute-init start)
#   cluster.sh prepare DIR [PGDATA]                         only that preparation (the
#                                                           compute must be stopped; PGDATA:
#                                                           another data directory, e.g. a
#                                                           new compute's, absent or empty)
#   cluster.sh stop  DIR                                    stop compute, then nodes
#   cluster.sh status DIR
#
# Every server runs as the unprivileged user (src/tools/ensure-user.sh), which
# owns DIR.  DIR/env sets PATH, PGHOST, PGPORT, PGUSER and PGDATABASE.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd -P)"
ctl="$repo/storage_service/build/aurora-ctl"
user="$(bash "$here/ensure-user.sh")"

as_user() {
	if [ "$(id -u)" -eq 0 ]; then runuser -u "$user" -- "$@"; else "$@"; fi
}

nodes=(a1:a a2:a b1:b b2:b c1:c c2:c)

# cluster.env (for this script) and env (for the operator's shell)
write_env() {
	local dir="$1" prefix="$2" pgport="$3"
	cat >"$dir/cluster.env" <<ENV
prefix=$prefix
pgport=$pgport
tree=${tree:-$repo}
ENV
	cat >"$dir/env" <<ENV
# source this file to use the local aurora cluster in $dir
export PATH="$prefix/bin:${tree:-$repo}/storage_service/build:\$PATH"
export PGHOST=127.0.0.1
export PGPORT=$pgport
export PGUSER=$user
export PGDATABASE=postgres
export AURORA_CLUSTER="$dir/nodes"
ENV
	chown "$user:" "$dir/cluster.env" "$dir/env" 2>/dev/null || true
}

# The cluster's settings; its tools come from the tree it was initialized
# from (server-tree.sh: a copy the server user can read when the checkout is
# out of its reach), not from wherever this script was called.
load_env() {
	# shellcheck disable=SC1091
	. "$1/cluster.env"
	if [ -n "${tree:-}" ] && [ -x "$tree/storage_service/build/aurora-ctl" ]; then
		ctl="$tree/storage_service/build/aurora-ctl"
	fi
}

# Store every page of the initdb'ed data directory in the volume (aurora-ctl
# seed: base images at its checkpoint LSN, with the compute's geometry), then
# empty the local files of permanent relations: from now on their pages live
# only in storage.  Each keeps an empty main-fork file, as every permanent
# relation the storage manager creates does (PostgreSQL checks those files
# for relfilenode reuse and empty tablespaces); the other forks and segments
# go.  Unlogged relations (those with an init fork) stay as they are.
seed_volume() {
	local dir="$1" prefix="$2" pgs bps f base
	pgs="$(sed -n 's/^aurora.protection_groups *= *//p' "$dir/pgdata/postgresql.conf" | tail -n1)"
	bps="$(sed -n 's/^aurora.blocks_per_segment *= *//p' "$dir/pgdata/postgresql.conf" | tail -n1)"
	as_user "$ctl" --cluster "$dir/nodes" seed --datadir "$dir/pgdata" --postgres-bin "$prefix/bin" \
		${pgs:+--pgs "$pgs"} ${bps:+--blocks-per-segment "$bps"} >"$dir/seed.log" 2>&1 ||
		{ cat "$dir/seed.log" >&2; echo "cluster: seeding the volume failed" >&2; exit 1; }
	find "$dir/pgdata/base" "$dir/pgdata/global" "$dir/pgdata/pg_tblspc/" -type f \
		-regextype posix-extended -regex '.*/[0-9]+(_fsm|_vm)?(\.[0-9]+)?' 2>/dev/null |
		while read -r f; do
			base="${f##*/}"
			base="${base%%[._]*}"
			[ -e "${f%/*}/${base}_init" ] && continue
			if [ "${f##*/}" = "$base" ]; then : >"$f"; else rm -f "$f"; fi
		done
	echo "cluster: volume seeded ($(grep -c . "$dir/seed.log" || true) lines in seed.log); relation pages now live in storage" >&2
}

# A shipping compute opens the volume under a new epoch at every start
# (aurora-compute-init start: fence the compute before, find VDL, truncate
# above it, and write the data directory's non-relation files and WAL from
# the volume); with local pages it only fences and truncates.  Its output
# goes to DIR/compute-init.log.
prepare_compute() {
	local dir="$1" prefix="$2" pgdata="$3" conf list mode opts=()
	# the settings of the compute being prepared, or those the cluster was
	# created with for a new one (its own data directory may be gone)
	conf="$pgdata/postgresql.conf"
	[ -f "$conf" ] || conf="$dir/pgdata/postgresql.conf"
	if [ -f "$conf" ]; then
		mode=none
		grep -q '^aurora.shipping = on' "$conf" && mode=local
		grep -q '^aurora.storage_manager = on' "$conf" && [ "$mode" = local ] && mode=storage
		list="$(sed -n "s/^aurora.storage_nodes = '\(.*\)'\$/\1/p" "$conf" | tail -n1)"
	elif [ -f "$dir/compute.env" ]; then
		mode="$(sed -n 's/^compute_mode=//p' "$dir/compute.env")"
		# written with printf %q: one shell word
		list="$(bash -c '. "$1"; printf %s "$storage_nodes"' _ "$dir/compute.env")"
	else
		echo "cluster: no settings for a compute in $dir (no pgdata/postgresql.conf, no compute.env)" >&2
		exit 1
	fi
	[ "$mode" != none ] || return 0
	[ "$mode" = storage ] || opts=(--local-files)
	as_user "$prefix/bin/aurora-compute-init" start --storage-nodes "$list" --pgdata "$pgdata" \
		"${opts[@]}" >"$dir/compute-init.log" 2>&1 ||
		{ cat "$dir/compute-init.log" >&2; echo "cluster: preparing the compute from the volume failed" >&2; exit 1; }
}

cmd="${1:-}"
dir="${2:-}"
if [ -z "$cmd" ] || [ -z "$dir" ]; then
	sed -n '2,21p' "$0" >&2
	exit 2
fi
[ "$cmd" = init ] && mkdir -p "$dir"
[ "$cmd" = stop ] && [ ! -d "$dir" ] && exit 0
[ -d "$dir" ] || { echo "cluster: no cluster in $dir" >&2; exit 1; }
# the real path (a .run that server-tree.sh linked elsewhere resolves), and
# the working directory of everything run as the server user, who may not be
# able to enter the caller's
dir="$(cd "$dir" && pwd -P)"
cd "$dir"

case "$cmd" in
init)
	prefix="${3:?PG_PREFIX}"
	base="${4:?NODE_BASE_PORT}"
	pgport="${5:?PG_PORT}"
	shipping=on
	smgr=on
	page_cache=256MB
	shift 5
	while [ $# -gt 0 ]; do
		case "$1" in
		--no-shipping) shipping=off; smgr=off ;;
		--local-pages) smgr=off ;;
		--page-cache)
			[ $# -ge 2 ] || { echo "cluster: --page-cache needs a size (e.g. 256MB, 0 for none)" >&2; exit 2; }
			page_cache="$2"
			shift
			;;
		*) echo "cluster: unknown option '$1' (expected --no-shipping, --local-pages or --page-cache SIZE)" >&2; exit 2 ;;
		esac
		shift
	done
	if [ -f "$dir/cluster.env" ]; then
		echo "cluster: $dir already initialized" >&2
		exit 0
	fi
	mkdir -p "$dir/nodes"
	list=""
	i=0
	for n in "${nodes[@]}"; do
		id="${n%%:*}"
		az="${n##*:}"
		port=$((base + i))
		cat >"$dir/nodes/$id.conf" <<CONF
# storage node $id of the local cluster (written by src/tools/cluster.sh)
node_id = $id
az = $az
listen_url = tcp://127.0.0.1:$port
data_dir = $dir/nodes/$id
# page service: the compute's server started as a WAL-redo helper
walredo_postgres = $prefix/bin/postgres
CONF
		list="$list${list:+, }$id:$az:tcp://127.0.0.1:$port"
		i=$((i + 1))
	done
	chown -R "$user:" "$dir" 2>/dev/null || true
	as_user "$prefix/bin/initdb" -D "$dir/pgdata" -A trust -U "$user" --no-sync >"$dir/initdb.log" 2>&1 ||
		{ cat "$dir/initdb.log" >&2; exit 1; }
	cat >>"$dir/pgdata/postgresql.conf" <<CONF

# ---- aurora local cluster (src/tools/cluster.sh) ----
listen_addresses = '127.0.0.1'
port = $pgport
unix_socket_directories = ''
shared_preload_libraries = 'aurora'
aurora.storage_nodes = '$list'
aurora.write_quorum = 4
aurora.read_quorum = 3
aurora.request_timeout = 1000
aurora.shipping = $shipping
aurora.storage_manager = $smgr
CONF
	echo "logging_collector = off" >>"$dir/pgdata/postgresql.conf"
	# With the storage manager the compute writes no relation page where a
	# torn write could be read back (storage rebuilds pages from records,
	# the local page store checks a CRC and writes copy-on-write), so it
	# does not need full-page images: they were 90 % of pgbench's WAL.
	if [ "$smgr" = on ]; then
		echo "full_page_writes = off    # aurora.storage_manager: no torn pages (README)" >>"$dir/pgdata/postgresql.conf"
		# Pages that shared_buffers lets go of (ring buffers of COPY, VACUUM
		# and large scans evict them at once) come back from here instead of
		# from a storage node: the part the operating system's page cache
		# plays for stock PostgreSQL (README, "Local page cache").
		if [ "$page_cache" != 0 ]; then
			echo "aurora.local_page_cache = $page_cache    # clean copies of evicted pages (README)" >>"$dir/pgdata/postgresql.conf"
		fi
	fi
	write_env "$dir" "$prefix" "$pgport"
	# what a compute of this cluster is, for one prepared where pgdata is gone
	mode=none
	[ "$shipping" = on ] && mode=local
	[ "$smgr" = on ] && mode=storage
	printf 'compute_mode=%s\nstorage_nodes=%q\n' "$mode" "$list" >"$dir/compute.env"
	# the first start seeds the volume from the initdb'ed (cleanly shut down) pages
	[ "$smgr" = on ] && touch "$dir/seed-pending"
	chown -R "$user:" "$dir"
	echo "cluster: initialized $dir (nodes on ports $base..$((base + 5)), compute on $pgport)" >&2
	;;
start)
	load_env "$dir"
	new_prefix="${3:-}"
	if [ -n "$new_prefix" ] && [ "$new_prefix" != "$prefix" ]; then
		# The server build changed (new patches or flavour); same major
		# version, so the data directory is still valid.
		echo "cluster: now using the server in $new_prefix" >&2
		prefix="$new_prefix"
		write_env "$dir" "$prefix" "$pgport"
	fi
	# the nodes' WAL-redo helpers run the same server build (older inits: add the line)
	for conf in "$dir"/nodes/*.conf; do
		if grep -q '^walredo_postgres = ' "$conf"; then
			sed -i "s|^walredo_postgres = .*|walredo_postgres = $prefix/bin/postgres|" "$conf"
		else
			echo "walredo_postgres = $prefix/bin/postgres" >>"$conf"
		fi
		chown "$user:" "$conf" 2>/dev/null || true
	done
	as_user "$ctl" --cluster "$dir/nodes" start all
	if [ -f "$dir/seed-pending" ]; then
		seed_volume "$dir" "$prefix"
		rm -f "$dir/seed-pending"
	fi
	# Earlier inits made commits wait through a synchronous standby named
	# aurora_shipper; nothing connects under that name any more, so that
	# line would make every commit wait for ever (README, WAL shipping).
	if grep -qx "synchronous_standby_names = 'aurora_shipper'" "$dir/pgdata/postgresql.conf"; then
		sed -i "/^synchronous_standby_names = 'aurora_shipper'\$/d" "$dir/pgdata/postgresql.conf"
		echo "cluster: removed synchronous_standby_names = 'aurora_shipper' (commits wait for storage without it)" >&2
		if as_user "$prefix/bin/pg_ctl" -D "$dir/pgdata" status >/dev/null 2>&1; then
			as_user "$prefix/bin/pg_ctl" -D "$dir/pgdata" reload >/dev/null
		fi
	fi
	if ! as_user "$prefix/bin/pg_ctl" -D "$dir/pgdata" status >/dev/null 2>&1; then
		prepare_compute "$dir" "$prefix" "$dir/pgdata"
		as_user "$prefix/bin/pg_ctl" -D "$dir/pgdata" -l "$dir/postgres.log" -w -t 60 start >/dev/null ||
			{ tail -n 20 "$dir/postgres.log" >&2; exit 1; }
	fi
	as_user "$prefix/bin/psql" -X -q -h 127.0.0.1 -p "$pgport" -U "$user" -d postgres \
		-c "CREATE EXTENSION IF NOT EXISTS aurora" -c "ALTER EXTENSION aurora UPDATE" >/dev/null
	;;
stop)
	[ -f "$dir/cluster.env" ] || exit 0
	load_env "$dir"
	if as_user "$prefix/bin/pg_ctl" -D "$dir/pgdata" status >/dev/null 2>&1; then
		# a compute that cannot stop (a commit waiting for storage) must not
		# keep the nodes running either
		as_user "$prefix/bin/pg_ctl" -D "$dir/pgdata" -m fast -w -t 60 stop >/dev/null ||
			as_user "$prefix/bin/pg_ctl" -D "$dir/pgdata" -m immediate -w stop >/dev/null || true
	fi
	# a node that does not stop is a bug to report, and must not outlive
	# the cluster (tests run many clusters in a row): kill it, and say so
	if ! as_user "$ctl" --cluster "$dir/nodes" stop all; then
		echo "cluster.sh: storage nodes did not stop on SIGTERM; killing them (a bug: see their logs in $dir/nodes)" >&2
		as_user "$ctl" --cluster "$dir/nodes" kill all >/dev/null 2>&1 || true
		exit 1
	fi
	;;
prepare)
	load_env "$dir"
	prepare_compute "$dir" "$prefix" "${3:-$dir/pgdata}"
	;;
status)
	load_env "$dir"
	as_user "$ctl" --cluster "$dir/nodes" status || true
	as_user "$prefix/bin/pg_ctl" -D "$dir/pgdata" status || true
	;;
*)
	sed -n '2,18p' "$0" >&2
	exit 2
	;;
esac
