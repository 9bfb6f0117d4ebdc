#!/usr/bin/env bash
# Times modelward against picklescan, modelscan, fickling and ModelAudit on the same inputs and
# writes docs/benchmarks.md (also printed):
#   (a) the real benign model files of ../shared/real/fetch_real.sh, scanned as one directory
#   (b) a >= 1 GiB PyTorch zip checkpoint written by torch.save
#   (c) a 500 MB pickle of numpy arrays, (d) a 71 MB pickle of 2.5M small tuples
# (b)-(d) come from bench/make_large_inputs.py, written outside the repository.
#
#   bash bench/compare.sh                    # everything, 5 runs per tool x input
#   RUNS=3 INPUTS=a,b bash bench/compare.sh  # fewer runs, some inputs
#
# Environment (all optional):
#   RUNS=5                  timed runs per tool x input (medians reported), after one warm-up
#   VENV=/work/.venv-bench  private venv for picklescan, fickling, ModelAudit (bench/requirements-bench.txt)
#   MODELSCAN_VENV=/work/.venv-bench-modelscan   modelscan's own venv (bench/requirements-modelscan.txt:
#                           it needs numpy < 2, ModelAudit needs numpy 2.4)
#   DATA=/work/.bench-data  large inputs (made by make_large_inputs.py if missing)
#   REAL=~/.cache/modelward/real   real files (fetched if missing)
#   FIXTURES_PY=/work/.venv-fixtures/bin/python   a Python with torch and numpy, for the inputs
#   TOOLS=modelward,picklescan,modelscan,fickling,modelaudit   INPUTS=a,b,c,d
#   TIMEOUT=1800            seconds before one run is abandoned ("timed out" in the table)
#   CELL_BUDGET=600         seconds of timed runs per tool x input; slower tools get fewer runs
#   OUT=docs/benchmarks.md  where the Markdown goes ("-" for stdout only)
#   REUSE=c:modelaudit,d:fickling   input:tool cells copied from the previous run's results
#                           ($DATA/compare-results.json) instead of measured again; marked in the table
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"
RUNS="${RUNS:-5}"
VENV="${VENV:-/work/.venv-bench}"
MODELSCAN_VENV="${MODELSCAN_VENV:-/work/.venv-bench-modelscan}"
DATA="${DATA:-/work/.bench-data}"
REAL="${REAL:-${XDG_CACHE_HOME:-$HOME/.cache}/modelward/real}"
FIXTURES_PY="${FIXTURES_PY:-/work/.venv-fixtures/bin/python}"
TOOLS="${TOOLS:-modelward,picklescan,modelscan,fickling,modelaudit}"
INPUTS="${INPUTS:-a,b,c,d}"
TIMEOUT="${TIMEOUT:-1800}"
CELL_BUDGET="${CELL_BUDGET:-600}"
OUT="${OUT:-docs/benchmarks.md}"
PY="${PYTHON:-python3}"

say() { echo ">> $*" >&2; }

# GNU time for peak RSS.
if [ ! -x /usr/bin/time ]; then
  say "installing GNU time"
  apt-get update -qq && apt-get install -y -qq time >/dev/null
fi

# The other tools, pinned (every package, dependencies included), each venv made only when its
# installed set differs from its requirements file.
install_venv() {  # $1=venv $2=requirements file
  local venv="$1" reqs="$2" want have
  if [ ! -x "$venv/bin/python" ]; then
    say "creating $venv"
    "$PY" -m venv "$venv"
  fi
  want="$(grep -E '^[A-Za-z0-9_.-]+==' "$reqs" | tr 'A-Z_' 'a-z-' | sort)"
  have="$("$venv/bin/python" -m pip freeze 2>/dev/null | tr 'A-Z_' 'a-z-' | sort)"
  if [ "$want" != "$have" ]; then
    say "installing $(basename "$reqs") into $venv"
    "$venv/bin/python" -m pip install -q --disable-pip-version-check pip==25.3
    "$venv/bin/python" -m pip install -q --disable-pip-version-check -r "$reqs"
  fi
}
install_venv "$VENV" "$REPO/bench/requirements-bench.txt"
install_venv "$MODELSCAN_VENV" "$REPO/bench/requirements-modelscan.txt"

# Input (a): the real files.
if [[ ",$INPUTS," == *,a,* ]]; then
  say "real files -> $REAL"
  bash "$REPO/../shared/real/fetch_real.sh" "$REAL" >&2
fi

# Inputs (b)-(d).
if [[ ",$INPUTS," == *,[bcd],* ]]; then
  case "$(realpath -m "$DATA")/" in
    "$REPO"/*) echo "error: DATA=$DATA is inside the repository; the inputs must never be committed" >&2; exit 2 ;;
  esac
  if [ ! -x "$FIXTURES_PY" ]; then
    echo "error: $FIXTURES_PY is missing; set FIXTURES_PY to a Python with torch and numpy" >&2
    echo "       (e.g. a venv with tests/fixtures/generate/requirements.txt installed)" >&2
    exit 2
  fi
  "$FIXTURES_PY" "$REPO/bench/make_large_inputs.py" "$DATA" >&2
fi

# modelward, release; copied so that a concurrent rebuild cannot swap it mid-run.
say "building modelward (release)"
cargo build --release -p modelward >&2
BIN_DIR="$(mktemp -d)"
trap 'rm -rf "$BIN_DIR"' EXIT
cp "$REPO/target/release/modelward" "$BIN_DIR/modelward"

args=(--modelward "$BIN_DIR/modelward" --venv "$VENV" --modelscan-venv "$MODELSCAN_VENV" --real "$REAL" --data "$DATA" --repo "$REPO"
      --runs "$RUNS" --timeout "$TIMEOUT" --cell-budget "$CELL_BUDGET" --tools "$TOOLS" --inputs "$INPUTS"
      --json "$DATA/compare-results.json" --reuse "${REUSE:-}")
if [ "$OUT" != "-" ]; then
  args+=(--out "$OUT")
fi
mkdir -p "$DATA"
say "measuring (RUNS=$RUNS)"
"$PY" "$REPO/bench/compare.py" "${args[@]}"
