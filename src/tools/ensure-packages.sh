#!/usr/bin/env bash
# Installs the Debian packages the build and the tests need, once per machine.
# As root it runs apt-get (update first); as anyone else it stops and prints the
# exact apt-get line to run.  It never edits the machine's apt configuration.
set -euo pipefail

packages=(
	gcc make perl pkg-config dpkg-dev bison flex libreadline-dev zlib1g-dev
	libipc-run-perl libnng-dev liblmdb-dev
	postgresql-15-pgtap pgtap
	clang libclang-rt-14-dev
	iproute2 procps
	shellcheck
)

missing=()
for p in "${packages[@]}"; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
		missing+=("$p")
	fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
	echo "aurora: missing Debian packages; run as root:" >&2
	echo "  apt-get update && apt-get install -y ${missing[*]}" >&2
	exit 1
fi
echo "aurora: installing ${missing[*]}" >&2
apt-get update -q >/dev/null
DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >/dev/null
