#!/usr/bin/env python3
"""Throughput and latency of `modelward serve` (issue 15). Not a test: numbers for the note and
docs/benchmarks.md.

    python3 bench/serve_bench.py [--jobs 2000] [--clients 16] [--workers 2] [--binary PATH]

Starts the release binary on a free loopback port with a temporary data folder, then CLIENTS
threads upload JOBS files (the demo files, round robin, under distinct names, so the verdict
cache answers repeated bytes the way it would on a hub: same bytes, many names) and poll each
job until it is done. Reports:

- accepted uploads per second and completed scans per second (wall clock, first POST to last
  done);
- p50/p90/p99/max of the POST latency (request to 202) and of the end-to-end latency (POST to
  the first GET that says done; polled every 5 ms);
- with --unique, every upload gets four distinct bytes appended, so every scan runs the engine
  (no cache hits; the appended bytes make some verdicts stricter: trailing data is a finding);
  without it, the cache answers repeats.

With CLIENTS uploads in flight and the workers busy, the end-to-end latency is mostly queueing
(Little's law: in flight / throughput), not scan time.

Only the standard library; the binary is built with `cargo build --release -p modelward` when
--binary is not given.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

ROOT = pathlib.Path(__file__).resolve().parent.parent


def percentile(values: list[float], p: float) -> float:
    s = sorted(values)
    if not s:
        return float("nan")
    k = min(len(s) - 1, max(0, round(p / 100 * (len(s) - 1))))
    return s[k]


def start_server(binary: str, data: str, workers: int) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen(
        [binary, "serve", "--listen", "127.0.0.1:0", "--data", data, "--workers", str(workers)],
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stderr is not None
    deadline = time.time() + 30
    while time.time() < deadline:
        line = proc.stderr.readline()
        m = re.search(r"(http://127\.0\.0\.1:\d+)", line)
        if m:
            threading.Thread(target=lambda: [None for _ in proc.stderr], daemon=True).start()  # drain
            return proc, m.group(1)
        if proc.poll() is not None:
            break
    proc.kill()
    raise SystemExit("the server did not say where it listens")


def post(base: str, name: str, body: bytes) -> tuple[int, dict]:
    req = urllib.request.Request(f"{base}/v1/scans?name={name}", data=body, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, {"retry_after": e.headers.get("Retry-After")}


def get(base: str, job: str) -> dict:
    with urllib.request.urlopen(f"{base}/v1/scans/{job}", timeout=60) as r:
        return json.loads(r.read())


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--jobs", type=int, default=2000)
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--unique", action="store_true", help="make every upload's bytes distinct (no cache hits)")
    ap.add_argument("--binary")
    args = ap.parse_args()

    binary = args.binary
    if not binary:
        subprocess.run(["cargo", "build", "--release", "-q", "-p", "modelward"], cwd=ROOT, check=True)
        binary = str(ROOT / "target/release/modelward")
    demo = sorted(
        p for p in (ROOT / "demo").iterdir() if p.is_file() and p.suffix != ".md" and not p.name.startswith(".")
    )
    payloads = [(p.name, p.read_bytes()) for p in demo]

    data = tempfile.mkdtemp(prefix="modelward-serve-bench.")
    proc, base = start_server(binary, data, args.workers)
    post_lat: list[float] = []
    e2e_lat: list[float] = []
    rejected = 0
    verdicts: dict[str, int] = {}
    lock = threading.Lock()
    counter = iter(range(args.jobs))

    def client() -> None:
        nonlocal rejected
        while True:
            with lock:
                i = next(counter, None)
            if i is None:
                return
            name, body = payloads[i % len(payloads)]
            if args.unique:
                body = body + i.to_bytes(4, "little")  # trailing bytes: a new file, same verdict class
            t0 = time.perf_counter()
            while True:
                status, doc = post(base, f"{i}-{name}", body)
                if status == 202:
                    break
                if status == 429:
                    with lock:
                        rejected += 1
                    time.sleep(float(doc.get("retry_after") or 1))
                    continue
                raise SystemExit(f"upload {i}: HTTP {status} {doc}")
            t1 = time.perf_counter()
            while True:
                job = get(base, doc["id"])
                if job["status"] in ("done", "failed"):
                    break
                time.sleep(0.005)
            t2 = time.perf_counter()
            with lock:
                post_lat.append(t1 - t0)
                e2e_lat.append(t2 - t0)
                v = job.get("verdict", job["status"])
                verdicts[v] = verdicts.get(v, 0) + 1

    started = time.perf_counter()
    threads = [threading.Thread(target=client) for _ in range(args.clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - started
    with urllib.request.urlopen(f"{base}/metrics", timeout=10) as r:
        metrics = r.read().decode()
    proc.terminate()
    proc.wait(timeout=60)
    shutil.rmtree(data, ignore_errors=True)

    hits = re.search(r"^modelward_cache_hits_total (\d+)", metrics, re.M)
    ms = lambda v: f"{v * 1000:.1f} ms"  # noqa: E731
    print(f"modelward serve: {args.jobs} uploads of {len(payloads)} demo files, {args.clients} clients, "
          f"{args.workers} workers, {'unique bytes' if args.unique else 'repeated bytes'}")
    print(f"  wall {wall:.2f} s: {args.jobs / wall:.0f} scans/s completed; 429 answers {rejected}; "
          f"cache hits {hits.group(1) if hits else '?'}")
    print(f"  POST latency  p50 {ms(percentile(post_lat, 50))}  p90 {ms(percentile(post_lat, 90))}  "
          f"p99 {ms(percentile(post_lat, 99))}  max {ms(max(post_lat))}")
    print(f"  end to end    p50 {ms(percentile(e2e_lat, 50))}  p90 {ms(percentile(e2e_lat, 90))}  "
          f"p99 {ms(percentile(e2e_lat, 99))}  max {ms(max(e2e_lat))}  (mean {ms(statistics.mean(e2e_lat))})")
    print(f"  verdicts {verdicts}")


if __name__ == "__main__":
    main()
