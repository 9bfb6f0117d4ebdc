"""Scan before loading, with the typed API (checked by `mypy --strict` in scripts/test-python.sh).

    python python/examples/guarded_load.py MODEL [MODEL...]
"""

from __future__ import annotations

import sys
from typing import Any, List

import modelward


def describe(report: modelward.Report) -> List[str]:
    lines = [f"{f.path}: {f.verdict} ({f.format}, {f.bytes_read} bytes read)" for f in report.files]
    for finding in report.findings:
        where: modelward.Location = finding.location
        lines.append(f"  {finding.severity:<8} {finding.rule} {where}: {finding.message}")
    return lines


def load_checked(path: str) -> Any:
    """numpy's and pickle's own loaders, after a scan: raises modelward.Blocked."""
    if path.endswith((".npy", ".npz")):
        return modelward.numpy.load(path)
    with open(path, "rb") as f:
        return modelward.pickle.load(f, fail_on="medium")


def main(paths: List[str]) -> int:
    reports: List[modelward.Report] = modelward.scan_many(paths)
    status = 0
    for path, report in zip(paths, reports):
        print("\n".join(describe(report)))
        if report.blocked:
            status = 1
            continue
        try:
            obj = load_checked(path)
        except modelward.Blocked as e:
            print(f"not loaded: {e.report.verdict}")
            status = 1
        except modelward.ScanError as e:
            print(f"could not scan: {e}")
            status = 2
        else:
            print(f"loaded {type(obj).__name__}")
    explained: str = modelward.explain(paths[0]) if paths and paths[0].endswith(".pkl") else ""
    if explained:
        print(explained.splitlines()[0])
    with modelward.guard(fail_on="high") as patched:
        print("patched while guarded:", ", ".join(patched))
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
