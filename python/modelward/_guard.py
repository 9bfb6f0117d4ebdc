"""Load guards: scan, then load; and install()/uninstall()/guard() to patch the real loaders.

A guarded load scans what it is about to load and raises ``Blocked`` when the report reaches
the threshold (default the configuration's ``fail_on``, else "high", as the CLI). What the
scanner could not recognise at all (verdict "skipped") is blocked too: a loader is about to
run it, and what is not known safe is not loaded.

Paths are scanned in place (the scanner reads only the bytes that can hold code), then the
real loader opens the path. File objects are read into memory once (at most
``MAX_FILE_OBJECT_BYTES``), the bytes are scanned, and the real loader reads those same bytes
(from an ``io.BytesIO``), so what was scanned is exactly what is loaded; the file object is
left positioned after what the loader consumed when it can seek.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import importlib
import importlib.util
import io
import os
import threading
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple, TypeVar, Union

from ._api import Blocked, PathLike, check
from ._native import Error
from ._report import check_fail_on

# File objects larger than this are refused (pass a path instead: it is scanned in place).
MAX_FILE_OBJECT_BYTES = 8 << 30

T = TypeVar("T")

_lock = threading.RLock()
# (module name, attribute) -> (the original object, whether it was in the module's __dict__).
_originals: Dict[Tuple[str, str], Tuple[Any, bool]] = {}
# Settings of install(): fail_on and config for the patched loaders.
_settings: Dict[str, Any] = {"fail_on": None, "config": None}
# Depth of guarded loads on this thread: a loader called by a guarded loader (numpy.load
# calling pickle.load on the file it was given, torch.load calling pickle_module.load) reads
# what the outer guard already scanned, and is not scanned again.
_inside = threading.local()


def _depth() -> int:
    return getattr(_inside, "depth", 0)


@contextlib.contextmanager
def _loading() -> Iterator[None]:
    _inside.depth = _depth() + 1
    try:
        yield
    finally:
        _inside.depth -= 1


def real(module: str, name: str) -> Any:
    """The loader itself, even while install() has patched it."""
    with _lock:
        saved = _originals.get((module, name))
    if saved is not None:
        return saved[0]
    return getattr(importlib.import_module(module), name)


def _options(fail_on: Optional[str], config: Optional[PathLike]) -> Tuple[Optional[str], Optional[PathLike]]:
    return (
        check_fail_on(fail_on) if fail_on is not None else _settings["fail_on"],
        config if config is not None else _settings["config"],
    )


def _judge(target: Union[PathLike, bytes], what: str, fail_on: Optional[str], config: Optional[PathLike], name: Optional[str] = None) -> None:
    fail_on, config = _options(fail_on, config)
    report = check(target, what=what, fail_on=fail_on, config=config, name=name)
    if report.verdict == "skipped" and report.fail_on is not None:
        raise Blocked(f"{what} (not a format modelward recognises, so it was not loaded)", report)


def is_path(f: Any) -> bool:
    return isinstance(f, (str, bytes, os.PathLike)) and not isinstance(f, bytes)


def read_file_object(f: Any) -> Tuple[bytes, Optional[int]]:
    """Reads what is left of a binary file object: (bytes, start position or None)."""
    start: Optional[int] = None
    try:
        if f.seekable():
            start = f.tell()
    except (AttributeError, OSError, ValueError):
        start = None
    data = f.read(MAX_FILE_OBJECT_BYTES + 1)
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError(f"the file object returned {type(data).__name__}, not bytes: open it in binary mode ('rb')")
    if len(data) > MAX_FILE_OBJECT_BYTES:
        raise Error(f"file object larger than {MAX_FILE_OBJECT_BYTES} bytes: pass its path to be scanned in place")
    return bytes(data), start


def guarded_load(
    loader: Callable[..., T],
    f: Any,
    args: Tuple[Any, ...],
    kwargs: Dict[str, Any],
    *,
    what: str,
    fail_on: Optional[str],
    config: Optional[PathLike],
    on_path: Optional[Callable[[PathLike, Dict[str, Any]], None]] = None,
) -> T:
    """Scans `f` (a path or a binary file object), then calls `loader(f, *args, **kwargs)`."""
    if _depth() > 0:
        return loader(f, *args, **kwargs)
    if is_path(f):
        if not os.path.exists(f):  # the loader's own error, without loading anything
            raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), os.fspath(f))
        _judge(f, f"{what} {os.fspath(f)!s}", fail_on, config)
        if on_path is not None:
            on_path(f, kwargs)
        with _loading():
            return loader(f, *args, **kwargs)
    data, start = read_file_object(f)
    name = getattr(f, "name", None)
    _judge(data, what, fail_on, config, name=name if isinstance(name, str) else None)
    buf = io.BytesIO(data)
    try:
        with _loading():
            return loader(buf, *args, **kwargs)
    finally:
        if start is not None:
            f.seek(start + buf.tell())


def guarded_loads(loader: Callable[..., T], data: Any, args: Tuple[Any, ...], kwargs: Dict[str, Any], *, what: str, fail_on: Optional[str], config: Optional[PathLike]) -> T:
    if _depth() == 0:
        _judge(bytes(data), what, fail_on, config)
    with _loading():
        return loader(data, *args, **kwargs)


# --- install / uninstall -------------------------------------------------------------------

def _hub_download(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def hf_hub_download(*args: Any, **kwargs: Any) -> Any:
        path = original(*args, **kwargs)
        if _depth() == 0:
            fail_on, config = _options(None, None)
            check(path, what=f"download {path}", fail_on=fail_on, config=config)
        return path

    return hf_hub_download


def _snapshot_download(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def snapshot_download(*args: Any, **kwargs: Any) -> Any:
        with _loading():  # its per-file downloads are judged with the whole folder
            folder = original(*args, **kwargs)
        if _depth() == 0:
            fail_on, config = _options(None, None)
            check(folder, what=f"download {folder}", fail_on=fail_on, config=config)
        return folder

    return snapshot_download


def _patches() -> List[Tuple[str, str, Callable[[Any], Any]]]:
    """(module, attribute, make the replacement from the original)."""
    from . import joblib as mw_joblib
    from . import numpy as mw_numpy
    from . import pickle as mw_pickle
    from . import torch as mw_torch

    def use(f: Callable[..., Any]) -> Callable[[Any], Any]:
        def make(original: Any) -> Any:
            # A new function per patch, looking like the original (name, docstring).
            @functools.wraps(original)
            def patched(*args: Any, **kwargs: Any) -> Any:
                return f(*args, **kwargs)

            return patched

        return make

    return [
        ("pickle", "load", use(mw_pickle.load)),
        ("pickle", "loads", use(mw_pickle.loads)),
        ("numpy", "load", use(mw_numpy.load)),
        ("joblib", "load", use(mw_joblib.load)),
        ("joblib.numpy_pickle", "load", use(mw_joblib.load)),
        ("torch", "load", use(mw_torch.load)),
        ("torch.serialization", "load", use(mw_torch.load)),
        ("huggingface_hub", "hf_hub_download", _hub_download),
        ("huggingface_hub.file_download", "hf_hub_download", _hub_download),
        ("huggingface_hub", "snapshot_download", _snapshot_download),
        ("huggingface_hub._snapshot_download", "snapshot_download", _snapshot_download),
    ]


def _importable(module: str) -> bool:
    top = module.split(".")[0]
    try:
        return importlib.util.find_spec(top) is not None
    except (ImportError, ValueError):
        return False


def install(*, fail_on: Optional[str] = None, config: Optional[PathLike] = None) -> List[str]:
    """Patches pickle.load/loads, numpy.load, joblib.load, torch.load and huggingface_hub's
    hf_hub_download/snapshot_download (those installed; each is imported) so that existing
    code scans before it loads. Returns what was patched. Calling it again only updates the
    settings. Code that took a reference before (``from pickle import load``) is not patched.
    """
    settings = {"fail_on": check_fail_on(fail_on), "config": config}
    patched = []
    with _lock:
        _settings.update(settings)
        for module, name, make in _patches():
            if (module, name) in _originals:
                patched.append(f"{module}.{name}")
                continue
            if not _importable(module):
                continue
            try:
                mod = importlib.import_module(module)
                original = getattr(mod, name)
            except (ImportError, AttributeError):
                continue
            _originals[(module, name)] = (original, name in vars(mod))
            replacement = make(original)
            replacement.__modelward_original__ = original
            setattr(mod, name, replacement)
            patched.append(f"{module}.{name}")
    return patched


def uninstall() -> None:
    """Puts every patched loader back exactly as it was."""
    with _lock:
        for (module, name), (original, in_dict) in list(_originals.items()):
            mod = importlib.import_module(module)
            if in_dict:
                setattr(mod, name, original)
            else:  # it came from the module's __getattr__ (a lazy import): leave it to that again
                delattr(mod, name)
            del _originals[(module, name)]
        _settings.update({"fail_on": None, "config": None})


def installed() -> bool:
    """Whether install() is in effect."""
    with _lock:
        return bool(_originals)


@contextlib.contextmanager
def guard(*, fail_on: Optional[str] = None, config: Optional[PathLike] = None) -> Iterator[List[str]]:
    """``with modelward.guard(): ...`` — install() for the block, then restore (unless it was
    installed before the block, in which case it stays, with its settings)."""
    with _lock:
        was = installed()
        before = dict(_settings)
    patched = install(fail_on=fail_on, config=config)
    try:
        yield patched
    finally:
        if was:
            with _lock:
                _settings.update(before)
        else:
            uninstall()
