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
