#!/usr/bin/env bash
# Installs the local world if needed, then runs the test suite with moto_server on PATH.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$REPO/scripts/setup.sh"
cd "$REPO"
PATH="$REPO/.local/venv/bin:$PATH" cargo test --locked "$@"
