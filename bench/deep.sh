#!/usr/bin/env bash
# `scan --deep` throughput (issue 18): bytes of tensor data sampled and GB/s, against the
# default scan, on (1) the largest real files of the real-file sets and (2) a 1 GiB float32
# PyTorch checkpoint (torch.save's layout, written by tests/fixtures/generate/gen_tensor_payloads.py's
# writer with numpy; no torch needed). Not a test: numbers for docs/benchmarks.md.
#
#   bash bench/deep.sh [OUT_DIR]        # default /tmp/modelward-deep-bench
#
# Needs python3 with numpy and safetensors (tests/fixtures/generate/requirements-tensor-payloads.txt).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT="${1:-/tmp/modelward-deep-bench}"
mkdir -p "$OUT"
cd "$ROOT"
cargo build --release -q -p modelward
BIN="$ROOT/target/release/modelward"

big="$OUT/checkpoint_1GiB.pt"
if [ ! -f "$big" ]; then
  python3 - "$big" <<'PY'
import sys, collections, importlib.util
import numpy as np
spec = importlib.util.spec_from_file_location("gen", "tests/fixtures/generate/gen_tensor_payloads.py")
gen = importlib.util.module_from_spec(spec); spec.loader.exec_module(gen)
rng = np.random.default_rng(0)
# 32 layers of 2048x4096 float32 (32 MiB each) = 1 GiB.
tensors = collections.OrderedDict((f"layers.{i}.weight", rng.normal(0, 0.02, (2048, 4096)).astype(np.float32)) for i in range(32))
gen.torch_save(sys.argv[1], tensors, {})
PY
fi

real=()
for d in "${MODELWARD_REAL:-$HOME/.cache/modelward/real}" "${MODELWARD_REAL_EXTRA:-$HOME/.cache/modelward/real-extra}"; do
  [ -d "$d" ] && while IFS= read -r f; do real+=("$f"); done < <(find "$d" -type f -size +10M \( -name '*.safetensors' -o -name '*.pt' -o -name '*.pth' -o -name '*.bin' -o -name '*.npy' -o -name '*.npz' \))
done

measure() { # label, files...
  local label="$1"; shift
  for mode in default deep; do
    flag=(); [ "$mode" = deep ] && flag=(--deep)
    # Warm the page cache first: the number is the scanner's, not the disk's.
    cat "$@" > /dev/null
    start=$(date +%s.%N)
    "$BIN" scan "${flag[@]}" --format json --no-progress --fail-on never "$@" > "$OUT/$label-$mode.json"
    end=$(date +%s.%N)
    python3 - "$OUT/$label-$mode.json" "$label" "$mode" "$start" "$end" <<'PY'
import json, sys
d = json.load(open(sys.argv[1])); s = d["summary"]
secs = float(sys.argv[5]) - float(sys.argv[4])
size = sum(f["size"] for f in d["files"]); read = sum(f["bytes_read"] for f in d["files"])
ten = sum(1 for f in d["files"] for x in f["findings"] if x["rule"].startswith("TEN"))
print(f"{sys.argv[2]:>12} {sys.argv[3]:>7}: {len(d['files'])} files, {size/1e9:.3f} GB, read {read/1e6:.1f} MB "
      f"in {secs:.2f} s = {read/1e9/secs:.2f} GB/s of bytes read ({size/1e9/secs:.2f} GB/s of file size); TEN findings {ten}")
PY
  done
}

[ ${#real[@]} -gt 0 ] && measure real-large "${real[@]}"
measure ckpt-1GiB "$big"
