#!/usr/bin/env bash
# The AWS calls the promotion gates add to a promotion, counted on the local world (moto and two Distribution
# registries on loopback): a release of one image and of three, with no gate and with the soak and vulnerability
# gates on. Counts, not times: the gates wait on AWS, and what they cost is how many calls they make.
#
#   bench/gates.sh
#
# Runs the ignored test calls_the_gates_add_to_a_promotion (tests/it/gates.rs): every AWS call of
# `ecr-promote promote` goes through a front that records it by service (the signature's scope) and operation
# (X-Amz-Target; the query protocol's calls, STS's and CloudWatch's, show the service alone).
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$REPO/scripts/setup.sh" world >/dev/null
cd "$REPO"
PATH="$REPO/.local/venv/bin:$PATH" cargo test --locked --quiet --test it -- --ignored --nocapture \
    gates::calls_the_gates_add_to_a_promotion 2>&1 | grep '^calls:'
