#!/usr/bin/env bash
# Where the unprivileged server user finds what it runs.  PostgreSQL refuses
# to run as root, so the servers, the storage nodes and the test scripts run
# as the server user (ensure-user.sh); a clone in a directory that user
# cannot traverse (root's mode-0700 home, say) would stop them at once.
# Rather than loosen that directory, the checkout's working tree is copied
# somewhere the server user can read, and run from there:
#
#   server-tree.sh reachable DIR    exit 0 if the server user can read DIR
#   server-tree.sh tree [DEST]      print a tree the server user can read: the
#                                   checkout itself when it can, else a fresh
#                                   copy of its working tree (no .git, no
#                                   .run) in DEST, by default
#                                   /var/lib/aurora/trees/NAME-HASH
#   server-tree.sh run-dir DIR      print DIR as a real path the server user
#                                   can reach, creating it; the checkout's own
#                                   .run becomes a symbolic link to
#                                   /var/lib/aurora/clusters/NAME-HASH when
#                                   the checkout cannot be reached; any other
#                                   unreachable DIR is refused with what to do
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd -P)"
user="$(bash "$here/ensure-user.sh")"
state=/var/lib/aurora

# One name per checkout, stable across runs: its directory name and a hash
# of its path.
key="$(basename "$repo")-$(printf '%s' "$repo" | sha256sum | cut -c1-10)"

reachable() {
	[ "$(id -u)" -ne 0 ] && return 0 # not root: servers run as the caller
	runuser -u "$user" -- test -r "$1" -a -x "$1"
}

# A directory the server user can traverse; under /var/lib/aurora, with
# every directory of ours above it.
make_state_dir() {
	local d="$1"
	mkdir -p "$d"
	chmod 755 "$d"
	while [ "${d#"$state"/}" != "$d" ]; do
		d="$(dirname "$d")"
		chmod 755 "$d"
	done
}

case "${1:-}" in
reachable)
	reachable "${2:?DIR}"
	;;
tree)
	if reachable "$repo"; then
		echo "$repo"
		exit 0
	fi
	dest="${2:-$state/trees/$key}"
	[ "$(id -u)" -eq 0 ] || { echo "aurora: $dest needs root" >&2; exit 1; }
	make_state_dir "$(dirname "$dest")"
	exec 9>"$(dirname "$dest")/.$(basename "$dest").lock"
	flock 9
	rm -rf "$dest.new"
	mkdir "$dest.new"
	tar -C "$repo" --exclude=./.git --exclude=./.run -cf - . | tar -C "$dest.new" -xf -
	chmod -R a+rX "$dest.new"
	chmod 755 "$dest.new"
	rm -rf "$dest"
	mv "$dest.new" "$dest"
	echo "aurora: the server user '$user' cannot reach $repo; running from a copy in $dest" >&2
	echo "$dest"
	;;
run-dir)
	dir="${2:?DIR}"
	if [ "$dir" = "$repo/.run" ] && ! reachable "$repo" && [ ! -L "$dir" ]; then
		if [ -d "$dir" ]; then
			echo "aurora: $dir is a directory the server user '$user' cannot reach; move it away (or make stop and remove it)" >&2
			exit 1
		fi
		make_state_dir "$state/clusters/$key"
		ln -s "$state/clusters/$key" "$dir"
		echo "aurora: the server user '$user' cannot reach $repo; the cluster lives in $state/clusters/$key (linked as $dir)" >&2
	fi
	mkdir -p "$dir"
	dir="$(cd "$dir" && pwd -P)"
	if ! reachable "$dir"; then
		echo "aurora: the server user '$user' cannot reach $dir; pick a RUN_DIR it can reach (for example under $state) or let it traverse the directories above" >&2
		exit 1
	fi
	echo "$dir"
	;;
*)
	sed -n '2,21p' "$0" >&2
	exit 2
	;;
esac
