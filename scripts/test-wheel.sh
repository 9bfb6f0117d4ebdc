#!/usr/bin/env bash
# Builds the modelward wheel with maturin (from PyPI, into a fresh venv), installs the wheel into a
# second fresh venv, and checks that the `modelward` command it puts on PATH works.
#
#   bash scripts/test-wheel.sh
#
# Needs python3 (with venv), a Rust toolchain, and PyPI for maturin. The build is a release build
# (fat LTO): a few minutes on 2 cores, less when target/ is warm. Prints `N passed, N failed` last
# and exits non-zero if any check failed. Env: PYTHON (default python3), KEEP_WORK=1 keeps the
# temporary folder (venvs, wheel, logs).
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PYTHON="${PYTHON:-python3}"
MATURIN_VERSION="1.16.0" # keep within pyproject.toml's build requirement (>=1.9,<2)

WORK="$(mktemp -d "${TMPDIR:-/tmp}/modelward-wheel.XXXXXX")"
if [ "${KEEP_WORK:-0}" = 1 ]; then
    echo "work folder kept: $WORK"
else
    trap 'rm -rf "$WORK"' EXIT
fi

# shellcheck source=scripts/checks.sh
. "$ROOT/scripts/checks.sh"

# The one version: [workspace.package] version in the root Cargo.toml.
VERSION="$("$PYTHON" - "$ROOT/Cargo.toml" <<'EOF'
import sys, tomllib
with open(sys.argv[1], "rb") as f:
    print(tomllib.load(f)["workspace"]["package"]["version"])
EOF
)"
echo "== modelward $VERSION from $ROOT"

echo "== build venv: maturin==$MATURIN_VERSION"
if "$PYTHON" -m venv "$WORK/build-venv" >"$WORK/venv.log" 2>&1 &&
    "$WORK/build-venv/bin/python" -m pip install -q --disable-pip-version-check \
        "maturin==$MATURIN_VERSION" >"$WORK/pip-maturin.log" 2>&1; then
    ok "maturin $MATURIN_VERSION installed in a fresh venv"
else
    not_ok "maturin $MATURIN_VERSION installed in a fresh venv"
    show_log "$WORK/venv.log"; show_log "$WORK/pip-maturin.log"
    finish
fi

echo "== maturin build (release; pyproject.toml's [tool.maturin])"
start=$(date +%s)
if (cd "$ROOT" && "$WORK/build-venv/bin/maturin" build --out "$WORK/dist") >"$WORK/build.log" 2>&1; then
    ok "wheel built in $(($(date +%s) - start)) s"
else
    not_ok "wheel built (after $(($(date +%s) - start)) s)"
    show_log "$WORK/build.log" 60
    finish
fi

shopt -s nullglob
wheels=("$WORK"/dist/modelward-"$VERSION"-py3-none-*.whl)
shopt -u nullglob
if [ "${#wheels[@]}" -eq 1 ]; then
    WHEEL="${wheels[0]}"
    ok "one wheel named after the Cargo.toml version: $(basename "$WHEEL") ($(stat -c %s "$WHEEL") bytes)"
else
    not_ok "one wheel modelward-$VERSION-py3-none-*.whl in dist/ (found: $(ls "$WORK/dist" 2>/dev/null | tr '\n' ' '))"
    finish
fi

# The wheel carries the binary as a script (data/scripts) and nothing importable.
check "the wheel holds the modelward binary in its scripts" "$PYTHON" - "$WHEEL" <<'EOF'
import sys, zipfile
names = zipfile.ZipFile(sys.argv[1]).namelist()
sys.exit(0 if any(n.endswith(".data/scripts/modelward") for n in names) else 1)
EOF

echo "== install the wheel into another fresh venv (no index: the wheel has no dependencies)"
if "$PYTHON" -m venv "$WORK/run-venv" >>"$WORK/venv.log" 2>&1 &&
    "$WORK/run-venv/bin/python" -m pip install -q --disable-pip-version-check --no-index \
        "$WHEEL" >"$WORK/pip-wheel.log" 2>&1; then
    ok "wheel installed with pip --no-index"
else
    not_ok "wheel installed with pip --no-index"
    show_log "$WORK/pip-wheel.log"
    finish
fi

# Put only the venv's bin/ ahead, as `source bin/activate` would.
export PATH="$WORK/run-venv/bin:$PATH"
hash -r
check "modelward on PATH is the venv's" test "$(command -v modelward)" = "$WORK/run-venv/bin/modelward"
check "pip show reports version $VERSION" \
    bash -c '"$1" -m pip show modelward 2>/dev/null | grep -qx "Version: $2"' _ "$WORK/run-venv/bin/python" "$VERSION"

expect_exit 0 "modelward --version" modelward --version
check "--version prints 'modelward $VERSION'" grep -qx "modelward $VERSION" "$WORK/last.log"

# The wheel's binary cannot rely on the compile-time demo path, so pass the demo folder explicitly.
cd "$ROOT"
expect_exit 1 "modelward scan $ROOT/demo (malicious files inside)" modelward scan --no-progress "$ROOT/demo"
check "the text report calls model.bin malicious" grep -q "model.bin  MALICIOUS" "$WORK/last.log"
expect_exit 0 "modelward scan demo/clean_array.npy" modelward scan --no-progress demo/clean_array.npy
expect_exit 0 "modelward scan demo --fail-on never" modelward scan --no-progress --fail-on never demo
expect_exit 1 "modelward scan --format json demo" modelward scan --no-progress --format json demo
check "the JSON report counts 2 malicious and 1 suspicious files" "$PYTHON" - "$WORK/last.log" <<'EOF'
import json, sys
s = json.load(open(sys.argv[1]))["summary"]
sys.exit(0 if (s["malicious"], s["suspicious"]) == (2, 1) else 1)
EOF
expect_exit 2 "modelward scan of a missing path is a tool failure" modelward scan --no-progress "$WORK/no-such-file.pt"

finish
