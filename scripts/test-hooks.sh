#!/usr/bin/env bash
# Checks the integrations on this machine: the pre-commit hook manifest, the GitHub composite
# action (action.yml), the GitLab CI snippet in docs/integrations.md and pyproject.toml.
#
#   bash scripts/test-hooks.sh
#
# - every YAML/TOML file and documented snippet parses; pre-commit validates the manifest and the
#   config snippet;
# - the hook's `files:` regex selects model files, and the hook runs for real through
#   `pre-commit try-repo` (the `modelward-system` hook: no build) on a malicious and a clean file;
# - the action's `run:` steps run as a GitHub runner runs them (scripts/ci_local.py), against a
#   copy of demo/, for several inputs; the GitLab job's script lines too.
#
# Uses a debug build of the CLI (cargo build -p modelward), or MODELWARD_BIN if set. Installs
# pre-commit and PyYAML, pinned (scripts/requirements-hooks.txt), into a throwaway venv.
# Optional, slow (release builds):
#   MW_TEST_INSTALL=cargo|pip   also runs the action's real install step (cargo install / pip)
#   MW_TEST_TRY_REPO=1          also runs `pre-commit try-repo` with the `modelward` hook
#                               (language: python: pre-commit pip-installs a snapshot of this work
#                               tree, which builds the binary with maturin)
# Prints `N passed, N failed` last; exits non-zero if a check failed. KEEP_WORK=1 keeps the
# temporary folder.
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PYTHON="${PYTHON:-python3}"

WORK="$(mktemp -d "${TMPDIR:-/tmp}/modelward-hooks.XXXXXX")"
if [ "${KEEP_WORK:-0}" = 1 ]; then
    echo "work folder kept: $WORK"
else
    trap 'rm -rf "$WORK"' EXIT
fi
# shellcheck source=scripts/checks.sh
. "$ROOT/scripts/checks.sh"

# git for the throwaway repositories, whatever the user's configuration.
export GIT_CONFIG_GLOBAL=/dev/null GIT_CONFIG_NOSYSTEM=1
export GIT_AUTHOR_NAME=test GIT_AUTHOR_EMAIL=test@example.invalid
export GIT_COMMITTER_NAME=test GIT_COMMITTER_EMAIL=test@example.invalid
export PRE_COMMIT_HOME="$WORK/pre-commit-home"

echo "== tools"
if "$PYTHON" -m venv "$WORK/venv" >"$WORK/venv.log" 2>&1 &&
    "$WORK/venv/bin/python" -m pip install -q --disable-pip-version-check \
        -r "$ROOT/scripts/requirements-hooks.txt" >>"$WORK/venv.log" 2>&1; then
    ok "pre-commit and PyYAML installed (pinned) in a fresh venv"
else
    not_ok "pre-commit and PyYAML installed (pinned) in a fresh venv"
    show_log "$WORK/venv.log"
    finish
fi
PY="$WORK/venv/bin/python"
PRE_COMMIT="$WORK/venv/bin/pre-commit"

if [ -n "${MODELWARD_BIN:-}" ]; then
    MW="$MODELWARD_BIN"
else
    if (cd "$ROOT" && cargo build -q -p modelward --locked) >"$WORK/build.log" 2>&1; then
        target_dir="$(cd "$ROOT" && cargo metadata --format-version 1 --no-deps |
            "$PY" -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')"
        MW="$target_dir/debug/modelward"
    else
        not_ok "cargo build -p modelward"
        show_log "$WORK/build.log"
        finish
    fi
fi
if [ -x "$MW" ] && "$MW" --version >/dev/null 2>&1; then
    ok "modelward binary: $MW ($("$MW" --version))"
else
    not_ok "modelward binary runs: $MW"
    finish
fi
# A folder with only the modelward command, put first on PATH wherever a test wants it.
mkdir -p "$WORK/bin"
ln -s "$MW" "$WORK/bin/modelward"
ON_PATH="$WORK/bin:$PATH"

echo "== files parse"
check "pyproject.toml parses; maturin pyo3 wheel with the console script, version from Cargo.toml, no [tool.modelward]" \
    "$PY" - "$ROOT" <<'EOF'
import pathlib, re, sys, tomllib
root = pathlib.Path(sys.argv[1])
p = tomllib.loads((root / "pyproject.toml").read_text())
assert p["build-system"]["build-backend"] == "maturin", p["build-system"]
req = p["build-system"]["requires"]
assert len(req) == 1 and re.fullmatch(r"maturin>=1\.\d+(\.\d+)?,<2", req[0]), req
assert p["project"]["dynamic"] == ["version"] and "version" not in p["project"], p["project"]
m = p["tool"]["maturin"]
assert m["bindings"] == "pyo3" and m["module-name"] == "modelward._native", m
assert (root / m["manifest-path"]).is_file(), m["manifest-path"]
assert p["project"]["scripts"] == {"modelward": "modelward._cli:main"}, p["project"].get("scripts")
assert "modelward" not in p["tool"], "[tool.modelward] here would change how this repo's files are scanned"
EOF
for f in .pre-commit-hooks.yaml action.yml; do
    check "$f parses as YAML" "$PY" -c 'import sys, yaml; yaml.safe_load(open(sys.argv[1]))' "$ROOT/$f"
done
for s in pre-commit-config github-workflow gitlab-ci; do
    check "docs/integrations.md: the $s snippet parses as YAML" \
        bash -c '"$1" "$2/scripts/ci_local.py" snippet "$3" | "$1" -c "import sys, yaml; assert yaml.safe_load(sys.stdin)"' \
        _ "$PY" "$ROOT" "$s"
done
check "pre-commit validate-manifest .pre-commit-hooks.yaml" "$PRE_COMMIT" validate-manifest "$ROOT/.pre-commit-hooks.yaml"
"$PY" "$ROOT/scripts/ci_local.py" snippet pre-commit-config >"$WORK/pre-commit-config.yaml"
check "pre-commit validate-config on the documented snippet" "$PRE_COMMIT" validate-config "$WORK/pre-commit-config.yaml"
check "action.yml and the manifest: composite, inputs declared, no \${{ }} in run:, SARIF written and uploadable, no fixed --fail-on" \
    "$PY" "$ROOT/scripts/ci_local.py" static
check "the documented workflow uses the action with its inputs" "$PY" - "$ROOT" <<'EOF'
import subprocess, sys, yaml
root = sys.argv[1]
wf = yaml.safe_load(subprocess.check_output([sys.executable, f"{root}/scripts/ci_local.py", "snippet", "github-workflow"]))
action = yaml.safe_load(open(f"{root}/action.yml"))
steps = [s for job in wf["jobs"].values() for s in job["steps"] if s.get("uses", "").startswith("modelward/modelward@")]
assert len(steps) == 1, steps
assert set(steps[0].get("with", {})) <= set(action["inputs"]), steps[0]
EOF

echo "== pre-commit hook: file selection"
check "files: selects model files and archives, in any case" "$PY" - "$ROOT" <<'EOF'
import re, sys, yaml
hooks = yaml.safe_load(open(f"{sys.argv[1]}/.pre-commit-hooks.yaml"))
for h in hooks:
    rx = re.compile(h["files"])
    yes = ["model.bin", "demo/model.bin", "a/b.pt", "x.PTH", "ckpt.ckpt", "m.pkl", "m.pickle", "m.joblib",
           "a.npy", "a.npz", "w.h5", "m.keras", "m.onnx", "w.safetensors", "m.gguf", "b.zip", "b.tar",
           "b.tar.gz", "b.7z", "f.msgpack", "h.mar", "n.nemo", "g.pb", "tok.model", "x.tgz", "x.zst"]
    no = ["README.md", "a.py", "model.binx", "setup.cfg", ".gitattributes", "pt", "notes.txt", "a.json"]
    bad = [n for n in yes if not rx.search(n)] + [n for n in no if rx.search(n)]
    assert not bad, (h["id"], bad)
EOF

echo "== pre-commit hook: the entry command, run as pre-commit runs it"
# entry + args + file names, as pre-commit builds the command line.
hook_cmd() { "$PY" -c 'import shlex, sys, yaml; h = yaml.safe_load(open(sys.argv[1]))[0]; print(" ".join(shlex.quote(a) for a in shlex.split(h["entry"]) + h.get("args", [])))' "$ROOT/.pre-commit-hooks.yaml"; }
read -r -a ENTRY <<<"$(hook_cmd)"
cd "$ROOT"
expect_exit 1 "${ENTRY[*]} demo/model.bin" env PATH="$ON_PATH" "${ENTRY[@]}" demo/model.bin
expect_exit 0 "${ENTRY[*]} demo/clean_array.npy" env PATH="$ON_PATH" "${ENTRY[@]}" demo/clean_array.npy
expect_exit 0 "${ENTRY[*]} demo/custom_class.pkl (suspicious: below the default threshold)" env PATH="$ON_PATH" "${ENTRY[@]}" demo/custom_class.pkl
expect_exit 1 "${ENTRY[*]} --fail-on=medium demo/custom_class.pkl (args from the config)" env PATH="$ON_PATH" "${ENTRY[@]}" --fail-on=medium demo/custom_class.pkl

echo "== pre-commit hook: pre-commit try-repo in a throwaway git repository (hook modelward-system)"
# try-repo clones the hook repository at a commit: a repository holding only the manifest is
# enough for the system hook, and leaves this work tree alone.
HOOKREPO="$WORK/hook-repo"
mkdir -p "$HOOKREPO"
cp "$ROOT/.pre-commit-hooks.yaml" "$HOOKREPO/"
git -C "$HOOKREPO" init -q && git -C "$HOOKREPO" add -A && git -C "$HOOKREPO" commit -q -m hooks
PROJ="$WORK/project"
mkdir -p "$PROJ/models"
cp "$ROOT/demo/model.bin" "$ROOT/demo/clean_array.npy" "$ROOT/demo/custom_class.pkl" "$PROJ/models/"
echo "not a model" >"$PROJ/README.md"
git -C "$PROJ" init -q && git -C "$PROJ" add -A
cd "$PROJ"
expect_exit 1 "try-repo modelward-system --files models/model.bin (malicious)" \
    env PATH="$ON_PATH" "$PRE_COMMIT" try-repo "$HOOKREPO" modelward-system --files models/model.bin
check "  the hook's output names the finding" grep -q "MALICIOUS" "$WORK/last.log"
expect_exit 0 "try-repo modelward-system --files models/clean_array.npy (clean)" \
    env PATH="$ON_PATH" "$PRE_COMMIT" try-repo "$HOOKREPO" modelward-system --files models/clean_array.npy
expect_exit 0 "try-repo modelward-system --files README.md (not a model file: hook skipped)" \
    env PATH="$ON_PATH" "$PRE_COMMIT" try-repo "$HOOKREPO" modelward-system --files README.md
check "  ... reported as skipped" grep -q "no files to check" "$WORK/last.log"
# A .pre-commit-config.yaml with args, then a real commit attempt through the installed hook.
rev="$(git -C "$HOOKREPO" rev-parse HEAD)"
cat >.pre-commit-config.yaml <<EOF
repos:
  - repo: $HOOKREPO
    rev: $rev
    hooks:
      - id: modelward-system
        args: [--fail-on=medium]
EOF
git add .pre-commit-config.yaml
expect_exit 1 "pre-commit run with args: [--fail-on=medium] on models/custom_class.pkl (suspicious)" \
    env PATH="$ON_PATH" "$PRE_COMMIT" run --files models/custom_class.pkl
expect_exit 0 "pre-commit install" "$PRE_COMMIT" install
expect_exit 1 "git commit of a malicious model is refused by the hook" env PATH="$ON_PATH" git commit -q -m models
git rm -q --cached models/model.bin models/custom_class.pkl
expect_exit 0 "git commit of only a clean model goes through" env PATH="$ON_PATH" git commit -q -m clean
cd "$ROOT"

if [ "${MW_TEST_TRY_REPO:-0}" = 1 ]; then
    echo "== pre-commit try-repo with the modelward hook (language: python; builds the wheel)"
    # A commit of this work tree as it is (tracked and untracked files, not ignored ones).
    SNAP="$WORK/snapshot"
    mkdir -p "$SNAP"
    (cd "$ROOT" && git ls-files -co --exclude-standard -z | xargs -0 cp --parents -t "$SNAP" 2>/dev/null)
    git -C "$SNAP" init -q && git -C "$SNAP" add -A && git -C "$SNAP" commit -q -m snapshot
    cd "$PROJ"
    start=$(date +%s)
    expect_exit 1 "try-repo modelward --files models/model.bin (malicious)" \
        "$PRE_COMMIT" try-repo "$SNAP" modelward --files models/model.bin
    echo "    (hook environment set up and run in $(($(date +%s) - start)) s)"
    expect_exit 0 "try-repo modelward --files models/clean_array.npy (clean)" \
        "$PRE_COMMIT" try-repo "$SNAP" modelward --files models/clean_array.npy
    cd "$ROOT"
fi

echo "== GitHub action: its shell steps, run locally as a runner runs them"
WS="$WORK/workspace"
mkdir -p "$WS"
cp -r "$ROOT/demo" "$WS/demo"
# action INPUTS_JSON: runs action.yml's steps in $WS; the result JSON goes to $WORK/action.json.
action() {
    env PATH="$ON_PATH" "$PY" "$ROOT/scripts/ci_local.py" action "$WS" "$1" >"$WORK/action.json" 2>"$WORK/action.log"
}
# jq-like assertions on $WORK/action.json: a Python expression over `r` (the result).
result() { "$PY" -c 'import json, re, sys; r = json.load(open(sys.argv[1])); sys.exit(0 if eval(sys.argv[2]) else 1)' "$WORK/action.json" "$1"; }
report() { "$PY" -c 'import json, sys; s = json.load(open(sys.argv[1]))["summary"]; sys.exit(0 if eval(sys.argv[2]) else 1)' "$1" "$2"; }

sarif() { "$PY" -c 'import json, sys; r = json.load(open(sys.argv[1])); sys.exit(0 if eval(sys.argv[2]) else 1)' "$1" "$2"; }

expect_exit 1 "action, defaults (paths: ., fail-on: default) with install: none" action '{"install": "none"}'
check "  step 'Scan model files' failed with exit 1; outputs exit-code=1" \
    result 'r["failed_step"] == "Scan model files" and r["outputs"]["exit-code"] == "1"'
check "  skipped: the cache steps (install is not cargo) and the SARIF upload (upload-sarif: false)" \
    result 'len(r["skipped"]) == 3 and all(("cache" in x or "SARIF" in x) for x in r["skipped"])'
check "  the log has the readable report, between stop-commands markers" \
    "$PY" -c 'import re, sys; t = open(sys.argv[1]).read(); m = re.search(r"^::stop-commands::(\S+)$(.*?)^::\1::$", t, re.S | re.M); assert m and "model.bin  MALICIOUS" in m.group(2)' "$WORK/action.log"
check "  the log has the annotations (--format github)" grep -Eq "^::error file=(\./)?demo/model.bin,title=modelward PKL102" "$WORK/action.log"
check "  outputs sarif-file=modelward.sarif, json-file empty" \
    result 'r["outputs"]["sarif-file"] == "modelward.sarif" and r["outputs"]["json-file"] == ""'
check "  modelward.sarif is SARIF 2.1.0 with errors for both malicious files and a warning" \
    sarif "$WS/modelward.sarif" 'r["version"] == "2.1.0" and {x["locations"][0]["physicalLocation"]["artifactLocation"]["uri"].removeprefix("./") for x in r["runs"][0]["results"] if x["level"] == "error"} == {"demo/model.bin", "demo/malicious_checkpoint.pt"} and any(x["level"] == "warning" for x in r["runs"][0]["results"])'
check "  the job summary has the scan summary and the report" \
    result '"### modelward" in r["summary"] and re.search(r"Summary: \d+ model files? judged: 2 malicious, 1 suspicious", r["summary"]) and "model.bin  MALICIOUS" in r["summary"]'

expect_exit 0 "action, paths: demo/clean_array.npy" action '{"install": "none", "paths": "demo/clean_array.npy"}'
check "  outputs exit-code=0" result 'r["failed_step"] is None and r["outputs"]["exit-code"] == "0"'
check "  the SARIF has no results" sarif "$WS/modelward.sarif" 'r["runs"][0]["results"] == []'
expect_exit 0 "action, fail-on: never on demo" action '{"install": "none", "fail-on": "never", "paths": "demo"}'
expect_exit 1 "action, fail-on: medium, two paths on two lines (suspicious + clean), json-file" \
    action '{"install": "none", "fail-on": "medium", "paths": "demo/custom_class.pkl\ndemo/clean_array.npy", "json-file": "out/mw.json"}'
check "  both paths scanned, JSON report in out/mw.json" report "$WS/out/mw.json" 's["files"] == 2 and s["suspicious"] == 1'
check "  outputs json-file=out/mw.json" result 'r["outputs"]["json-file"] == "out/mw.json"'
expect_exit 0 "action, default fail-on on the suspicious file (below high)" \
    action '{"install": "none", "paths": "demo/custom_class.pkl demo/clean_array.npy"}'
rm -f "$WS/modelward.sarif"
expect_exit 1 "action, sarif-file: empty, annotations: false" action '{"install": "none", "sarif-file": "", "annotations": "false"}'
check "  no SARIF written, sarif-file output empty" \
    bash -c 'test ! -e "$1/modelward.sarif"' _ "$WS"
check "  outputs sarif-file is empty; the upload step is skipped" \
    result 'r["outputs"]["sarif-file"] == "" and any("SARIF" in x for x in r["skipped"])'
check "  no annotations in the log" bash -c '! grep -q "^::error file=" "$1"' _ "$WORK/action.log"
expect_exit 0 "action, args: --jobs 1 --no-config" action '{"install": "none", "paths": "demo/clean_array.npy", "args": "--jobs 1 --no-config"}'
expect_exit 2 "action, a missing path is a tool failure" action '{"install": "none", "paths": "no-such-model.pt"}'
check "  outputs exit-code=2" result 'r["outputs"]["exit-code"] == "2"'
expect_exit 2 "action, install: bogus fails the install step" action '{"install": "bogus"}'
check "  and the scan step did not run" result 'r["failed_step"] == "Install modelward" and r["outputs"]["exit-code"] == ""'
expect_exit 2 "action, install: none without modelward on PATH fails clearly" \
    env PATH=/usr/bin:/bin "$PY" "$ROOT/scripts/ci_local.py" action "$WS" '{"install": "none"}'
check "  with an error annotation" grep -q "^::error::install: none, but no modelward on PATH" "$WORK/last.err"
expect_exit 1 "action, upload-sarif: true runs the steps (the upload itself is GitHub only)" \
    action '{"install": "none", "upload-sarif": "true"}'
check "  the upload step is reached and left to GitHub" result 'any("upload-sarif" in x and "GitHub only" in x for x in r["skipped"])'

for method in ${MW_TEST_INSTALL:-}; do
    # The real install step: cargo install --path (release build) or pip install (maturin).
    # No modelward on PATH beforehand: the scan must use the one the action installed.
    start=$(date +%s)
    expect_exit 1 "action, install: $method (real install from this work tree), scan demo" \
        env PATH="$PATH" "$PY" "$ROOT/scripts/ci_local.py" action "$WS" "{\"install\": \"$method\", \"paths\": \"demo\"}"
    cp "$WORK/last.log" "$WORK/action.json"
    echo "    (install and scan took $(($(date +%s) - start)) s)"
    check "  the scan ran with the installed modelward (added to GITHUB_PATH)" \
        result 'r["failed_step"] == "Scan model files" and r["path"][0].endswith("/modelward-install/bin")'
done

echo "== GitLab CI: the documented job's script lines, run locally"
gitlab() { env PATH="$ON_PATH" "$PY" "$ROOT/scripts/ci_local.py" gitlab "$WS" "$1" >"$WORK/gitlab.json" 2>"$WORK/gitlab.log"; }
gl_result() { "$PY" -c 'import json, re, sys; r = json.load(open(sys.argv[1])); sys.exit(0 if eval(sys.argv[2]) else 1)' "$WORK/gitlab.json" "$1"; }
rm -f "$WS/modelward-report.json"
gitlab '{"MODELWARD_PATHS": "demo"}'
check "gitlab job on the demo files fails (exit 1) and keeps its artifact" \
    gl_result 'r["exit_code"] == 1 and r["artifacts"] == ["modelward-report.json"] and r["when"] == "always"'
check "  the artifact is the JSON report" report "$WS/modelward-report.json" 's["malicious"] == 2'
check "  the log has the readable report" grep -q "model.bin  MALICIOUS" "$WORK/gitlab.log"
gitlab '{"MODELWARD_PATHS": "demo/clean_array.npy"}'
check "gitlab job on the clean file passes" gl_result 'r["exit_code"] == 0'
gitlab '{"MODELWARD_PATHS": "demo", "MODELWARD_FAIL_ON": "never"}'
check "gitlab job with MODELWARD_FAIL_ON=never passes" gl_result 'r["exit_code"] == 0'

finish
