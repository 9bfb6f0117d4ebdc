"""``modelward.numpy.load``: ``numpy.load`` after a scan (.npy, .npz, and pickles it may read).

A path is scanned in place and then given to ``numpy.load`` (``mmap_mode`` works); a file
object is read, scanned, and loaded from the same bytes.
"""

from __future__ import annotations

from typing import Any, Optional

from ._api import PathLike
from ._guard import guarded_load, real


def load(file: Any, *args: Any, fail_on: Optional[str] = None, config: Optional[PathLike] = None, **kwargs: Any) -> Any:
    """``numpy.load(file, *args, **kwargs)`` after a scan; raises ``modelward.Blocked``."""
    return guarded_load(real("numpy", "load"), file, args, kwargs, what="numpy.load", fail_on=fail_on, config=config)
