#!/usr/bin/env bash
# Wall time of `modelward detonate` per file: sandbox start, interpreter start, load, teardown.
# Usage: bash bench/detonate.sh [modelward binary] [runs]   (default: target/release/modelward, 5)
# Needs bwrap and python3 (docs/sandbox.md). Times are printed, never asserted.
set -euo pipefail
cd "$(dirname "$0")/.."
bin="${1:-target/release/modelward}"
runs="${2:-5}"
files=(
  demo/model.bin
  demo/clean_checkpoint.pt
  demo/malicious_checkpoint.pt
  demo/clean_array.npy
  ../shared/corpus/picklescan/tests/data/benign0_v4.pkl
  ../shared/corpus/picklescan/tests/data/malicious7.pkl
  ../shared/corpus/picklescan/tests/data2/urllib_request_urlopen.pkl
)
printf '%-70s %8s %8s %8s\n' file min_ms median_ms max_ms
for f in "${files[@]}"; do
  ts=()
  for _ in $(seq "$runs"); do
    start=$(date +%s%N)
    "$bin" detonate -f json "$f" >/dev/null 2>&1 || true
    end=$(date +%s%N)
    ts+=($(( (end - start) / 1000000 )))
  done
  sorted=($(printf '%s\n' "${ts[@]}" | sort -n))
  printf '%-70s %8s %8s %8s\n' "$f" "${sorted[0]}" "${sorted[$(( runs / 2 ))]}" "${sorted[$(( runs - 1 ))]}"
done
echo "python: $("${MODELWARD_PYTHON:-python3}" -c 'import sys; print(sys.version.split()[0], sys.executable)')"
echo "bwrap: $(bwrap --version)"
