#!/bin/sh
# make example-cluster: a throwaway PostgreSQL from the Debian package on a
# loopback port (scripts/with-postgres.sh), two workers, 100 queued runs;
# one worker is killed with SIGKILL halfway, the other takes its runs over
# once their lease expired, and `12fa store check` shows every run
# completed with 0 completed steps run again. Everything it started is
# stopped at the end.
set -eu
BIN=${BIN:-bin/12fa}
RUNS=${RUNS:-100}
EX=plugins/examples/cluster
if [ -z "${TWELVEFA_PG_URL:-}" ]; then
	exec sh scripts/with-postgres.sh sh "$0" "$@"
fi
TMP=$(mktemp -d /tmp/12fa-cluster.XXXXXX)
A="" B=""
cleanup() {
	for p in $A $B; do kill -9 "$p" 2>/dev/null || true; done
	rm -rf "$TMP"
}
trap cleanup EXIT INT TERM
export TWELVEFA_STORE="$TWELVEFA_PG_URL"
# Short leases so that the takeover shows within seconds (2s and 15s by
# default).
export TWELVEFA_HEARTBEAT=${TWELVEFA_HEARTBEAT:-500ms} TWELVEFA_LEASE=${TWELVEFA_LEASE:-3s}
echo "heartbeat $TWELVEFA_HEARTBEAT, lease $TWELVEFA_LEASE"
"$BIN" store migrate
"$BIN" submit --count "$RUNS" "$EX/plugin-manifest.toml" >"$TMP/ids"
echo "submitted $(wc -l <"$TMP/ids") runs of $EX/plugin-manifest.toml"
mkdir -p "$TMP/a" "$TMP/b"
"$BIN" -C "$TMP/a" worker --concurrency 8 >"$TMP/a.log" 2>&1 &
A=$!
"$BIN" -C "$TMP/b" worker --concurrency 8 >"$TMP/b.log" 2>&1 &
B=$!
echo "workers A (pid $A) and B (pid $B), 8 runs at a time each"
completed() {
	n=$("$BIN" store check --json | sed -n 's/.*"completed":\([0-9]*\).*/\1/p')
	echo "${n:-0}"
}
i=0
while [ "$(completed)" -lt $((RUNS / 2)) ]; do
	i=$((i + 1)); [ $i -lt 600 ] || { echo "runs did not complete" >&2; cat "$TMP/a.log" "$TMP/b.log" >&2; exit 1; }
	sleep 0.1
done
echo "$(completed) runs completed: SIGKILL worker A"
kill -9 "$A"
wait "$A" 2>/dev/null || true
A=""
start=$(date +%s)
while [ "$(completed)" -lt "$RUNS" ]; do
	i=$((i + 1)); [ $i -lt 1200 ] || { echo "runs did not complete" >&2; tail -20 "$TMP/b.log" >&2; exit 1; }
	sleep 0.2
done
echo "all $RUNS runs completed $(($(date +%s) - start))s after the kill; worker B took over $(grep -c 'takeovers=1' "$TMP/b.log" || true) of A's runs"
kill -TERM "$B"
wait "$B" || { echo "worker B did not stop cleanly" >&2; tail -20 "$TMP/b.log" >&2; exit 1; }
B=""
echo
"$BIN" store check
echo
echo "effect lines in the workers' progress logs: $(cat "$TMP"/a/.12fa/progress.jsonl "$TMP"/b/.12fa/progress.jsonl | grep -c '"effect ' || true) for $((RUNS * 3)) steps"
echo "(the progress log is written every 50ms, so the killed worker's last lines may be missing; the journal's figures above are the durable ones)"
