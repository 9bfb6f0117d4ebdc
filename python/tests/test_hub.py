"""install() and huggingface_hub: downloads from a loopback Hub stand-in are scanned before
hf_hub_download returns them.

huggingface_hub reads HF_ENDPOINT and HF_HOME when it is imported, so the client runs in a
child Python with those set (HF_HUB_OFFLINE unset); the server runs in this process.
"""

from __future__ import annotations

import json
import os
import pathlib
import pickle
import subprocess
import sys

import numpy as np

from conftest import PAYLOADS, FileServer

CLIENT = r"""
import json, sys
import huggingface_hub
import modelward

out = {}
names = ("hf_hub_download", "snapshot_download")
before = {n: getattr(huggingface_hub, n) for n in names}
in_dict = {n: n in vars(huggingface_hub) for n in names}
out["patched"] = modelward.install()

def download(filename):
    # What unmodified code does: the library function, by its usual name.
    try:
        path = huggingface_hub.hf_hub_download("owner/model", filename)
        return {"path": path}
    except modelward.Blocked as e:
        return {"blocked": str(e), "verdict": e.report.verdict, "path": e.report.files[0].path}

out["clean"] = download("clean.npy")
out["evil"] = download("evil.pkl")
modelward.uninstall()
out["restored"] = all(getattr(huggingface_hub, n) is before[n] for n in names)
out["dict_restored"] = all((n in vars(huggingface_hub)) == in_dict[n] for n in names)
out["file_download_restored"] = (
    huggingface_hub.file_download.hf_hub_download is before["hf_hub_download"]
)
# After uninstall the download is not scanned: the same call returns the (cached) path.
out["after"] = huggingface_hub.hf_hub_download("owner/model", "evil.pkl")
print(json.dumps(out))
"""


def test_hf_hub_download_is_scanned(file_server: FileServer, marker: pathlib.Path, tmp_path: pathlib.Path) -> None:
    clean = tmp_path / "clean.npy"
    np.save(clean, np.arange(4))
    file_server.files["clean.npy"] = clean.read_bytes()
    file_server.files["evil.pkl"] = pickle.dumps(PAYLOADS[0](marker))
    env = {k: v for k, v in os.environ.items() if not k.startswith("HF_")}
    env.update(
        HF_ENDPOINT=file_server.url,
        HF_HOME=str(tmp_path / "hf-home"),
        HF_HUB_DISABLE_TELEMETRY="1",
        HF_HUB_DISABLE_XET="1",
        PYTHONPATH=os.pathsep.join(sys.path),
    )
    run = subprocess.run([sys.executable, "-c", CLIENT], env=env, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    out = json.loads(run.stdout.strip().splitlines()[-1])
    assert {"huggingface_hub.hf_hub_download", "huggingface_hub.snapshot_download"} <= set(out["patched"])
    assert pathlib.Path(out["clean"]["path"]).read_bytes() == clean.read_bytes()
    assert out["evil"]["verdict"] == "malicious" and "PKL102" in out["evil"]["blocked"]
    # The cache path is reported under its repository name.
    assert "owner/model" in out["evil"]["path"], out["evil"]["path"]
    assert out["restored"] and out["dict_restored"] and out["file_download_restored"]
    assert pathlib.Path(out["after"]).name == "evil.pkl"
    # The downloads really went through the stand-in.
    assert any("/owner/model/resolve/main/evil.pkl" in r for r in file_server.requests)
    assert not marker.exists()
