#!/usr/bin/env bash
# Property-based tests of the admin API against its own OpenAPI description: starts
# `tessera serve` on a temporary SQLite database with the admin listener and a bootstrap
# token, and runs schemathesis (from PyPI, in a venv) with every check. Fails on any 5xx,
# schema violation or other failed check.
#
# Usage: scripts/schemathesis.sh [PATH_TO_TESSERA_BINARY]   (default: target/debug/tessera)
# SCHEMATHESIS_EXAMPLES bounds the cases per operation and phase (default 50).
set -euo pipefail
cd "$(dirname "$0")/.."

bin="${1:-target/debug/tessera}"
if [ ! -x "$bin" ]; then
    cargo build --locked -p tessera
fi
examples="${SCHEMATHESIS_EXAMPLES:-50}"

work=$(mktemp -d)
server_pid=""
cleanup() {
    if [ -n "$server_pid" ]; then
        kill "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT

venv="${SCHEMATHESIS_VENV:-$HOME/.cache/tessera-schemathesis-venv}"
if [ ! -x "$venv/bin/schemathesis" ]; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q "schemathesis>=4,<5"
fi
"$venv/bin/schemathesis" --version

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
port=$(free_port)
admin_port=$(free_port)
token=$(python3 -c 'import secrets; print(secrets.token_urlsafe(32))')

env -i PATH="$PATH" HOME="$HOME" \
    TESSERA_LISTEN="127.0.0.1:$port" \
    TESSERA_ADMIN_LISTEN="127.0.0.1:$admin_port" \
    TESSERA_ADMIN_TOKEN="$token" \
    TESSERA_DATABASE_URL="sqlite://$work/tessera.db" \
    TESSERA_SECRET="schemathesis-sealing-secret-not-for-production" \
    RUST_LOG=warn \
    "$bin" serve >"$work/server.log" 2>&1 &
server_pid=$!

for _ in $(seq 1 100); do
    if python3 -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=2)' \
        "http://127.0.0.1:$admin_port/admin/openapi.json" >/dev/null 2>&1; then
        break
    fi
    if ! kill -0 "$server_pid" 2>/dev/null; then
        cat "$work/server.log"
        echo "schemathesis: tessera serve exited before it was ready" >&2
        exit 1
    fi
    sleep 0.2
done

# Every check but positive_data_acceptance: the description states types, enums, required
# and unknown fields, but not every rule of a registration (what makes a redirect URI or a
# scope valid, lifetimes within the server's limits, rules across fields, opaque cursors),
# so some schema-valid bodies are rightly refused with 400. negative_data_rejection checks
# the converse: whatever breaks the description is refused.
status=0
"$venv/bin/schemathesis" run "http://127.0.0.1:$admin_port/admin/openapi.json" \
    --checks all \
    --exclude-checks positive_data_acceptance \
    --header "Authorization: Bearer $token" \
    --max-examples "$examples" \
    --seed "${SCHEMATHESIS_SEED:-13}" \
    --workers 2 \
    --no-color \
    --output-sanitize true \
    --generation-database none || status=$?

if grep -q "panicked" "$work/server.log"; then
    echo "schemathesis: the server panicked:" >&2
    grep -A5 "panicked" "$work/server.log" >&2
    status=1
fi
if [ "$status" != 0 ]; then
    echo "schemathesis: failed (exit $status)" >&2
fi
exit "$status"
