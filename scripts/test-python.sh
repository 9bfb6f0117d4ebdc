#!/usr/bin/env bash
# The Python API's tests: installs the wheel (MODELWARD_WHEEL, or built here with
# scripts/build-wheel.sh) in a fresh venv with the pinned test packages below, runs pytest on
# python/tests against the installed package (not the source tree), and `mypy --strict` on the
# package and the example script.
#
#   bash scripts/test-python.sh
#
# Needs python3 (with venv) and PyPI for the pinned packages. Prints pytest's summary and then
# `N passed, N failed` last; exits non-zero if anything failed. Env: PYTHON (default python3),
# MODELWARD_WHEEL, MATURIN_PROFILE (see build-wheel.sh; `dev` builds in seconds when target/ is
# warm), KEEP_WORK=1 keeps the temporary folder.
#
# torch is not installed (gigabytes): its guard test skips with a reason; see docs/python.md.
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PYTHON="${PYTHON:-python3}"
# The packages the tests load real files with, and the type checker. Pinned.
TEST_PACKAGES=(pytest==9.2.0 numpy==2.4.6 joblib==1.6.0 huggingface_hub==2.4.0 mypy==2.4.1)

WORK="$(mktemp -d "${TMPDIR:-/tmp}/modelward-python.XXXXXX")"
if [ "${KEEP_WORK:-0}" = 1 ]; then
    echo "work folder kept: $WORK"
else
    trap 'rm -rf "$WORK"' EXIT
fi

# shellcheck source=scripts/checks.sh
. "$ROOT/scripts/checks.sh"

if [ -n "${MODELWARD_WHEEL:-}" ]; then
    WHEEL="$MODELWARD_WHEEL"
    echo "== the wheel built before: $WHEEL"
else
    echo "== maturin build (scripts/build-wheel.sh)"
    if bash "$ROOT/scripts/build-wheel.sh" "$WORK/build" >"$WORK/build.log" 2>&1; then
        WHEEL="$(tail -n1 "$WORK/build.log")"
        ok "$(grep -m1 '^wheel built in' "$WORK/build.log"): $(basename "$WHEEL")"
    else
        not_ok "wheel built"
        show_log "$WORK/build.log" 60
        finish
    fi
fi

echo "== fresh venv: the wheel and ${TEST_PACKAGES[*]}"
if "$PYTHON" -m venv "$WORK/venv" >"$WORK/venv.log" 2>&1 &&
    "$WORK/venv/bin/python" -m pip install -q --disable-pip-version-check \
        "${TEST_PACKAGES[@]}" "$WHEEL" >"$WORK/pip.log" 2>&1; then
    ok "wheel and test packages installed"
else
    not_ok "wheel and test packages installed"
    show_log "$WORK/venv.log"; show_log "$WORK/pip.log"
    finish
fi
PY="$WORK/venv/bin/python"
export PATH="$WORK/venv/bin:$PATH"
hash -r

# From an empty folder, so that `import modelward` can only be the installed package.
mkdir -p "$WORK/cwd"
cd "$WORK/cwd"
check "import modelward is the installed package" "$PY" -c "
import modelward, sys
sys.exit(0 if modelward.__file__.startswith('$WORK/venv/') else 1)"

echo "== pytest python/tests"
# -p no:cacheprovider: nothing written into the source tree. The tests' HF_* variables are set
# per test; an ambient HF_HUB_OFFLINE must not leak into them.
if env -u HF_HUB_OFFLINE -u HF_ENDPOINT "$PY" -m pytest -p no:cacheprovider -rs \
    --rootdir "$ROOT/python/tests" "$ROOT/python/tests"; then
    ok "pytest python/tests"
else
    not_ok "pytest python/tests"
fi

echo "== mypy --strict: the installed package and python/examples"
check "mypy --strict -p modelward (installed, with its stubs)" "$PY" -m mypy --strict --no-incremental -p modelward
check "mypy --strict python/examples/guarded_load.py" "$PY" -m mypy --strict --no-incremental \
    "$ROOT/python/examples/guarded_load.py"
expect_exit 1 "the example runs (demo: one clean, one suspicious, one malicious)" \
    "$PY" "$ROOT/python/examples/guarded_load.py" "$ROOT/demo/clean_array.npy" \
    "$ROOT/demo/custom_class.pkl" "$ROOT/demo/model.bin"
check "the example loaded the clean array and refused the others" \
    bash -c 'grep -q "loaded ndarray" "$1" && grep -q "not loaded: suspicious" "$1" && ! grep -q "loaded dict" "$1"' _ "$WORK/last.log"

finish
