#!/usr/bin/env bash
# Builds the modelward wheel with maturin (scripts/build-wheel.sh), or takes MODELWARD_WHEEL built
# before, installs it into a fresh venv, and checks that the `modelward` command it puts on PATH
# works and that `import modelward` works. (The Python API's tests: scripts/test-python.sh.)
#
#   bash scripts/test-wheel.sh
#
# Needs python3 (with venv), a Rust toolchain, and PyPI for maturin. The build is a release build
# (fat LTO): a few minutes on 2 cores, less when target/ is warm. Prints `N passed, N failed` last
# and exits non-zero if any check failed. Env: PYTHON (default python3), MODELWARD_WHEEL (a wheel
# to test instead of building one), KEEP_WORK=1 keeps the temporary folder (venvs, wheel, logs).
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PYTHON="${PYTHON:-python3}"

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

mkdir -p "$WORK/dist"
if [ -n "${MODELWARD_WHEEL:-}" ]; then
    echo "== the wheel built before: $MODELWARD_WHEEL"
    cp "$MODELWARD_WHEEL" "$WORK/dist/"
else
    echo "== maturin build (pyproject.toml's [tool.maturin]; scripts/build-wheel.sh)"
    if bash "$ROOT/scripts/build-wheel.sh" "$WORK/build" >"$WORK/build.log" 2>&1; then
        ok "$(grep -m1 '^wheel built in' "$WORK/build.log")"
        cp "$(tail -n1 "$WORK/build.log")" "$WORK/dist/"
    else
        not_ok "wheel built"
        show_log "$WORK/build.log" 60
        finish
    fi
fi

# One abi3 wheel: every CPython >= 3.9 on this platform.
shopt -s nullglob
wheels=("$WORK"/dist/modelward-"$VERSION"-cp39-abi3-*.whl)
shopt -u nullglob
if [ "${#wheels[@]}" -eq 1 ]; then
    WHEEL="${wheels[0]}"
    ok "one wheel named after the Cargo.toml version: $(basename "$WHEEL") ($(stat -c %s "$WHEEL") bytes)"
else
    not_ok "one wheel modelward-$VERSION-cp39-abi3-*.whl (found: $(ls "$WORK/dist" 2>/dev/null | tr '\n' ' '))"
    finish
fi

# The package (extension, stubs, py.typed) and the command as a console-script entry point.
check "the wheel holds modelward/_native, the stubs, py.typed and the modelward entry point" \
    "$PYTHON" - "$WHEEL" <<'EOF'
import sys, zipfile
z = zipfile.ZipFile(sys.argv[1])
names = z.namelist()
need = ["modelward/__init__.py", "modelward/py.typed", "modelward/_native.pyi", "modelward/torch.py"]
missing = [n for n in need if n not in names]
assert not missing, missing
assert any(n.startswith("modelward/_native") and n.endswith(".so") for n in names), names
ep = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
import configparser
eps = configparser.ConfigParser()
eps.read_string(z.read(ep).decode())
assert eps["console_scripts"]["modelward"].strip() == "modelward._cli:main", z.read(ep)
assert not any("/tests/" in n or n.startswith("tests/") for n in names), "tests in the wheel"
EOF

echo "== install the wheel into a fresh venv (no index: the wheel has no dependencies)"
if "$PYTHON" -m venv "$WORK/run-venv" >"$WORK/venv.log" 2>&1 &&
    "$WORK/run-venv/bin/python" -m pip install -q --disable-pip-version-check --no-index \
        "$WHEEL" >"$WORK/pip-wheel.log" 2>&1; then
    ok "wheel installed with pip --no-index"
else
    not_ok "wheel installed with pip --no-index"
    show_log "$WORK/venv.log"; show_log "$WORK/pip-wheel.log"
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
expect_exit 0 "python -c 'import modelward' (version $VERSION)" "$WORK/run-venv/bin/python" -c \
    "import modelward, sys; sys.exit(0 if modelward.__version__ == '$VERSION' else 1)"

# The command cannot rely on the compile-time demo path, so pass the demo folder explicitly.
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
expect_exit 2 "a usage error exits 2" modelward scan --fail-on sometimes

finish
