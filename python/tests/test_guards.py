"""Load guards against the real libraries: the payload never runs, clean files load as usual."""

from __future__ import annotations

import io
import os
import pathlib
import pickle

import joblib
import numpy as np
import pytest

import modelward
from conftest import PAYLOADS, DEMO


@pytest.mark.parametrize("payload", PAYLOADS, ids=lambda p: p.__name__)
def test_payloads_really_run(payload: type, marker: pathlib.Path, tmp_path: pathlib.Path) -> None:
    """Without a guard each payload does create its marker: the 'not run' checks can fail."""
    pickle.loads(pickle.dumps(payload(marker)))
    assert marker.exists()
    marker.unlink()
    np.load(_npy_with(payload(marker), tmp_path / "p.npy"), allow_pickle=True)
    assert marker.exists()
    marker.unlink()
    joblib.load(_joblib_with(payload(marker), tmp_path / "p.joblib"))
    assert marker.exists()


def _npy_with(obj: object, path: pathlib.Path) -> pathlib.Path:
    np.save(path, np.array([1, obj, "x"], dtype=object), allow_pickle=True)
    return path


def _joblib_with(obj: object, path: pathlib.Path, compress: int = 0) -> pathlib.Path:
    joblib.dump({"weights": np.arange(10.0), "hook": obj}, path, compress=compress)
    return path


@pytest.mark.parametrize("payload", PAYLOADS, ids=lambda p: p.__name__)
def test_pickle_guard_blocks(payload: type, marker: pathlib.Path, tmp_path: pathlib.Path) -> None:
    data = pickle.dumps(payload(marker))
    with pytest.raises(modelward.Blocked) as e:
        modelward.pickle.loads(data)
    assert e.value.report.verdict == "malicious"
    assert e.value.report.severity == "critical"
    assert not marker.exists()
    path = tmp_path / "evil.pkl"
    path.write_bytes(data)
    with open(path, "rb") as f, pytest.raises(modelward.Blocked):
        modelward.pickle.load(f)
    assert not marker.exists()
    # Protocol 0 (text) pickles too.
    with pytest.raises(modelward.Blocked):
        modelward.pickle.loads(pickle.dumps(payload(marker), protocol=0))
    assert not marker.exists()


def test_pickle_guard_loads_clean_and_keeps_position(tmp_path: pathlib.Path) -> None:
    a = {"a": [1, 2.5, "x"], "b": (None, True)}
    b = [b"bytes", {3, 4}]
    assert modelward.pickle.loads(pickle.dumps(a)) == pickle.loads(pickle.dumps(a))
    path = tmp_path / "two.pkl"
    with open(path, "wb") as f:
        pickle.dump(a, f)
        pickle.dump(b, f)
    with open(path, "rb") as f:
        assert modelward.pickle.load(f) == a
        # The file is left after the first pickle, as pickle.load leaves it.
        assert modelward.pickle.load(f) == b
        assert f.read() == b""


@pytest.mark.parametrize("payload", PAYLOADS, ids=lambda p: p.__name__)
def test_numpy_guard_blocks(payload: type, marker: pathlib.Path, tmp_path: pathlib.Path) -> None:
    path = _npy_with(payload(marker), tmp_path / "evil.npy")
    with pytest.raises(modelward.Blocked):
        modelward.numpy.load(path, allow_pickle=True)
    with open(path, "rb") as f, pytest.raises(modelward.Blocked):
        modelward.numpy.load(f, allow_pickle=True)
    npz = tmp_path / "evil.npz"
    np.savez(npz, ok=np.arange(3), bad=np.array([payload(marker)], dtype=object))
    with pytest.raises(modelward.Blocked):
        modelward.numpy.load(npz, allow_pickle=True)["bad"]
    assert not marker.exists()


def test_numpy_guard_loads_clean(tmp_path: pathlib.Path) -> None:
    arr = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    path = tmp_path / "a.npy"
    np.save(path, arr)
    np.testing.assert_array_equal(modelward.numpy.load(path), np.load(path))
    np.testing.assert_array_equal(modelward.numpy.load(path, mmap_mode="r"), arr)
    with open(path, "rb") as f:
        np.testing.assert_array_equal(modelward.numpy.load(f), arr)
    npz = tmp_path / "a.npz"
    np.savez_compressed(npz, x=arr, y=np.array([1, 2]))
    with modelward.numpy.load(npz) as got, np.load(npz) as want:
        assert sorted(got.files) == sorted(want.files)
        for k in want.files:
            np.testing.assert_array_equal(got[k], want[k])
    np.testing.assert_array_equal(modelward.numpy.load(DEMO / "clean_array.npy"), np.load(DEMO / "clean_array.npy"))


@pytest.mark.parametrize("compress", [0, 3], ids=["raw", "zlib"])
@pytest.mark.parametrize("payload", PAYLOADS, ids=lambda p: p.__name__)
def test_joblib_guard_blocks(payload: type, compress: int, marker: pathlib.Path, tmp_path: pathlib.Path) -> None:
    path = _joblib_with(payload(marker), tmp_path / "evil.joblib", compress)
    with pytest.raises(modelward.Blocked) as e:
        modelward.joblib.load(path)
    assert any(f.severity == "critical" for f in e.value.report.findings)
    with open(path, "rb") as f, pytest.raises(modelward.Blocked):
        modelward.joblib.load(f)
    assert not marker.exists()


def test_joblib_guard_loads_clean(tmp_path: pathlib.Path) -> None:
    obj = {"weights": np.linspace(0, 1, 50), "names": ["a", "b"], "n": 3}
    path = tmp_path / "clean.joblib"
    joblib.dump(obj, path, compress=3)
    got, want = modelward.joblib.load(path), joblib.load(path)
    assert got.keys() == want.keys() and got["names"] == want["names"] and got["n"] == want["n"]
    np.testing.assert_array_equal(got["weights"], want["weights"])


def test_threshold_and_fail_on(marker: pathlib.Path, tmp_path: pathlib.Path) -> None:
    # A class that is not on the reviewed list is a medium finding: below the default "high".
    custom = (DEMO / "custom_class.pkl").read_bytes()
    report = modelward.scan(custom)
    assert report.verdict == "suspicious" and report.severity == "medium" and not report.blocked
    with pytest.raises(modelward.Blocked):
        modelward.pickle.loads(custom, fail_on="medium")
    with pytest.raises(ValueError, match="fail_on"):
        modelward.pickle.loads(custom, fail_on="sometimes")
    # fail_on="never" lets even a critical file through to the loader: the caller's choice.
    data = pickle.dumps(PAYLOADS[1](marker))
    modelward.pickle.loads(data, fail_on="never")
    assert marker.exists()


def test_unrecognised_content_is_not_loaded() -> None:
    with pytest.raises(modelward.Blocked, match="not a format modelward recognises"):
        modelward.pickle.loads(b"\x00\x01 definitely not a pickle")


def test_missing_path_is_the_loaders_error(tmp_path: pathlib.Path) -> None:
    with pytest.raises(FileNotFoundError):
        modelward.numpy.load(tmp_path / "missing.npy")


def test_text_mode_file_is_refused(tmp_path: pathlib.Path) -> None:
    p = tmp_path / "t.pkl"
    p.write_bytes(pickle.dumps(1, protocol=0))
    with open(p) as f, pytest.raises(TypeError, match="binary mode"):
        modelward.pickle.load(f)  # type: ignore[arg-type]


def test_install_protects_unmodified_code(marker: pathlib.Path, tmp_path: pathlib.Path) -> None:
    originals = (pickle.load, pickle.loads, np.load, joblib.load)
    evil_pkl = tmp_path / "evil.pkl"
    evil_pkl.write_bytes(pickle.dumps(PAYLOADS[0](marker)))
    evil_npy = _npy_with(PAYLOADS[1](marker), tmp_path / "evil.npy")
    evil_joblib = _joblib_with(PAYLOADS[0](marker), tmp_path / "evil.joblib", 3)

    patched = modelward.install()
    assert {"pickle.load", "pickle.loads", "numpy.load", "joblib.load"} <= set(patched)
    assert modelward.installed()
    # Code that knows nothing of modelward, calling the libraries as usual:
    with open(evil_pkl, "rb") as f, pytest.raises(modelward.Blocked):
        pickle.load(f)
    with pytest.raises(modelward.Blocked):
        pickle.loads(evil_pkl.read_bytes())
    with pytest.raises(modelward.Blocked):
        np.load(evil_npy, allow_pickle=True)
    with pytest.raises(modelward.Blocked):
        joblib.load(evil_joblib)
    assert not marker.exists()
    # ...and clean files still load, the same as before.
    clean = tmp_path / "clean.npy"
    np.save(clean, np.arange(5))
    np.testing.assert_array_equal(np.load(clean), np.arange(5))
    assert pickle.loads(pickle.dumps({"k": 1})) == {"k": 1}
    assert np.load.__name__ == "load" and np.load.__modelward_original__ is originals[2]  # type: ignore[attr-defined]

    modelward.uninstall()
    assert not modelward.installed()
    assert (pickle.load, pickle.loads, np.load, joblib.load) == originals
    assert all(a is b for a, b in zip((pickle.load, pickle.loads, np.load, joblib.load), originals))
    assert joblib.numpy_pickle.load is originals[3]


def test_guard_context_manager(marker: pathlib.Path) -> None:
    original = pickle.loads
    data = pickle.dumps(PAYLOADS[0](marker))
    with modelward.guard(fail_on="critical") as patched:
        assert "pickle.loads" in patched
        with pytest.raises(modelward.Blocked) as e:
            pickle.loads(data)
        assert e.value.report.fail_on == "critical"
    assert pickle.loads is original
    assert not marker.exists()
    # Nested in install(): the block leaves it installed, with install()'s settings.
    modelward.install(fail_on="medium")
    with modelward.guard(fail_on="critical"):
        pass
    assert modelward.installed()
    with pytest.raises(modelward.Blocked):
        pickle.loads((DEMO / "custom_class.pkl").read_bytes())  # medium: blocked at "medium"
    modelward.uninstall()
    assert pickle.loads is original


def test_torch_guard() -> None:
    torch = pytest.importorskip(
        "torch", reason="torch is not installed (too large for CI); run by hand: docs/python.md"
    )
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        marker = pathlib.Path(d) / "ran"
        clean = pathlib.Path(d) / "clean.pt"
        state = {"w": torch.arange(6.0).reshape(2, 3), "b": torch.zeros(3)}
        torch.save(state, clean)
        got = modelward.torch.load(clean)
        assert got.keys() == state.keys() and all(torch.equal(got[k], state[k]) for k in state)
        evil = pathlib.Path(d) / "evil.pt"
        torch.save({"w": torch.zeros(2), "hook": PAYLOADS[0](marker)}, evil)
        with pytest.raises(modelward.Blocked):
            modelward.torch.load(evil, weights_only=False)
        with open(evil, "rb") as f, pytest.raises(modelward.Blocked):
            modelward.torch.load(f, weights_only=False)
        assert not marker.exists()
        assert modelward._native.tensors_only(clean) and not modelward._native.tensors_only(evil)
        original = torch.load
        modelward.install()
        with pytest.raises(modelward.Blocked):
            torch.load(evil, weights_only=False)
        modelward.uninstall()
        assert torch.load is original
        assert not marker.exists()


def test_file_objects_from_memory() -> None:
    buf = io.BytesIO(pickle.dumps([1, 2, 3]))
    assert modelward.pickle.load(buf) == [1, 2, 3]
    assert buf.tell() == len(buf.getvalue())


def test_module_names_do_not_shadow_the_libraries() -> None:
    import modelward.numpy as mw_numpy
    import modelward.pickle as mw_pickle

    assert mw_pickle is not pickle and mw_numpy is not np
    assert os.path.basename(pickle.__file__ or "") == "pickle.py"
