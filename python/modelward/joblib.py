"""``modelward.joblib.load``: ``joblib.load`` after a scan (joblib pickles, compressed or not,
with the numpy arrays they embed)."""

from __future__ import annotations

from typing import Any, Optional

from ._api import PathLike
from ._guard import guarded_load, real


def load(filename: Any, *args: Any, fail_on: Optional[str] = None, config: Optional[PathLike] = None, **kwargs: Any) -> Any:
    """``joblib.load(filename, *args, **kwargs)`` after a scan; raises ``modelward.Blocked``."""
    return guarded_load(real("joblib", "load"), filename, args, kwargs, what="joblib.load", fail_on=fail_on, config=config)
