#!/usr/bin/env bash
# Installs the local world if needed, then runs the test suite with moto_server on PATH, and the one-command
# deploy (scripts/deploy.sh) against moto's CloudFormation with the AWS CLI scripts/setup.sh pins.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$REPO/scripts/setup.sh"
cd "$REPO"
PATH="$REPO/.local/venv/bin:$PATH" cargo test --locked "$@"
PATH="$REPO/.local/awscli/bin:$PATH" "$REPO/.local/venv/bin/python" scripts/test_deploy.py
