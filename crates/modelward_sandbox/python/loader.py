"""modelward detonation loader. Runs inside the bubblewrap sandbox only (docs/sandbox.md).

Order matters: the audit hook is installed before anything of the sample is read, the limits are
set before the sample is opened, and recording is armed just before the real loader runs, so what
the interpreter and the framework do to start up is not blamed on the sample.

Events are JSON lines on a private copy of the original stdout (the parent reads it, bounded);
the sample's own stdout goes to stderr. A sample that knows about this script can forge or
suppress events: this is evidence that only adds to the static verdict, never a clearance.
"""
import sys
import os

_CFG = None
_ARMED = [False]
_BUSY = [False]
_SENT = [0]  # events sent
_SEEN = set()
_EV_FD = [-1]


def _render(x, budget=None, depth=0):
    """A bounded rendering that never calls code of the sample (no repr/str of unknown types)."""
    budget = budget or _CFG["max_arg_chars"]
    t = type(x)
    try:
        if x is None or t is bool or t is float:
            r = repr(x)
        elif t is int:
            r = repr(x) if -(10**30) < x < 10**30 else "<int>"
        elif isinstance(x, str):
            r = str.__repr__(str.__getitem__(x, slice(0, budget)))
            if str.__len__(x) > budget:
                r += "…"
        elif isinstance(x, (bytes, bytearray)):
            base = bytes if isinstance(x, bytes) else bytearray
            r = bytes.__repr__(bytes(base.__getitem__(x, slice(0, budget))))
            if base.__len__(x) > budget:
                r += "…"
        elif (t is tuple or t is list) and depth < 3:
            parts = [_render(i, budget, depth + 1) for i in list.__getitem__(list(x), slice(0, 8))]
            if len(x) > 8:
                parts.append("…")
            o, c = ("(", ")") if t is tuple else ("[", "]")
            r = o + ", ".join(parts) + ("," if t is tuple and len(x) == 1 else "") + c
        elif t is dict and depth < 3:
            items = list(dict.items(x))[:8]
            r = "{" + ", ".join(_render(k, budget, depth + 1) + ": " + _render(v, budget, depth + 1) for k, v in items)
            r += (", …}" if len(x) > 8 else "}")
        elif t is _CODE_TYPE:
            r = "<code %s from %s>" % (_render(x.co_name, 80), _render(x.co_filename, 200))
        else:
            r = "<%s>" % (type.__getattribute__(t, "__qualname__"),)
    except Exception:
        r = "<unrenderable>"
    if len(r) > budget * 2:
        r = r[: budget * 2] + "…"
    return r


_CODE_TYPE = type(_render.__code__)


def _write(line):
    data = line.encode("utf-8", "replace")
    fd = _EV_FD[0]
    while data:
        try:
            n = os.write(fd, data)
        except OSError:
            return
        data = data[n:]


def emit(kind, event, args=(), once=False):
    """Sends one event; bounded in count and size (the parent bounds them again)."""
    rendered = [_render(a) for a in list(args)[:8]]
    if once:
        key = (kind, event, tuple(rendered))
        if key in _SEEN:
            return
        _SEEN.add(key)
    if _SENT[0] >= _CFG["max_events"]:
        if _SENT[0] == _CFG["max_events"]:
            _SENT[0] += 1
            _write('{"kind":"truncated","event":"events","args":[]}\n')
        return
    _SENT[0] += 1
    line = _json.dumps({"kind": kind, "event": event, "args": rendered}, ensure_ascii=True)
    if len(line) > _CFG["max_line"]:
        rendered = [a[:100] for a in rendered[:4]] + ["…"]
        line = _json.dumps({"kind": kind, "event": event, "args": rendered}, ensure_ascii=True)
    _write(line + "\n")


# What each audit event is. Events not named here are not recorded.
_PROCESS = {"os.system", "os.exec", "os.posix_spawn", "os.spawn", "os.fork", "os.forkpty",
            "subprocess.Popen", "os.startfile", "pty.spawn"}
_SIGNAL = {"os.kill", "os.killpg", "signal.pthread_kill"}
_NETWORK = {"socket.__new__", "socket.connect", "socket.bind", "socket.getaddrinfo",
            "socket.gethostbyname", "socket.gethostbyaddr", "socket.getnameinfo", "socket.sendto",
            "socket.sendmsg", "urllib.Request", "http.client.connect", "ftplib.connect",
            "smtplib.connect", "imaplib.open", "poplib.connect", "nntplib.connect",
            "telnetlib.Telnet.open", "webbrowser.open"}
_CODE = {"exec", "compile", "code.__new__", "marshal.loads", "marshal.load"}
_DLOPEN = {"ctypes.dlopen"}
_MODIFY = {"os.remove", "os.rmdir", "os.rename", "os.mkdir", "os.chmod", "os.chown", "os.symlink",
           "os.link", "os.truncate", "os.utime", "shutil.rmtree", "shutil.copyfile", "shutil.move",
           "shutil.copymode", "shutil.copystat", "shutil.chown", "shutil.make_archive",
           "shutil.unpack_archive"}
_LIST = {"os.listdir", "os.scandir", "glob.glob"}
_TAMPER = {"sys.addaudithook", "sys.setprofile", "sys.settrace", "sys.monitoring.register_callback"}
_ENV = {"os.putenv", "os.unsetenv"}
# Importing these during a load is worth a note (the module names a capability, not an act).
_DANGEROUS_MODULES = {
    "subprocess", "socket", "_socket", "ctypes", "_ctypes", "pty", "runpy", "code", "codeop", "pdb",
    "bdb", "cProfile", "profile", "trace", "timeit", "webbrowser", "urllib.request", "http.client",
    "ftplib", "smtplib", "telnetlib", "imaplib", "poplib", "nntplib", "requests", "aiohttp",
    "httpx", "paramiko", "multiprocessing", "asyncio.subprocess", "pip", "ensurepip", "venv",
    "idlelib", "pydoc", "distutils", "lib2to3", "ssl", "_ssl", "http.server", "xmlrpc.client",
    "zipimport", "shutil", "pickle", "_pickle", "marshal", "importlib", "builtins", "posix", "nt",
}

_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND


def _path(p):
    if isinstance(p, bytes):
        p = p.decode("utf-8", "replace")
    if not isinstance(p, str):
        return None
    p = str.__getitem__(p, slice(0, 4096))
    try:
        return os.path.normpath(os.path.join(os.getcwd(), p))
    except Exception:
        return p


def _under(path, roots):
    return any(path == r or path.startswith(r.rstrip("/") + "/") for r in roots)


def _where_write(path):
    # The interpreter's folders are read-only binds even when they live under /tmp.
    if _under(path, _CFG["quiet_reads"]):
        return "write"
    return "write-private" if _under(path, _CFG["private_dirs"]) else "write"


def _inside_import():
    """Whether the import machinery is on the stack: modules imported during the load run
    (and unmarshal, and build namedtuples) through it."""
    try:
        f = sys._getframe(3)
        for _ in range(200):
            if f is None:
                return False
            if f.f_code.co_filename.startswith("<frozen importlib"):
                return True
            f = f.f_back
    except Exception:
        pass
    return False


def _caller_is_library():
    try:
        return _library_frame(sys._getframe(3))
    except Exception:
        return False


def _hook(event, args):
    if not _ARMED[0] or _BUSY[0]:
        return
    _BUSY[0] = True
    try:
        _classify(event, args)
    except Exception:
        pass
    finally:
        _BUSY[0] = False


def _classify(event, args):
    if event in _PROCESS:
        emit("process", event, args)
    elif event in _NETWORK:
        emit("network", event, args, once=event.startswith("socket.get"))
    elif event == "open":
        path = _path(args[0]) if args else None
        if path is None:
            return
        mode = args[1] if len(args) > 1 and isinstance(args[1], str) else ""
        flags = args[2] if len(args) > 2 and type(args[2]) is int else 0
        writes = any(c in mode for c in "wax+") or (flags & _WRITE_FLAGS) != 0
        if writes and path in ("/dev/null", "/dev/stdout", "/dev/stderr"):
            return
        if writes:
            emit(_where_write(path), "open", (path, mode or flags))
        elif not _under(path, _CFG["quiet_reads"]) and not _under(path, _CFG["private_dirs"]):
            emit("read", "open", (path,), once=True)
    elif event in _MODIFY:
        path = _path(args[0]) if args else None
        emit(_where_write(path) if path else "write", event, args)
    elif event in _LIST:
        path = _path(args[0]) if args and args[0] is not None else os.getcwd()
        if path and not _under(path, _CFG["quiet_reads"]) and not _under(path, _CFG["private_dirs"]):
            emit("read", event, (path,), once=True)
    elif event in _CODE:
        # Code run by an import is the import event's business, not dynamic code of the sample.
        if _inside_import():
            return
        # Library code compiles too (numpy parses .npy headers with ast.literal_eval); what it
        # compiles only runs through exec, which is recorded whoever calls it.
        if event == "compile" and _caller_is_library():
            return
        emit("code", event, args[:2] if event == "compile" else args)
    elif event in _DLOPEN:
        emit("dlopen", event, args)
    elif event in _SIGNAL:
        emit("signal", event, args)
    elif event in _ENV:
        emit("env", event, args[:1])
    elif event in _TAMPER:
        emit("tamper", event, (), once=True)
    elif event == "import":
        # Only what the load asked for itself, not what those modules import in turn.
        if _inside_import():
            return
        name = args[0] if args and isinstance(args[0], str) else ""
        top = name.split(".")[0]
        if name in _DANGEROUS_MODULES or top in _DANGEROUS_MODULES:
            emit("import", "import", (name,), once=True)
    elif event == "pickle.find_class":
        if len(args) >= 2:
            emit("global", "pickle.find_class", args[:2], once=True)


def _library_frame(f):
    """Whether a frame is library code: a frozen stdlib module or a real file under the
    interpreter's paths (not this script, not code compiled from a string)."""
    name = f.f_code.co_filename
    if name.startswith("<frozen "):
        return True
    return not name.startswith("<") and name != __file__ and _under(name, _CFG["quiet_reads"])


def _env_read(key):
    """Environment reads by library code are its business; reads the sample causes are not."""
    if not _ARMED[0] or _BUSY[0]:
        return
    _BUSY[0] = True
    try:
        f = sys._getframe(2)
        skip = (os.__file__, _abc_file, "<frozen os>", "<frozen _collections_abc>")
        while f is not None and f.f_code.co_filename in skip:
            f = f.f_back
        if f is not None and _library_frame(f):
            return
        emit("env", "os.environ", (key,), once=True)
    except Exception:
        pass
    finally:
        _BUSY[0] = False


def main():
    global _CFG, _json, _abc_file
    _CFG = {"max_arg_chars": 200, "max_events": 200, "max_line": 4096}
    # Hook before anything else: the sample has not been opened yet.
    sys.addaudithook(_hook)
    import json as _json_mod
    _json = _json_mod
    _CFG.update(_json.loads(sys.argv[1]))
    # The event channel is a private, non-inheritable copy of stdout; the sample's stdout goes
    # to stderr and its stdin is empty.
    _EV_FD[0] = os.dup(1)
    os.dup2(2, 1)
    null = os.open("/dev/null", os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    sys.path[:] = _CFG["sys_path"]
    import resource
    lim = _CFG["limits"]
    # CPU: SIGXCPU at the soft limit (reported as the CPU limit), SIGKILL a second later.
    for name, soft, hard in (("RLIMIT_AS", lim["address_space"], lim["address_space"]),
                             ("RLIMIT_CPU", lim["cpu_seconds"], lim["cpu_seconds"] + 1),
                             ("RLIMIT_FSIZE", lim["file_size"], lim["file_size"]),
                             ("RLIMIT_CORE", 0, 0)):
        try:
            resource.setrlimit(getattr(resource, name), (soft, hard))
        except (ValueError, OSError) as e:
            emit("error", "setrlimit", (name, type(e).__name__))
    import _collections_abc
    _abc_file = _collections_abc.__file__
    _wrap_environ()
    import pickle
    import io
    import zipfile
    import struct
    loader = _CFG["loader"]
    path = _CFG["sample"]
    run = _prepare(loader, path, pickle, io, zipfile, struct)
    emit("start", loader, (path,))
    _ARMED[0] = True
    try:
        result = run()
        _ARMED[0] = False
        emit("result", "loaded", (result,))
    except MemoryError:
        _ARMED[0] = False
        emit("limit", "MemoryError", ())
    except BaseException as e:  # SystemExit and KeyboardInterrupt from a sample too
        _ARMED[0] = False
        kind = "limit" if isinstance(e, OSError) and getattr(e, "errno", None) == 27 else "error"
        emit(kind, type.__getattribute__(type(e), "__qualname__"), tuple(e.args)[:4])
    emit("done", "exit", ())
    # Threads the sample started are not waited for.
    os._exit(0)


def _wrap_environ():
    base = type(os.environ)

    class RecordingEnviron(base):
        def __getitem__(self, key):
            _env_read(key)
            return base.__getitem__(self, key)

        def __iter__(self):
            _env_read("*")
            return base.__iter__(self)

        def copy(self):
            _env_read("*")
            return base.copy(self)

    rec = RecordingEnviron.__new__(RecordingEnviron)
    rec.__dict__.update(os.environ.__dict__)
    os.environ = rec


# --- stand-ins for framework classes that are not importable --------------------------------

class _StandIn:
    """Accepts whatever a framework class would; records that it stood in. Never used for a
    name that exists: dangerous names always resolve to the real thing."""
    _mw_name = "?"

    def __init__(self, *args, **kwargs):
        pass

    def __call__(self, *args, **kwargs):
        return _standin("call", type(self)._mw_name)()

    # *args: BUILD and friends may reach these on the class itself as well as on instances.
    def __setstate__(*args):
        pass

    def __setitem__(*args):
        pass

    def __getitem__(self, key):
        return _standin("item", type(self)._mw_name)()

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        return _standin(type(self)._mw_name, name)

    def append(*args):
        pass

    def extend(*args):
        pass


def _standin(module, name):
    qual = "%s.%s" % (module, name)
    cls = type(str(name)[:100] or "StandIn", (_StandIn,), {"_mw_name": qual})
    if module not in ("call", "item"):
        emit("standin", qual, (), once=True)
    return cls


# Stand-ins only for the ecosystems model files come from; any other missing name fails the
# load as it would for the user (the real loader raises too).
_FRAMEWORKS = {
    "torch", "torchvision", "torchaudio", "numpy", "scipy", "sklearn", "pandas", "joblib", "keras",
    "tensorflow", "transformers", "tokenizers", "safetensors", "accelerate", "diffusers", "timm",
    "xgboost", "lightgbm", "catboost", "jax", "jaxlib", "flax", "optax", "statsmodels", "gensim",
    "spacy", "fastai", "lightning", "pytorch_lightning", "sentence_transformers", "peft",
}


def _unpickler_class(pickle):
    class RecordingUnpickler(pickle.Unpickler):
        def find_class(self, module, name):
            try:
                return super().find_class(module, name)
            except (ImportError, AttributeError):
                if str(module).split(".")[0] not in _FRAMEWORKS:
                    raise
                return _standin(module, name)

    return RecordingUnpickler


def _load_pickles(pickle, f, persistent=False, max_pickles=16):
    """Every pickle in the stream, one after another, as a reader of several would."""
    cls = _unpickler_class(pickle)
    last = None
    for _ in range(max_pickles):
        u = cls(f)
        if persistent:
            u.persistent_load = lambda pid: _standin("persistent", "storage")()
        last = u.load()
        here = f.tell()
        if not f.read(1):
            break
        f.seek(here)
    return last


def _prepare(loader, path, pickle, io, zipfile, struct):
    """Imports the framework (before recording is armed) and returns the load to run."""

    def plain():
        with open(path, "rb") as f:
            return _load_pickles(pickle, f)

    def zip_pickles():
        out = None
        with zipfile.ZipFile(path) as z:
            # The members torch itself unpickles (data.pkl; constants.pkl in TorchScript).
            for info in z.infolist()[:64]:
                if info.filename.endswith(".pkl"):
                    with z.open(info) as m:
                        out = _load_pickles(pickle, io.BytesIO(m.read()), persistent=True)
        return out

    def npy_fallback(f):
        magic = f.read(6)
        if magic != b"\x93NUMPY":
            return None
        major = f.read(2)[0]
        hlen = struct.unpack("<H" if major == 1 else "<I", f.read(2 if major == 1 else 4))[0]
        header = f.read(hlen)
        if b"O'" not in header and b'O"' not in header:  # 'descr': '|O' and friends
            return "array"
        return _load_pickles(pickle, f, max_pickles=1)

    fw = None
    try:
        if loader == "torch":
            import torch as fw
            return lambda: fw.load(path, weights_only=False, map_location="cpu")
        if loader == "joblib":
            import joblib as fw
            return lambda: fw.load(path)
        if loader == "numpy":
            import numpy as fw

            def np_load():
                r = fw.load(path, allow_pickle=True)
                if hasattr(r, "files"):  # npz members are loaded when read
                    return [r[k] for k in list(r.files)[:256]]
                return r
            return np_load
        if loader == "keras":
            import keras as fw
            return lambda: fw.models.load_model(path, safe_mode=False)
        if loader == "pandas":
            import pandas as fw
            return lambda: fw.read_pickle(path)
    except ImportError:
        if loader != "keras":
            emit("fallback", loader, ("not importable: plain pickle with stand-ins",))
    if loader in ("torch", "numpy") and zipfile.is_zipfile(path):
        if loader == "numpy":
            def npz_fallback():
                with zipfile.ZipFile(path) as z:
                    for info in z.infolist()[:256]:
                        with z.open(info) as m:
                            npy_fallback(io.BytesIO(m.read()))
            return npz_fallback
        return zip_pickles
    if loader == "numpy":
        def npy():
            with open(path, "rb") as f:
                return npy_fallback(f)
        return npy
    if loader == "torch":
        def legacy():
            with open(path, "rb") as f:
                return _load_pickles(pickle, f, persistent=True, max_pickles=5)  # as torch reads them
        return legacy
    if loader == "keras":
        emit("unavailable", "keras", ("keras is not importable: nothing was loaded",))
        return lambda: None
    return plain


if __name__ == "__main__":
    main()
