#!/usr/bin/env python3
"""Turn `modelward scan --format json DIR` output into a listing a person reads: per package the
number of files by verdict, the rules that fired, then every suspicious, malicious or error file
with each finding (rule, severity, message, evidence).

    python3 tests/real/list_findings.py TITLE ROOT scan.json >> listing.txt

ROOT is the scanned directory; the first path component below it ("name-version") is the package.
"""
import collections
import json
import re
import sys

VERDICTS = ["clean", "suspicious", "malicious", "error", "skipped"]


def main():
    title, root, path = sys.argv[1:4]
    with open(path) as f:
        report = json.load(f)
    root = root.rstrip("/") + "/"
    per_pkg = collections.defaultdict(collections.Counter)
    rules = collections.Counter()
    flagged = []
    names = collections.defaultdict(set)  # unreviewed global -> files that name it
    for f in report["files"]:
        rel = f["path"][len(root):] if f["path"].startswith(root) else f["path"]
        pkg = rel.split("/", 1)[0]
        per_pkg[pkg][f["verdict"]] += 1
        if f["verdict"] in ("suspicious", "malicious", "error"):
            flagged.append((rel, f))
            for x in f["findings"]:
                if x["severity"] not in ("info", "low"):
                    rules[(x["rule"], x["name"], x["severity"])] += 1
                m = re.match(r"(imports|constructs|calls) ([\w.]+)", x["message"])
                if x["rule"] == "PKL202" and m:
                    names["%s %s" % (m.group(1), m.group(2))].add(rel)
    total = collections.Counter()
    for c in per_pkg.values():
        total.update(c)
    n = sum(total.values())
    judged = n - total["skipped"]
    out = []
    out.append("=" * 100)
    out.append("%s  (%s)" % (title, root))
    out.append("=" * 100)
    out.append("%d files: %s" % (n, ", ".join("%s %d" % (v, total[v]) for v in VERDICTS)))
    out.append("suspicious %.1f %% of all files, %.1f %% of the %d judged (not skipped); malicious %d"
               % (100.0 * total["suspicious"] / max(n, 1),
                  100.0 * total["suspicious"] / max(judged, 1), judged, total["malicious"]))
    out.append("")
    out.append("%-36s %6s %6s %6s %6s %6s %6s" % ("package", "files", *VERDICTS))
    for pkg in sorted(per_pkg):
        c = per_pkg[pkg]
        out.append("%-36s %6d %6d %6d %6d %6d %6d"
                   % (pkg, sum(c.values()), *(c[v] for v in VERDICTS)))
    out.append("")
    out.append("rules of medium or higher severity on flagged files (count of findings):")
    for (rule, name, sev), k in rules.most_common():
        out.append("  %5d  %s %s (%s)" % (k, rule, name, sev))
    out.append("")
    out.append("distinct unreviewed globals (PKL202) on flagged files, with the number of files:")
    for name, where in sorted(names.items(), key=lambda kv: (-len(kv[1]), kv[0])):
        out.append("  %5d  %s" % (len(where), name))
    out.append("")
    out.append("every suspicious / malicious / error file:")
    for rel, f in sorted(flagged):
        out.append("")
        out.append("* %s  [%s, format %s, %d bytes]" % (rel, f["verdict"].upper(), f["format"], f["size"]))
        for x in f["findings"]:
            out.append("    %s %s %s/%s: %s" % (x["rule"], x["name"], x["severity"],
                                                x.get("confidence", "?"), x["message"]))
            if x.get("evidence"):
                out.append("        evidence: %s" % x["evidence"][:300])
    out.append("")
    print("\n".join(out))


if __name__ == "__main__":
    main()
