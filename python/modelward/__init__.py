"""modelward: know whether a model file is safe to load, before you load it.

    import modelward
    model = modelward.torch.load("model.pt")   # scanned first; raises modelward.Blocked
    report = modelward.scan("hf://owner/name") # verdict, findings, to_json()

See docs/python.md. Nothing here executes what it scans: the scanner is Rust
(``modelward._native``) and reads the files as data.
"""

from ._native import ConfigError, ConvertError, ConvertRefused, Error, ExplainError, __version__
from ._report import FileReport, Finding, Location, Report
from ._api import Blocked, ConvertReport, ScanError, convert, explain, scan, scan_many
from ._guard import guard, install, installed, uninstall
from . import joblib, numpy, pickle, torch

__all__ = [
    "Blocked",
    "ConfigError",
    "ConvertError",
    "ConvertRefused",
    "ConvertReport",
    "Error",
    "ExplainError",
    "FileReport",
    "Finding",
    "Location",
    "Report",
    "ScanError",
    "__version__",
    "convert",
    "explain",
    "guard",
    "install",
    "installed",
    "joblib",
    "numpy",
    "pickle",
    "scan",
    "scan_many",
    "torch",
    "uninstall",
]
