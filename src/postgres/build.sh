#!/usr/bin/env bash
# Builds the patched PostgreSQL 15 that aurora runs on, and caches it outside
# the checkout so that every clone on the machine shares one build.
#
#   build.sh debug|release   -> prints the install prefix on stdout
#
# The source is Debian's postgresql-15 source package, fetched with apt-get
# through a private apt state directory (the machine's apt configuration is
# never touched).  Debian's own packaging patches (file layout of the .deb) are
# not applied: the server is upstream PostgreSQL plus our series in
# src/postgres/*.patch.  The cache key is (source version, flavour, hash of the
# patches and of this script), so a change to either rebuilds; nothing else does.
set -euo pipefail

flavour="${1:?usage: build.sh debug|release}"

# Called from our Makefile, the environment carries the outer make's state;
# PostgreSQL's build only generates its headers when it is the top-level make
# (MAKELEVEL 0), so start it clean.
unset MAKELEVEL MAKEFLAGS MFLAGS MAKEOVERRIDES GNUMAKEFLAGS
here="$(cd "$(dirname "$0")" && pwd)"
cache="${AURORA_CACHE:-/var/cache/aurora}"
user="$(bash "$here/../tools/ensure-user.sh")"

case "$flavour" in
debug)   conf_flags=(--enable-cassert --enable-debug --enable-tap-tests); cflags="-O1 -g" ;;
release) conf_flags=(--enable-debug --enable-tap-tests); cflags="-O2 -g" ;;
*) echo "build.sh: unknown flavour '$flavour' (debug or release)" >&2; exit 2 ;;
esac

log() { echo "aurora/postgres: $*" >&2; }

mkdir -p "$cache"
chmod 755 "$cache"

# A finished build is used without the lock, so that a clone whose build
# is cached never waits for another clone building a different key.
cached_prefix() {
	local dsc version hash name
	dsc="$(ls "$cache"/source/*.dsc 2>/dev/null | head -n1)"
	[ -n "$dsc" ] || return 1
	version="$(sed -n 's/^Version: //p' "$dsc" | head -n1)"
	hash="$(cat "$here"/*.patch "$here/build.sh" | sha256sum | cut -c1-12)"
	name="pg-${version%%-*}-$flavour-$hash"
	[ -f "$cache/$name/.complete" ] && echo "$cache/$name/install"
}
if cached_prefix; then
	exit 0
fi

# Serialize builds: two clones building at once must not share a half-built tree.
exec 9>"$cache/.lock"
flock 9

# ---- fetch the source package (once) --------------------------------------
apt_dir="$cache/apt"
src_dir="$cache/source"
if ! ls "$src_dir"/*.dsc >/dev/null 2>&1; then
	mkdir -p "$apt_dir/lists/partial" "$apt_dir/cache/archives/partial" "$src_dir"
	key=/usr/share/keyrings/debian-archive-keyring.gpg
	cat >"$apt_dir/sources.list" <<SRC
deb-src [signed-by=$key] http://deb.debian.org/debian bookworm main
deb-src [signed-by=$key] http://deb.debian.org/debian bookworm-updates main
deb-src [signed-by=$key] http://deb.debian.org/debian-security bookworm-security main
SRC
	apt_opts=(-q -o "Dir::Etc::SourceList=$apt_dir/sources.list" -o Dir::Etc::SourceParts=/dev/null
		-o "Dir::State::Lists=$apt_dir/lists" -o "Dir::Cache=$apt_dir/cache"
		-o APT::Sandbox::User=root)
	log "fetching the postgresql-15 source package"
	apt-get "${apt_opts[@]}" update >/dev/null
	# Newest first; a mirror may list a version its pool does not hold yet.
	fetched=
	for v in $(apt-cache "${apt_opts[@]}" showsrc postgresql-15 | sed -n 's/^Version: //p' | sort -rV); do
		if (cd "$src_dir" && apt-get "${apt_opts[@]}" source --download-only "postgresql-15=$v" >/dev/null 2>&1); then
			fetched=$v
			break
		fi
		rm -f "$src_dir"/*
	done
	[ -n "$fetched" ] || { log "could not download any version of postgresql-15 source"; exit 1; }
fi
dsc="$(ls "$src_dir"/*.dsc | head -n1)"
version="$(sed -n 's/^Version: //p' "$dsc" | head -n1)"

# ---- cache key ---------------------------------------------------------------
hash="$(cat "$here"/*.patch "$here/build.sh" | sha256sum | cut -c1-12)"
name="pg-${version%%-*}-$flavour-$hash"
prefix="$cache/$name/install"
build="$cache/$name/build"
if [ -f "$cache/$name/.complete" ]; then
	echo "$prefix"
	exit 0
fi

log "building PostgreSQL $version ($flavour) into $prefix; this takes a few minutes, once"
rm -rf "${cache:?}/$name"
mkdir -p "$cache/$name"
dpkg-source -x --skip-patches "$dsc" "$build" >/dev/null
rm -f "$cache/$name"/*.orig.tar.* "$cache/$name"/*.debian.tar.*
for p in "$here"/*.patch; do
	log "applying $(basename "$p")"
	patch -d "$build" -p1 --quiet --no-backup-if-mismatch <"$p"
done
chown -R "$user:" "$cache/$name"
as_user() { runuser -u "$user" -- "$@"; }
if [ "$(id -u)" -ne 0 ]; then as_user() { "$@"; }; fi
(
	cd "$build"
	as_user ./configure --prefix="$prefix" "${conf_flags[@]}" CFLAGS="$cflags" \
		--without-icu --with-readline >"$cache/$name/configure.log" 2>&1
	as_user make -j"$(nproc)" -s world-bin >"$cache/$name/make.log" 2>&1
	as_user make -s install-world-bin >>"$cache/$name/make.log" 2>&1
) || { log "build failed; see $cache/$name/*.log"; exit 1; }

# pgTAP is plain SQL: install Debian's copy into our prefix so pg_prove suites
# can CREATE EXTENSION pgtap on this server.
ext_dir="$("$prefix/bin/pg_config" --sharedir)/extension"
cp /usr/share/postgresql/15/extension/pgtap* "$ext_dir"/
chown -R "$user:" "$cache/$name"
touch "$cache/$name/.complete"
log "done: $prefix"
echo "$prefix"
