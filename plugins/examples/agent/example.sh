#!/bin/sh
# make example-agent: the agent workflow end to end. Without OPENAI_BASE_URL
# it starts the local OpenAI-compatible test server (internal/fakellm) and
# uses a made-up key; with OPENAI_BASE_URL (and OPENAI_API_KEY, and
# OPENAI_MODEL if not gpt-4o-mini) it asks that endpoint. The question the
# plan step asks is answered "approve" by this script.
set -eu
BIN=${BIN:-bin/12fa}
DIR=${AGENT_DIR:-.agent-project}
EX=plugins/examples/agent
MODEL=${OPENAI_MODEL:-gpt-4o-mini}
rm -rf "$DIR"
mkdir -p "$DIR"
cp -r "$EX/work-template" "$DIR/work"
FAKE=""
if [ -z "${OPENAI_BASE_URL:-}" ]; then
	go build -o bin/fakellm ./internal/fakellm
	bin/fakellm -url-file "$DIR/fakellm.url" >"$DIR/fakellm.log" 2>&1 &
	FAKE=$!
	trap 'kill $FAKE 2>/dev/null || true' EXIT
	i=0
	while [ ! -s "$DIR/fakellm.url" ]; do
		i=$((i + 1))
		[ $i -lt 100 ] || { echo "fakellm did not start" >&2; cat "$DIR/fakellm.log" >&2; exit 1; }
		sleep 0.1
	done
	BASE=$(cat "$DIR/fakellm.url")
	PRIVATE='private = ["127.0.0.1"]'
	OPENAI_API_KEY=${OPENAI_API_KEY:-sk-local-test-key}
	export OPENAI_API_KEY
	echo "local OpenAI-compatible test server at $BASE"
else
	BASE=${OPENAI_BASE_URL%/}
	PRIVATE=""
fi
sed -e "s|@BASE_URL@|$BASE|g" -e "s|@MODEL@|$MODEL|g" -e "s|@PRIVATE@|$PRIVATE|" \
	-e "s|@PLUGIN@|$(pwd)/$EX/agent.wasm|g" "$EX/plugin-manifest.toml.in" >"$DIR/plugin-manifest.toml"
M="$DIR/plugin-manifest.toml"
"$BIN" -C "$DIR" validate "$M"
echo
set +e
"$BIN" -C "$DIR" run --new "$M"
rc=$?
set -e
if [ $rc -ne 5 ]; then
	echo "expected the run to wait for the approval (exit 5), got $rc" >&2
	exit 1
fi
id=$("$BIN" -C "$DIR" inputs --json | sed -n 's/.*"id": *"\([^"]*\)".*/\1/p' | head -n 1)
echo
echo "answering $id: approve"
"$BIN" -C "$DIR" respond "$id" approve
"$BIN" -C "$DIR" resume
echo
"$BIN" -C "$DIR" status
if [ -n "$FAKE" ]; then
	echo
	echo "the model was asked $(grep -c 'fakellm: request' "$DIR/fakellm.log") time(s)"
fi
