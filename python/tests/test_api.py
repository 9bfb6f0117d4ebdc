"""modelward.scan, scan_many, explain, convert and the command the wheel installs."""

from __future__ import annotations

import json
import pathlib
import pickle
import shutil
import subprocess
import sys

import numpy as np
import pytest

import modelward
from conftest import DEMO, PAYLOADS, FileServer


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("modelward")
    assert exe, "the wheel's modelward command is not on PATH"
    return subprocess.run([exe, *args], capture_output=True, text=True, timeout=120)


def test_version_and_exceptions() -> None:
    assert modelward.__version__ == _cli("--version").stdout.split()[1]
    for e in (modelward.ScanError, modelward.Blocked, modelward.ConfigError, modelward.ConvertError, modelward.ExplainError):
        assert issubclass(e, modelward.Error)
    assert issubclass(modelward.ConvertRefused, modelward.ConvertError)


def test_scan_a_file() -> None:
    r = modelward.scan(DEMO / "model.bin")
    assert (r.verdict, r.severity, r.blocked, r.fail_on) == ("malicious", "critical", True, "high")
    f = r.findings[0]
    assert f.rule == "PKL102" and f.severity == "critical" and f.confidence in ("low", "medium", "high")
    assert f.location.path.endswith("model.bin") and f.location.offset is not None
    assert "system" in f.message and str(f.location) in str(f)
    assert r.bytes_read == (DEMO / "model.bin").stat().st_size
    assert len(r.files) == 1 and r.files[0].format == "pickle"
    clean = modelward.scan(str(DEMO / "clean_array.npy"))
    assert (clean.verdict, clean.severity, clean.findings, clean.blocked) == ("clean", None, [], False)


def test_scan_a_directory_matches_the_cli() -> None:
    r = modelward.scan(DEMO)
    assert r.verdict == "malicious" and r.blocked
    assert sorted(pathlib.Path(f.path).name for f in r.files) == sorted(
        p.name for p in DEMO.iterdir() if p.is_file()
    )
    cli = _cli("scan", "--no-progress", "--format", "json", str(DEMO))
    assert cli.returncode == 1
    want, got = json.loads(cli.stdout), json.loads(r.to_json())
    for doc in (want, got):
        doc["summary"].pop("elapsed_ms")
    assert got == want
    assert r.summary["malicious"] == 2 and r.summary["suspicious"] == 1


def test_scan_bytes_and_fail_on(marker: pathlib.Path) -> None:
    data = pickle.dumps(PAYLOADS[0](marker))
    r = modelward.scan(data, name="upload.pkl")
    assert r.files[0].path == "upload.pkl" and r.verdict == "malicious"
    assert modelward.scan(bytearray(data)).files[0].path == "<bytes>"
    assert not modelward.scan(data, fail_on="never").blocked
    assert modelward.scan(data, fail_on="critical").blocked
    assert not marker.exists()
    with pytest.raises(TypeError):
        modelward.scan(123)  # type: ignore[arg-type]


def test_scan_errors_raise(tmp_path: pathlib.Path) -> None:
    with pytest.raises(modelward.ScanError) as e:
        modelward.scan(tmp_path / "nope.pt")
    assert "nope.pt" in str(e.value) and e.value.report.verdict == "error"


def test_scan_many_in_order(tmp_path: pathlib.Path) -> None:
    paths = [DEMO / "clean_array.npy", tmp_path / "missing.pkl", DEMO / "model.bin", DEMO / "custom_class.pkl"]
    reports = modelward.scan_many(paths)
    assert [r.verdict for r in reports] == ["clean", "error", "malicious", "suspicious"]
    assert [r.blocked for r in reports] == [False, True, True, False]


def test_config(tmp_path: pathlib.Path) -> None:
    cfg = tmp_path / "modelward.toml"
    cfg.write_text('fail-on = "medium"\n')
    r = modelward.scan(DEMO / "custom_class.pkl", config=cfg)
    assert r.fail_on == "medium" and r.blocked
    # An explicit fail_on wins over the configuration's.
    assert not modelward.scan(DEMO / "custom_class.pkl", config=cfg, fail_on="high").blocked
    bad = tmp_path / "bad.toml"
    bad.write_text('fail-on = "sometimes"\n')
    with pytest.raises(modelward.ConfigError, match="bad.toml"):
        modelward.scan(DEMO / "model.bin", config=bad)


def test_remote_url_on_loopback(file_server: FileServer, marker: pathlib.Path) -> None:
    file_server.files["evil.pkl"] = pickle.dumps(PAYLOADS[0](marker))
    r = modelward.scan(f"{file_server.url}/files/evil.pkl")
    assert r.verdict == "malicious" and r.files[0].path.endswith("/files/evil.pkl")
    assert any(req.startswith("GET /files/evil.pkl") for req in file_server.requests)
    with pytest.raises(modelward.ScanError):
        modelward.scan(f"{file_server.url}/files/missing.pkl")


def test_explain() -> None:
    text = modelward.explain(DEMO / "model.bin")
    assert "GLOBAL" in text and "posix system" in text and "!! dangerous" in text
    with pytest.raises(modelward.ExplainError, match="numeric .npy"):
        modelward.explain(DEMO / "clean_array.npy")


def test_convert(tmp_path: pathlib.Path) -> None:
    src = tmp_path / "w.npy"
    np.save(src, np.arange(12, dtype=np.float32).reshape(3, 4))
    r = modelward.convert(src, verify=True)
    out = tmp_path / "w.safetensors"
    assert pathlib.Path(r.output) == out and out.exists()
    assert r.format == "numpy-npy" and r.tensors[0]["shape"] == [3, 4] and r.verified is not None
    with pytest.raises(modelward.ConvertError, match="exists"):
        modelward.convert(src, out)
    with pytest.raises(modelward.ConvertRefused) as e:
        modelward.convert(DEMO / "malicious_checkpoint.pt", tmp_path / "m.safetensors")
    assert any(f.rule == "PKL102" for f in e.value.findings)
    assert not (tmp_path / "m.safetensors").exists()


def test_cli_exit_codes_and_output(tmp_path: pathlib.Path) -> None:
    assert _cli("scan", "--no-progress", str(DEMO / "clean_array.npy")).returncode == 0
    bad = _cli("scan", "--no-progress", str(DEMO / "model.bin"))
    assert bad.returncode == 1 and "MALICIOUS" in bad.stdout
    assert _cli("scan", "--no-progress", str(tmp_path / "missing")).returncode == 2
    usage = _cli("scan", "--fail-on", "sometimes")
    assert usage.returncode == 2 and "invalid value" in usage.stderr
    assert _cli("rules").returncode == 0


def test_gil_is_released_while_scanning() -> None:
    """A Python thread runs while another thread is inside one long scan call. If the scan
    held the GIL, the ticker could not run between the call's start and end."""
    import threading
    import time

    ticks: list[float] = []
    done = threading.Event()

    def tick() -> None:
        while not done.is_set():
            ticks.append(time.perf_counter())
            time.sleep(0.0005)

    n = 500_000
    while True:
        data = pickle.dumps(list(range(n)))
        ticks.clear()
        done.clear()
        t = threading.Thread(target=tick)
        t.start()
        time.sleep(0.01)
        start = time.perf_counter()
        modelward.scan(data)
        end = time.perf_counter()
        done.set()
        t.join()
        if end - start >= 0.2 or n >= 64_000_000:
            break
        n *= 4
    assert end - start >= 0.2, "could not make a scan last long enough to tell"
    inside = [x for x in ticks if start + 0.05 < x < end - 0.05]
    assert len(inside) >= 10, (end - start, len(inside))
