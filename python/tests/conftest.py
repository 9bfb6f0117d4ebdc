"""Shared pieces: payloads that would create a marker file, and a loopback file server.

Every malicious file here is written by the real writer (the standard library's pickle,
numpy.save, joblib.dump) from an object whose ``__reduce__`` makes loading it run code that
creates ``marker``. A test asserts the marker does not exist after a guarded load, and
``test_payloads_really_run`` shows that the plain loader does create it, so those assertions
can fail.
"""

from __future__ import annotations

import hashlib
import http.server
import os
import pathlib
import threading
from typing import Dict, Iterator, Tuple

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
DEMO = ROOT / "demo"


class SystemPayload:
    """Loading runs ``os.system('touch MARKER')``."""

    def __init__(self, marker: pathlib.Path):
        self.marker = marker

    def __reduce__(self) -> Tuple[object, Tuple[str]]:
        return (os.system, (f"touch '{self.marker}'",))


class ExecPayload:
    """Loading runs ``exec(...)`` of code that writes MARKER."""

    def __init__(self, marker: pathlib.Path):
        self.marker = marker

    def __reduce__(self) -> Tuple[object, Tuple[str]]:
        return (exec, (f"open({str(self.marker)!r}, 'w').write('ran')",))


PAYLOADS = [SystemPayload, ExecPayload]


@pytest.fixture
def marker(tmp_path: pathlib.Path) -> pathlib.Path:
    m = tmp_path / "payload-ran"
    assert not m.exists()
    return m


class FileServer:
    """A loopback HTTP server for the remote tests.

    ``/files/NAME`` serves ``files[NAME]`` with Range support (what modelward's remote scan
    reads). ``/{owner}/{name}/resolve/{rev}/{file}`` answers as the Hugging Face Hub does for
    ``hf_hub_download``: HEAD with ``X-Repo-Commit``, ``ETag`` and ``Content-Length``, GET
    with the bytes. ``requests`` records every path asked for.
    """

    COMMIT = "0123456789abcdef0123456789abcdef01234567"

    def __init__(self) -> None:
        self.files: Dict[str, bytes] = {}
        self.requests: list[str] = []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def _find(self) -> bytes | None:
                path = self.path.split("?")[0]
                server.requests.append(f"{self.command} {path}")
                if path.startswith("/files/"):
                    return server.files.get(path[len("/files/"):])
                parts = path.strip("/").split("/")
                if len(parts) >= 5 and parts[2] == "resolve":
                    return server.files.get("/".join(parts[4:]))
                return None

            def _headers(self, data: bytes, status: int, body_len: int, extra: Dict[str, str]) -> None:
                self.send_response(status)
                self.send_header("Content-Length", str(body_len))
                self.send_header("Content-Type", "application/octet-stream")
                self.send_header("ETag", '"' + hashlib.sha256(data).hexdigest() + '"')
                self.send_header("X-Repo-Commit", FileServer.COMMIT)
                self.send_header("Accept-Ranges", "bytes")
                for k, v in extra.items():
                    self.send_header(k, v)
                self.end_headers()

            def _not_found(self) -> None:
                self.send_response(404)
                self.send_header("Content-Length", "0")
                self.send_header("X-Error-Code", "EntryNotFound")
                self.end_headers()

            def do_HEAD(self) -> None:
                data = self._find()
                if data is None:
                    return self._not_found()
                self._headers(data, 200, len(data), {})

            def do_GET(self) -> None:
                data = self._find()
                if data is None:
                    return self._not_found()
                rng = self.headers.get("Range")
                if rng and rng.startswith("bytes="):
                    a, _, b = rng[len("bytes="):].partition("-")
                    start = int(a) if a else max(0, len(data) - int(b))
                    end = min(int(b), len(data) - 1) if a and b else len(data) - 1
                    if start >= len(data):
                        self.send_response(416)
                        self.send_header("Content-Range", f"bytes */{len(data)}")
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                        return
                    body = data[start:end + 1]
                    self._headers(data, 206, len(body), {"Content-Range": f"bytes {start}-{end}/{len(data)}"})
                else:
                    body = data
                    self._headers(data, 200, len(body), {})
                self.wfile.write(body)

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> "FileServer":
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join()


@pytest.fixture
def file_server() -> Iterator[FileServer]:
    with FileServer() as s:
        yield s


@pytest.fixture(autouse=True)
def _always_uninstalled() -> Iterator[None]:
    """A failing install() test must not leave the loaders patched for the next test."""
    import modelward

    yield
    modelward.uninstall()
