#!/usr/bin/env bash
# How long `ecr-promote audit` takes over 300 recorded releases on the local world (moto and two Distribution
# registries on loopback): every release's production tag and its commit's staging tag are checked.
#
#   bench/audit.sh
#
# Runs the ignored test audit_of_300_releases (tests/status.rs), which records 300 releases in the ledger,
# puts their tags in both registries, runs `ecr-promote audit` once and prints how long it took. The test
# build (unoptimised) is used: the audit waits on the registries and DynamoDB, not on the CPU.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$REPO/scripts/setup.sh" world >/dev/null
cd "$REPO"
PATH="$REPO/.local/venv/bin:$PATH" cargo test --locked --quiet --test status -- --ignored --nocapture \
    audit_of_300_releases 2>&1 | grep '^audit of'
