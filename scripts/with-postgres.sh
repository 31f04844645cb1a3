#!/bin/sh
# with-postgres.sh CMD [ARG…]: run CMD with a throwaway PostgreSQL from the
# Debian package (/usr/lib/postgresql/*/bin) on a free loopback port, its
# URL in $TWELVEFA_PG_URL (database postgres, user postgres, trust on
# loopback only); stop and remove it when CMD ends, whatever happens.
# As root the server runs as the postgres user (it refuses root).
set -eu
PGBIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
if [ -z "$PGBIN" ] || [ ! -x "$PGBIN/initdb" ]; then
	echo "with-postgres.sh: no PostgreSQL server binaries (apt-get install postgresql)" >&2
	exit 1
fi
TMP=$(mktemp -d /tmp/12fa-pg.XXXXXX)
AS=""
if [ "$(id -u)" = 0 ]; then
	chown postgres:postgres "$TMP"
	AS="runuser -u postgres --"
fi
chmod 700 "$TMP"
stop() {
	$AS "$PGBIN/pg_ctl" -D "$TMP/data" -m fast -w stop >/dev/null 2>&1 || true
	rm -rf "$TMP"
}
trap stop EXIT INT TERM
$AS "$PGBIN/initdb" -D "$TMP/data" -U postgres -A trust -E UTF8 --locale=C.UTF-8 >"$TMP/initdb.log" 2>&1 ||
	{ cat "$TMP/initdb.log" >&2; exit 1; }
PORT=""
for try in 1 2 3 4 5; do
	p=$((20000 + $(od -An -N2 -tu2 /dev/urandom | tr -d ' ') % 30000))
	if $AS "$PGBIN/pg_ctl" -D "$TMP/data" -l "$TMP/log" -w -t 30 \
		-o "-p $p -k $TMP -c listen_addresses=127.0.0.1 -c fsync=on -c max_connections=200" start >/dev/null 2>&1; then
		PORT=$p
		break
	fi
done
[ -n "$PORT" ] || { echo "with-postgres.sh: PostgreSQL did not start:" >&2; cat "$TMP/log" >&2; exit 1; }
export TWELVEFA_PG_URL="postgres://postgres@127.0.0.1:$PORT/postgres?sslmode=disable"
echo "PostgreSQL $("$PGBIN/postgres" --version | awk '{print $3}') on 127.0.0.1:$PORT (fsync on), stopped when this ends" >&2
"$@"
