#!/usr/bin/env bash
# Runs aurora's benchmarks (`make bench`): every test/bench/NAME.bench.sh, or
# only the NAMEs given, one after the other (benchmarks must not share the
# machine).  Each benchmark writes its JSON to test/bench/results/NAME.json
# and prints a table; this script reports which ones failed.
#
#   run.sh [NAME...]        e.g. run.sh storage_log
#
# Environment passed on to every benchmark: BENCH_DIR (working directory
# parent, default /var/tmp/aurora-bench: on disk, /tmp may be tmpfs),
# BENCH_RESULTS (default test/bench/results), BENCH_KEEP=1 (keep working
# directories).  Each benchmark documents its own knobs in its header.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
export BENCH_DIR="${BENCH_DIR:-/var/tmp/aurora-bench}"
export BENCH_RESULTS="${BENCH_RESULTS:-$here/results}"

names=("$@")
if [ ${#names[@]} -eq 0 ]; then
	for f in "$here"/*.bench.sh; do
		[ -e "$f" ] || continue
		n="${f##*/}"
		names+=("${n%.bench.sh}")
	done
fi
[ ${#names[@]} -gt 0 ] || { echo "bench: no benchmarks in $here" >&2; exit 1; }
for n in "${names[@]}"; do
	[ -f "$here/$n.bench.sh" ] || { echo "bench: unknown benchmark '$n' (no $here/$n.bench.sh)" >&2; exit 2; }
done

failed=()
for n in "${names[@]}"; do
	echo "== bench: $n"
	start=$SECONDS
	if bash "$here/$n.bench.sh"; then
		echo "== bench: $n done in $((SECONDS - start)) s"
	else
		echo "== bench: $n FAILED after $((SECONDS - start)) s" >&2
		failed+=("$n")
	fi
	echo
done
if [ ${#failed[@]} -gt 0 ]; then
	echo "bench: failed: ${failed[*]}" >&2
	exit 1
fi
echo "bench: results in $BENCH_RESULTS"
