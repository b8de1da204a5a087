#!/usr/bin/env bash
# Builds the webhook function's Lambda zip (provided.al2023: one executable named bootstrap) with
# cargo-lambda, which `scripts/setup.sh zip` installs with zig to link against Amazon Linux's glibc.
#
#   scripts/webhook-zip.sh           x86_64 (the Architecture parameter of deploy/webhook.yml: x86_64)
#   scripts/webhook-zip.sh --arm64   arm64 (Graviton; Architecture: arm64). Needs the Rust target
#                                    first: rustup target add aarch64-unknown-linux-gnu
#
# Prints the zip's path and size. Upload it to S3 and deploy deploy/webhook.yml (docs/deploying.md).
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$REPO/scripts/setup.sh" zip >/dev/null
cd "$REPO"
TARGET_DIR="${CARGO_TARGET_DIR:-$REPO/target}"
LAMBDA_DIR="$TARGET_DIR/lambda"
PATH="$REPO/.local/venv/bin:$PATH" cargo lambda build --release --locked --bin ecr-promote-webhook \
    --output-format zip --lambda-dir "$LAMBDA_DIR" "$@"
ZIP="$LAMBDA_DIR/ecr-promote-webhook/bootstrap.zip"
echo "$ZIP ($(stat -c %s "$ZIP") bytes)"
