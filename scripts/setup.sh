#!/usr/bin/env bash
# Installs what MISS Explorer needs on a fresh Debian machine, skipping what is already there:
# OpenBLAS and ncursesw (system libraries), numpy and safetensors (reference checks in the tests).
set -euo pipefail

need_apt=()
for pkg in libopenblas-dev libncurses-dev; do
    dpkg -s "$pkg" >/dev/null 2>&1 || need_apt+=("$pkg")
done
if [ ${#need_apt[@]} -gt 0 ]; then
    echo "setup: installing ${need_apt[*]}"
    SUDO=""
    [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    $SUDO apt-get update
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y "${need_apt[@]}"
fi

if ! python3 -c "import numpy, safetensors" >/dev/null 2>&1; then
    echo "setup: installing numpy and safetensors for the reference checks"
    python3 -m pip install --quiet numpy safetensors
fi
