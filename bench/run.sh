#!/usr/bin/env bash
# Builds the Tessera server and the bench in release mode, then runs the
# bench against the freshly built server. Extra arguments go to tessera-bench
# (e.g. --duration 2 --concurrency 1,16,64 --only jwt,opaque; add
# --postgres postgres://USER:PASSWORD@HOST/DB for the PostgreSQL scenarios).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

cargo build --release -p tessera -p tessera-bench
target="${CARGO_TARGET_DIR:-target}"
exec "$target/release/tessera-bench" --tessera "$target/release/tessera" "$@"
