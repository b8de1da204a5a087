#!/usr/bin/env bash
# The demo: a whole promotion against the local world, in one command.
#
# Starts moto (SQS, DynamoDB, ECR's API, STS, Secrets Manager, CodePipeline) and two Distribution registries
# standing in for the staging and production accounts' ECR, and the webhook function (ecr-promote-webhook)
# under the Lambda emulator (cargo lambda watch) behind its function URL. Pushes an image into "staging"
# tagged with a commit hash; then GitHub delivers a signed release over HTTP to the function, which queues
# it and starts the pipeline; runs `ecr-promote run` as that execution's CodeBuild step, and shows the
# outcome and the deploy files. Then runs again with the queue empty, as a re-triggered pipeline would,
# redeploying the release deployed last; shows the history and an explicit redeploy.
# Everything listens on 127.0.0.1, lives in one temp folder and is stopped and removed at the end.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# Only what the demo starts: the registry, moto and the Lambda emulator; not the linters, not zig. The
# installs wait on the network and the build on the CPU, so on a fresh machine they run side by side.
(
    "$REPO/scripts/setup.sh" world >/dev/null
    command -v htpasswd >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq apache2-utils >/dev/null
    command -v curl >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq curl >/dev/null
) &
installs=$!
# The demo profile (Cargo.toml): the demo moves 5 MiB and waits on moto and the registries, so the release
# profile's optimisation (the shipped binary's, thin LTO) would cost minutes of compiling and save nothing
# visible.
(cd "$REPO" && cargo build --locked --quiet --profile demo --bin ecr-promote --bin ecr-promote-webhook)
wait "$installs" || { echo "demo: installing the local world failed" >&2; exit 1; }
BIN="${CARGO_TARGET_DIR:-$REPO/target}/demo/ecr-promote"
WEBHOOK_BIN="${CARGO_TARGET_DIR:-$REPO/target}/demo/ecr-promote-webhook"
PYTHON="$REPO/.local/venv/bin/python"

# shellcheck source=local-world.sh
source "$REPO/scripts/local-world.sh"
local_world_dir ecr-promote-demo

wait_for() { # url expected-status
    for _ in $(seq 1 100); do
        [[ "$(curl -s -o /dev/null -w '%{http_code}' "$1" || true)" == "$2" ]] && return 0
        sleep 0.1
    done
    echo "demo: $1 did not come up" >&2
    exit 1
}
say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

STAGING_ACCOUNT=111111111111
PRODUCTION_ACCOUNT=222222222222
REGION=us-east-1
STAGING_HOST="$STAGING_ACCOUNT.dkr.ecr.$REGION.amazonaws.com"
PRODUCTION_HOST="$PRODUCTION_ACCOUNT.dkr.ecr.$REGION.amazonaws.com"

say "starting the local world in $WORK"
start_moto
declare -A PORT
for name in staging production; do
    account=$STAGING_ACCOUNT
    [[ $name == production ]] && account=$PRODUCTION_ACCOUNT
    PORT[$name]="$(free_port)"
    mkdir -p "$WORK/$name"
    # The password is what moto's ecr:GetAuthorizationToken hands out for the account, so ecr-promote
    # authenticates the way it does against ECR. bcrypt cost 4 keeps per-request checks cheap.
    htpasswd -nbB -C 4 AWS "$account-auth-token" >"$WORK/$name/htpasswd"
    cat >"$WORK/$name/config.yml" <<YAML
version: 0.1
log: {level: warn, accesslog: {disabled: true}}
storage: {filesystem: {rootdirectory: $WORK/$name/storage}}
http: {addr: 127.0.0.1:${PORT[$name]}, secret: demo-$name}
auth: {htpasswd: {realm: $name, path: $WORK/$name/htpasswd}}
YAML
    docker-registry serve "$WORK/$name/config.yml" >"$WORK/$name/registry.log" 2>&1 &
    PIDS+=($!)
    echo "$name registry ($account) on 127.0.0.1:${PORT[$name]}"
done
wait_for "http://127.0.0.1:$MOTO_PORT/moto-api/" 200
wait_for "http://127.0.0.1:${PORT[staging]}/v2/" 401
wait_for "http://127.0.0.1:${PORT[production]}/v2/" 401
echo "moto on 127.0.0.1:$MOTO_PORT"

export AWS_ENDPOINT_URL="http://127.0.0.1:$MOTO_PORT" AWS_REGION=$REGION AWS_DEFAULT_REGION=$REGION
export AWS_ACCESS_KEY_ID=demo AWS_SECRET_ACCESS_KEY=demo AWS_EC2_METADATA_DISABLED=true
export PROMOTE_REGISTRY_ENDPOINTS="$STAGING_HOST=http://127.0.0.1:${PORT[staging]},$PRODUCTION_HOST=http://127.0.0.1:${PORT[production]}"

COMMIT="$("$PYTHON" -c 'import secrets; print(secrets.token_hex(20))')"
say "the staging build pushes api:$COMMIT (3 random layers)"
"$PYTHON" "$REPO/scripts/demo/world.py" push-image "http://127.0.0.1:${PORT[staging]}" "$STAGING_ACCOUNT-auth-token" api "$COMMIT"

say "the production stack: queue, ledger table, webhook secret, pipeline; its webhook function"
PROMOTE_QUEUE_URL="$("$PYTHON" "$REPO/scripts/demo/world.py" setup-aws releases ecr-promote-releases)"
export PROMOTE_QUEUE_URL
WEBHOOK_SECRET="$("$PYTHON" -c 'import secrets; print(secrets.token_hex(24))')"
SECRET_ARN="$("$PYTHON" "$REPO/scripts/demo/world.py" setup-webhook ecr-promote/github-webhook-secret "$WEBHOOK_SECRET" ecr-promote-production)"
start_lambda_emulator
AWS_LAMBDA_RUNTIME_API="http://127.0.0.1:$LAMBDA_PORT/.rt" AWS_LAMBDA_FUNCTION_NAME=_ \
    AWS_LAMBDA_FUNCTION_VERSION=1 AWS_LAMBDA_FUNCTION_MEMORY_SIZE=128 \
    PROMOTE_PIPELINE_NAME=ecr-promote-production PROMOTE_WEBHOOK_SECRET_ARN="$SECRET_ARN" \
    PROMOTE_TABLE=ecr-promote-releases "$WEBHOOK_BIN" 2>"$WORK/webhook.log" &
PIDS+=($!)
WEBHOOK_URL="http://127.0.0.1:$LAMBDA_PORT/lambda-url/_/webhook"
echo "webhook function at $WEBHOOK_URL (its log: JSON lines, shown below)"

say "GitHub delivers release v1.0.0 of commit ${COMMIT:0:7}, signed, to the webhook"
DELIVERY="$("$PYTHON" -c 'import uuid; print(uuid.uuid4())')"
"$PYTHON" "$REPO/scripts/demo/world.py" deliver "$WEBHOOK_URL" "$WEBHOOK_SECRET" v1.0.0 "$COMMIT" "$DELIVERY"
echo "the production pipeline was started for it:"
"$PYTHON" "$REPO/scripts/demo/world.py" show-executions ecr-promote-production
echo "GitHub's Redeliver button, pressed by someone unsure it worked:"
"$PYTHON" "$REPO/scripts/demo/world.py" deliver "$WEBHOOK_URL" "$WEBHOOK_SECRET" v1.0.0 "$COMMIT" "$DELIVERY"
echo "the function's log:"
cat "$WORK/webhook.log"

# The started execution's CodeBuild step checks the delivery's signature again, with the secret it reads
# from Secrets Manager as the template has it do.
export PROMOTE_WEBHOOK_SECRET_ARN="$SECRET_ARN"
export PROMOTE_SOURCE_REPOSITORY="$STAGING_HOST/api" PROMOTE_TARGET_REPOSITORY="$PRODUCTION_HOST/api"
export PROMOTE_TABLE=ecr-promote-releases PROMOTE_CONTAINER_NAME=api PROMOTE_WAIT_SECONDS=1
export PROMOTE_IMAGEDEFINITIONS="$WORK/imagedefinitions.json"
export CODEBUILD_BUILD_ARN="arn:aws:codebuild:$REGION:$PRODUCTION_ACCOUNT:build/production-deploy:demo-1"

say "ecr-promote run --dry-run (reads only)"
"$BIN" run --dry-run

say "ecr-promote run"
"$BIN" run

say "the outcome"
staging_digest="$(curl -s -I -u "AWS:$STAGING_ACCOUNT-auth-token" -H 'Accept: application/vnd.oci.image.manifest.v1+json' \
    "http://127.0.0.1:${PORT[staging]}/v2/api/manifests/$COMMIT" | tr -d '\r' | awk -F': ' 'tolower($1)=="docker-content-digest"{print $2}')"
production_digest="$(curl -s -I -u "AWS:$PRODUCTION_ACCOUNT-auth-token" -H 'Accept: application/vnd.oci.image.manifest.v1+json' \
    "http://127.0.0.1:${PORT[production]}/v2/api/manifests/v1.0.0" | tr -d '\r' | awk -F': ' 'tolower($1)=="docker-content-digest"{print $2}')"
echo "staging    api:${COMMIT:0:12}… $staging_digest"
echo "production api:v1.0.0        $production_digest"
[[ -n "$staging_digest" && "$staging_digest" == "$production_digest" ]] && echo "same digest: nothing was rebuilt"
echo "ledger item:"
"$PYTHON" "$REPO/scripts/demo/world.py" show-release ecr-promote-releases v1.0.0
echo "imagedefinitions.json:"
cat "$PROMOTE_IMAGEDEFINITIONS"

say "ecr-promote history, then a rollback-style redeploy of v1.0.0 (copies nothing)"
rm "$PROMOTE_IMAGEDEFINITIONS"
"$BIN" history
CODEBUILD_INITIATOR=demo-user "$BIN" redeploy v1.0.0
cat "$PROMOTE_IMAGEDEFINITIONS"
"$BIN" show v1.0.0

say "the pipeline is re-run with nothing on the queue: redeploy the release deployed last"
PROMOTE_REDEPLOY_LATEST_WHEN_EMPTY=true "$BIN" run

say "done; stopping the local world"
