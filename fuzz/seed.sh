#!/usr/bin/env bash
# Regenerates the seed corpora in fuzz/corpus/<target>/ from the committed fixtures:
#   tests/fixtures/**, demo/*, and ../shared/corpus/picklescan/tests/** (beside the repository).
# The corpus directories are git-ignored; run this before the first `cargo fuzz run`, and again
# whenever fixtures change (existing corpus files are kept, seeds are named by content hash).
#
# With python3 present, the seeds are also unpacked one level for the targets that cannot
# reach inside containers themselves: zip members (data.pkl, .npy in .npz) and decompressed
# gz/bz2/xz/lzma streams for the pickle targets, .npy members for npy_header, and .npy header
# text for pylit. The single-format targets (gguf_header, safetensors_header, chat_template,
# hf_text, onnx_model, tf_graph, keras_model, marshal_code, archive_list) are seeded by content
# (by name for the protobufs), from whole files and zip members, and chat_template also from
# the .jinja files of fetch_real.sh's cache (MODELWARD_REAL, default ~/.cache/modelward/real);
# they need python3 and start empty without it. Without python3 the whole-file targets still get the raw files.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/.." && pwd)"
corpus="$here/corpus"
targets=(pickle_decode pickle_machine pickle_sniff zip_list npy_header pylit scan_bytes
         gguf_header safetensors_header chat_template hf_text onnx_model tf_graph keras_model
         marshal_code archive_list provenance_bundle service_requests tensor_deep queue_message)

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

# Job and result documents as the NATS queue carries them (docs/service.md).
msg="$(mktemp)"
for s in '{"format":1,"id":"5f0c0000000000000000000000000032","created_at":1796290004,"source":{"kind":"upload","name":"model.pt","sha256":"9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08","size":1234}}' \
         '{"format":1,"id":"5f0c0000000000000000000000000033","created_at":1796290004,"source":{"kind":"remote","source":"hf://acme/bert@0123456789abcdef0123456789abcdef01234567"},"repo":{"kind":"model","name":"acme/bert","revision":"0123456789abcdef0123456789abcdef01234567"}}' \
         '{"format":1,"id":"5f0c0000000000000000000000000032","attempt":2,"elapsed_ms":12,"status":"done","verdict":"malicious","report":{"files":[]}}' \
         '{"format":1,"id":"5f0c0000000000000000000000000032","status":"failed","reason":"the scan did not finish in 3 attempts"}'; do
    printf '%s' "$s" > "$msg"
    add queue_message "$msg"
done
rm -f "$msg"

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

def by_content(data):
    """Seeds for the single-format targets, chosen by content like the engine does."""
    if data.startswith(b"GGUF"):
        add("gguf_header", data)
    if len(data) > 9:
        n = int.from_bytes(data[:8], "little")
        if 2 <= n <= len(data) - 8 and data[8:9] == b"{":
            add("safetensors_header", data)
    if data.startswith(b"\x89HDF\r\n\x1a\n"):
        add("keras_model", data)
    if data[257:262] == b"ustar" or data.startswith(b"7z\xbc\xaf\x27\x1c"):
        add("archive_list", data)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        text = None
    if text is not None and text.strip():
        add("hf_text", data)
        if "{%" in text or "{{" in text:
            add("chat_template", data)
        if '"class_name"' in text:
            add("keras_model", data)

def inner(data):
    for t in ("pickle_decode", "pickle_machine", "pickle_sniff"):
        add(t, data)
    if data.startswith(b"\x93NUMPY"):
        npy(data)
    by_content(data)

# Protobufs are not recognisable by a magic number: seed by the fixtures' own names.
def by_name(path, data):
    if path.endswith(".onnx"):
        add("onnx_model", data)
    if path.endswith(".pb"):
        add("tf_graph", data)

# Chat templates: a benign one, an SSTI one, and the real templates that fetch_real.sh brings
# (when it has run).
for t in ("{% for m in messages %}<|{{ m.role }}|>{{ m.content | trim }}{% endfor %}"
          "{% if add_generation_prompt %}<|assistant|>{% endif %}",
          "{{ cycler.__init__.__globals__.os.popen('id').read() }}",
          "{% set ns = namespace(x=1) %}{{ ()|attr('\\x5f\\x5fclass\\x5f\\x5f') }}"):
    add("chat_template", t.encode())
real = os.environ.get("MODELWARD_REAL") or os.path.expanduser("~/.cache/modelward/real")
for root, _, names in os.walk(real):
    for name in names:
        if name.endswith(".jinja"):
            with open(os.path.join(root, name), "rb") as f:
                add("chat_template", f.read())

# Lambda bytecode as Keras stores it (marshal of a code object), from this Python.
import marshal
for src in ("lambda x: x * 2", "lambda x: __import__('os').system('id')", "[i for i in range(3)]"):
    add("marshal_code", marshal.dumps(compile(src, "<fuzz-seed>", "eval")))

for path in files:
    with open(path, "rb") as f:
        data = f.read()
    if data.startswith(b"\x93NUMPY"):
        npy(data)
    by_content(data[:LIMIT])
    by_name(path, data[:LIMIT])
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
