#!/usr/bin/env bash
# Builds the modelward wheel once with maturin (from PyPI, in a fresh venv) into OUT_DIR, for
# scripts/test-wheel.sh and scripts/test-python.sh to share (.ci/run builds it once and passes
# MODELWARD_WHEEL to both). Prints the wheel's path as its last line.
#
#   bash scripts/build-wheel.sh OUT_DIR
#
# A release build (fat LTO): a few minutes on 2 cores, less when target/ is warm. Env: PYTHON
# (default python3), MATURIN_PROFILE (default: pyproject.toml's, release; `dev` for a quick
# local build).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PYTHON="${PYTHON:-python3}"
MATURIN_VERSION="1.16.0" # keep within pyproject.toml's build requirement (>=1.9,<2)
OUT="${1:?usage: build-wheel.sh OUT_DIR}"
mkdir -p "$OUT"

"$PYTHON" -m venv "$OUT/build-venv" >&2
"$OUT/build-venv/bin/python" -m pip install -q --disable-pip-version-check "maturin==$MATURIN_VERSION" >&2
profile=()
if [ -n "${MATURIN_PROFILE:-}" ]; then profile=(--profile "$MATURIN_PROFILE"); fi
start=$(date +%s)
(cd "$ROOT" && "$OUT/build-venv/bin/maturin" build "${profile[@]}" --out "$OUT/dist") >&2
echo "wheel built in $(($(date +%s) - start)) s" >&2
shopt -s nullglob
wheels=("$OUT"/dist/modelward-*.whl)
if [ "${#wheels[@]}" -ne 1 ]; then
    echo "expected one wheel in $OUT/dist, found ${#wheels[@]}" >&2
    exit 1
fi
echo "${wheels[0]}"
