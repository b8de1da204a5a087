#!/usr/bin/env bash
# Deploys ecr-promote into both accounts: the staging stack (deploy/staging-pipeline.yml), then the production
# stack (deploy/production.yml, the webhook function included), passing every value between them itself.
# Re-running it updates both in place. See docs/one-command-deploy.md.
#
#   scripts/deploy.sh --staging-profile S --production-profile P --repo owner/name \
#     --cluster C --service SVC --container NAME [--staging-cluster C] [--staging-service SVC] \
#     [--stack-name ecr-promote] [--repository api] [--branch master] [--compute BUILD_LAMBDA_1GB] \
#     [--set Parameter=value ...] [--prebuilt DIR]
#
# --set passes one more parameter to the production stack (repeatable): any of deploy/production.yml's
# settings, e.g. --set GateVulnerabilities=HIGH --set GateStagingSoak=30m --set GateStagingAlarms=api-5xx
# --set EventBusName=default --set PinDigest=true (the soak gate reads --staging-cluster/--staging-service
# through the staging stack's read role, which this script passes on),
# --set RecordDeployOutcomes=true (the deploy outcomes' rule, queue and settle project; docs/operating.md), or
# --set GithubTokenSecretArn=arn:aws:secretsmanager:…:secret:github-token-AbCdEf to show deploys on GitHub.
# It checks every prerequisite first and, if one is missing, names each and creates nothing. --prebuilt takes
# the ecr-promote binary and the webhook's bootstrap.zip from DIR instead of building them with
# scripts/webhook-zip.sh (binaries built elsewhere, or by the test that deploys into moto).
#
# Built on `aws cloudformation deploy` (change sets: create or update, waits, no failure on no change) rather
# than SAM: the templates are plain CloudFormation, the promote project's binary is not something SAM
# packages, and cargo-lambda builds both binaries without SAM's build container.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
STACK=ecr-promote REPOSITORY=api BRANCH=master COMPUTE=BUILD_LAMBDA_1GB
STAGING_PROFILE="" PRODUCTION_PROFILE="" GITHUB_REPO="" CLUSTER="" SERVICE="" CONTAINER=""
STAGING_CLUSTER="" STAGING_SERVICE="" PREBUILT="" SETTINGS=()
usage() { sed -n '5,16p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
while (($#)); do
    case "$1" in
        --staging-profile) STAGING_PROFILE="$2" ;;
        --production-profile) PRODUCTION_PROFILE="$2" ;;
        --repo) GITHUB_REPO="$2" ;;
        --cluster) CLUSTER="$2" ;;
        --service) SERVICE="$2" ;;
        --container) CONTAINER="$2" ;;
        --staging-cluster) STAGING_CLUSTER="$2" ;;
        --staging-service) STAGING_SERVICE="$2" ;;
        --stack-name) STACK="$2" ;;
        --repository) REPOSITORY="$2" ;;
        --branch) BRANCH="$2" ;;
        --compute) COMPUTE="$2" ;;
        --prebuilt) PREBUILT="$2" ;;
        --set) [[ "${2:-}" == ?*=* ]] || { echo "deploy: --set takes Parameter=value, not '${2:-}'" >&2; exit 2; }
            SETTINGS+=("$2") ;;
        *) echo "deploy: unknown argument $1" >&2; usage ;;
    esac
    shift 2 || usage
done
for required in STAGING_PROFILE PRODUCTION_PROFILE GITHUB_REPO CLUSTER SERVICE CONTAINER; do
    if [[ -z "${!required}" ]]; then
        echo "deploy: --$(tr '[:upper:]_' '[:lower:]-' <<<"$required" | sed 's/github-//') is required" >&2
        usage
    fi
done
STAGING_CLUSTER="${STAGING_CLUSTER:-$CLUSTER}" STAGING_SERVICE="${STAGING_SERVICE:-$SERVICE}"

# What is missing, one line each. A file, because the checks below also run in command substitutions.
PROBLEMS="$(mktemp)"
trap 'rm -f "$PROBLEMS"' EXIT
missing() { echo "  - $1" >>"$PROBLEMS"; }
command -v aws >/dev/null || { echo "deploy: the AWS CLI is not on PATH: pip install awscli (scripts/setup.sh pins one)" >&2; exit 1; }
staging() { aws --profile "$STAGING_PROFILE" --output text "$@"; }
production() { aws --profile "$PRODUCTION_PROFILE" --output text "$@"; }

# --- Prerequisites: read only. ---

account_of() { # profile
    aws --profile "$1" --output text sts get-caller-identity --query Account 2>/dev/null || true
}
STAGING_ACCOUNT="$(account_of "$STAGING_PROFILE")"
PRODUCTION_ACCOUNT="$(account_of "$PRODUCTION_PROFILE")"
[[ -n "$STAGING_ACCOUNT" ]] || missing "profile $STAGING_PROFILE has no working credentials (aws sts get-caller-identity --profile $STAGING_PROFILE)"
[[ -n "$PRODUCTION_ACCOUNT" ]] || missing "profile $PRODUCTION_PROFILE has no working credentials (aws sts get-caller-identity --profile $PRODUCTION_PROFILE)"
if [[ -n "$STAGING_ACCOUNT" && "$STAGING_ACCOUNT" == "$PRODUCTION_ACCOUNT" ]]; then
    missing "profiles $STAGING_PROFILE and $PRODUCTION_PROFILE are both account $STAGING_ACCOUNT: give the staging and the production account's profiles"
fi
STAGING_REGION="$(aws configure get region --profile "$STAGING_PROFILE" || true)"
PRODUCTION_REGION="$(aws configure get region --profile "$PRODUCTION_PROFILE" || true)"
[[ -n "$PRODUCTION_REGION" ]] || missing "profile $PRODUCTION_PROFILE names no region (aws configure set region REGION --profile $PRODUCTION_PROFILE)"
[[ -n "$STAGING_REGION" ]] || missing "profile $STAGING_PROFILE names no region (aws configure set region REGION --profile $STAGING_PROFILE)"

connection_of() { # side account
    local side="$1" account="$2" available pending
    available="$("$side" codeconnections list-connections --provider-type-filter GitHub \
        --query "Connections[?ConnectionStatus=='AVAILABLE'] | [0].ConnectionArn" 2>/dev/null || true)"
    if [[ -n "$available" && "$available" != None ]]; then
        echo "$available"
        return
    fi
    pending="$("$side" codeconnections list-connections --provider-type-filter GitHub \
        --query "Connections[?ConnectionStatus=='PENDING'].ConnectionArn" 2>/dev/null || true)"
    if [[ -n "$pending" ]]; then
        missing "$side account $account: the GitHub connection $pending is PENDING: open it in the console (Developer Tools > Settings > Connections) and choose Update pending connection"
    else
        missing "$side account $account: no AVAILABLE GitHub connection: create one in the console (Developer Tools > Settings > Connections > Create connection, GitHub) and authorise it"
    fi
}

task_roles_of() { # side account cluster service
    local side="$1" account="$2" cluster="$3" service="$4" definition containers
    if [[ "$("$side" ecs describe-clusters --clusters "$cluster" --query "clusters[?status=='ACTIVE'] | length(@)" 2>/dev/null)" != 1 ]]; then
        missing "$side account $account: no ECS cluster $cluster"
        return
    fi
    definition="$("$side" ecs describe-services --cluster "$cluster" --services "$service" \
        --query "services[?status=='ACTIVE'] | [0].taskDefinition" 2>/dev/null || true)"
    if [[ -z "$definition" || "$definition" == None ]]; then
        missing "$side account $account: no ECS service $service in cluster $cluster: create it (running any image of $REPOSITORY) first"
        return
    fi
    containers="$("$side" ecs describe-task-definition --task-definition "$definition" \
        --query "taskDefinition.containerDefinitions[].name")"
    if ! tr '\t' '\n' <<<"$containers" | grep -qx "$CONTAINER"; then
        missing "$side account $account: service $service's task definition has no container $CONTAINER (it has: $containers)"
    fi
    "$side" ecs describe-task-definition --task-definition "$definition" \
        --query "join(',', [taskDefinition.taskRoleArn, taskDefinition.executionRoleArn][?@ != null])"
}

# The staging stack creates the repository, immutable and with the lifecycle production relies on (commit
# images kept KeepCommitImagesDays), or adopts one that exists already and that the stack does not manage
# (a staging pipeline pushes there today; CloudFormation cannot create one whose name is taken). An adopted
# repository keeps its own settings: the command adds the pull statement to its policy and says which of
# its settings production's guarantees lean on.
CREATE_REPOSITORY=true
staging_repository_mode() {
    local managed
    managed="$(staging cloudformation describe-stack-resource --stack-name "$STACK" \
        --logical-resource-id StagingRepository --query StackResourceDetail.PhysicalResourceId 2>/dev/null || true)"
    if [[ "$managed" != "$REPOSITORY" ]] \
        && staging ecr describe-repositories --repository-names "$REPOSITORY" >/dev/null 2>&1; then
        CREATE_REPOSITORY=false
        command -v python3 >/dev/null \
            || missing "python3 is not on PATH, to add the pull statement to the existing repository $REPOSITORY's policy"
    fi
}

# The pull statement (deploy/staging-repository-policy.json, for this production account and build role) in
# the adopted repository's policy, beside the statements it has: one of the same Sid is replaced, no other.
adopt_staging_repository() {
    local current merged partition
    current="$(staging ecr get-repository-policy --repository-name "$REPOSITORY" \
        --query policyText 2>/dev/null || echo None)"
    # The partition of the accounts' ARNs (aws, aws-cn, aws-us-gov), which the file writes as aws.
    partition="$(production sts get-caller-identity --query Arn | cut -d: -f2)"
    merged="$(CURRENT="$current" ACCOUNT="$PRODUCTION_ACCOUNT" ROLE="$STACK-build" PARTITION="$partition" python3 - \
        "$REPO/deploy/staging-repository-policy.json" <<'PY'
import json, os, sys
ours = json.loads(open(sys.argv[1]).read().replace("222222222222", os.environ["ACCOUNT"])
                  .replace("role/ecr-promote-build", "role/" + os.environ["ROLE"])
                  .replace("arn:aws:", "arn:" + os.environ["PARTITION"] + ":"))
text = os.environ["CURRENT"]
policy = json.loads(text) if text not in ("", "None") else {"Version": "2012-10-17", "Statement": []}
statements = policy.get("Statement", [])
statements = [statements] if isinstance(statements, dict) else statements
sids = {s["Sid"] for s in ours["Statement"]}
policy["Statement"] = [s for s in statements if s.get("Sid") not in sids] + ours["Statement"]
print(json.dumps(policy))
PY
)"
    staging ecr set-repository-policy --repository-name "$REPOSITORY" --policy-text "$merged" >/dev/null
    echo "deploy: adopted the staging repository $REPOSITORY; its policy lets $STACK-build in production pull"
    if [[ "$(staging ecr describe-repositories --repository-names "$REPOSITORY" \
        --query 'repositories[0].imageTagMutability')" != IMMUTABLE ]]; then
        echo "deploy: warning: $REPOSITORY's tags are mutable: a commit tag pushed again names the newer image," \
            "and a release of that commit promotes it. Make them immutable once nothing pushes a tag twice:" \
            "aws ecr put-image-tag-mutability --repository-name $REPOSITORY --image-tag-mutability IMMUTABLE"
    fi
    if staging ecr get-lifecycle-policy --repository-name "$REPOSITORY" --query lifecyclePolicyText 2>/dev/null \
        | grep -q imageCountMoreThan; then
        echo "deploy: warning: $REPOSITORY's lifecycle policy expires images by count: a burst of pushes can" \
            "expire a commit about to be released. deploy/staging-pipeline.yml's rules expire by age only."
    fi
}

if [[ ! -s "$PROBLEMS" ]]; then
    staging_repository_mode
    STAGING_CONNECTION="$(connection_of staging "$STAGING_ACCOUNT")"
    PRODUCTION_CONNECTION="$(connection_of production "$PRODUCTION_ACCOUNT")"
    STAGING_TASK_ROLES="$(task_roles_of staging "$STAGING_ACCOUNT" "$STAGING_CLUSTER" "$STAGING_SERVICE")"
    PRODUCTION_TASK_ROLES="$(task_roles_of production "$PRODUCTION_ACCOUNT" "$CLUSTER" "$SERVICE")"
fi
if [[ -z "$PREBUILT" ]] && ! command -v cargo-lambda >/dev/null; then
    missing "cargo-lambda is not on PATH, to build the binaries: pip install cargo-lambda==1.9.2 (it brings zig)"
fi
if [[ -n "$PREBUILT" && ! ( -f "$PREBUILT/ecr-promote" && -f "$PREBUILT/bootstrap.zip" ) ]]; then
    missing "--prebuilt $PREBUILT holds no ecr-promote and bootstrap.zip"
fi
if [[ -s "$PROBLEMS" ]]; then
    echo "deploy: nothing was created; first:" >&2
    cat "$PROBLEMS" >&2
    exit 1
fi
echo "deploy: staging $STAGING_ACCOUNT ($STAGING_REGION), production $PRODUCTION_ACCOUNT ($PRODUCTION_REGION)"
echo "deploy: GitHub connections $STAGING_CONNECTION, $PRODUCTION_CONNECTION"

# --- The code the production stack runs. ---

if [[ -z "$PREBUILT" ]]; then
    "$REPO/scripts/webhook-zip.sh"
    PREBUILT="${CARGO_TARGET_DIR:-$REPO/target}/lambda/built"
fi
BINARY="$PREBUILT/ecr-promote" ZIP="$PREBUILT/bootstrap.zip"
BINARY_KEY="ecr-promote/$(sha256sum "$BINARY" | cut -d' ' -f1)"
ZIP_KEY="ecr-promote-webhook/$(sha256sum "$ZIP" | cut -d' ' -f1).zip"

# --- Staging. ---

# Its repository policy lets in the production build role by name, which the production stack gives it.
staging cloudformation deploy --stack-name "$STACK" --template-file "$REPO/deploy/staging-pipeline.yml" \
    --capabilities CAPABILITY_IAM --no-fail-on-empty-changeset --parameter-overrides \
    ProductionAccountId="$PRODUCTION_ACCOUNT" ProductionBuildRoleName="$STACK-build" \
    RepositoryName="$REPOSITORY" ConnectionArn="$STAGING_CONNECTION" FullRepositoryId="$GITHUB_REPO" \
    BranchName="$BRANCH" ClusterName="$STAGING_CLUSTER" ServiceName="$STAGING_SERVICE" \
    ContainerName="$CONTAINER" TaskRoleArns="$STAGING_TASK_ROLES" CreateRepository="$CREATE_REPOSITORY"
[[ "$CREATE_REPOSITORY" == true ]] || adopt_staging_repository

# The soak gate's way into staging (off unless --set GateStagingSoak=30m): the role the staging stack made, and
# the service it deploys.
STAGING_READ_ROLE="$(staging cloudformation describe-stacks --stack-name "$STACK" \
    --query "Stacks[0].Outputs[?OutputKey=='StagingReadRoleArn'].OutputValue")"

# --- Production. ---

if ! production ecr describe-repositories --repository-names "$REPOSITORY" >/dev/null 2>&1; then
    # Immutable: ECR itself then refuses to move a release tag.
    production ecr create-repository --repository-name "$REPOSITORY" --image-tag-mutability IMMUTABLE \
        --image-scanning-configuration scanOnPush=true >/dev/null
    echo "deploy: created the production repository $REPOSITORY"
fi
# The uploads' bucket exists before the stack that reads it, so it is not one of the stack's resources.
BUCKET="$STACK-code-$PRODUCTION_ACCOUNT-$PRODUCTION_REGION"
if ! production s3api head-bucket --bucket "$BUCKET" >/dev/null 2>&1; then
    if [[ "$PRODUCTION_REGION" == us-east-1 ]]; then
        production s3api create-bucket --bucket "$BUCKET" >/dev/null
    else
        production s3api create-bucket --bucket "$BUCKET" \
            --create-bucket-configuration LocationConstraint="$PRODUCTION_REGION" >/dev/null
    fi
    production s3api put-public-access-block --bucket "$BUCKET" --public-access-block-configuration \
        BlockPublicAcls=true,IgnorePublicAcls=true,BlockPublicPolicy=true,RestrictPublicBuckets=true
    echo "deploy: created the bucket $BUCKET for the uploads"
fi
production s3 cp --only-show-errors "$BINARY" "s3://$BUCKET/$BINARY_KEY"
production s3 cp --only-show-errors "$ZIP" "s3://$BUCKET/$ZIP_KEY"

STAGING_REGION_PARAMETER=""
[[ "$STAGING_REGION" == "$PRODUCTION_REGION" ]] || STAGING_REGION_PARAMETER="$STAGING_REGION"
# Through the uploads' bucket: CloudFormation takes a template over 51,200 bytes only from S3.
production cloudformation deploy --stack-name "$STACK" --template-file "$REPO/deploy/production.yml" \
    --s3-bucket "$BUCKET" --s3-prefix "$STACK/templates" \
    --capabilities CAPABILITY_NAMED_IAM --no-fail-on-empty-changeset --parameter-overrides \
    StagingAccountId="$STAGING_ACCOUNT" StagingRegion="$STAGING_REGION_PARAMETER" \
    StagingRepositoryName="$REPOSITORY" ProductionRepositoryName="$REPOSITORY" \
    CodeBucket="$BUCKET" PromoteBinaryKey="$BINARY_KEY" WebhookCodeKey="$ZIP_KEY" BuildComputeType="$COMPUTE" \
    ConnectionArn="$PRODUCTION_CONNECTION" FullRepositoryId="$GITHUB_REPO" BranchName="$BRANCH" \
    ClusterName="$CLUSTER" ServiceName="$SERVICE" ContainerName="$CONTAINER" TaskRoleArns="$PRODUCTION_TASK_ROLES" \
    StagingReadRoleArn="$STAGING_READ_ROLE" StagingClusterName="$STAGING_CLUSTER" \
    StagingServiceName="$STAGING_SERVICE" ${SETTINGS[@]+"${SETTINGS[@]}"}

output() { production cloudformation describe-stacks --stack-name "$STACK" --query "Stacks[0].Outputs[?OutputKey=='$1'].OutputValue"; }
TABLE="$(output TableName)" URL="$(output WebhookUrl)" SECRET="$(output WebhookSecretArn)"
# The template leaves deletion protection off so that a failed first create can roll the table back.
production dynamodb update-table --table-name "$TABLE" --deletion-protection-enabled >/dev/null

cat <<EOF
deploy: done. Stacks $STACK in $STAGING_ACCOUNT and $PRODUCTION_ACCOUNT; re-run this command to update them.

Now, once, on GitHub: https://github.com/$GITHUB_REPO/settings/hooks/new
  Payload URL:   $URL
  Content type:  application/json
  Secret:        the value of $SECRET:
                 aws --profile $PRODUCTION_PROFILE secretsmanager get-secret-value --secret-id $SECRET --query SecretString --output text
  Which events:  Let me select individual events > Releases (only)
GitHub's ping should be answered 200 "ignored". A push to $BRANCH deploys staging; publishing a release of a
commit staging built deploys it to production.
EOF
