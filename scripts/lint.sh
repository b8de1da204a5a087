#!/usr/bin/env bash
# The linters CI runs before the tests: the CloudFormation templates, the scripts' checks, the Rust code.
# `scripts/setup.sh lint` installs cfn-lint (pinned) into .local/venv, and checkov (pinned) into
# .local/checkov, if they are missing.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$REPO/scripts/setup.sh" lint >/dev/null
cd "$REPO"
BIN="$REPO/.local/venv/bin"

run() {
    echo "lint: $*"
    "$@"
}
# Which files are templates (deploy/*.yml less the buildspecs beside them) is in .cfnlintrc.yaml.
run "$BIN/cfn-lint"
# The security scan, offline (--skip-download). Every template under deploy/ is scanned, so new ones (the
# webhook's) are covered as they land. A finding that does not apply is skipped beside the resource, with
# its reason (Metadata checkov skip in the template).
CHECKOV=("$REPO/.local/checkov/bin/checkov" --skip-download --quiet --compact)
run "${CHECKOV[@]}" -d deploy
# Each role grants exactly the AWS actions the Rust code calls, and docs/permissions.md says the same.
run "$BIN/python" scripts/check_iam.py
# The staging pipeline pushes the full commit hash production looks for, and keeps it long enough.
run "$BIN/python" scripts/check_staging_contract.py
# Every relative link in README.md, docs/ and bench/ leads to a file, and every #anchor to a heading.
run "$BIN/python" scripts/check_links.py
# No import cycle in src/: exit codes and other decisions live above the typed errors they read.
run "$BIN/python" scripts/check_layers.py
run cargo fmt --all -- --check
run cargo clippy --all-targets --locked --quiet -- -D warnings
echo "lint: all clean"
