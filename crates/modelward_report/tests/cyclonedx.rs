//! The CycloneDX BOM validates against the official 1.7 and 1.6 JSON schemas (local copies in
//! tests/data/cyclonedx, every `$ref` resolved to them, offline).

use modelward_diagnostics::{Confidence, FileReport, Finding, Location, ScanReport, Severity, Verdict};
use modelward_policy::Catalog;
use modelward_report::cyclonedx::{BomOptions, SpecVersion, document, now_rfc3339, random_serial_number};
use serde_json::Value;
use std::path::PathBuf;

fn data() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/cyclonedx")
}

/// Resolves `http://cyclonedx.org/schema/NAME` to `tests/data/cyclonedx/NAME`, nothing else.
struct Local;

impl jsonschema::Retrieve for Local {
    fn retrieve(
        &self,
        uri: &jsonschema::Uri<String>,
    ) -> Result<Value, Box<dyn std::error::Error + Send + Sync>> {
        let s = uri.as_str();
        let name = s
            .strip_prefix("http://cyclonedx.org/schema/")
            .ok_or_else(|| format!("not a local schema: {s}"))?;
        let text = std::fs::read_to_string(data().join(name))?;
        Ok(serde_json::from_str(&text)?)
    }
}

fn validate(spec: SpecVersion, doc: &Value) {
    let path = data().join(format!("bom-{}.SNAPSHOT.schema.json", spec.as_str()));
    let schema: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let v = jsonschema::options()
        .with_retriever(Local)
        .should_validate_formats(true)
        .build(&schema)
        .expect("schema compiles");
    let errors: Vec<String> = v
        .iter_errors(doc)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(errors.is_empty(), "{}:\n{}", path.display(), errors.join("\n"));
}

fn report() -> ScanReport {
    let loc = Location::file("model/model.bin");
    let finding = Finding {
        rule: "PKL102".into(),
        name: "dangerous-call".into(),
        severity: Severity::Critical,
        confidence: Confidence::High,
        message: "calls posix.system".into(),
        location: loc.member("archive/data.pkl").at(Some(2)),
        evidence: Some("posix.system('echo x')".into()),
        why: "It runs a shell command.".into(),
        source: modelward_diagnostics::Source::Static,
    };
    let mut bin = FileReport {
        path: "model/model.bin".into(),
        format: "pytorch-zip".into(),
        verdict: Verdict::Clean,
        severity: None,
        findings: vec![finding],
        size: 1234,
        bytes_read: 600,
        error: None,
        sha256: Some("4a6260b8f7e75ef540cb90e893a42ce958d665c2b08003a5459c777554919538".into()),
        hub_sha256: None,
    };
    bin.finish(true);
    let mut cfg = FileReport {
        path: "model/config.json".into(),
        format: "json".into(),
        verdict: Verdict::Clean,
        severity: None,
        findings: vec![],
        size: 40,
        bytes_read: 40,
        error: None,
        sha256: None,
        hub_sha256: Some("885b8719262caba7b0dda1ef2c400e98ae5a5d249ea3d0d880cc19e16f112d37".into()),
    };
    cfg.finish(true);
    ScanReport::new("0.1.0", vec![bin, cfg], 5)
}

fn options(spec: SpecVersion) -> BomOptions {
    BomOptions {
        spec,
        serial_number: random_serial_number(),
        timestamp: now_rfc3339(),
        subject: "model".into(),
    }
}

#[test]
fn bom_validates_against_cyclonedx_1_7_and_1_6() {
    for spec in [SpecVersion::V1_7, SpecVersion::V1_6] {
        let doc = document(&report(), Catalog::builtin().rules(), &options(spec));
        assert_eq!(doc["specVersion"], spec.as_str());
        validate(spec, &doc);
    }
}

#[test]
fn schema_check_catches_a_bad_bom() {
    // The validation is live: a severity CycloneDX does not know is refused.
    let mut doc = document(&report(), Catalog::builtin().rules(), &options(SpecVersion::V1_7));
    doc["vulnerabilities"][0]["ratings"][0]["severity"] = "catastrophic".into();
    let path = data().join("bom-1.7.SNAPSHOT.schema.json");
    let schema: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let v = jsonschema::options()
        .with_retriever(Local)
        .build(&schema)
        .unwrap();
    assert!(!v.is_valid(&doc));
}

#[test]
fn bom_holds_components_hashes_and_findings() {
    let doc = document(&report(), Catalog::builtin().rules(), &options(SpecVersion::V1_7));
    assert_eq!(doc["metadata"]["component"]["name"], "model");
    assert_eq!(doc["metadata"]["component"]["type"], "machine-learning-model");
    let comps = doc["components"].as_array().unwrap();
    assert_eq!(comps.len(), 2);
    let by = |n: &str| comps.iter().find(|c| c["name"] == n).unwrap();
    let bin = by("model/model.bin");
    assert_eq!(bin["type"], "machine-learning-model");
    assert_eq!(bin["hashes"][0]["alg"], "SHA-256");
    let cfg = by("model/config.json");
    assert_eq!(cfg["type"], "file");
    // The Hub's LFS sha256 stands in when modelward did not hash the file itself.
    assert_eq!(
        cfg["hashes"][0]["content"],
        "885b8719262caba7b0dda1ef2c400e98ae5a5d249ea3d0d880cc19e16f112d37"
    );
    let v = &doc["vulnerabilities"][0];
    assert_eq!(v["id"], "PKL102");
    assert_eq!(v["ratings"][0]["severity"], "critical");
    assert_eq!(v["affects"][0]["ref"], bin["bom-ref"]);
    assert_eq!(doc["dependencies"][0]["dependsOn"].as_array().unwrap().len(), 2);
}
