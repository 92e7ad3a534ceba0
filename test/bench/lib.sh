# shellcheck shell=bash
# test/bench/lib.sh: what every benchmark records next to its figures, so
# results can be compared only between runs on the same machine and code.
# Sourced by test/bench/*.bench.sh, it also sets the paths they share:
#
#   here, repo                test/bench and the checkout
#   ctl                       the built aurora-ctl
#   results                   where the JSON goes (BENCH_RESULTS, test/bench/results)
#   bench_dir                 the working directory (BENCH_DIR, /var/tmp/aurora-bench)
#
#   jstr TEXT                 TEXT as a JSON string
#   bench_git_state           sets commit and dirty (call when the code is built)
#   bench_fs DIR              "TYPE on DEVICE" of DIR's filesystem, for the table header
#   bench_release_build       sets prefix: the release server (built once per
#                             machine) with this checkout's extension installed
#   bench_context_json WORK BENCH_DIR LOAD_START
#                             the "date", "git_*", "machine" and "filesystem"
#                             members (no braces, trailing comma); the
#                             filesystem is WORK's

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
# shellcheck disable=SC2034 # read by the benchmarks that source this file
{
	ctl="$repo/storage_service/build/aurora-ctl"
	results="${BENCH_RESULTS:-$here/results}"
	bench_dir="${BENCH_DIR:-/var/tmp/aurora-bench}"
}

jstr() { printf '"%s"' "$(printf '%s' "$1" | sed 's/\\/\\\\/g; s/"/\\"/g' | tr -d '\000-\037')"; }

bench_fs() { echo "$(df --output=fstype "$1" | tail -n 1 | tr -d ' ') on $(df --output=source "$1" | tail -n 1 | tr -d ' ')"; }

bench_git_state() {
	commit="$(git -C "$repo" rev-parse HEAD 2>/dev/null || echo unknown)"
	dirty=false
	if [ -n "$(GIT_OPTIONAL_LOCKS=0 git -C "$repo" status --porcelain --untracked-files=no 2>/dev/null)" ]; then
		dirty=true
	fi
}

bench_context_json() {
	local dir="$1" bench_dir="$2" load_start="$3" cpu os mem_mib
	cpu="$(awk -F': *' '/^model name/ { print $2; exit }' /proc/cpuinfo)"
	# shellcheck disable=SC1091
	os="$(. /etc/os-release 2>/dev/null && echo "${PRETTY_NAME:-unknown}" || echo unknown)"
	mem_mib="$(awk '/^MemTotal:/ { printf "%d", $2 / 1024 }' /proc/meminfo)"
	cat <<JSON
  "date": $(jstr "$(date -u +%Y-%m-%dT%H:%M:%SZ)"),
  "git_commit": $(jstr "$commit"),
  "git_dirty": $dirty,
  "machine": {
    "nproc": $(nproc),
    "cpu_model": $(jstr "${cpu:-unknown}"),
    "mem_total_mib": ${mem_mib:-0},
    "kernel": $(jstr "$(uname -r)"),
    "os": $(jstr "$os"),
    "loadavg_1m_at_start": $load_start,
    "loadavg_1m_at_end": $(awk '{ print $1 }' /proc/loadavg)
  },
  "filesystem": {
    "bench_dir": $(jstr "$bench_dir"),
    "type": $(jstr "$(df --output=fstype "$dir" | tail -n 1 | tr -d ' ')"),
    "device": $(jstr "$(df --output=source "$dir" | tail -n 1 | tr -d ' ')"),
    "mount_options": $(jstr "$(findmnt -no OPTIONS -T "$dir" 2>/dev/null || echo unknown)")
  },
JSON
}

# The extension's PGXS build puts objects next to its sources (src/*.o,
# storage_service/common/*.o), where the checkout keeps its debug build: build
# from a copy kept next to the release server build instead.  cp -p keeps the
# sources' times, so make rebuilds only what changed.
bench_release_build() {
	local ext_build
	prefix="$(bash "$repo/src/postgres/build.sh" release)" || return 1
	ext_build="$(dirname "$prefix")/aurora-extension"
	mkdir -p "$ext_build/src" "$ext_build/sql" "$ext_build/storage_service/common"
	(
		flock 8
		cp -p "$repo"/src/*.c "$repo"/src/*.h "$repo/src/extension.mk" "$ext_build/src/"
		cp -p "$repo"/sql/aurora--*.sql "$ext_build/sql/"
		cp -p "$repo/aurora.control" "$ext_build/"
		cp -p "$repo/storage_service/common.mk" "$ext_build/storage_service/"
		cp -p "$repo"/storage_service/common/*.c "$repo"/storage_service/common/*.h \
			"$ext_build/storage_service/common/"
		env -u MAKELEVEL -u MAKEFLAGS -u MFLAGS make -s -C "$ext_build" -f src/extension.mk \
			PG_CONFIG="$prefix/bin/pg_config" all install >"$ext_build/make.log" 2>&1 ||
			{ cat "$ext_build/make.log" >&2; exit 1; }
	) 8>"$ext_build/.lock"
}
