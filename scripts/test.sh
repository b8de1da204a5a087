#!/usr/bin/env bash
# Installs the local world if needed (not the linters, not zig), then runs the test suite with moto_server
# and cargo-lambda on PATH.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$REPO/scripts/setup.sh" world
cd "$REPO"
PATH="$REPO/.local/venv/bin:$PATH" cargo test --locked "$@"
