#!/usr/bin/env python3
"""Regenerate manifest_extra.json from the archives already in the archive cache.

Maintainers only: run after `fetch_real_extra.sh` has downloaded a new or changed archive
(add the archive's line to ARCHIVES first, with the sha256 pip reported or that you observed).
The selection of members is the RULES table below: a member is taken when it lies under one of
the package's prefixes and is not code or prose. Nothing is imported or loaded: archives are read
as zip/tar and members are hashed as bytes.

    python3 tests/real/make_manifest_extra.py [ARCHIVE_CACHE]
"""
import hashlib
import json
import os
import sys
import tarfile
import zipfile

HERE = os.path.dirname(os.path.abspath(__file__))
# (pip spec, archive file name, sha256 of the archive, kind) -- kind "sdist" is fetched with
# --no-binary, everything else as a CPython 3.11 / manylinux x86_64 wheel.
ARCHIVES = [
    ("alt-profanity-check==1.9.1", "alt_profanity_check-1.9.1-py3-none-any.whl", "cccb8ce072306bac21188670777a25cfb1de978aa8c7a93c8e4a43c03b3945c3", "wheel"),
    ("attacut==1.0.6", "attacut-1.0.6-py3-none-any.whl", "d04193149476d1c371c7d0177a4363ba70d1a6d6f7d2246a577669eb4ea93f2c", "wheel"),
    ("basic-pitch==0.4.0", "basic_pitch-0.4.0-py2.py3-none-any.whl", "738adb503aae7fdfc7d1e1511aa0ce35052315f260a19531ef4c356708425db0", "wheel"),
    ("cs-core-news-sm==0.2.1", "cs_core_news_sm-0.2.1-py3-none-any.whl", "6d48e540aac77fa6a8f79979d3f6f596867807a46851c8117428a8e6eb2f2f74", "wheel"),
    ("deepcut==0.7.0.0", "deepcut-0.7.0.0-py3-none-any.whl", "054b778236b75ee505fb79759e180972e8b50be9af4c741451beceab0bbd887b", "wheel"),
    ("dists-pytorch==0.1", "DISTS_pytorch-0.1-py3-none-any.whl", "73e54ce13e7cf3ca962ee8e433d129884ec3dc75e00a27af90525e1da760ac61", "wheel"),
    ("facenet-pytorch==2.6.0", "facenet_pytorch-2.6.0-py3-none-any.whl", "ecb82b27beb226d106f2219efe8f829b01b87a8595badd01545679bdb9f19cca", "wheel"),
    ("faster-whisper==1.2.1", "faster_whisper-1.2.1-py3-none-any.whl", "79a66ad50688c0b794dd501dc340a736992a6342f7f95e5811be60b5224a26a7", "wheel"),
    ("fer==25.10.3", "fer-25.10.3-py3-none-any.whl", "84e05d6a2bf800ac1c4566da16e1862fc9e893ea88fe91907d32d2f5a24a3671", "wheel"),
    ("g2p-en==2.1.0", "g2p_en-2.1.0-py3-none-any.whl", "2a7aabf1fc7f270fcc3349881407988c9245173c2413debbe5432f4a4f31319f", "wheel"),
    ("gensim==4.4.0", "gensim-4.4.0-cp311-cp311-manylinux_2_24_x86_64.manylinux_2_28_x86_64.whl", "91a7fa5e814e7b1bad4b2dffa8d62c1e55410d5cbdf930714c1997ffb4404db8", "wheel"),
    ("guesslang==2.2.1", "guesslang-2.2.1-py3-none-any.whl", "36bd12130515ee0e637f7255340ba92ea919d53423743f4c1b0c73727a5499cb", "wheel"),
    ("jieba==0.42.1", "jieba-0.42.1.tar.gz", "055ca12f62674fafed09427f176506079bc135638a14e23e25be909131928db2", "sdist"),
    ("khmer-nltk==1.6", "khmer_nltk-1.6-py3-none-any.whl", "d3474a06faf07b7b5bb40922377dd2433aa0db79eff9155b0087783355e7921d", "wheel"),
    ("magika==1.0.3", "magika-1.0.3-py3-none-manylinux_2_28_x86_64.whl", "3e9b49134e8116ee40b431664dcbed9e199413efddcce1a173c734b4e0521529", "wheel"),
    ("mtcnn==0.1.1", "mtcnn-0.1.1-py3-none-any.whl", "fd69d2f4dd10647dd7481a53b9586e805f35a17c61ac78ba472a7f53766eb86e", "wheel"),
    ("nagisa==0.3.0", "nagisa-0.3.0-cp311-cp311-manylinux2014_x86_64.manylinux_2_17_x86_64.manylinux_2_28_x86_64.whl", "8c3ca187a30ccc90cd03f7d965fbecaaba47e7ea1df745a864fce0a67d9251db", "wheel"),
    ("nudenet==3.4.2", "nudenet-3.4.2-py3-none-any.whl", "5937dbd84e5d8e5de038f08ffea5a1bb50a08475776bf2b4795914ce0eaf0331", "wheel"),
    ("profanity-check==1.0.3", "profanity_check-1.0.3-py3-none-any.whl", "553fbe8bc0aee14dcebf93a751e4e54e5d14f58c12a364d63b9146a75c5e4e78", "wheel"),
    ("pythainlp==5.4.0", "pythainlp-5.4.0-py3-none-any.whl", "9239753df877202da1a50dd2842d9569eff764034f31f20222b3df4def5df193", "wheel"),
    ("pyvi==0.1.1", "pyvi-0.1.1-py2.py3-none-any.whl", "e5e9e0e40ea1a556af12646c6b754f065342c86f1dfe84785ba926e1190c0bb7", "wheel"),
    ("rapidocr-onnxruntime==1.4.4", "rapidocr_onnxruntime-1.4.4-py3-none-any.whl", "971d7d5f223a7a808662229df1ef69893809d8457d834e6373d3854bc1782cbf", "wheel"),
    ("resemblyzer==0.1.4", "Resemblyzer-0.1.4-py3-none-any.whl", "8f12eb2f1a9982d32e8db7856de754709b59c93a77bcf0ff536584b619a9dd1f", "wheel"),
    ("speechmos==0.0.1.1", "speechmos-0.0.1.1-py3-none-any.whl", "31c4c9d3234f6ee10102edff74333014c50006a3f389daf7ecacae34e68ebbf7", "wheel"),
    ("statsmodels==0.15.0", "statsmodels-0.15.0-cp311-cp311-manylinux_2_27_x86_64.manylinux_2_28_x86_64.whl", "b67886b66d9c7ca118526accedb5c6de7ffd74c015dc0492ea0b1690192b65da", "wheel"),
    ("ethnicolr==0.9.6", "ethnicolr-0.9.6-py2.py3-none-any.whl", "aad1cae80d5cab5853ec9e8141d7cc9ce0b681aa51705184bbf78a71faa00615", "wheel"),
    ("g2pm==0.1.2.5", "g2pM-0.1.2.5-py3-none-any.whl", "9e920b82df4002f96d8679720c7a858d10816d438dbd61b8b6b621a80a976361", "wheel"),
    ("natasha==1.6.0", "natasha-1.6.0-py3-none-any.whl", "e12b130d05a0b4d2eb6442092ed5b5769a68a311c17f2095b1aa739fb8d6dc78", "wheel"),
    ("openai-whisper==20250625", "openai_whisper-20250625.tar.gz", "37a91a3921809d9f44748ffc73c0a55c9f366c85a3ef5c2ae0cc09540432eb96", "sdist"),
    ("resampy==0.4.3", "resampy-0.4.3-py3-none-any.whl", "ad2ed64516b140a122d96704e32bc0f92b23f45419e8b8f478e5a05f83edcebd", "wheel"),
    ("sentiment-analysis-spanish==0.0.25", "sentiment_analysis_spanish-0.0.25-py3-none-any.whl", "7b2bf32aab0dc1287c12118cd88bd111b349db1f168ef99fb0db429489c9a195", "wheel"),
    ("spacy-pkuseg==1.0.2", "spacy_pkuseg-1.0.2-cp311-cp311-manylinux_2_24_x86_64.manylinux_2_28_x86_64.whl", "eada7615a9055f6c9570d8acca652158d2e86c298d15aaa2e40126bae8017de3", "wheel"),
    ("ssg==0.0.8", "ssg-0.0.8-py3-none-any.whl", "15bc2a4307d1d37a5a77385f8b26178fcaada6c7bf2bf40511d1330f55d395c0", "wheel"),
    ("tltk==1.11", "tltk-1.11-py3-none-any.whl", "76e1d88472da90ce0834ef05fe0eec900ee28b9f60811e41014f925bcdb26b4f", "wheel"),
    ("torchfcpe==0.0.4", "torchfcpe-0.0.4-py3-none-any.whl", "f042c463d850d76c6f4899a0b84f0b694bb560adf05f4de951097a756d17472d", "wheel"),
]
# package -> (member prefixes, file-name suffixes to take or None for "anything not code/prose",
#             exact members to leave out)
RULES = {
    "alt-profanity-check": (["profanity_check/data/"], None, []),
    "attacut": (["attacut/artifacts/"], None, []),
    "basic-pitch": (["basic_pitch/saved_models/"], None, []),
    "cs-core-news-sm": (["cs_core_news_sm/"], None, []),
    "deepcut": (["deepcut/weight/"], None, []),
    "dists-pytorch": (["DISTS_pytorch/"], None, []),
    "facenet-pytorch": (["facenet_pytorch/data/"], None, []),
    "faster-whisper": (["faster_whisper/assets/"], None, []),
    "fer": (["fer/data/"], None, []),
    "g2p-en": (["g2p_en/"], None, []),
    "gensim": (["gensim/test/test_data/"], None, []),
    "guesslang": (["guesslang/data/"], None, []),
    "jieba": (["jieba/finalseg/", "jieba/posseg/", "jieba/lac_small/"], None, []),
    "khmer-nltk": (["khmernltk/"], None, []),
    "magika": (["magika/models/", "magika/config/"], None, []),
    "mtcnn": (["mtcnn/data/"], None, []),
    # nagisa's 40 MB DyNet parameter file is plain text; its vocabularies are gzipped pickles.
    "nagisa": (["nagisa/data/"], (".dict", ".hp"), ["nagisa/data/sample_datasets/sample.dict"]),
    "nudenet": (["nudenet/"], None, []),
    "profanity-check": (["profanity_check/data/"], None, []),
    "pythainlp": (["pythainlp/corpus/"], None, []),
    "pyvi": (["pyvi/models/"], None, []),
    "rapidocr-onnxruntime": (["rapidocr_onnxruntime/models/"], None, []),
    "resemblyzer": (["resemblyzer/"], None, []),
    "speechmos": (["speechmos/"], None, []),
    # statsmodels ships hundreds of CSV/R/Stata result files; only the pickle and npz are models.
    "statsmodels": ([""], (".pkl", ".npz"), []),
    # ethnicolr ships census CSVs, PDFs and notebooks too; its models are the Keras HDF5 files.
    "ethnicolr": (["ethnicolr/models/"], (".h5",), []),
    "g2pm": (["g2pM/"], None, []),
    "natasha": (["natasha/data/"], None, []),
    "openai-whisper": (["whisper/assets/"], None, []),
    "resampy": (["resampy/data/"], None, []),
    "sentiment-analysis-spanish": (["sentiment_analysis_spanish/saved_model/"], (".pbz2",), []),
    "spacy-pkuseg": (["spacy_pkuseg/dicts/"], None, []),
    "ssg": (["ssg/artifacts/"], None, []),
    "tltk": (["tltk/"], None, []),
    "torchfcpe": (["torchfcpe/assets/"], None, []),
}
NOT_MODEL = (".py", ".pyc", ".pyi", ".pyx", ".pxd", ".c", ".h", ".cpp", ".so", ".txt", ".md",
             ".rst", ".html", ".css", ".js", ".typed", ".cfg", ".toml", ".in")


def fmt(data, name):
    """A coarse label for the manifest only; the scanner decides by content itself."""
    if data[:2] == b"\x80\x02" and data[2:12] == b"\x8a\nl\xfc\x9cF\xf9 j\xa8":
        return "pytorch-legacy"
    if data[:1] == b"\x80" and len(data) > 1 and data[1] in range(2, 6):
        return "pickle"
    if data[:6] == b"\x93NUMPY":
        return "npy"
    if data[:4] == b"PK\x03\x04":
        return "zip"
    if data[:8] == b"\x89HDF\r\n\x1a\n":
        return "hdf5"
    if data[257:262] == b"ustar":
        return "tar"
    if data[:2] == b"\x1f\x8b":
        return "gzip"
    if data[:3] == b"BZh":
        return "bzip2"
    if data[:4] == b"lCRF":
        return "crfsuite"
    if data[4:8] == b"TFL3":
        return "tflite"
    if data[:16] == b"SQLite format 3\x00":
        return "sqlite"
    if name.endswith(".onnx"):
        return "onnx"
    if name.endswith(".pb"):
        return "tf-saved-model"
    if name.endswith((".json", ".yaml", ".yml")):
        return "text-config"
    if data[:1] in (b"(", b"c", b"}", b"]") and name.endswith((".p", ".pkl")):
        return "pickle"
    return "other"


def main():
    cache = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
        os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "modelward/real-archives")
    archives, files = [], []
    for spec, filename, sha, kind in ARCHIVES:
        package, version = spec.split("==")
        path = os.path.join(cache, package, filename)
        with open(path, "rb") as f:
            got = hashlib.sha256(f.read()).hexdigest()
        if got != sha:
            raise SystemExit("sha256 of %s is %s, not %s" % (path, got, sha))
        archives.append({"spec": spec, "filename": filename, "sha256": sha, "kind": kind})
        prefixes, suffixes, leave_out = RULES[package]
        if filename.endswith(".whl"):
            z = zipfile.ZipFile(path)
            members = [(i.filename, lambda i=i: z.read(i)) for i in z.infolist() if not i.is_dir()]
        else:
            t = tarfile.open(path)
            members = [(m.name, lambda m=m: t.extractfile(m).read()) for m in t.getmembers()
                       if m.isfile()]
        for member, read in sorted(members):
            # sdists have a top folder "name-version/"; rules are written without it
            rel = member.split("/", 1)[1] if kind == "sdist" else member
            if ".dist-info/" in rel or ".data/" in rel or rel in leave_out:
                continue
            if not any(rel.startswith(p) for p in prefixes):
                continue
            if suffixes is not None and not rel.endswith(suffixes):
                continue
            if suffixes is None and rel.endswith(NOT_MODEL):
                continue
            data = read()
            files.append({
                "path": "%s-%s/%s" % (package, version, rel),
                "package": package,
                "version": version,
                "format": fmt(data, rel),
                "size": len(data),
                "sha256": hashlib.sha256(data).hexdigest(),
                "archive": filename,
                "member": member,
            })
    out = os.path.join(HERE, "manifest_extra.json")
    with open(out, "w") as f:
        json.dump({"archives": archives, "files": files}, f, indent=1)
        f.write("\n")
    print("%d archives, %d files, %d bytes -> %s"
          % (len(archives), len(files), sum(e["size"] for e in files), out))


if __name__ == "__main__":
    main()
