#!/usr/bin/env bash
# Builds what scripts/deploy.sh uploads, for Amazon Linux on x86_64 (the promote build's Lambda compute and
# the webhook function's architecture): the ecr-promote binary, and the webhook function's zip
# (provided.al2023: one executable named bootstrap). Both land in target/lambda/built/ (or under
# CARGO_TARGET_DIR), whose paths and sizes it prints.
#
# Needs Rust and cargo-lambda, which brings zig to link against Amazon Linux's glibc:
#   pip install cargo-lambda==1.9.2      (scripts/setup.sh puts it in .local/venv, which is looked in too)
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"
PATH="$REPO/.local/venv/bin:$PATH"
if ! command -v cargo-lambda >/dev/null; then
    echo "webhook-zip: cargo-lambda is not on PATH: pip install cargo-lambda==1.9.2 (it brings zig)" >&2
    exit 1
fi
LAMBDA_DIR="${CARGO_TARGET_DIR:-$REPO/target}/lambda"
cargo lambda build --release --locked --bin ecr-promote-webhook --output-format zip --lambda-dir "$LAMBDA_DIR"
cargo lambda build --release --locked --bin ecr-promote --lambda-dir "$LAMBDA_DIR"
mkdir -p "$LAMBDA_DIR/built"
cp "$LAMBDA_DIR/ecr-promote/bootstrap" "$LAMBDA_DIR/built/ecr-promote"
cp "$LAMBDA_DIR/ecr-promote-webhook/bootstrap.zip" "$LAMBDA_DIR/built/bootstrap.zip"
for built in "$LAMBDA_DIR/built/ecr-promote" "$LAMBDA_DIR/built/bootstrap.zip"; do
    echo "$built ($(stat -c %s "$built") bytes)"
done
