#!/usr/bin/env bash
# Scale-out benchmark (issue 16): a simulated Hub on 127.0.0.1 (N synthetic repositories in
# realistic layouts, tree API with LFS sha256s, real Range answers, every request answered after
# LATENCY_MS), a real nats-server -js, `modelward serve --nats` and 1, 2, 4 `modelward worker`
# processes. Prints one JSON line per run: repositories per second, requests and bytes per
# repository, files answered from the shared verdict cache, the projection for 2 million
# repositories. Driver: crates/modelward/tests/hub_scale.rs (an ignored test, never run by CI).
#
#   bench/hub_scale.sh                    # 10000 repositories, 50 ms, workers 1 2 4, 32 scans each
#   REPOS=2000 WORKERS="1 2" CONCURRENCY=64 bench/hub_scale.sh
#   FLAKY_PERMILLE=50 bench/hub_scale.sh  # 5 % of repositories answer 503 once per file
#
# Needs nats-server (apt-get install nats-server). Builds the `scale` profile (release without
# fat LTO) once.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_BUILD_JOBS="${CARGO_BUILD_JOBS:-1}"
cargo build --profile scale -p modelward --bin modelward
export MODELWARD_BIN="${CARGO_TARGET_DIR:-$PWD/target}/scale/modelward"
export HUB_SCALE_REPOS="${REPOS:-10000}" HUB_SCALE_LATENCY_MS="${LATENCY_MS:-50}"
export HUB_SCALE_CONCURRENCY="${CONCURRENCY:-32}" HUB_SCALE_FLAKY_PERMILLE="${FLAKY_PERMILLE:-0}"
for w in ${WORKERS:-1 2 4}; do
    HUB_SCALE_WORKERS="$w" cargo test -q -p modelward --test hub_scale -- --ignored --nocapture --exact hub_scale \
        | grep '^{'
done
