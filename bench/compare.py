#!/usr/bin/env python3
"""Times modelward against picklescan, modelscan, fickling and ModelAudit (run by compare.sh).

Each tool scans each input once untimed (warm-up: page cache, .pyc files; its output gives the
verdict), then RUNS times under /usr/bin/time: wall time (monotonic clock around the process) and
peak RSS (`%M`, the largest resident set of the process or any child it waited for), reported as
medians. Standard library only.
"""

import argparse
import datetime
import json
import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

TOOLS = ["modelward", "picklescan", "modelscan", "fickling", "modelaudit"]
TIME = "/usr/bin/time"
# ModelAudit sends usage telemetry unless told not to (modelaudit/telemetry.py); this machine
# has no route to it anyway, and waiting on the network must not be timed.
TOOL_ENV = {"PROMPTFOO_DISABLE_TELEMETRY": "1", "NO_ANALYTICS": "1", "HF_HUB_OFFLINE": "1"}


class NA(Exception):
    """The tool does not support this input; the message says why."""


# ---------------------------------------------------------------- commands and verdicts


def command(tool, path, kind, out, args):
    """argv for one scan; `out` is a scratch file the tool may write its report to."""
    venv = os.path.join(args.venv, "bin")
    if tool == "modelward":
        return [args.modelward, "scan", "--format", "json", "--no-config", "--no-progress", "-o", out, path]
    if tool == "picklescan":
        return [os.path.join(venv, "picklescan"), "-p", path]
    if tool == "modelscan":
        return [os.path.join(args.modelscan_venv, "bin", "modelscan"), "scan", "-p", path, "-r", "json", "-o", out]
    if tool == "fickling":
        if kind == "dir":
            raise NA("single-file CLI, no directory scan")
        return [os.path.join(venv, "fickling"), "--check-safety", "--json-output", out, path]
    if tool == "modelaudit":
        return [os.path.join(venv, "modelaudit"), "scan", "--no-cache", "-f", "json", "-o", out, path]
    raise ValueError(tool)


def load_json(out):
    try:
        with open(out) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def verdict(tool, kind, rc, stdout, stderr, out):
    """A short, comparable summary of what the tool concluded; raises NA when it could not scan."""
    text = stdout + stderr
    if tool == "modelward":
        doc = load_json(out)
        if doc is None:
            raise NA("no JSON report (exit %d): %s" % (rc, tail(text)))
        files = doc.get("files", [])
        counts = {}
        for f in files:
            counts[f["verdict"]] = counts.get(f["verdict"], 0) + 1
        findings = sum(len(f.get("findings", [])) for f in files)
        extra = {"bytes_read": sum(f.get("bytes_read", 0) for f in files)}
        if kind == "dir":
            order = ["malicious", "suspicious", "clean", "skipped", "error"]
            parts = ["%d %s" % (counts[v], v) for v in order if counts.get(v)]
            return "%d files: %s; %d findings" % (len(files), ", ".join(parts), findings), extra
        f = files[0]
        rules = sorted({x.get("rule", "?") for x in f.get("findings", [])})
        return "%s; %d findings%s" % (f["verdict"], findings, " (%s)" % ", ".join(rules) if rules else ""), extra
    if tool == "picklescan":
        nums = dict(re.findall(r"^(Scanned files|Infected files|Dangerous globals|Suspicious globals): (\d+)", text, re.M))
        if not nums:
            raise NA("no summary (exit %d): %s" % (rc, tail(text)))
        errors = len(re.findall(r"^ERROR", text, re.M))
        s = "%s scanned, %s infected (%s dangerous, %s suspicious globals)" % (
            nums.get("Scanned files"), nums.get("Infected files"),
            nums.get("Dangerous globals"), nums.get("Suspicious globals"))
        if errors:
            s += ", %d parse errors" % errors
        if kind == "file" and nums.get("Scanned files") == "0":
            raise NA("scanned 0 files (exit %d)" % rc)
        return s, {}
    if tool == "modelscan":
        doc = load_json(out)
        if doc is None:
            raise NA("no JSON report (exit %d): %s" % (rc, tail(text)))
        summ = doc.get("summary", {})
        sev = summ.get("total_issues_by_severity", {})
        scanned = summ.get("scanned", {}).get("total_scanned", 0)
        errors = len(doc.get("errors", []))
        if kind == "file" and scanned == 0:
            why = doc.get("errors", [{}])[0].get("description") if errors else "file skipped"
            raise NA("nothing scanned: %s" % short(why))
        sevs = ", ".join("%d %s" % (n, k.lower()) for k, n in sev.items() if n)
        return "%d scanned, issues: %s%s" % (scanned, sevs or "none",
                                              ", %d errors" % errors if errors else ""), {}
    if tool == "fickling":
        doc = None
        try:
            with open(out) as f:
                raw = f.read()
            doc = json.loads(raw)
        except (OSError, ValueError):
            pass
        if doc is None:
            m = re.search(r"Error: ([^\n]+)", text)
            raise NA("could not parse it (exit %d): %s" % (rc, short(m.group(1) if m else tail(text))))
        first = str(doc.get("analysis", "")).strip().split("\n")[0]
        why = ": " + short(first, 110) if doc.get("severity") != "LIKELY_SAFE" and first else ""
        return "%s (exit %d)%s" % (doc.get("severity"), rc, why), {}
    if tool == "modelaudit":
        doc = load_json(out)
        if doc is None:
            raise NA("no JSON report (exit %d): %s" % (rc, tail(text)))
        sev = {}
        for i in doc.get("issues", []):
            s = str(i.get("severity", "?")).lower()
            sev[s] = sev.get(s, 0) + 1
        order = ["critical", "error", "warning", "info", "debug"]
        parts = ["%d %s" % (sev[k], k) for k in order + sorted(set(sev) - set(order)) if sev.get(k)]
        flagged = len({i.get("location", "").split(" ")[0].split(":")[0] for i in doc.get("issues", [])
                       if str(i.get("severity", "")).lower() in ("critical", "error", "warning")})
        s = "%s files, issues: %s" % (doc.get("files_scanned"), ", ".join(parts) or "none")
        if kind == "dir":
            s += "; %d files with warning+" % flagged
        else:
            top = [i for i in doc.get("issues", []) if str(i.get("severity", "")).lower() in ("critical", "warning")]
            if top:
                s += "; first: " + short(top[0].get("message", ""), 110)
        if doc.get("has_errors"):
            s += "; has_errors"
        return s + " (exit %d)" % rc, {}
    raise ValueError(tool)


def tail(text, n=160):
    text = " ".join(text.split())
    return text[-n:] if text else "no output"


def short(text, n=120):
    text = " ".join(str(text).split())
    return text[:n]


# ---------------------------------------------------------------- running


def run_once(argv, out, timeout, cwd):
    """Runs argv under /usr/bin/time; returns (wall_s, rss_kb, rc, stdout, stderr) or raises TimeoutError."""
    if os.path.exists(out):
        os.unlink(out)  # fickling appends to its report
    tfile = out + ".time"
    env = dict(os.environ, **TOOL_ENV)
    t0 = time.perf_counter()
    p = subprocess.Popen([TIME, "-f", "%e %M", "-o", tfile] + argv, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, cwd=cwd, env=env, start_new_session=True, text=True,
                         errors="replace")
    try:
        stdout, stderr = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        p.communicate()
        raise TimeoutError()
    wall = time.perf_counter() - t0
    with open(tfile) as f:
        line = f.read().strip().splitlines()[-1]
    rss_kb = int(line.split()[1])
    return wall, rss_kb, p.returncode, stdout, stderr


def busy_compilers():
    """How many compiler/linker processes are running now (other work that skews timings)."""
    n = 0
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open("/proc/%s/comm" % pid) as f:
                if f.read().strip() in ("rustc", "cc1", "cc1plus", "ld", "ld.lld", "rust-lld", "cargo"):
                    n += 1
        except OSError:
            pass
    return n


def measure(tool, label, path, kind, args, scratch, log):
    out = os.path.join(scratch, "%s-%s.out" % (tool, label))
    cell = {"tool": tool, "input": label}
    try:
        argv = command(tool, path, kind, out, args)
    except NA as e:
        cell["na"] = str(e)
        return cell
    cell["argv"] = argv
    try:
        wall0, rss0, rc, so, se = run_once(argv, out, args.timeout, scratch)
    except TimeoutError:
        cell["na"] = "timed out (> %d s)" % args.timeout
        return cell
    try:
        cell["verdict"], cell["extra"] = verdict(tool, kind, rc, so, se, out)
    except NA as e:
        cell["na"] = str(e)
        return cell
    runs = args.runs
    if wall0 * args.runs > args.cell_budget:
        # A slow tool gets as many runs as fit in the budget; when even one does not fit, its
        # warm-up run is the sample (its inputs are in the page cache by then anyway).
        runs = int(args.cell_budget // max(wall0, 1e-9))
    walls, rsss, busy = [], [], []
    if runs == 0:
        walls, rsss, busy = [wall0], [rss0], [busy_compilers()]
    for _ in range(runs):
        busy.append(busy_compilers())
        try:
            w, r, _, _, _ = run_once(argv, out, args.timeout, scratch)
        except TimeoutError:
            cell["na"] = "timed out (> %d s)" % args.timeout
            return cell
        walls.append(w)
        rsss.append(r)
    cell.update(wall=statistics.median(walls), rss_kb=statistics.median(rsss), walls=walls, rss=rsss,
                runs=len(walls), warmup_only=runs == 0, warmup_wall=wall0, busy=max(busy))
    log("  %-10s %-2s %9.3f s  %8.1f MB  (n=%d)  %s" % (tool, label, cell["wall"], cell["rss_kb"] / 1024, len(walls),
                                                        cell["verdict"]))
    return cell


# ---------------------------------------------------------------- report


def fmt_time(s):
    if s < 1:
        return "%.1f ms" % (s * 1000)
    return "%.2f s" % s


def fmt_mb(kb):
    return "%.1f MB" % (kb / 1024)


def fmt_ratio(x):
    return "%.0f×" % x if x >= 10 else "%.1f×" % x


def machine():
    def sh(cmd):
        try:
            return subprocess.run(cmd, shell=True, capture_output=True, text=True, timeout=30).stdout.strip()
        except Exception:
            return "?"
    cpu = "?"
    try:
        with open("/proc/cpuinfo") as f:
            m = re.search(r"^model name\s*:\s*(.+)$", f.read(), re.M)
            cpu = m.group(1) if m else "?"
    except OSError:
        pass
    return {"nproc": sh("nproc"), "free": sh("free -h"), "cpu": cpu, "kernel": platform.release(),
            "loadavg": sh("cat /proc/loadavg")}


def versions(args):
    v = {}
    try:
        v["modelward"] = subprocess.run([args.modelward, "--version"], capture_output=True, text=True).stdout.strip()
    except OSError:
        v["modelward"] = "?"
    rev = subprocess.run(["git", "-C", args.repo, "rev-parse", "--short", "HEAD"], capture_output=True,
                         text=True).stdout.strip()
    dirty = subprocess.run(["git", "-C", args.repo, "status", "--porcelain", "--untracked-files=no"],
                           capture_output=True, text=True).stdout.strip()
    v["modelward"] += " (git %s%s)" % (rev or "?", ", with uncommitted changes" if dirty else "")
    py = os.path.join(args.venv, "bin", "python")
    pkgs = {}
    for venv in (args.venv, args.modelscan_venv):
        out = subprocess.run([os.path.join(venv, "bin", "python"), "-m", "pip", "list", "--format=json"],
                             capture_output=True, text=True).stdout
        for p in json.loads(out or "[]"):
            pkgs.setdefault(p["name"].lower(), p["version"])
    for t in TOOLS[1:]:
        v[t] = pkgs.get(t, "?")
    v["numpy (modelscan venv)"] = subprocess.run(
        [os.path.join(args.modelscan_venv, "bin", "python"), "-c", "import numpy; print(numpy.__version__)"],
        capture_output=True, text=True).stdout.strip()
    v["python"] = subprocess.run([py, "-c", "import sys; print(sys.version.split()[0])"], capture_output=True,
                                 text=True).stdout.strip()
    return v


def report(cells, inputs, args, mach, vers, started, busy_seen, partial=False):
    by = {(c["input"], c["tool"]): c for c in cells}
    L = []
    L.append("# Benchmarks: modelward vs picklescan, modelscan, fickling, ModelAudit")
    L.append("")
    if partial:
        L.append("> **Partial**: written while `bench/compare.sh` was still running; rows that are "
                 "missing had not been measured yet.")
        L.append("")
    L.append("Generated by `bash bench/compare.sh` on %s. Medians of %d runs after one warm-up run "
             "(fewer where a tool's single run was slow: see n). Wall time is the whole process, "
             "interpreter start-up included; peak RSS is `/usr/bin/time`'s `%%M`. Files are in the page "
             "cache (warm runs). Each tool runs with its defaults (ModelAudit with `--no-cache`, "
             "telemetry off)." % (started, args.runs))
    L.append("")
    if busy_seen:
        L.append("> **Noisy run**: other compilations were running on this machine during the "
                 "measurements (up to %d compiler processes seen; load average at the end: %s). "
                 "Re-run `bash bench/compare.sh` on an idle machine for final numbers." % (busy_seen, mach["loadavg"]))
        L.append("")
    L.append("## Machine")
    L.append("")
    L.append("- CPU: %s; `nproc`: %s; kernel %s" % (mach["cpu"], mach["nproc"], mach["kernel"]))
    L.append("- Memory (`free -h`):")
    L.append("")
    L.append("```")
    L.append(mach["free"])
    L.append("```")
    L.append("")
    L.append("- Versions: " + "; ".join("%s %s" % (k, v) for k, v in vers.items()))
    L.append("")
    L.append("## Inputs")
    L.append("")
    for label, desc, path, kind in inputs:
        L.append("- **(%s)** %s: `%s` (%s)" % (label, desc, path, size_of(path, kind)))
    L.append("")
    L.append("## Results")
    L.append("")
    L.append("| input | tool | wall (median) | peak RSS (median) | wall ÷ modelward | RSS ÷ modelward | n | verdict / findings |")
    L.append("| --- | --- | ---: | ---: | ---: | ---: | ---: | --- |")
    for label, desc, path, kind in inputs:
        mw = by.get((label, "modelward"))
        for tool in TOOLS:
            c = by.get((label, tool))
            if c is None:
                continue
            if "na" in c:
                L.append("| (%s) | %s | n/a | n/a | | | | n/a (%s) |" % (label, tool, md(c["na"])))
                continue
            rw = rr = ""
            if mw and "wall" in mw and tool != "modelward":
                rw = fmt_ratio(c["wall"] / mw["wall"])
                rr = fmt_ratio(c["rss_kb"] / mw["rss_kb"])
            n = "1\\*" if c.get("warmup_only") else str(c["runs"])
            if c.get("reused"):
                n += " †"
            L.append("| (%s) | %s | %s | %s | %s | %s | %s | %s |" % (
                label, tool, fmt_time(c["wall"]), fmt_mb(c["rss_kb"]), rw, rr, n, md(c["verdict"])))
    L.append("")
    reused = sorted({c["measured"] for c in cells if c.get("reused")})
    if reused:
        L.append("† not measured again: taken from the earlier run of %s (`REUSE` in `bench/compare.sh`), "
                 "made while other compilations were running; the ratio divides it by this run's "
                 "modelward time." % ", ".join(reused))
        L.append("")
    if any(c.get("warmup_only") for c in cells):
        L.append("\\* one run only: the warm-up run alone took longer than the per-cell budget "
                 "(`CELL_BUDGET`, %d s), so it is the sample." % args.cell_budget)
        L.append("")
    L.append("modelward `bytes_read` (from its JSON report):")
    L.append("")
    for label, desc, path, kind in inputs:
        c = by.get((label, "modelward"))
        if c and "extra" in c:
            total = size_bytes(path, kind)
            L.append("- (%s): %s of %s (%.4f%%)" % (label, human(c["extra"]["bytes_read"]), human(total),
                                                   100.0 * c["extra"]["bytes_read"] / max(total, 1)))
    L.append("")
    L.append("## Targets")
    L.append("")
    L.extend(targets(by, inputs))
    L.append("")
    L.append("## Reading the verdicts")
    L.append("")
    L.append("Every input is benign: (a) is the development set of real model files shipped in PyPI "
             "packages (`shared/real/fetch_real.sh`), (b)-(d) are written by `torch.save` and "
             "`pickle.dump` (`bench/make_large_inputs.py`). Anything flagged is a false positive; "
             "fewer is better, provided the same files are actually scanned. Counts are each tool's "
             "own units: picklescan counts files and globals, modelscan and ModelAudit count issues "
             "(ModelAudit's `info` issues are notes, not alarms), fickling gives one severity per file.")
    L.append("")
    L.append("## Re-running")
    L.append("")
    L.append("```sh")
    L.append("/work/.venv-fixtures/bin/python bench/make_large_inputs.py /work/.bench-data   # once (torch + numpy)")
    L.append("bash bench/compare.sh                  # RUNS=5 by default; writes docs/benchmarks.md")
    L.append("cargo bench -p modelward_bench         # the Criterion micro-benchmarks")
    L.append("```")
    L.append("")
    return "\n".join(L)


def targets(by, inputs):
    out = []

    def cell(label, tool):
        c = by.get((label, tool))
        return c if c and "wall" in c else None

    mw_a, ps_a, ma_a = cell("a", "modelward"), cell("a", "picklescan"), cell("a", "modelaudit")
    if mw_a and ps_a:
        r = ps_a["wall"] / mw_a["wall"]
        out.append("- ≥ 20× faster than picklescan on (a): **%s** — measured %s (%s vs %s)" % (
            "met" if r >= 20 else "not met", fmt_ratio(r), fmt_time(ps_a["wall"]), fmt_time(mw_a["wall"])))
    if mw_a and ma_a:
        r = ma_a["wall"] / mw_a["wall"]
        out.append("- ≥ 50× faster than ModelAudit on (a): **%s** — measured %s (%s vs %s)" % (
            "met" if r >= 50 else "not met", fmt_ratio(r), fmt_time(ma_a["wall"]), fmt_time(mw_a["wall"])))
    mw_b = cell("b", "modelward")
    if mw_b:
        br = mw_b["extra"]["bytes_read"]
        ok = mw_b["wall"] < 0.020 and br < 1_000_000
        out.append("- (b) in under 20 ms wall reading under 1 MB: **%s** — measured %s, %s read" % (
            "met" if ok else "not met", fmt_time(mw_b["wall"]), human(br)))
    rss = [(label, cell(label, "modelward")) for label, _, _, _ in inputs]
    rss = [(label, c) for label, c in rss if c]
    if rss:
        worst = max(c["rss_kb"] for _, c in rss)
        out.append("- modelward peak RSS under 100 MB on every input: **%s** — %s" % (
            "met" if worst < 100 * 1024 else "not met",
            ", ".join("(%s) %s" % (label, fmt_mb(c["rss_kb"])) for label, c in rss)))
    return out


def md(s):
    return str(s).replace("|", "\\|")


def size_bytes(path, kind):
    if kind == "file":
        return os.path.getsize(path)
    total = 0
    for root, _, files in os.walk(path):
        for f in files:
            try:
                total += os.path.getsize(os.path.join(root, f))
            except OSError:
                pass
    return total


def size_of(path, kind):
    if kind == "file":
        return human(os.path.getsize(path))
    n = sum(len(files) for _, _, files in os.walk(path))
    return "%d files, %s" % (n, human(size_bytes(path, kind)))


def human(n):
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= size:
            return "%.2f %s" % (n / size, unit)
    return "%d B" % n


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--modelward", required=True, help="the release binary")
    ap.add_argument("--venv", required=True, help="venv holding picklescan, fickling, modelaudit")
    ap.add_argument("--modelscan-venv", required=True, help="venv holding modelscan")
    ap.add_argument("--real", required=True, help="directory of real files (input a)")
    ap.add_argument("--data", required=True, help="directory of make_large_inputs.py's files")
    ap.add_argument("--repo", required=True)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--timeout", type=int, default=1800, help="seconds before one run is abandoned")
    ap.add_argument("--cell-budget", type=float, default=600,
                    help="seconds of timed runs per tool x input; slower tools get fewer runs")
    ap.add_argument("--tools", default=",".join(TOOLS))
    ap.add_argument("--inputs", default="a,b,c,d")
    ap.add_argument("--out", help="Markdown file to write (also printed)")
    ap.add_argument("--json", help="raw results file")
    ap.add_argument("--reuse", default="",
                    help="input:tool cells (e.g. c:modelaudit,d:fickling) taken from the --json file of an "
                         "earlier run instead of measured again; they are marked in the table")
    args = ap.parse_args()

    inputs_all = [
        ("a", "real benign model files, scanned as one directory", args.real, "dir"),
        ("b", "PyTorch zip checkpoint written by `torch.save`", os.path.join(args.data, "torch_state_dict_1.1GiB.pt"), "file"),
        ("c", "pickle of numpy arrays (`pickle.dump`, protocol 4)", os.path.join(args.data, "numpy_arrays_500MB.pkl"), "file"),
        ("d", "pickle of 2.5M small tuples (`pickle.dump`, protocol 4)", os.path.join(args.data, "small_objects_p4.pkl"), "file"),
    ]
    wanted = set(args.inputs.split(","))
    inputs = [i for i in inputs_all if i[0] in wanted]
    for label, _, path, kind in inputs:
        if not os.path.exists(path):
            sys.exit("error: input (%s) %s is missing" % (label, path))
    tools = [t for t in TOOLS if t in args.tools.split(",")]
    started = datetime.datetime.now().strftime("%Y-%m-%d %H:%M")
    log = lambda m: print(m, file=sys.stderr, flush=True)
    scratch = tempfile.mkdtemp(prefix="modelward-compare-")
    cells, busy_seen = [], busy_compilers()
    mach, vers = machine(), versions(args)
    earlier = earlier_cells(args, log)
    try:
        for label, desc, path, kind in inputs:
            log("(%s) %s" % (label, path))
            for tool in tools:
                if (label, tool) in earlier:
                    log("  %-10s %-2s reused from %s" % (tool, label, earlier[(label, tool)]["measured"]))
                    cells.append(earlier[(label, tool)])
                    continue
                c = measure(tool, label, path, kind, args, scratch, log)
                c["measured"] = started
                if "na" in c:
                    log("  %-10s %-2s n/a: %s" % (tool, label, c["na"]))
                busy_seen = max(busy_seen, c.get("busy", 0))
                cells.append(c)
                # Written after every cell, so an interrupted run still leaves its numbers.
                save(args, report(cells, inputs, args, mach, vers, started, busy_seen, partial=True), cells)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    busy_seen = max(busy_seen, busy_compilers())
    mach["loadavg"] = machine()["loadavg"]
    doc = report(cells, inputs, args, mach, vers, started, busy_seen)
    print(doc)
    save(args, doc, cells)


def earlier_cells(args, log):
    """The cells named by --reuse, from the results file of an earlier run, marked as reused."""
    wanted = {tuple(x.split(":", 1)) for x in args.reuse.split(",") if ":" in x}
    if not wanted:
        return {}
    if not args.json or not os.path.exists(args.json):
        sys.exit("error: --reuse needs the earlier results in --json (%s)" % args.json)
    with open(args.json) as f:
        old = json.load(f)
    when = datetime.datetime.fromtimestamp(os.path.getmtime(args.json)).strftime("%Y-%m-%d %H:%M")
    found = {}
    for c in old:
        key = (c["input"], c["tool"])
        if key in wanted:
            c = dict(c, reused=True)
            c.setdefault("measured", when)
            found[key] = c
    missing = wanted - set(found)
    if missing:
        sys.exit("error: --reuse: no earlier result for %s" % ", ".join("%s:%s" % m for m in sorted(missing)))
    return found


def save(args, doc, cells):
    if args.out:
        with open(args.out, "w") as f:
            f.write(doc)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(cells, f, indent=1)


if __name__ == "__main__":
    main()
