"""Runs the integrations' own shell code locally, for scripts/test-hooks.sh.

    python scripts/ci_local.py snippet NAME            print the YAML block marked
                                                       `<!-- test-hooks: NAME -->` in docs/integrations.md
    python scripts/ci_local.py action WORKDIR JSON     run action.yml's steps as a GitHub runner would
    python scripts/ci_local.py gitlab WORKDIR JSON     run the GitLab job's before_script and script lines
                                                       (both print a JSON result and exit with the job's code)
    python scripts/ci_local.py static                  static checks of action.yml and the hook manifest

`action` runs every `run:` step with `bash --noprofile --norc -eo pipefail` (GitHub's `shell: bash`),
with the step's `env:` evaluated from the inputs given as JSON (defaults from action.yml), and the
runner's files (GITHUB_OUTPUT, GITHUB_PATH, GITHUB_STEP_SUMMARY) emulated. `uses:` steps cannot run
here and are skipped. It prints a JSON result: which step failed and with which code, the step
outputs, the action outputs and the job summary.

Needs PyYAML. Stays on this machine: nothing here talks to GitHub or GitLab.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
EXPR = re.compile(r"\$\{\{\s*(.*?)\s*\}\}")


def snippet(name: str) -> str:
    text = (ROOT / "docs" / "integrations.md").read_text()
    m = re.search(
        r"<!-- test-hooks: " + re.escape(name) + r" -->\s*```yaml\n(.*?)```", text, re.S
    )
    if not m:
        raise SystemExit(f"no snippet {name!r} in docs/integrations.md")
    return m.group(1)


class Context:
    """The parts of GitHub's expression language that action.yml uses."""

    def __init__(self, inputs: dict[str, str], runner_temp: str):
        self.inputs = inputs
        self.runner = {"temp": runner_temp, "os": "Linux"}
        self.steps: dict[str, dict[str, dict[str, str]]] = {}

    def value(self, path: str):
        head, _, rest = path.partition(".")
        if head == "inputs":
            return self.inputs[rest]
        if head == "runner":
            return self.runner[rest]
        if head == "steps":
            step_id, _, out = rest.partition(".outputs.")
            return self.steps.get(step_id, {}).get("outputs", {}).get(out, "")
        raise ValueError(f"unsupported expression context: {path}")

    def evaluate(self, expr: str):
        """`a == 'x'`, `a != ''`, `&&`, `||`, `always()`: enough for action.yml's `if:`s."""
        expr = expr.strip()
        if expr.startswith("${{") and expr.endswith("}}"):
            expr = expr[3:-2].strip()
        tokens = re.findall(
            r"'(?:[^']|'')*'|&&|\|\||==|!=|\(|\)|!|always\(\)|success\(\)|[A-Za-z_][\w.\-]*", expr
        )
        out = []
        for t in tokens:
            if t == "&&":
                out.append(" and ")
            elif t == "||":
                out.append(" or ")
            elif t == "!":
                out.append(" not ")
            elif t in ("==", "!=", "(", ")"):
                out.append(t)
            elif t in ("always()", "success()"):
                out.append("True")
            elif t.startswith("'"):
                out.append(repr(t[1:-1].replace("''", "'")))
            else:
                out.append(repr(self.value(t)))
        return eval("".join(out), {"__builtins__": {}})  # noqa: S307 - tokens are checked above

    def substitute(self, text: str) -> str:
        return EXPR.sub(lambda m: str(self.value(m.group(1))), str(text))


def run_action(workdir: str, given: dict[str, str]) -> dict:
    action = yaml.safe_load((ROOT / "action.yml").read_text())
    inputs = {k: str(v.get("default", "")) for k, v in action["inputs"].items()}
    unknown = set(given) - set(inputs)
    if unknown:
        raise SystemExit(f"not inputs of action.yml: {sorted(unknown)}")
    inputs.update(given)

    tmp = Path(tempfile.mkdtemp(prefix="runner-", dir=os.environ.get("TMPDIR")))
    runner_temp = tmp / "_temp"
    runner_temp.mkdir()
    ctx = Context(inputs, str(runner_temp))
    summary = tmp / "step_summary.md"
    summary.touch()
    path_dirs: list[str] = []
    result = {"failed_step": None, "exit_code": 0, "steps": [], "skipped": []}

    for i, step in enumerate(action["runs"]["steps"]):
        name = step.get("name", f"step {i}")
        cond = step.get("if")
        if result["failed_step"] is not None and not (cond and "always()" in cond):
            result["skipped"].append(f"{name} (an earlier step failed)")
            continue
        if cond is not None and not ctx.evaluate(cond):
            result["skipped"].append(f"{name} (if: {cond})")
            continue
        if "uses" in step:
            result["skipped"].append(f"{name} (uses: {step['uses']}, runs on GitHub only)")
            continue
        assert step.get("shell") == "bash", f"{name}: shell must be bash"
        output_file = tmp / f"output-{i}"
        path_file = tmp / f"path-{i}"
        output_file.touch()
        path_file.touch()
        env = dict(os.environ)
        env["PATH"] = os.pathsep.join(path_dirs + [env.get("PATH", "")])
        env.update(
            GITHUB_ACTION_PATH=str(ROOT),
            GITHUB_OUTPUT=str(output_file),
            GITHUB_PATH=str(path_file),
            GITHUB_STEP_SUMMARY=str(summary),
            GITHUB_WORKSPACE=workdir,
            RUNNER_TEMP=str(runner_temp),
            RUNNER_OS="Linux",
            GITHUB_ACTIONS="true",
        )
        for k, v in (step.get("env") or {}).items():
            env[k] = ctx.substitute(v)
        script = tmp / f"step-{i}.sh"
        script.write_text(step["run"])
        print(f"--- step: {name}", file=sys.stderr, flush=True)
        code = subprocess.run(
            ["bash", "--noprofile", "--norc", "-eo", "pipefail", str(script)],
            cwd=workdir,
            env=env,
            stdout=sys.stderr,
        ).returncode
        outputs = dict(
            line.split("=", 1) for line in output_file.read_text().splitlines() if "=" in line
        )
        if "id" in step:
            ctx.steps[step["id"]] = {"outputs": outputs}
        # GITHUB_PATH entries apply to the later steps, newest first.
        path_dirs = [p for p in reversed(path_file.read_text().splitlines()) if p] + path_dirs
        result["steps"].append({"name": name, "exit_code": code, "outputs": outputs})
        if code != 0 and result["failed_step"] is None:
            result["failed_step"], result["exit_code"] = name, code

    result["outputs"] = {
        k: ctx.substitute(v.get("value", "")) for k, v in (action.get("outputs") or {}).items()
    }
    result["summary"] = summary.read_text()
    result["path"] = path_dirs
    return result


def run_gitlab(workdir: str, variables: dict[str, str]) -> dict:
    job = yaml.safe_load(snippet("gitlab-ci"))["modelward"]
    env = dict(os.environ)
    env.update({k: str(v) for k, v in (job.get("variables") or {}).items()})
    env.update(variables)
    env["CI_PROJECT_DIR"] = workdir
    lines = list(job.get("before_script") or []) + list(job.get("script") or [])
    # GitLab's shell executor runs the lines in one shell and stops at the first failing one.
    script = "set -eo pipefail\n" + "\n".join(lines) + "\n"
    code = subprocess.run(
        ["bash", "--noprofile", "--norc", "-c", script], cwd=workdir, env=env, stdout=sys.stderr
    ).returncode
    artifacts = [p for p in job.get("artifacts", {}).get("paths", []) if (Path(workdir) / p).exists()]
    return {"exit_code": code, "artifacts": artifacts, "when": job.get("artifacts", {}).get("when")}


def static() -> list[str]:
    """Problems found in action.yml and .pre-commit-hooks.yaml; empty when all is well."""
    problems = []
    text = (ROOT / "action.yml").read_text()
    action = yaml.safe_load(text)
    if action.get("runs", {}).get("using") != "composite":
        problems.append("action.yml: runs.using is not composite")
    declared = set(action.get("inputs", {}))
    for used in set(re.findall(r"inputs\.([\w-]+)", text)):
        if used not in declared:
            problems.append(f"action.yml uses undeclared input {used!r}")
    for step in action["runs"]["steps"]:
        if "run" in step:
            if "${{" in step["run"]:
                problems.append(f"action.yml step {step.get('name')!r}: ${{{{ }}}} inside run:")
            if step.get("shell") != "bash":
                problems.append(f"action.yml step {step.get('name')!r}: no `shell: bash`")
        elif "uses" not in step:
            problems.append(f"action.yml step {step.get('name')!r}: neither run nor uses")
    for name in ("paths", "fail-on", "sarif-file", "upload-sarif", "install", "version"):
        if name not in declared:
            problems.append(f"action.yml: no input {name!r}")
    uploads = [s for s in action["runs"]["steps"] if "upload-sarif" in s.get("uses", "")]
    if len(uploads) != 1 or "inputs.upload-sarif == 'true'" not in uploads[0].get("if", ""):
        problems.append("action.yml: no upload-sarif step, or it does not depend on the upload-sarif input")
    if "--format \"$format\"" not in text or "report sarif" not in text:
        problems.append("action.yml: the scan step does not write SARIF")

    hooks = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())
    ids = {h["id"] for h in hooks}
    if "modelward" not in ids:
        problems.append(".pre-commit-hooks.yaml: no hook with id modelward")
    for h in hooks:
        if not h["entry"].startswith("modelward scan"):
            problems.append(f"hook {h['id']}: entry does not run `modelward scan`")
        if "--fail-on" in h["entry"] or "--fail-on" in " ".join(h.get("args", [])):
            problems.append(f"hook {h['id']}: a fixed --fail-on would override the user's modelward.toml")
    return problems


def main() -> None:
    cmd = sys.argv[1]
    if cmd == "snippet":
        sys.stdout.write(snippet(sys.argv[2]))
    elif cmd in ("action", "gitlab"):
        run = run_action if cmd == "action" else run_gitlab
        result = run(sys.argv[2], json.loads(sys.argv[3]))
        print(json.dumps(result, indent=2))
        sys.exit(result["exit_code"])
    elif cmd == "static":
        problems = static()
        for p in problems:
            print(p)
        sys.exit(1 if problems else 0)
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main()
