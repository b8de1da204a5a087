#!/usr/bin/env bash
# Builds what scripts/deploy.sh uploads, for Amazon Linux on x86_64 (the promote build's Lambda compute and
# the webhook function's architecture): the ecr-promote binary, and the webhook function's zip
# (provided.al2023: one executable named bootstrap). Both land in target/lambda/built/ (or under
# CARGO_TARGET_DIR), whose paths and sizes it prints.
#
# Needs Rust and cargo-lambda with zig, to link against Amazon Linux's glibc: `scripts/setup.sh zip` installs
# those two (pinned) into .local/venv and nothing else. arm64 (Graviton) needs the Rust target
# aarch64-unknown-linux-gnu (rustup target add …) and --target aarch64-unknown-linux-gnu on both builds.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$REPO/scripts/setup.sh" zip >/dev/null
cd "$REPO"
PATH="$REPO/.local/venv/bin:$PATH"
LAMBDA_DIR="${CARGO_TARGET_DIR:-$REPO/target}/lambda"
cargo lambda build --release --locked --bin ecr-promote-webhook --output-format zip --lambda-dir "$LAMBDA_DIR"
cargo lambda build --release --locked --bin ecr-promote --lambda-dir "$LAMBDA_DIR"
mkdir -p "$LAMBDA_DIR/built"
cp "$LAMBDA_DIR/ecr-promote/bootstrap" "$LAMBDA_DIR/built/ecr-promote"
cp "$LAMBDA_DIR/ecr-promote-webhook/bootstrap.zip" "$LAMBDA_DIR/built/bootstrap.zip"
for built in "$LAMBDA_DIR/built/ecr-promote" "$LAMBDA_DIR/built/bootstrap.zip"; do
    echo "$built ($(stat -c %s "$built") bytes)"
done
