//! `modelward manifest` and `modelward verify` through the built binary, on folders signed by
//! the real model-signing package (tests/fixtures/provenance). Exit codes: 0 verified, 1
//! verification failed, 2 usage or I/O error.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/provenance")
}

fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_modelward"))
        .args(args)
        .output()
        .expect("run modelward")
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let t = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &t);
        } else {
            std::fs::copy(e.path(), &t).unwrap();
        }
    }
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn verify_key_and_certificate_and_sigstore() {
    let f = fixtures();
    let o = run(&[
        "verify",
        s(&f.join("model_key")),
        "--public-key",
        s(&f.join("keys/signing.pub.pem")),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(String::from_utf8_lossy(&o.stdout).starts_with("verified: "));
    let o = run(&[
        "verify",
        s(&f.join("model_cert")),
        "--signature",
        s(&f.join("model_cert/model.sig")),
        "--certificate-chain",
        s(&f.join("keys/root_ca.pem")),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let o = run(&[
        "verify",
        s(&f.join("sigstore_v1.1.0/model")),
        "--identity",
        "stefanb@us.ibm.com",
        "--issuer",
        "https://sigstore.verify.ibm.com/oauth2",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("signed 2025-10-10T02:12:20Z"));
}

#[test]
fn verify_failures_exit_1_with_a_reason() {
    let f = fixtures();
    let t = tempfile::tempdir().unwrap();
    let d = t.path().join("model_key");
    copy_dir(&f.join("model_key"), &d);
    let p = d.join("model.safetensors");
    let mut b = std::fs::read(&p).unwrap();
    b[20] ^= 0x20;
    std::fs::write(&p, b).unwrap();
    let o = run(&[
        "verify",
        s(&d),
        "--public-key",
        s(&f.join("keys/signing.pub.pem")),
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("model.safetensors changed"), "{}", stderr(&o));

    let o = run(&[
        "verify",
        s(&f.join("model_key")),
        "--public-key",
        s(&f.join("keys/other.pub.pem")),
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("another key"), "{}", stderr(&o));

    let o = run(&[
        "verify",
        s(&f.join("sigstore_v1.1.0/model")),
        "--identity",
        "someone@example.com",
        "--issuer",
        "https://sigstore.verify.ibm.com/oauth2",
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("not someone@example.com"), "{}", stderr(&o));
}

#[test]
fn verify_usage_errors_exit_2() {
    let f = fixtures();
    // No method.
    let o = run(&["verify", s(&f.join("model_key"))]);
    assert_eq!(o.status.code(), Some(2));
    // A missing signature file.
    let o = run(&[
        "verify",
        s(&f.join("model_key")),
        "--signature",
        s(&f.join("nope.sig")),
        "--public-key",
        s(&f.join("keys/signing.pub.pem")),
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("cannot read"), "{}", stderr(&o));
    // A key file that is not a key.
    let o = run(&[
        "verify",
        s(&f.join("model_key")),
        "--public-key",
        s(&f.join("model_key/config.json")),
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
}

#[test]
fn manifest_writes_and_checks() {
    let f = fixtures();
    let t = tempfile::tempdir().unwrap();
    let out = t.path().join("m.json");
    let o = run(&["manifest", s(&f.join("model_key")), "-o", s(&out)]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let ours: serde_json::Value = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
    let theirs: serde_json::Value =
        serde_json::from_slice(&std::fs::read(f.join("model_key.payload.json")).unwrap()).unwrap();
    assert_eq!(ours["subject"], theirs["subject"]);
    assert_eq!(ours["predicate"]["resources"], theirs["predicate"]["resources"]);

    let d = t.path().join("model_key");
    copy_dir(&f.join("model_key"), &d);
    let o = run(&["manifest", "--check", s(&out), s(&d)]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    std::fs::remove_file(d.join("README.md")).unwrap();
    std::fs::write(d.join("new.bin"), b"new").unwrap();
    let o = run(&["manifest", "--check", s(&out), s(&d)]);
    assert_eq!(o.status.code(), Some(1));
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.contains("README.md was removed"), "{text}");
    assert!(text.contains("new.bin was added"), "{text}");
}

/// Resolves `http://cyclonedx.org/schema/NAME` to the local copy, nothing else.
struct LocalSchemas;

impl jsonschema::Retrieve for LocalSchemas {
    fn retrieve(
        &self,
        uri: &jsonschema::Uri<String>,
    ) -> Result<serde_json::Value, Box<dyn std::error::Error + Send + Sync>> {
        let name = uri
            .as_str()
            .strip_prefix("http://cyclonedx.org/schema/")
            .ok_or_else(|| format!("not a local schema: {}", uri.as_str()))?;
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../modelward_report/tests/data/cyclonedx");
        Ok(serde_json::from_str(&std::fs::read_to_string(dir.join(name))?)?)
    }
}

#[test]
fn scan_cyclonedx_of_real_fixtures_validates_against_1_7_and_1_6() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    for version in ["1.7", "1.6"] {
        let o = Command::new(env!("CARGO_BIN_EXE_modelward"))
            .args([
                "scan",
                "--no-config",
                "--format",
                "cyclonedx",
                "--cyclonedx-version",
                version,
                "--fail-on",
                "never",
                "tests/fixtures",
            ])
            .current_dir(&repo)
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        let doc: serde_json::Value = serde_json::from_slice(&o.stdout).expect("JSON");
        assert_eq!(doc["specVersion"], version);
        let schema_path = repo.join(format!(
            "crates/modelward_report/tests/data/cyclonedx/bom-{version}.SNAPSHOT.schema.json"
        ));
        let schema: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(schema_path).unwrap()).unwrap();
        let v = jsonschema::options()
            .with_retriever(LocalSchemas)
            .build(&schema)
            .unwrap();
        let errors: Vec<String> = v
            .iter_errors(&doc)
            .take(20)
            .map(|e| format!("{e} at {}", e.instance_path()))
            .collect();
        assert!(errors.is_empty(), "CycloneDX {version}:\n{}", errors.join("\n"));
        // Every file component carries its sha256, computed by modelward for local files.
        let comps = doc["components"].as_array().unwrap();
        assert!(comps.len() > 50, "{}", comps.len());
        let safetensors = comps
            .iter()
            .find(|c| c["name"] == "tests/fixtures/provenance/model_key/model.safetensors")
            .expect("component");
        assert_eq!(safetensors["type"], "machine-learning-model");
        assert_eq!(
            safetensors["hashes"][0]["content"],
            "4a6260b8f7e75ef540cb90e893a42ce958d665c2b08003a5459c777554919538"
        );
        let vulns = doc["vulnerabilities"].as_array().unwrap();
        assert!(vulns.iter().any(|v| v["ratings"][0]["severity"] == "critical"));
        assert!(doc["serialNumber"].as_str().unwrap().starts_with("urn:uuid:"));
    }
}

#[test]
fn scan_reports_provenance_facts() {
    let f = fixtures();
    let json = |dir: &Path| -> serde_json::Value {
        let o = run(&[
            "scan",
            "--no-config",
            "--format",
            "json",
            "--fail-on",
            "never",
            s(dir),
        ]);
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        serde_json::from_slice(&o.stdout).unwrap()
    };
    let rules = |doc: &serde_json::Value| -> Vec<String> {
        doc["files"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|x| {
                x["findings"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|f| f["rule"].as_str().unwrap().to_string())
            })
            .filter(|r| r.starts_with("PRV"))
            .collect()
    };
    assert_eq!(rules(&json(&f.join("model_key"))), ["PRV001"]);
    assert_eq!(rules(&json(&f.join("sigstore_v1.1.0/model"))), ["PRV001"]);
    assert!(
        rules(&json(&f.join("keys"))).is_empty(),
        "an unsigned folder adds no entry"
    );
    // One changed byte: present and invalid, high, on the signature file.
    let t = tempfile::tempdir().unwrap();
    let d = t.path().join("model_cert");
    copy_dir(&f.join("model_cert"), &d);
    std::fs::write(
        d.join("config.json"),
        "{\"model_type\": \"toy\", \"hidden_size\": 9}\n",
    )
    .unwrap();
    let doc = json(&d);
    assert_eq!(rules(&doc), ["PRV002"]);
    let sig = doc["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["path"].as_str().unwrap().ends_with("model.sig"))
        .unwrap();
    assert_eq!(sig["verdict"], "malicious");
    let msg = sig["findings"][0]["message"].as_str().unwrap();
    assert!(msg.contains("config.json changed"), "{msg}");
}
