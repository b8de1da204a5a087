#!/usr/bin/env bash
# Benchmarks the webhook function as it ships: the bootstrap inside the zip scripts/webhook-zip.sh makes.
#
#   bench/webhook.sh                                  # 300 deliveries + 300 pings, 30 cold starts
#   BENCH_DELIVERIES=100 BENCH_STARTS=10 bench/webhook.sh     # quicker
#   BENCH_WRITE=1 bench/webhook.sh                    # also writes bench/RESULTS-webhook.md
#
# Figures: the zip's size; cold start (process start → first poll for an invocation, against a stand-in
# Runtime API); per-delivery latency p50/p99 through the Lambda emulator's function URL against moto (each
# published release is queued, claimed twice and starts the pipeline: five AWS calls to moto, which
# dominates); the function's peak RSS over all those deliveries.
#
# Environment:
#   BENCH_DELIVERIES  published releases to deliver, each followed by a ping (default 300)
#   BENCH_STARTS      cold starts to time (default 30)
#   BENCH_WRITE       1: write bench/RESULTS-webhook.md
#   BENCH_NO_BUILD    1: use the zip already built (scripts/webhook-zip.sh)
# Everything listens on 127.0.0.1 and lives in one temp folder, removed on exit with every server.
set -euo pipefail

DELIVERIES="${BENCH_DELIVERIES:-300}"
STARTS="${BENCH_STARTS:-30}"
[[ "$DELIVERIES" =~ ^[1-9][0-9]*$ && "$STARTS" =~ ^[1-9][0-9]*$ ]] \
    || { echo "BENCH_DELIVERIES and BENCH_STARTS must be positive integers" >&2; exit 2; }
COMMAND_LINE=""
for var in BENCH_DELIVERIES BENCH_STARTS BENCH_WRITE BENCH_NO_BUILD; do
    if [[ -n "${!var:-}" ]]; then COMMAND_LINE+="$var=${!var} "; fi
done
COMMAND_LINE+="bench/webhook.sh"

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$REPO/scripts/setup.sh" world >/dev/null
PYTHON="$REPO/.local/venv/bin/python"
ZIP="${CARGO_TARGET_DIR:-$REPO/target}/lambda/ecr-promote-webhook/bootstrap.zip"
if [[ "${BENCH_NO_BUILD:-0}" != 1 ]]; then
    "$REPO/scripts/webhook-zip.sh" >&2
fi
[[ -f "$ZIP" ]] || { echo "no $ZIP: run scripts/webhook-zip.sh" >&2; exit 1; }

# shellcheck source=../scripts/local-world.sh
source "$REPO/scripts/local-world.sh"
local_world_dir ecr-promote-webhook-bench

"$PYTHON" -c 'import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extractall(sys.argv[2])' "$ZIP" "$WORK"
chmod +x "$WORK/bootstrap"
zip_bytes="$(stat -c %s "$ZIP")"
bootstrap_bytes="$(stat -c %s "$WORK/bootstrap")"

echo "timing $STARTS cold starts" >&2
ready="$("$PYTHON" "$REPO/bench/webhook.py" ready "$WORK/bootstrap" "$STARTS")"

echo "starting moto, the Lambda emulator and the function" >&2
start_moto
export AWS_ENDPOINT_URL="http://127.0.0.1:$MOTO_PORT" AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1
export AWS_ACCESS_KEY_ID=bench AWS_SECRET_ACCESS_KEY=bench AWS_EC2_METADATA_DISABLED=true
QUEUE_URL="$("$PYTHON" "$REPO/scripts/demo/world.py" setup-aws releases ecr-promote-releases)"
SECRET="$("$PYTHON" -c 'import secrets; print(secrets.token_hex(24))')"
SECRET_ARN="$("$PYTHON" "$REPO/scripts/demo/world.py" setup-webhook ecr-promote/github-webhook-secret "$SECRET" ecr-promote-production)"
start_lambda_emulator
AWS_LAMBDA_RUNTIME_API="http://127.0.0.1:$LAMBDA_PORT/.rt" AWS_LAMBDA_FUNCTION_NAME=_ \
    AWS_LAMBDA_FUNCTION_VERSION=1 AWS_LAMBDA_FUNCTION_MEMORY_SIZE=128 PROMOTE_QUEUE_URL="$QUEUE_URL" \
    PROMOTE_PIPELINE_NAME=ecr-promote-production PROMOTE_WEBHOOK_SECRET_ARN="$SECRET_ARN" \
    PROMOTE_TABLE=ecr-promote-releases RUST_LOG=warn "$WORK/bootstrap" 2>"$WORK/function.log" &
FUNCTION_PID=$!
PIDS+=("$FUNCTION_PID")

echo "delivering $DELIVERIES releases and $DELIVERIES pings" >&2
COMMIT="$("$PYTHON" -c 'import secrets; print(secrets.token_hex(20))')"
latency="$("$PYTHON" "$REPO/bench/webhook.py" latency "http://127.0.0.1:$LAMBDA_PORT/lambda-url/_/webhook" \
    "$SECRET" "$DELIVERIES" "$COMMIT")"
peak_kib="$(awk '/^VmHWM/{print $2}' "/proc/$FUNCTION_PID/status")"

mib() { awk -v b="$1" 'BEGIN{printf "%.1f MiB", b/1048576}'; }
report="$(cat <<REPORT
# ecr-promote-webhook: figures

Made by \`$COMMAND_LINE\` at commit $(git -C "$REPO" rev-parse --short HEAD) on $(date -u +%Y-%m-%d), $(nproc) CPUs
($(awk -F': ' '/model name/{print $2; exit}' /proc/cpuinfo)), moto $("$PYTHON" -c 'import importlib.metadata as m; print(m.version("moto"))'),
cargo-lambda $("$REPO/.local/venv/bin/cargo-lambda" lambda --version | awk '{print $2}'). The binary is the bootstrap in the zip.

| figure | value | aim |
|---|---|---|
| zip (\`scripts/webhook-zip.sh\`, x86_64) | $(mib "$zip_bytes") (bootstrap $(mib "$bootstrap_bytes")) | ≤ 8 MiB |
| cold start: process start → first poll for an invocation | ${ready#ready: } | ≤ 50 ms |
| peak RSS over all deliveries | $(awk -v k="$peak_kib" 'BEGIN{printf "%.1f MiB", k/1024}') | ≤ 32 MiB |

Per delivery, request to full answer, through the Lambda emulator's function URL, against moto:

\`\`\`
$latency
\`\`\`
REPORT
)"
echo "$report"
if [[ "${BENCH_WRITE:-0}" == 1 ]]; then
    echo "$report" >"$REPO/bench/RESULTS-webhook.md"
    echo "wrote bench/RESULTS-webhook.md" >&2
fi
