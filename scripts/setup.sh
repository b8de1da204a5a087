#!/usr/bin/env bash
# Installs the local world the integration tests run against: CNCF Distribution
# (Debian's docker-registry), skopeo, and moto_server in a virtualenv under .local/.
# Idempotent: what is already present is left alone.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
MOTO_VERSION="5.1.22"
VENV="$REPO/.local/venv"

missing=()
for package in docker-registry skopeo; do
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

installed_moto() {
    "$VENV/bin/python" -c 'import importlib.metadata as m; print(m.version("moto"))' 2>/dev/null || true
}
if [[ -x "$VENV/bin/moto_server" && "$(installed_moto)" == "$MOTO_VERSION" ]]; then
    echo "present: moto[server]==$MOTO_VERSION in $VENV"
else
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check "moto[server]==$MOTO_VERSION"
    echo "installed: moto[server]==$MOTO_VERSION in $VENV"
fi
