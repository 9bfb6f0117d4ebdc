//! `modelward detonate` and `scan --detonate` with the real bubblewrap and python3: merged
//! reports, the source marker in JSON and SARIF, verdicts that only rise.

use std::path::PathBuf;
use std::process::{Command, Output};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// `false` (skip) when bubblewrap is missing locally; with `CI=true` or
/// `MODELWARD_REQUIRE_SANDBOX=1` a failure.
fn have_sandbox() -> bool {
    let found = std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join("bwrap").is_file()));
    if !found {
        assert!(
            !std::env::var("CI").is_ok_and(|v| v == "true")
                && !std::env::var("MODELWARD_REQUIRE_SANDBOX").is_ok_and(|v| v == "1"),
            "CI=true or MODELWARD_REQUIRE_SANDBOX=1, but bwrap is not installed"
        );
        eprintln!("skipping: bwrap not found on PATH");
    }
    found
}

fn modelward(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_modelward"))
        .args(args)
        .current_dir(repo())
        .env("NO_COLOR", "1")
        .output()
        .expect("run modelward")
}

fn json(o: &Output) -> serde_json::Value {
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| {
        panic!(
            "{e}: {}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        )
    })
}

fn validate(schema_path: &str, doc: &serde_json::Value) {
    let schema: serde_json::Value =
        serde_json::from_slice(&std::fs::read(repo().join(schema_path)).expect("schema"))
            .expect("schema json");
    let validator = jsonschema::validator_for(&schema).expect("schema compiles");
    let errors: Vec<String> = validator
        .iter_errors(doc)
        .map(|e| e.to_string())
        .take(10)
        .collect();
    assert!(errors.is_empty(), "{schema_path}: {}", errors.join("\n"));
}

#[test]
fn detonate_prints_the_behaviour_and_the_merged_verdict() {
    if !have_sandbox() {
        return;
    }
    let o = modelward(&["detonate", "demo/model.bin"]);
    let text = String::from_utf8_lossy(&o.stdout);
    assert_eq!(
        o.status.code(),
        Some(1),
        "{text}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(
        text.contains("process       os.system(b'echo modelward-fixture')"),
        "{text}"
    );
    assert!(text.contains("DYN101 load-started-process"), "{text}");
    assert!(text.contains("[dynamic]"), "{text}");
    assert!(
        text.contains("PKL102"),
        "the static findings are there too: {text}"
    );
}

#[test]
fn json_and_sarif_mark_dynamic_findings_and_match_their_schemas() {
    if !have_sandbox() {
        return;
    }
    let doc = json(&modelward(&[
        "detonate",
        "-f",
        "json",
        "demo/model.bin",
        "demo/clean_checkpoint.pt",
    ]));
    validate("docs/json-schema.json", &doc);
    let files = doc["files"].as_array().expect("files");
    let model = files
        .iter()
        .find(|f| f["path"] == "demo/model.bin")
        .expect("model.bin");
    let findings = model["findings"].as_array().expect("findings");
    assert!(
        findings
            .iter()
            .any(|f| f["rule"] == "DYN101" && f["source"] == "dynamic"),
        "{findings:#?}"
    );
    assert!(
        findings
            .iter()
            .any(|f| f["rule"] == "PKL102" && f.get("source").is_none()),
        "{findings:#?}"
    );
    let clean = files
        .iter()
        .find(|f| f["path"] == "demo/clean_checkpoint.pt")
        .expect("clean");
    assert_eq!(clean["verdict"], "clean", "{clean:#}");

    let sarif = json(&modelward(&["detonate", "-f", "sarif", "demo/model.bin"]));
    validate("tests/data/sarif-schema-2.1.0.json", &sarif);
    let results = sarif["runs"][0]["results"].as_array().expect("results");
    assert!(
        results
            .iter()
            .any(|r| r["ruleId"] == "DYN101" && r["properties"]["source"] == "dynamic")
    );
    assert!(
        results
            .iter()
            .any(|r| r["ruleId"] == "PKL102" && r["properties"].get("source").is_none())
    );
}

#[test]
fn scan_detonates_only_what_the_mode_asks_for() {
    if !have_sandbox() {
        return;
    }
    let doc = json(&modelward(&[
        "scan",
        "--no-progress",
        "-f",
        "json",
        "--detonate=suspicious",
        "demo",
    ]));
    validate("docs/json-schema.json", &doc);
    let dynamic = |f: &serde_json::Value| {
        f["findings"]
            .as_array()
            .expect("findings")
            .iter()
            .any(|x| x["source"] == "dynamic")
    };
    for f in doc["files"].as_array().expect("files") {
        let suspicious = f["verdict"] == "suspicious" || f["verdict"] == "malicious";
        assert_eq!(dynamic(f), suspicious, "{}: {f:#}", f["path"]);
    }
    // Without --detonate nothing is dynamic; with =always clean files stay clean.
    let plain = json(&modelward(&["scan", "--no-progress", "-f", "json", "demo"]));
    assert!(!plain["files"].as_array().expect("files").iter().any(dynamic));
    let always = json(&modelward(&[
        "scan",
        "--no-progress",
        "-f",
        "json",
        "--detonate=always",
        "demo/clean_checkpoint.pt",
        "demo/clean_array.npy",
    ]));
    for f in always["files"].as_array().expect("files") {
        assert_eq!(f["verdict"], "clean", "{f:#}");
    }
}

#[test]
fn a_dynamic_run_that_sees_nothing_never_lowers_the_static_verdict() {
    if !have_sandbox() {
        return;
    }
    // A pickle that names os.system but never calls it: statically malicious, and loading it
    // does nothing at all.
    let dir = tempfile::tempdir().expect("tempdir");
    let p = dir.path().join("names_only.pkl");
    std::fs::write(&p, b"\x80\x02cposix\nsystem\n.").expect("write");
    let o = modelward(&["detonate", "-f", "json", p.to_str().expect("utf-8")]);
    let doc = json(&o);
    let f = &doc["files"][0];
    assert_eq!(f["verdict"], "malicious", "{f:#}");
    assert!(
        !f["findings"]
            .as_array()
            .expect("findings")
            .iter()
            .any(|x| x["source"] == "dynamic" && x["severity"] != "info"),
        "{f:#}"
    );
}

#[test]
fn a_missing_interpreter_is_a_clear_error_not_a_finding() {
    let o = Command::new(env!("CARGO_BIN_EXE_modelward"))
        .args(["detonate", "demo/model.bin"])
        .current_dir(repo())
        .env("MODELWARD_PYTHON", "/nonexistent/python3")
        .output()
        .expect("run modelward");
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("sandbox not available"), "{err}");
}

#[test]
fn a_sample_that_signals_its_parents_leaves_modelward_running() {
    if !have_sandbox() {
        return;
    }
    let code = "import os\nos.kill(os.getppid(), 9)\nos.kill(1, 15)\nos.kill(-1, 9)";
    let pickle = modelward_pickle::assemble::Assembler::new()
        .proto(2)
        .global("builtins", "exec")
        .binunicode(code)
        .tuple1()
        .reduce()
        .stop()
        .finish();
    let dir = tempfile::tempdir().expect("tempdir");
    let p = dir.path().join("kill.pkl");
    std::fs::write(&p, pickle).expect("write");
    let o = modelward(&["detonate", "-f", "json", p.to_str().expect("utf-8")]);
    // modelward finished its report (exit 1: findings reached high), it was not killed.
    assert_eq!(o.status.code(), Some(1), "{}", String::from_utf8_lossy(&o.stderr));
    let doc = json(&o);
    let findings = doc["files"][0]["findings"].as_array().expect("findings");
    let kills: Vec<&str> = findings
        .iter()
        .filter(|f| f["rule"] == "DYN110")
        .filter_map(|f| f["evidence"].as_str())
        .collect();
    assert!(kills.contains(&"os.kill(1, 9)"), "{kills:?}");
    assert!(kills.contains(&"os.kill(-1, 9)"), "{kills:?}");
}
