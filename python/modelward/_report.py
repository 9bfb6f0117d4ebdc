"""The scan report as Python objects, read from the CLI's JSON document (docs/json-output.md)."""

from __future__ import annotations

import json
from typing import Any, Dict, List, Optional, Tuple

# Lowest first, as in the Rust `Severity`.
SEVERITIES: Tuple[str, ...] = ("info", "low", "medium", "high", "critical")
# What `fail_on` accepts: a severity, or "never".
FAIL_ON: Tuple[str, ...] = SEVERITIES + ("never",)
# How verdicts of several files combine: the first one present wins.
_VERDICT_ORDER: Tuple[str, ...] = ("error", "malicious", "suspicious", "clean", "skipped")


def severity_rank(severity: Optional[str]) -> int:
    """-1 for no severity, else the index in SEVERITIES."""
    return -1 if severity is None else SEVERITIES.index(severity)


def check_fail_on(fail_on: Optional[str]) -> Optional[str]:
    if fail_on is None:
        return None
    if not isinstance(fail_on, str) or fail_on.lower() not in FAIL_ON:
        raise ValueError(f"fail_on must be one of {', '.join(FAIL_ON)} (got {fail_on!r})")
    return fail_on.lower()


class Location:
    """Where a finding is: the file, the archive members inside it, a byte offset."""

    __slots__ = ("path", "members", "offset")

    def __init__(self, path: str, members: Tuple[str, ...] = (), offset: Optional[int] = None):
        self.path = path
        self.members = members
        self.offset = offset

    def __str__(self) -> str:
        # The same form as the CLI: bundle.tar.gz!model/ckpt.zip!archive/data.pkl@1234
        s = self.path + "".join("!" + m for m in self.members)
        return s if self.offset is None else f"{s}@{self.offset}"

    def __repr__(self) -> str:
        return f"Location({str(self)!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Location) and (self.path, self.members, self.offset) == (
            other.path,
            other.members,
            other.offset,
        )

    def __hash__(self) -> int:
        return hash((self.path, self.members, self.offset))


class Finding:
    """One finding: which rule, how bad, how sure, where, and why."""

    __slots__ = ("rule", "name", "severity", "confidence", "message", "location", "evidence", "why")

    def __init__(self, d: Dict[str, Any]):
        self.rule: str = d["rule"]
        self.name: str = d["name"]
        self.severity: str = d["severity"]
        self.confidence: str = d["confidence"]
        self.message: str = d["message"]
        loc = d["location"]
        self.location = Location(loc["path"], tuple(loc.get("members", ())), loc.get("offset"))
        self.evidence: Optional[str] = d.get("evidence")
        self.why: str = d.get("why", "")

    def __str__(self) -> str:
        return f"{self.severity} {self.rule} {self.name} {self.location}: {self.message}"

    def __repr__(self) -> str:
        return f"<Finding {self}>"


class FileReport:
    """The report on one file (one member of a directory or repository scan)."""

    __slots__ = ("path", "format", "verdict", "severity", "findings", "size", "bytes_read", "error")

    def __init__(self, d: Dict[str, Any]):
        self.path: str = d["path"]
        self.format: str = d["format"]
        self.verdict: str = d["verdict"]
        self.severity: Optional[str] = d.get("severity")
        self.findings: List[Finding] = [Finding(f) for f in d.get("findings", ())]
        self.size: int = d.get("size", 0)
        self.bytes_read: int = d.get("bytes_read", 0)
        self.error: Optional[str] = d.get("error")

    def __repr__(self) -> str:
        return f"<FileReport {self.path}: {self.verdict}, {len(self.findings)} finding(s)>"


class Report:
    """What a scan found, over every file under the target.

    ``verdict`` is the worst file verdict (error, malicious, suspicious, clean, then skipped);
    ``severity`` the highest finding severity (``None`` without findings); ``findings`` every
    file's findings, most severe first; ``blocked`` whether the report reaches ``fail_on``
    (a finding at or above it, or a file that could not be scanned at all).
    """

    def __init__(self, document: str, fail_on: Optional[str]):
        self._json = document
        d = json.loads(document)
        self.files: List[FileReport] = [FileReport(f) for f in d["files"]]
        self.summary: Dict[str, Any] = d["summary"]
        self.fail_on: Optional[str] = None if fail_on == "never" else fail_on
        present = {f.verdict for f in self.files}
        self.verdict: str = next((v for v in _VERDICT_ORDER if v in present), "skipped")
        self.findings: List[Finding] = sorted(
            (x for f in self.files for x in f.findings),
            key=lambda x: -severity_rank(x.severity),
        )
        self.severity: Optional[str] = self.findings[0].severity if self.findings else None
        self.bytes_read: int = self.summary["bytes_read"]
        self.elapsed_ms: int = self.summary["elapsed_ms"]

    @property
    def blocked(self) -> bool:
        if self.fail_on is None:
            return False
        if self.verdict == "error":
            return True
        return severity_rank(self.severity) >= severity_rank(self.fail_on)

    @property
    def errors(self) -> List[str]:
        """Why files could not be scanned (verdict ``error``)."""
        return [f"{f.path}: {f.error}" for f in self.files if f.verdict == "error"]

    def to_json(self) -> str:
        """The JSON document ``modelward scan --format json`` prints."""
        return self._json

    def describe(self, limit: int = 3) -> str:
        """One line per finding (the most severe ``limit`` of them)."""
        lines = [str(f) for f in self.findings[:limit]]
        if len(self.findings) > limit:
            lines.append(f"... and {len(self.findings) - limit} more finding(s)")
        return "\n".join(lines)

    def __repr__(self) -> str:
        return (
            f"<Report {self.verdict}, severity {self.severity}, {len(self.findings)} finding(s) "
            f"in {len(self.files)} file(s), blocked={self.blocked}>"
        )
