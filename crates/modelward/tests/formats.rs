//! Output formats: JSON and SARIF validate against their schemas on a scan of a mixed
//! directory, and each format has a snapshot (`MODELWARD_UPDATE_SNAPSHOTS=1` rewrites them).

use std::path::PathBuf;
use std::process::Command;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn run(args: &[&str]) -> String {
    let o = Command::new(env!("CARGO_BIN_EXE_modelward"))
        .args(args)
        .current_dir(repo())
        .env("NO_COLOR", "1")
        .output()
        .expect("run");
    String::from_utf8(o.stdout).expect("utf8")
}

fn validate(schema_path: &str, doc: &str) {
    let schema: serde_json::Value =
        serde_json::from_slice(&std::fs::read(repo().join(schema_path)).expect("schema"))
            .expect("schema json");
    let doc: serde_json::Value = serde_json::from_str(doc).expect("output is JSON");
    let validator = jsonschema::validator_for(&schema).expect("schema compiles");
    let errors: Vec<String> = validator
        .iter_errors(&doc)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .take(20)
        .collect();
    assert!(errors.is_empty(), "{schema_path}:\n{}", errors.join("\n"));
}

#[test]
fn json_of_a_mixed_directory_matches_the_documented_schema() {
    validate(
        "docs/json-schema.json",
        &run(&["scan", "--format", "json", "tests/fixtures"]),
    );
}

#[test]
fn json_and_sarif_with_a_path_not_scanned_match_their_schemas() {
    let json = run(&["scan", "--format", "json", "does/not/exist", "demo/model.bin"]);
    assert!(json.contains("\"errors\": ["), "{json}");
    validate("docs/json-schema.json", &json);
    validate(
        "tests/data/sarif-schema-2.1.0.json",
        &run(&["scan", "--format", "sarif", "does/not/exist", "demo/model.bin"]),
    );
}

#[test]
fn sarif_of_a_mixed_directory_matches_the_sarif_2_1_0_schema() {
    let sarif = run(&["scan", "--format", "sarif", "tests/fixtures"]);
    validate("tests/data/sarif-schema-2.1.0.json", &sarif);
    let doc: serde_json::Value = serde_json::from_str(&sarif).expect("json");
    let results = doc["runs"][0]["results"].as_array().expect("results");
    assert!(results.len() > 50);
    // Stable fingerprints: a second run gives the same ones.
    let again: serde_json::Value =
        serde_json::from_str(&run(&["scan", "--format", "sarif", "tests/fixtures"])).expect("json");
    let prints = |d: &serde_json::Value| -> Vec<String> {
        d["runs"][0]["results"]
            .as_array()
            .expect("results")
            .iter()
            .map(|r| r["partialFingerprints"]["modelwardFinding/v1"].to_string())
            .collect()
    };
    assert_eq!(prints(&doc), prints(&again));
}

fn snapshot(name: &str, actual: &str) {
    let path = repo().join("crates/modelward/tests/snapshots").join(name);
    // Wall time and version change from run to run.
    let redacted: String = actual
        .lines()
        .map(|l| {
            let l = regex_lite(l, " in ", " ms", " in <elapsed> ms");
            let l = match l.find("\"elapsed_ms\": ") {
                Some(i) => format!("{}\"elapsed_ms\": <elapsed>", &l[..i]),
                None => l,
            };
            let l = l.replace(env!("CARGO_PKG_VERSION"), "<version>");
            l + "\n"
        })
        .collect();
    if std::env::var_os("MODELWARD_UPDATE_SNAPSHOTS").is_some() {
        std::fs::create_dir_all(path.parent().expect("dir")).expect("mkdir");
        std::fs::write(&path, &redacted).expect("write snapshot");
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|_| {
        panic!(
            "{} is missing: run with MODELWARD_UPDATE_SNAPSHOTS=1",
            path.display()
        )
    });
    assert_eq!(
        redacted, expected,
        "snapshot {name} differs; rerun with MODELWARD_UPDATE_SNAPSHOTS=1 to accept"
    );
}

/// Replaces the text between `start` and the next `end` with `with`.
fn regex_lite(line: &str, start: &str, end: &str, with: &str) -> String {
    match line.find(start) {
        Some(i) => match line[i + start.len()..].find(end) {
            Some(j) => format!(
                "{}{}{}",
                &line[..i],
                with,
                &line[i + start.len() + j + end.len()..]
            ),
            None => line.to_owned(),
        },
        None => line.to_owned(),
    }
}

#[test]
fn snapshot_per_output_format() {
    snapshot("demo.txt", &run(&["scan", "demo"]));
    snapshot("demo-verbose.txt", &run(&["scan", "-v", "demo"]));
    snapshot(
        "demo-named.txt",
        &run(&[
            "scan",
            "demo/clean_checkpoint.pt",
            "demo/README.md",
            "demo/model.bin",
        ]),
    );
    snapshot("demo.json", &run(&["scan", "--format", "json", "demo"]));
    snapshot(
        "demo.sarif",
        &run(&[
            "scan",
            "--format",
            "sarif",
            "demo/model.bin",
            "demo/custom_class.pkl",
        ]),
    );
    snapshot("demo.github", &run(&["scan", "--format", "github", "demo"]));
    snapshot("explain-model.bin.txt", &run(&["explain", "demo/model.bin"]));
    snapshot(
        "explain-torch-state-dict.txt",
        &run(&[
            "explain",
            "tests/fixtures/torch/state_dict_zip.pt!state_dict_zip/data.pkl",
        ]),
    );
}
