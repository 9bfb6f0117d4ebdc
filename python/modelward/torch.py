"""``modelward.torch.load``: ``torch.load`` after a scan.

``weights_only``: when the caller does not pass it and ``f`` is a path whose pickle only
rebuilds tensors and plain containers (the rule ``modelward convert`` accepts: the converter
judges the checkpoint and would write it as safetensors), ``weights_only=True`` is passed, so
torch's restricted unpickler is a second line of defence. Otherwise torch's own default
applies (``True`` since torch 2.6); a caller may pass ``weights_only=False`` for a checkpoint
that the scan let through (below the threshold) but that holds more than tensors.
"""

from __future__ import annotations

from typing import Any, Dict, Optional

from . import _native
from ._api import PathLike
from ._guard import guarded_load, real


def _prefer_weights_only(path: PathLike, kwargs: Dict[str, Any]) -> None:
    if "weights_only" not in kwargs and _native.tensors_only(path):
        kwargs["weights_only"] = True


def load(f: Any, *args: Any, fail_on: Optional[str] = None, config: Optional[PathLike] = None, **kwargs: Any) -> Any:
    """``torch.load(f, *args, **kwargs)`` after a scan; raises ``modelward.Blocked``."""
    return guarded_load(
        real("torch", "load"),
        f,
        args,
        kwargs,
        what="torch.load",
        fail_on=fail_on,
        config=config,
        on_path=_prefer_weights_only,
    )
