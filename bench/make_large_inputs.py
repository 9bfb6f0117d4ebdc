#!/usr/bin/env python3
"""Write the large benchmark inputs for bench/compare.sh (never inside the repository).

    /work/.venv-fixtures/bin/python bench/make_large_inputs.py [OUT_DIR]   # default /work/.bench-data

Needs torch and numpy (the fixtures venv has both: tests/fixtures/generate/requirements.txt).
Writes, with fixed seeds so every run gives the same shapes (and, for numpy and the small
objects, the same bytes):

  torch_state_dict_1.1GiB.pt   a real `torch.save` zip checkpoint: the state_dict of a 24-layer
                               transformer-shaped model, float32, >= 1.1 GiB of tensor data.
  numpy_arrays_500MB.pkl       `pickle.dump(dict_of_numpy_arrays, protocol=4)`: 50 float32
                               arrays of 10 MB (the shape of a scikit-learn / numpy dump).
  small_objects_p4.pkl         `pickle.dump(list_of_small_records, protocol=4)`: ~2.5M tuples
                               of (int, float, str) -- every byte is opcodes, no bulk data.

Existing files of the right size are kept (delete them to regenerate). Nothing is loaded back.
"""

import os
import pickle
import sys
import time

GiB = 1 << 30


def log(msg):
    print(msg, flush=True)


def refuse_repo(out):
    """The inputs are large and must never be committed: refuse a directory inside a git work tree."""
    here = os.path.realpath(out)
    repo = os.path.realpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir))
    if here == repo or here.startswith(repo + os.sep):
        sys.exit("error: %s is inside the repository %s; give a directory outside it" % (out, repo))


def torch_checkpoint(path):
    import torch

    torch.manual_seed(0)
    d, ff, layers, vocab = 1024, 4096, 24, 32000
    sd = {"embed_tokens.weight": torch.randn(vocab, d)}
    for i in range(layers):
        p = "layers.%d." % i
        for name in ("q_proj", "k_proj", "v_proj", "o_proj"):
            sd[p + "self_attn.%s.weight" % name] = torch.randn(d, d)
            sd[p + "self_attn.%s.bias" % name] = torch.zeros(d)
        sd[p + "mlp.up_proj.weight"] = torch.randn(ff, d)
        sd[p + "mlp.up_proj.bias"] = torch.zeros(ff)
        sd[p + "mlp.down_proj.weight"] = torch.randn(d, ff)
        sd[p + "mlp.down_proj.bias"] = torch.zeros(d)
        for ln in ("input_layernorm", "post_attention_layernorm"):
            sd[p + ln + ".weight"] = torch.ones(d)
            sd[p + ln + ".bias"] = torch.zeros(d)
    sd["norm.weight"] = torch.ones(d)
    total = sum(t.numel() * t.element_size() for t in sd.values())
    assert total >= int(1.1 * GiB), total
    torch.save(sd, path)  # the zip format, the default since torch 1.6
    return "%d tensors, %.3f GiB of float32, torch %s" % (len(sd), total / GiB, torch.__version__)


def numpy_pickle(path):
    import numpy as np

    rng = np.random.default_rng(0)
    arrays = {}
    for i in range(50):
        arrays["coef_%02d" % i] = rng.standard_normal(2_500_000, dtype=np.float32)  # 10 MB each
    arrays["classes_"] = np.arange(1000, dtype=np.int64)
    arrays["feature_names_in_"] = np.array(["f%d" % i for i in range(1000)], dtype=object)
    with open(path, "wb") as f:
        pickle.dump(arrays, f, protocol=4)
    return "%d arrays, numpy %s" % (len(arrays), np.__version__)


def small_objects_pickle(path):
    records = [(i, i / 7, "tok%d" % i) for i in range(2_500_000)]
    with open(path, "wb") as f:
        pickle.dump(records, f, protocol=4)
    return "%d (int, float, str) tuples" % len(records)


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else "/work/.bench-data"
    refuse_repo(out)
    os.makedirs(out, exist_ok=True)
    jobs = [
        ("torch_state_dict_1.1GiB.pt", torch_checkpoint, int(1.1 * GiB)),
        ("numpy_arrays_500MB.pkl", numpy_pickle, 500_000_000),
        ("small_objects_p4.pkl", small_objects_pickle, 50_000_000),
    ]
    for name, make, min_size in jobs:
        path = os.path.join(out, name)
        if os.path.isfile(path) and os.path.getsize(path) >= min_size:
            log("kept    %s (%d bytes)" % (path, os.path.getsize(path)))
            continue
        t = time.time()
        tmp = path + ".part"
        what = make(tmp)
        os.replace(tmp, path)
        size = os.path.getsize(path)
        if size < min_size:
            sys.exit("error: %s is %d bytes, under %d" % (path, size, min_size))
        log("wrote   %s (%d bytes, %.1fs): %s" % (path, size, time.time() - t, what))


if __name__ == "__main__":
    main()
