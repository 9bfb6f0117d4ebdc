//! The committed fixtures (`tests/fixtures/{keras,tensorflow,onnx}`, made by
//! `tests/fixtures/generate/gen_model_graphs.py` with the real writers): `ok_*` files give no finding
//! above info, `bad_<RULE>_*` files give that rule. Every rule this crate emits is in the catalog
//! and has a firing and a non-firing case. A mutation pass checks that no reader panics.

use modelward_diagnostics::Fact;
use modelward_formats::zip::{ZipLimits, list, raw_member};
use modelward_graphs::{keras, marshal, onnx, tensorflow};
use std::collections::{BTreeSet, HashMap};
use std::fs;
use std::io::{Cursor, Read};
use std::path::{Path, PathBuf};

const RULES_TOML: &str = include_str!("../../modelward_policy/catalog/rules.toml");

/// Every rule code this crate emits.
const OUR_RULES: &[&str] = &[
    "KRS101", "KRS102", "KRS103", "KRS104", "KRS105", "KRS106", "KRS107", "KRS108", "KRS109", "KRS110",
    "TFM101", "TFM102", "TFM103", "TFM104", "TFM105", "TFM106", "TFM107", "ONX101", "ONX102", "ONX103",
    "ONX104", "ONX105", "ONX106", "ONX107", "ONX108",
];

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures")
}

/// `code → severity` from the catalog text (a line scan: `code = "X"` then `severity = "y"`).
fn severities() -> HashMap<String, String> {
    let mut out = HashMap::new();
    let mut code: Option<String> = None;
    for line in RULES_TOML.lines() {
        let line = line.trim();
        if let Some(v) = line.strip_prefix("code = ") {
            code = Some(v.trim_matches('"').to_owned());
        } else if let Some(v) = line.strip_prefix("severity = ")
            && let Some(c) = code.take()
        {
            out.insert(c, v.trim_matches('"').to_owned());
        }
    }
    out
}

fn severity(f: &Fact) -> String {
    severities()
        .get(f.rule)
        .cloned()
        .unwrap_or_else(|| panic!("rule {} is not in the catalog", f.rule))
}

fn member(path: &Path, name: &str) -> Vec<u8> {
    let data = fs::read(path).unwrap();
    let len = data.len() as u64;
    let mut r = Cursor::new(data);
    let listing = list(&mut r, len, ZipLimits::default()).unwrap();
    let e = listing.entries.iter().find(|e| e.name == name).unwrap().clone();
    let raw = raw_member(&mut r, &e, len).unwrap();
    let mut out = Vec::new();
    modelward_formats::compress::zip_method(e.method, raw)
        .unwrap()
        .unwrap()
        .read_to_end(&mut out)
        .unwrap();
    out
}

fn check_file(path: &Path) -> Option<Vec<Fact>> {
    let name = path.file_name()?.to_str()?;
    let dir = path.parent()?.file_name()?.to_str()?;
    let bytes = fs::read(path).ok()?;
    Some(match (dir, path.extension()?.to_str()?) {
        ("keras", "keras") => {
            let members: Vec<String> = {
                let len = bytes.len() as u64;
                let l = list(&mut Cursor::new(bytes.clone()), len, ZipLimits::default()).unwrap();
                l.entries.iter().map(|e| e.name.clone()).collect()
            };
            let names: Vec<&str> = members.iter().map(String::as_str).collect();
            assert!(keras::looks_like_keras_zip(&names), "{name}");
            let cfg = String::from_utf8(member(path, "config.json")).unwrap();
            keras::check_config(&cfg)
        }
        ("keras", "h5") => {
            assert!(keras::looks_like_hdf5(&bytes), "{name}");
            let len = bytes.len() as u64;
            keras::check_h5(&mut Cursor::new(bytes), len)
        }
        ("tensorflow", "pb") if name.contains("keras_metadata") => tensorflow::check_keras_metadata(&bytes),
        ("tensorflow", "pb") if name.contains("graph_def") => tensorflow::check_graph_def(&bytes),
        ("tensorflow", "pb") => {
            if !name.contains("truncated") {
                assert!(tensorflow::looks_like_saved_model(&bytes), "{name}");
            }
            tensorflow::check_saved_model(&bytes)
        }
        ("onnx", "onnx") => {
            if !name.contains("truncated") {
                assert!(
                    onnx::looks_like_onnx(&bytes[..bytes.len().min(64)], bytes.len() as u64),
                    "{name}"
                );
            }
            onnx::check_model(&bytes, true)
        }
        _ => return None,
    })
}

fn all_fixture_files() -> Vec<PathBuf> {
    let mut out = Vec::new();
    for d in ["keras", "tensorflow", "onnx"] {
        let mut v: Vec<PathBuf> = fs::read_dir(fixtures().join(d))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        v.sort();
        out.extend(v);
    }
    out
}

fn show(facts: &[Fact]) -> String {
    facts
        .iter()
        .map(|f| {
            format!(
                "  {} {}: {} [{}]",
                f.rule,
                severity(f),
                f.message,
                f.evidence.as_deref().unwrap_or("")
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn every_fixture_gives_what_its_name_says() {
    let mut fired: BTreeSet<&'static str> = BTreeSet::new();
    let mut checked = 0;
    for path in all_fixture_files() {
        let name = path.file_name().unwrap().to_str().unwrap().to_owned();
        let Some(facts) = check_file(&path) else { continue };
        checked += 1;
        fired.extend(facts.iter().map(|f| f.rule));
        if name.starts_with("ok_") {
            // Nothing but the op inventory of TensorFlow graphs.
            let loud: Vec<Fact> = facts.iter().filter(|f| f.rule != "TFM105").cloned().collect();
            assert!(loud.is_empty(), "{name} must give no finding:\n{}", show(&loud));
        } else if let Some(rest) = name.strip_prefix("bad_") {
            let rule = &rest[..6];
            assert!(
                facts.iter().any(|f| f.rule == rule),
                "{name} must give {rule}, gave:\n{}",
                show(&facts)
            );
        }
        for f in &facts {
            assert!(!f.message.is_empty() && f.evidence.is_some(), "{name}: {f:?}");
        }
    }
    assert!(checked >= 45, "only {checked} fixtures checked");
    // ONX107 needs model_dir_is_known = false; see below.
    for r in OUR_RULES.iter().filter(|r| **r != "ONX107") {
        assert!(fired.contains(r), "no fixture fires {r}");
    }
}

/// Each rule: a fixture it fires on and one it stays quiet on.
const FIRES_AND_QUIET: &[(&str, &str, &str)] = &[
    (
        "KRS101",
        "keras/bad_KRS101_lambda.keras",
        "keras/ok_wrappers_custom.keras",
    ),
    (
        "KRS102",
        "keras/bad_KRS102_lambda_os_system.keras",
        "keras/bad_KRS101_lambda.keras",
    ),
    (
        "KRS103",
        "keras/bad_KRS103_builtins_eval.keras",
        "keras/ok_wrappers_custom.keras",
    ),
    (
        "KRS104",
        "keras/bad_KRS104_foreign_module.keras",
        "keras/ok_wrappers_custom.keras",
    ),
    (
        "KRS105",
        "keras/bad_KRS105_tfsmlayer.keras",
        "keras/ok_dense.keras",
    ),
    (
        "KRS106",
        "keras/bad_KRS106_vocabulary_path.keras",
        "keras/ok_dense.keras",
    ),
    (
        "KRS107",
        "keras/bad_KRS107_get_file.keras",
        "keras/ok_dense.keras",
    ),
    (
        "KRS108",
        "keras/bad_KRS108_enable_unsafe_deserialization.keras",
        "keras/ok_dense.keras",
    ),
    (
        "KRS109",
        "keras/bad_KRS109_external_link.h5",
        "keras/ok_dense_legacy.h5",
    ),
    (
        "KRS110",
        "keras/bad_KRS110_config_not_json.h5",
        "keras/ok_dense_legacy.h5",
    ),
    (
        "TFM101",
        "tensorflow/bad_TFM101_eager_py_func.pb",
        "tensorflow/ok_saved_model.pb",
    ),
    (
        "TFM102",
        "tensorflow/bad_TFM102_graph_def_read_file.pb",
        "tensorflow/ok_graph_def_frozen.pb",
    ),
    (
        "TFM103",
        "tensorflow/bad_TFM103_save_outside_saver.pb",
        "tensorflow/ok_saved_model.pb",
    ),
    (
        "TFM104",
        "tensorflow/bad_TFM104_unknown_op.pb",
        "tensorflow/ok_saved_model.pb",
    ),
    (
        "TFM105",
        "tensorflow/ok_saved_model.pb",
        "tensorflow/bad_TFM107_truncated.pb",
    ),
    (
        "TFM106",
        "tensorflow/bad_TFM106_asset_escape.pb",
        "tensorflow/ok_saved_model.pb",
    ),
    (
        "TFM107",
        "tensorflow/bad_TFM107_truncated.pb",
        "tensorflow/ok_saved_model.pb",
    ),
    (
        "ONX101",
        "onnx/bad_ONX101_custom_domain.onnx",
        "onnx/ok_local_function.onnx",
    ),
    (
        "ONX102",
        "onnx/bad_ONX102_pyop.onnx",
        "onnx/ok_ml_normalizer.onnx",
    ),
    (
        "ONX103",
        "onnx/bad_ONX103_external_traversal.onnx",
        "onnx/ok_external_same_dir.onnx",
    ),
    (
        "ONX104",
        "onnx/bad_ONX104_raw_data_short.onnx",
        "onnx/ok_add.onnx",
    ),
    ("ONX105", "onnx/bad_ONX105_raw_data_long.onnx", "onnx/ok_add.onnx"),
    (
        "ONX106",
        "onnx/bad_ONX106_huge_loop.onnx",
        "onnx/ok_loop_small.onnx",
    ),
    (
        "ONX108",
        "onnx/bad_ONX108_truncated.onnx",
        "onnx/ok_if_branches.onnx",
    ),
];

#[test]
fn each_rule_fires_on_one_fixture_and_not_on_another() {
    for (rule, fires, quiet) in FIRES_AND_QUIET {
        let on = check_file(&fixtures().join(fires)).unwrap();
        assert!(
            on.iter().any(|f| f.rule == *rule),
            "{rule} must fire on {fires}:\n{}",
            show(&on)
        );
        let off = check_file(&fixtures().join(quiet)).unwrap();
        assert!(
            off.iter().all(|f| f.rule != *rule),
            "{rule} must not fire on {quiet}:\n{}",
            show(&off)
        );
    }
    // ONX107 (the model folder unknown) is checked in the external-data test below.
    let covered: BTreeSet<&str> = FIRES_AND_QUIET.iter().map(|r| r.0).chain(["ONX107"]).collect();
    assert_eq!(covered, OUR_RULES.iter().copied().collect());
}

#[test]
fn every_rule_is_in_the_catalog() {
    let sev = severities();
    for r in OUR_RULES {
        assert!(sev.contains_key(*r), "{r} missing from rules.toml");
    }
}

#[test]
fn lambda_evidence_shows_the_names_the_bytecode_uses() {
    let cfg = String::from_utf8(member(
        &fixtures().join("keras/bad_KRS102_lambda_os_system.keras"),
        "config.json",
    ))
    .unwrap();
    let facts = keras::check_config(&cfg);
    let f = facts.iter().find(|f| f.rule == "KRS102").unwrap();
    let ev = f.evidence.as_deref().unwrap();
    assert!(
        ev.contains("__import__") && ev.contains("system") && ev.contains("'echo modelward-fixture'"),
        "{ev}"
    );
    assert!(f.message.contains("layer 'evil/payload'"), "{}", f.message);

    let cfg = String::from_utf8(member(
        &fixtures().join("keras/bad_KRS101_lambda_nested.keras"),
        "config.json",
    ))
    .unwrap();
    let facts = keras::check_config(&cfg);
    assert_eq!(facts.len(), 1, "{}", show(&facts));
    assert!(facts[0].message.contains("inner_lam"), "{}", facts[0].message);
    assert!(facts[0].evidence.as_deref().unwrap().contains("'<lambda>'"));

    let len = fs::metadata(fixtures().join("keras/bad_KRS102_keras2_lambda_py38.h5"))
        .unwrap()
        .len();
    let facts = keras::check_h5(
        &mut fs::File::open(fixtures().join("keras/bad_KRS102_keras2_lambda_py38.h5")).unwrap(),
        len,
    );
    let ev = facts
        .iter()
        .find(|f| f.rule == "KRS102")
        .and_then(|f| f.evidence.clone())
        .unwrap();
    assert!(
        ev.starts_with("function [code, defaults, closure]") && ev.contains("CPython 3.8-3.10"),
        "{ev}"
    );
}

#[test]
fn hdf5_external_references_name_the_target_file() {
    for (f, want) in [
        ("bad_KRS109_external_link.h5", "/etc/modelward-fixture.h5"),
        ("bad_KRS109_external_dataset.h5", "/etc/modelward-fixture.bin"),
    ] {
        let p = fixtures().join("keras").join(f);
        let len = fs::metadata(&p).unwrap().len();
        let facts = keras::check_h5(&mut fs::File::open(&p).unwrap(), len);
        assert!(
            facts
                .iter()
                .any(|x| x.rule == "KRS109" && x.evidence.as_deref().unwrap_or("").contains(want)),
            "{f}:\n{}",
            show(&facts)
        );
    }
}

#[test]
fn torch_module_payloads_are_handed_back() {
    let cfg = String::from_utf8(member(
        &fixtures().join("keras/bad_KRS105_torch_module_wrapper.keras"),
        "config.json",
    ))
    .unwrap();
    let p = keras::torch_module_payloads(&cfg);
    assert_eq!(p.len(), 1);
    assert_eq!(&p[0][..2], b"\x80\x02");
}

#[test]
fn onnx_external_data_beside_the_model_is_info_only_when_the_folder_is_unknown() {
    let bytes = fs::read(fixtures().join("onnx/ok_external_same_dir.onnx")).unwrap();
    assert!(onnx::check_model(&bytes, true).is_empty());
    let facts = onnx::check_model(&bytes, false);
    assert_eq!(facts.len(), 1, "{}", show(&facts));
    assert_eq!(facts[0].rule, "ONX107");
    assert_eq!(
        onnx::external_data_locations(&bytes),
        vec!["ok_external_same_dir.onnx.data".to_owned()]
    );
    let bad = fs::read(fixtures().join("onnx/bad_ONX103_external_nested_traversal.onnx")).unwrap();
    let facts = onnx::check_model(&bad, false);
    assert!(facts.iter().all(|f| f.rule != "ONX107"));
    assert!(
        facts[0]
            .evidence
            .as_deref()
            .unwrap()
            .contains("weights/../../secret.bin")
    );
}

#[test]
fn onnx_custom_ops_are_found_in_subgraphs_and_functions_but_local_functions_are_not_custom_ops() {
    for f in [
        "bad_ONX101_custom_in_subgraph.onnx",
        "bad_ONX101_custom_in_function.onnx",
    ] {
        let facts = onnx::check_model(&fs::read(fixtures().join("onnx").join(f)).unwrap(), true);
        assert_eq!(facts.len(), 1, "{f}: {}", show(&facts));
        assert!(facts[0].message.contains("com.example.fixture::Backdoor"));
    }
    let facts = onnx::check_model(
        &fs::read(fixtures().join("onnx/bad_ONX101_custom_in_function.onnx")).unwrap(),
        true,
    );
    assert!(
        facts[0]
            .evidence
            .as_deref()
            .unwrap()
            .contains("function 'local.fixture.Wrapped'")
    );
}

#[test]
fn saved_model_inventory_and_paths() {
    let facts =
        tensorflow::check_saved_model(&fs::read(fixtures().join("tensorflow/ok_saved_model.pb")).unwrap());
    assert_eq!(facts.len(), 1, "{}", show(&facts));
    let inv = &facts[0];
    assert_eq!(inv.rule, "TFM105");
    let ev = inv.evidence.as_deref().unwrap();
    assert!(ev.contains("SaveV2×1") && ev.contains("MatMul×1"), "{ev}");
    let facts = tensorflow::check_saved_model(
        &fs::read(fixtures().join("tensorflow/bad_TFM102_read_file.pb")).unwrap(),
    );
    let f = facts.iter().find(|f| f.rule == "TFM102").unwrap();
    assert!(f.evidence.as_deref().unwrap().contains("/etc/passwd"));
    assert!(f.message.contains("__inference_call_404"));
}

#[test]
fn marshal_payloads_of_every_python_version() {
    let dir = fixtures().join("keras");
    let mut seen = 0;
    for (ver, layout) in [
        ("37", "3.7"),
        ("38", "3.8-3.10"),
        ("310", "3.8-3.10"),
        ("311", "3.11+"),
        ("312", "3.11+"),
        ("313", "3.11+"),
    ] {
        let Ok(evil) = fs::read(dir.join(format!("marshal_py{ver}_evil.bin"))) else {
            continue;
        };
        seen += 1;
        let s = marshal::summarize(&evil);
        assert_eq!(s.layout, Some(layout), "py{ver}");
        assert!(!s.truncated, "py{ver}: {s:?}");
        assert_eq!(s.co_name.as_deref(), Some("<lambda>"));
        assert_eq!(s.co_filename.as_deref(), Some("<modelward-fixture>"));
        assert!(
            s.names.contains(&"__import__".to_owned()) && s.names.contains(&"system".to_owned()),
            "py{ver}: {s:?}"
        );
        assert!(
            s.consts.contains(&"'os'".to_owned())
                && s.consts.contains(&"'echo modelward-fixture'".to_owned()),
            "py{ver}: {s:?}"
        );

        let benign = fs::read(dir.join(format!("marshal_py{ver}_benign.bin"))).unwrap();
        let s = marshal::summarize(&benign);
        assert_eq!(s.layout, Some(layout), "py{ver}");
        assert!(s.names.is_empty(), "py{ver}: {s:?}");
        assert!(
            s.consts.contains(&"2".to_owned()) && s.consts.contains(&"1".to_owned()),
            "py{ver}: {s:?}"
        );
    }
    assert!(seen >= 5);
    let s = marshal::summarize(&fs::read(dir.join("marshal_py311_module.bin")).unwrap());
    assert!(!s.truncated, "{s:?}");
    assert_eq!(s.co_name.as_deref(), Some("<module>"));
    assert_eq!(s.co_filename.as_deref(), Some("/home/author/train.py"));
    assert_eq!(s.nested, 3, "{s:?}");
    for n in ["os", "outer", "X", "path", "join"] {
        assert!(s.names.contains(&n.to_owned()), "{n}: {s:?}");
    }
    assert!(s.consts.contains(&"12345678901234567890".to_owned()), "{s:?}");
    assert!(s.consts.iter().any(|c| c == "<code inner>"), "{s:?}");
}

/// A small deterministic generator (no dependency needed).
struct Lcg(u64);
impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

#[test]
fn mutated_fixtures_never_panic() {
    let mut rng = Lcg(0x5eed);
    let mut runs = 0;
    for path in all_fixture_files() {
        let Ok(orig) = fs::read(&path) else { continue };
        if orig.is_empty() {
            continue;
        }
        let name = path.file_name().unwrap().to_str().unwrap().to_owned();
        let rounds = if name.ends_with(".h5") { 40 } else { 150 };
        for _ in 0..rounds {
            let mut b = orig.clone();
            match rng.below(4) {
                0 => {
                    let n = rng.below(b.len());
                    b.truncate(n);
                }
                1 => {
                    for _ in 0..1 + rng.below(8) {
                        let i = rng.below(b.len());
                        b[i] ^= 1 << rng.below(8);
                    }
                }
                2 => {
                    let i = rng.below(b.len());
                    b[i] = [0x00, 0xff, 0x7f, 0x80][rng.below(4)];
                }
                _ => {
                    let i = rng.below(b.len());
                    let j = rng.below(b.len());
                    b.insert(i.min(j), 0xff);
                }
            }
            // Every reader on every mutant: none may panic whatever the bytes are.
            let _ = marshal::summarize(&b);
            let _ = onnx::check_model(&b, false);
            let _ = onnx::looks_like_onnx(&b, b.len() as u64);
            let _ = tensorflow::check_saved_model(&b);
            let _ = tensorflow::check_keras_metadata(&b);
            let _ = tensorflow::looks_like_saved_model(&b);
            let _ = keras::check_config(&String::from_utf8_lossy(&b));
            if name.ends_with(".h5") {
                let len = b.len() as u64;
                let _ = keras::check_h5(&mut Cursor::new(b), len);
            }
            runs += 1;
        }
    }
    assert!(runs > 3000);
}
