"""``modelward.pickle.load`` / ``loads``: the standard library's, after a scan.

Raises ``modelward.Blocked`` (nothing is unpickled) when the scan reaches the threshold.
``load`` reads what is left of the file object (it must be binary), scans it, unpickles one
pickle from those bytes and leaves the file positioned after it, as ``pickle.load`` does.
"""

from __future__ import annotations

from typing import IO, Any, Optional

from ._api import PathLike
from ._guard import guarded_load, guarded_loads, real


def load(file: IO[bytes], *, fail_on: Optional[str] = None, config: Optional[PathLike] = None, **kwargs: Any) -> Any:
    """``pickle.load(file, **kwargs)`` after a scan of the file's content."""
    return guarded_load(real("pickle", "load"), file, (), kwargs, what="pickle.load", fail_on=fail_on, config=config)


def loads(data: bytes, /, *, fail_on: Optional[str] = None, config: Optional[PathLike] = None, **kwargs: Any) -> Any:
    """``pickle.loads(data, **kwargs)`` after a scan of ``data``."""
    return guarded_loads(real("pickle", "loads"), data, (), kwargs, what="pickle.loads", fail_on=fail_on, config=config)
