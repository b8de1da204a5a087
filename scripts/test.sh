#!/usr/bin/env bash
# Installs the local world if needed, then runs the test suite with moto_server on PATH, and the one-command
# deploy (scripts/test_deploy.py: scripts/deploy.sh into moto's CloudFormation, then a release promoted
# through what it made by the binaries cargo test built).
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$REPO/scripts/setup.sh"
cd "$REPO"
PATH="$REPO/.local/venv/bin:$PATH" cargo test --locked "$@"
# The AWS CLI has a venv of its own; the test runs on the one with moto and boto3.
PATH="$REPO/.local/awscli/bin:$REPO/.local/venv/bin:$PATH" "$REPO/.local/venv/bin/python" scripts/test_deploy.py
