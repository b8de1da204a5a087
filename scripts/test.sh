#!/usr/bin/env bash
# Installs the local world if needed (not the linters, not zig), then runs the test suite with moto_server
# and cargo-lambda on PATH, then the one-command deploy's test (scripts/test_deploy.py: scripts/deploy.sh into
# moto's CloudFormation, then a release promoted through what it made, by the binaries cargo test built).
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"
# The installs wait on the network and the first build on the CPU: on a fresh machine they run side by side
# (about a minute and a half saved), and the tests start once both are done.
("$REPO/scripts/setup.sh" world deploy 2>&1 | sed -u 's/^/setup: /'; exit "${PIPESTATUS[0]}") &
setup=$!
trap 'kill "$setup" 2>/dev/null || true' EXIT
cargo test --locked --no-run --quiet
wait "$setup" || { echo "test.sh: installing the local world failed (see the setup: lines above)" >&2; exit 1; }
trap - EXIT
# Property tests draw new inputs on every run at a desk, to keep finding cases; under CI they draw the same
# ones (a fixed seed), so that a case found by chance fails a developer's run, not a submission's.
if [ -n "${CI:-}" ]; then export PROPTEST_RNG_SEED="${PROPTEST_RNG_SEED:-20261205}"; fi
PATH="$REPO/.local/venv/bin:$PATH" cargo test --locked "$@"
# Not beside the integration tests: their stall tests hold the registries to a 2 s answer, which the deploy
# test's load on two cores made one miss (a run of .ci/run failed so).
# The AWS CLI has a venv of its own; the test runs on the one with moto and boto3.
PATH="$REPO/.local/awscli/bin:$REPO/.local/venv/bin:$PATH" "$REPO/.local/venv/bin/python" scripts/test_deploy.py
