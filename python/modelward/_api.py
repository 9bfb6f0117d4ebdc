"""scan, scan_many, explain, convert: the Rust scanner behind a Python API."""

from __future__ import annotations

import json
import os
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple, Union

from . import _native
from ._native import ConvertError, ConvertRefused, Error
from ._report import Finding, Report, check_fail_on

PathLike = Union[str, "os.PathLike[str]"]
Target = Union[str, "os.PathLike[str]", bytes, bytearray, memoryview]

# Without fail_on and without a configuration that sets one: the CLI's default.
DEFAULT_FAIL_ON = "high"


class ScanError(Error):
    """Something could not be scanned at all (a missing path, an unreadable file, a remote
    source that could not be listed). ``report`` holds the report, with verdict ``error``."""

    def __init__(self, message: str, report: Report):
        super().__init__(message)
        self.report = report


class Blocked(Error):
    """A file's findings reach the ``fail_on`` threshold: it was not loaded. ``report`` says why."""

    def __init__(self, what: str, report: Report):
        super().__init__(
            f"modelward blocked {what}: {report.verdict} (severity {report.severity}, "
            f"fail_on {report.fail_on})\n{report.describe()}"
        )
        self.report = report


def _input(target: Target, name: Optional[str]) -> Union[str, Tuple[str, bytes]]:
    if isinstance(target, (bytes, bytearray, memoryview)):
        return (name or "<bytes>", bytes(target))
    if isinstance(target, (str, os.PathLike)):
        return os.fspath(target)
    raise TypeError(
        f"modelward.scan takes a path, a URL or bytes, not {type(target).__name__}; "
        "read a file object first (modelward.pickle.load and the other guards do)"
    )


def _scan(
    inputs: Sequence[Union[str, Tuple[str, bytes]]],
    fail_on: Optional[str],
    config: Optional[PathLike],
) -> List[Report]:
    fail_on = check_fail_on(fail_on)
    documents, config_fail_on = _native.scan(
        list(inputs), None if config is None else os.fspath(config)
    )
    threshold = fail_on or config_fail_on or DEFAULT_FAIL_ON
    return [Report(d, threshold) for d in documents]


def scan(
    target: Target,
    *,
    fail_on: Optional[str] = None,
    config: Optional[PathLike] = None,
    name: Optional[str] = None,
) -> Report:
    """Scans a file, a directory, bytes, ``hf://owner/name[@rev]`` or an ``https://`` URL.

    ``fail_on`` (info, low, medium, high, critical or never; default the configuration's, else
    high) only sets ``Report.blocked``. ``config`` is a ``modelward.toml`` or ``pyproject.toml``
    (default: searched upwards from the path, as the CLI does). ``name`` names bytes in the
    report. Raises ``ScanError`` when something could not be scanned at all.
    """
    report = _scan([_input(target, name)], fail_on, config)[0]
    if report.verdict == "error":
        raise ScanError("; ".join(report.errors), report)
    return report


def scan_many(
    targets: Iterable[Target],
    *,
    fail_on: Optional[str] = None,
    config: Optional[PathLike] = None,
) -> List[Report]:
    """Scans several targets at once on the Rust thread pool; one Report per target, in order.

    Unlike ``scan``, a target that cannot be scanned does not raise: its report has verdict
    ``error`` (and ``blocked`` is true), so one bad path does not lose the others.
    """
    return _scan([_input(t, None) for t in targets], fail_on, config)


def check(
    target: Target,
    *,
    what: str,
    fail_on: Optional[str] = None,
    config: Optional[PathLike] = None,
    name: Optional[str] = None,
) -> Report:
    """Scan, and raise ``Blocked`` when the report reaches the threshold (the load guards)."""
    report = scan(target, fail_on=fail_on, config=config, name=name)
    if report.blocked:
        raise Blocked(what, report)
    return report


def explain(target: PathLike) -> str:
    """What loading a pickle would do: ``modelward explain`` (``FILE`` or ``FILE!member``)."""
    return _native.explain(os.fspath(target))


class ConvertReport:
    """What ``convert`` wrote."""

    def __init__(self, d: Dict[str, Any]):
        self.input: str = d["input"]
        self.output: str = d["output"]
        self.format: str = d["format"]
        self.tensors: List[Dict[str, Any]] = d["tensors"]
        self.metadata: Dict[str, str] = d["metadata"]
        self.dropped: List[Dict[str, str]] = d["dropped"]
        self.notes: List[str] = d["notes"]
        self.header_bytes: int = d["header_bytes"]
        self.data_bytes: int = d["data_bytes"]
        self.verified: Optional[Dict[str, Any]] = d["verified"]

    def __repr__(self) -> str:
        return f"<ConvertReport {self.input} ({self.format}) -> {self.output}: {len(self.tensors)} tensor(s)>"


def convert(
    src: PathLike,
    dst: Optional[PathLike] = None,
    *,
    verify: bool = False,
    overwrite: bool = False,
    name: Optional[str] = None,
) -> ConvertReport:
    """Converts a PyTorch checkpoint or numpy .npy/.npz to safetensors without running Python
    (``modelward convert``). ``dst`` defaults to ``src`` with the extension ``.safetensors``.

    Raises ``ConvertRefused`` (with ``findings`` and ``reasons``) when the input does more than
    build tensors, ``ConvertError`` when it cannot be converted.
    """
    try:
        doc = _native.convert(
            os.fspath(src),
            None if dst is None else os.fspath(dst),
            verify,
            overwrite,
            name,
        )
    except ConvertRefused as e:
        e.findings = [Finding(f) for f in json.loads(e.findings_json)]
        raise
    return ConvertReport(json.loads(doc))


__all__ = [
    "Blocked",
    "ConvertError",
    "ConvertRefused",
    "ConvertReport",
    "ScanError",
    "check",
    "convert",
    "explain",
    "scan",
    "scan_many",
]
