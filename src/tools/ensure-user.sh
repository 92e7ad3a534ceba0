#!/usr/bin/env bash
# PostgreSQL refuses to run as root, so servers, the PostgreSQL build and its
# cache belong to an unprivileged user (default "aurora"), created here if the
# machine does not have it yet.  Prints the user name.
set -euo pipefail
user="${AURORA_USER:-aurora}"
if ! id -u "$user" >/dev/null 2>&1; then
	if [ "$(id -u)" -ne 0 ]; then
		echo "aurora: user '$user' does not exist; as root run: useradd --system --create-home --shell /bin/bash $user" >&2
		exit 1
	fi
	useradd --system --create-home --shell /bin/bash "$user"
fi
echo "$user"
