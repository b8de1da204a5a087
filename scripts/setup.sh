#!/usr/bin/env bash
# Installs, under .local/, what the other scripts need; each asks only for the parts it uses, so that the
# demo does not wait for the linters, nor the tests for zig:
#
#   scripts/setup.sh world   the local world the tests and the demo start: CNCF Distribution (Debian's
#                            docker-registry), moto_server and the Lambda Runtime API emulator (cargo-lambda,
#                            without zig: it only serves) in the virtualenv .local/venv, and GitHub's REST API
#                            description (npm @octokit/openapi) with the validator the GitHub stand-in of the
#                            tests checks every request with (tests/it/support/github_standin.py)
#   scripts/setup.sh lint    the linters scripts/lint.sh runs: cfn-lint in .local/venv, checkov
#                            in a virtualenv of its own (.local/checkov: its pins would fight moto's)
#   scripts/setup.sh zip     what scripts/webhook-zip.sh builds the Lambda zip with: cargo-lambda with zig
#                            (PyPI ziglang), to link against Amazon Linux's glibc
#   scripts/setup.sh deploy  what the test of the one-command deploy (scripts/test_deploy.py) adds to the
#                            world: the AWS CLI scripts/deploy.sh drives, in .local/awscli (it pins botocore
#                            exactly, which moto's boto3 would fight), and htpasswd (apache2-utils) for the
#                            registries it starts itself
#   scripts/setup.sh         all four
#
# Versions are pinned. Idempotent: what is already present is left alone.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# moto 5.2.4 is the first to run StartPipelineExecution and record its executions.
MOTO_VERSION="5.2.5"
CFN_LINT_VERSION="1.58.0"
CARGO_LAMBDA_VERSION="1.9.2"
CHECKOV_VERSION="3.3.30"
AWSCLI_VERSION="1.46.3"
# GitHub's published REST description; the tarball's integrity as the npm registry states it.
OCTOKIT_OPENAPI_VERSION="23.0.2"
OCTOKIT_OPENAPI_INTEGRITY="sha512-pV8M7L9GY23AybNvTmo2nyjmpmnt6+2sRE/tqr0ZLQcPS4lnw7u5eZGNmwRNkBC3D7gZXbFx5AHzLUVRBXGDhg=="
OPENAPI_SCHEMA_VALIDATOR_VERSION="0.9.0"
VENV="$REPO/.local/venv"
CHECKOV_VENV="$REPO/.local/checkov"
AWSCLI_VENV="$REPO/.local/awscli"

parts=("$@")
((${#parts[@]})) || parts=(world lint zip deploy)
for part in "${parts[@]}"; do
    case "$part" in
        world | lint | zip | deploy) ;;
        *) echo "setup.sh: no part named '$part' (world, lint, zip, deploy)" >&2; exit 2 ;;
    esac
done
wants() { [[ " ${parts[*]} " == *" $1 "* ]]; }

# Debian packages: the registry for the world; every part needs a virtualenv, whose module is part of
# CPython but split out of Debian's python3.
missing=()
debian() { # package: missing unless installed
    dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed" || missing+=("$1")
}
if wants world; then debian docker-registry; fi
if wants deploy; then debian apache2-utils; fi
if ! python3 -c 'import venv, ensurepip' 2>/dev/null; then
    missing+=(python3-venv)
fi
if ((${#missing[@]})); then
    apt-get update
    DEBIAN_FRONTEND=noninteractive apt-get install -y "${missing[@]}"
    echo "installed: ${missing[*]} (Debian)"
fi

installed() { # python-package [venv]
    "${2:-$VENV}/bin/python" -c "import importlib.metadata as m; print(m.version('$1'))" 2>/dev/null || true
}
pip_install() { # venv requirement...
    local venv="$1"
    shift
    [[ -x "$venv/bin/pip" ]] || python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check "$@"
}

if wants world; then
    if [[ -x "$VENV/bin/moto_server" && "$(installed moto)" == "$MOTO_VERSION" ]]; then
        echo "present: moto[server]==$MOTO_VERSION in $VENV"
    else
        pip_install "$VENV" "moto[server]==$MOTO_VERSION"
        echo "installed: moto[server]==$MOTO_VERSION in $VENV"
    fi
fi

if wants world; then
    if [[ "$(installed openapi-schema-validator)" == "$OPENAPI_SCHEMA_VALIDATOR_VERSION" ]]; then
        echo "present: openapi-schema-validator==$OPENAPI_SCHEMA_VALIDATOR_VERSION in $VENV"
    else
        pip_install "$VENV" "openapi-schema-validator==$OPENAPI_SCHEMA_VALIDATOR_VERSION"
        echo "installed: openapi-schema-validator==$OPENAPI_SCHEMA_VALIDATOR_VERSION in $VENV"
    fi
    # Only the description of api.github.com is kept (13 MB of the package's 29 MB tarball); no Node needed.
    description="$REPO/.local/octokit-openapi/$OCTOKIT_OPENAPI_VERSION/api.github.com.json"
    if [[ -s "$description" ]]; then
        echo "present: @octokit/openapi@$OCTOKIT_OPENAPI_VERSION in ${description%/*}"
    else
        "$VENV/bin/python" - "$OCTOKIT_OPENAPI_VERSION" "$OCTOKIT_OPENAPI_INTEGRITY" "$description" <<'PY'
import base64, hashlib, io, os, sys, tarfile, urllib.request
version, integrity, out = sys.argv[1:]
url = f"https://registry.npmjs.org/@octokit/openapi/-/openapi-{version}.tgz"
data = urllib.request.urlopen(url, timeout=300).read()
digest = "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode()
if digest != integrity:
    sys.exit(f"{url}: integrity {digest}, expected {integrity}")
with tarfile.open(fileobj=io.BytesIO(data)) as tar:
    member = tar.extractfile("package/generated/api.github.com.json")
    os.makedirs(os.path.dirname(out), exist_ok=True)
    with open(out + ".part", "wb") as f:
        f.write(member.read())
os.replace(out + ".part", out)
PY
        echo "installed: @octokit/openapi@$OCTOKIT_OPENAPI_VERSION in ${description%/*}"
    fi
fi

# The emulator needs cargo-lambda alone; building the zip needs its zig too.
if wants world || wants zip; then
    if [[ -x "$VENV/bin/cargo-lambda" && "$(installed cargo-lambda)" == "$CARGO_LAMBDA_VERSION" ]]; then
        echo "present: cargo-lambda==$CARGO_LAMBDA_VERSION in $VENV"
    else
        pip_install "$VENV" --no-deps "cargo-lambda==$CARGO_LAMBDA_VERSION"
        echo "installed: cargo-lambda==$CARGO_LAMBDA_VERSION in $VENV"
    fi
fi
if wants zip; then
    if [[ -n "$(installed ziglang)" ]]; then
        echo "present: ziglang $(installed ziglang) in $VENV"
    else
        # cargo-lambda's own requirement says which zig.
        pip_install "$VENV" "cargo-lambda==$CARGO_LAMBDA_VERSION"
        echo "installed: ziglang $(installed ziglang) in $VENV"
    fi
fi

if wants lint; then
    if [[ -x "$VENV/bin/cfn-lint" && "$(installed cfn-lint)" == "$CFN_LINT_VERSION" ]]; then
        echo "present: cfn-lint==$CFN_LINT_VERSION in $VENV"
    else
        pip_install "$VENV" "cfn-lint==$CFN_LINT_VERSION"
        echo "installed: cfn-lint==$CFN_LINT_VERSION in $VENV"
    fi
    if [[ -x "$CHECKOV_VENV/bin/checkov" && "$(installed checkov "$CHECKOV_VENV")" == "$CHECKOV_VERSION" ]]; then
        echo "present: checkov==$CHECKOV_VERSION in $CHECKOV_VENV"
    else
        pip_install "$CHECKOV_VENV" "checkov==$CHECKOV_VERSION"
        echo "installed: checkov==$CHECKOV_VERSION in $CHECKOV_VENV"
    fi
fi

if wants deploy; then
    if [[ -x "$AWSCLI_VENV/bin/aws" && "$(installed awscli "$AWSCLI_VENV")" == "$AWSCLI_VERSION" ]]; then
        echo "present: awscli==$AWSCLI_VERSION in $AWSCLI_VENV"
    else
        pip_install "$AWSCLI_VENV" "awscli==$AWSCLI_VERSION"
        echo "installed: awscli==$AWSCLI_VERSION in $AWSCLI_VENV"
    fi
fi
