#!/usr/bin/env bash
# Regenerates the seed corpora in fuzz/corpus/<target>/ from the committed fixtures:
#   tests/fixtures/**, demo/*, and ../shared/corpus/picklescan/tests/** (beside the repository).
# The corpus directories are git-ignored; run this before the first `cargo fuzz run`, and again
# whenever fixtures change (existing corpus files are kept, seeds are named by content hash).
#
# With python3 present, the seeds are also unpacked one level for the targets that cannot
# reach inside containers themselves: zip members (data.pkl, .npy in .npz) and decompressed
# gz/bz2/xz/lzma streams for the pickle targets, .npy members for npy_header, and .npy header
# text for pylit. Without python3 every target still gets the raw files.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/.." && pwd)"
corpus="$here/corpus"
targets=(pickle_decode pickle_machine pickle_sniff zip_list npy_header pylit scan_bytes)

sources=("$repo/tests/fixtures" "$repo/demo")
shared="$repo/../shared/corpus/picklescan/tests"
if [ -d "$shared" ]; then
    sources+=("$shared")
else
    echo "seed.sh: $shared not found; seeding from the repository's fixtures only" >&2
fi

for t in "${targets[@]}"; do mkdir -p "$corpus/$t"; done

# add <target> <file>: copy a file into a corpus under its SHA-1 (libFuzzer's own naming).
add() {
    local h
    h="$(sha1sum "$2" | cut -d' ' -f1)"
    cp -f "$2" "$corpus/$1/$h"
}

# Every committed file is a seed for the targets that take whole files. Docs and generator
# scripts are skipped; they are no model files.
mapfile -d '' files < <(find "${sources[@]}" -type f \
    ! -name '*.md' ! -name '*.py' ! -name '.gitattributes' ! -name 'expected.json' -print0 | sort -z)
for f in "${files[@]}"; do
    for t in pickle_decode pickle_machine pickle_sniff zip_list scan_bytes; do add "$t" "$f"; done
    case "$f" in *.npy) add npy_header "$f" ;; esac
done

# A few literals in the shapes numpy writes, for pylit even without python3.
lit="$(mktemp)"
trap 'rm -f "$lit"' EXIT
for s in "{'descr': '<f8', 'fortran_order': False, 'shape': (3, 4), }" \
         "{'descr': '|O', 'fortran_order': False, 'shape': (2,), }" \
         "{'descr': [('a', '<i4'), ('b', '<f8', (2, 3))], 'fortran_order': True, 'shape': (10L,), }" \
         "{'descr': '<U10', 'fortran_order': False, 'shape': (), }" \
         "[1, -2.5e-3, 'x', \"y\", None, True, (), {}]"; do
    printf '%s' "$s" > "$lit"
    add pylit "$lit"
done

if command -v python3 > /dev/null; then
    python3 - "$corpus" "${files[@]}" <<'PY'
import bz2, gzip, hashlib, io, lzma, os, sys, zipfile

corpus, files = sys.argv[1], sys.argv[2:]
LIMIT = 1 << 20  # seeds over 1 MiB only slow the fuzzer down

def add(target, data):
    if not data or len(data) > LIMIT:
        return
    path = os.path.join(corpus, target, hashlib.sha1(data).hexdigest())
    with open(path, "wb") as f:
        f.write(data)

def npy(data):
    add("npy_header", data[:LIMIT])
    if data.startswith(b"\x93NUMPY") and len(data) >= 10:
        if data[6] == 1:
            n, pre = int.from_bytes(data[8:10], "little"), 10
        else:
            n, pre = int.from_bytes(data[8:12], "little"), 12
        add("pylit", data[pre:pre + n].rstrip(b"\n \0"))
        # Object arrays: a pickle follows the header.
        add("pickle_machine", data[pre + n:])
        add("pickle_decode", data[pre + n:])

def inner(data):
    for t in ("pickle_decode", "pickle_machine", "pickle_sniff"):
        add(t, data)
    if data.startswith(b"\x93NUMPY"):
        npy(data)

for path in files:
    with open(path, "rb") as f:
        data = f.read()
    if data.startswith(b"\x93NUMPY"):
        npy(data)
    for opener in (gzip.decompress, bz2.decompress, lzma.decompress):
        try:
            inner(opener(data)[:LIMIT])
        except Exception:
            pass
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            for info in z.infolist():
                try:
                    inner(z.read(info)[:LIMIT])
                except Exception:
                    pass
    except Exception:
        pass
PY
fi

for t in "${targets[@]}"; do
    printf '%-16s %5d seeds\n' "$t" "$(find "$corpus/$t" -type f | wc -l)"
done
