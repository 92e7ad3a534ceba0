#!/usr/bin/env bash
# docker/compute.sh: starts the compute container: initdb on first start (as
# the unprivileged user), append docker/compute.conf, run postgres in the
# foreground.
set -euo pipefail
prefix="$(bash /opt/aurora/src/postgres/build.sh release)"
user="$(bash /opt/aurora/src/tools/ensure-user.sh)"
data=/var/lib/aurora/pgdata
chown "$user:" /var/lib/aurora
if [ ! -f "$data/PG_VERSION" ]; then
	runuser -u "$user" -- "$prefix/bin/initdb" -D "$data" -A scram-sha-256 \
		--pwfile=<(echo "${AURORA_PASSWORD:-aurora}") -U "$user"
	cat /etc/aurora/compute.conf >>"$data/postgresql.conf"
	echo "host all all all scram-sha-256" >>"$data/pg_hba.conf"
fi
exec runuser -u "$user" -- "$prefix/bin/postgres" -D "$data"
