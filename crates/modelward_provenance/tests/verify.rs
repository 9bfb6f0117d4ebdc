//! Verification against real signatures: folders signed by the `model-signing` 1.1.1 package
//! (tests/fixtures/provenance/make_signed.py) and a Sigstore bundle from model-signing's own
//! test data (tests/fixtures/provenance/sigstore_v1.1.0/).

use base64::Engine;
use modelward_provenance::verify::{Method, verify_dir};
use modelward_provenance::{Difference, Manifest, ManifestOptions, ProvenanceError};
use std::path::{Path, PathBuf};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/provenance")
}

fn key(name: &str) -> PathBuf {
    fixtures().join("keys").join(name)
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

/// A scratch copy of a fixture folder.
fn scratch(name: &str) -> (tempfile::TempDir, PathBuf) {
    let t = tempfile::tempdir().unwrap();
    let d = t.path().join(name);
    copy_dir(&fixtures().join(name), &d);
    (t, d)
}

fn key_method() -> Method {
    Method::PublicKey(key("signing.pub.pem"))
}

fn cert_method() -> Method {
    Method::CertificateChain(vec![key("root_ca.pem")])
}

fn sigstore_method(identity: &str, issuer: &str) -> Method {
    Method::Sigstore {
        identity: identity.into(),
        issuer: issuer.into(),
        trusted_root: None,
    }
}

const IDENTITY: &str = "stefanb@us.ibm.com";
const ISSUER: &str = "https://sigstore.verify.ibm.com/oauth2";

fn sigstore_dir() -> PathBuf {
    fixtures().join("sigstore_v1.1.0/model")
}

fn bad(e: ProvenanceError) -> String {
    assert!(
        e.is_verification_failure(),
        "expected a verification failure, got: {e}"
    );
    e.to_string()
}

#[test]
fn manifest_equals_model_signing() {
    let dir = fixtures().join("model_key");
    let ours = Manifest::of_dir(&dir, &ManifestOptions::default()).unwrap();
    let theirs_bytes = std::fs::read(fixtures().join("model_key.payload.json")).unwrap();
    let theirs = Manifest::from_statement(&theirs_bytes).unwrap();
    assert_eq!(ours.resources, theirs.resources);
    assert_eq!(ours.model_name, theirs.model_name);
    assert_eq!(ours.root_digest(), theirs.root_digest());
    // The whole statement, as JSON values (model-signing's map order and the order of its
    // ignore_paths set vary from run to run; the values do not).
    let norm = |b: &[u8]| {
        let mut v: serde_json::Value = serde_json::from_slice(b).unwrap();
        v["predicate"]["serialization"]["ignore_paths"]
            .as_array_mut()
            .unwrap()
            .sort_by(|a, b| a.as_str().cmp(&b.as_str()));
        v
    };
    assert_eq!(norm(ours.to_statement_json().as_bytes()), norm(&theirs_bytes));
    // Same layout: two-space indent, no final newline.
    let text = ours.to_statement_json();
    assert!(text.starts_with("{\n  \"_type\": \"https://in-toto.io/Statement/v1\",\n"));
    assert!(!text.ends_with('\n'));
}

#[test]
fn manifest_check_finds_added_removed_changed() {
    let (_t, d) = scratch("model_key");
    let m = Manifest::read(&fixtures().join("model_key.payload.json")).unwrap();
    assert_eq!(m.check(&d).unwrap(), vec![]);
    std::fs::write(
        d.join("config.json"),
        "{\"model_type\": \"toy\", \"hidden_size\": 3}\n",
    )
    .unwrap();
    std::fs::remove_file(d.join("tokenizer/vocab.txt")).unwrap();
    std::fs::write(d.join("extra.bin"), b"x").unwrap();
    let diff = m.check(&d).unwrap();
    assert_eq!(diff.len(), 3, "{diff:?}");
    assert!(matches!(&diff[0], Difference::Changed { name, .. } if name == "config.json"));
    assert!(matches!(&diff[1], Difference::Removed { name } if name == "tokenizer/vocab.txt"));
    assert!(matches!(&diff[2], Difference::Added { name } if name == "extra.bin"));
}

#[cfg(unix)]
#[test]
fn symlinks_refused_unless_allowed() {
    let (_t, d) = scratch("model_key");
    std::os::unix::fs::symlink(d.join("config.json"), d.join("link.json")).unwrap();
    let e = Manifest::of_dir(&d, &ManifestOptions::default()).unwrap_err();
    assert!(e.to_string().contains("symbolic link"), "{e}");
    assert!(!e.is_verification_failure());
    let opts = ManifestOptions {
        allow_symlinks: true,
        ..ManifestOptions::default()
    };
    let m = Manifest::of_dir(&d, &opts).unwrap();
    assert!(m.resources.iter().any(|r| r.name == "link.json"));
}

#[test]
fn key_signature_verifies() {
    let d = fixtures().join("model_key");
    let v = verify_dir(&d, &d.join("model.sig"), &key_method()).unwrap();
    assert_eq!(v.method, "key");
    assert_eq!(v.manifest.resources.len(), 4);
}

#[test]
fn certificate_signature_verifies() {
    let d = fixtures().join("model_cert");
    let v = verify_dir(&d, &d.join("model.sig"), &cert_method()).unwrap();
    assert_eq!(v.method, "certificate");
    assert!(v.signer.contains("modelward test leaf"), "{}", v.signer);
    assert!(v.signer.contains("modelward test root_ca"), "{}", v.signer);
}

#[test]
fn sigstore_signature_verifies() {
    let d = sigstore_dir();
    let v = verify_dir(&d, &d.join("model.sig"), &sigstore_method(IDENTITY, ISSUER)).unwrap();
    assert_eq!(v.method, "sigstore");
    assert_eq!(v.signing_time_rfc3339().as_deref(), Some("2025-10-10T02:12:20Z"));
    assert_eq!(v.manifest.resources.len(), 2);
}

#[test]
fn changed_byte_fails() {
    for (name, method) in [("model_key", key_method()), ("model_cert", cert_method())] {
        let (_t, d) = scratch(name);
        let p = d.join("model.safetensors");
        let mut b = std::fs::read(&p).unwrap();
        let last = b.len() - 1;
        b[last] ^= 1;
        std::fs::write(&p, b).unwrap();
        let e = bad(verify_dir(&d, &d.join("model.sig"), &method).unwrap_err());
        assert!(e.contains("model.safetensors changed"), "{e}");
    }
    let (_t, d) = scratch("sigstore_v1.1.0/model");
    std::fs::write(d.join("signme-1"), b"signme-X").unwrap();
    let e = bad(verify_dir(&d, &d.join("model.sig"), &sigstore_method(IDENTITY, ISSUER)).unwrap_err());
    assert!(e.contains("signme-1 changed"), "{e}");
}

#[test]
fn removed_and_added_files_fail() {
    let (_t, d) = scratch("model_key");
    std::fs::remove_file(d.join("tokenizer/vocab.txt")).unwrap();
    let e = bad(verify_dir(&d, &d.join("model.sig"), &key_method()).unwrap_err());
    assert!(e.contains("tokenizer/vocab.txt was removed"), "{e}");
    let (_t2, d) = scratch("model_key");
    std::fs::write(d.join("payload.pkl"), b"\x80\x04N.").unwrap();
    let e = bad(verify_dir(&d, &d.join("model.sig"), &key_method()).unwrap_err());
    assert!(e.contains("payload.pkl was added"), "{e}");
}

#[test]
fn swapped_key_fails() {
    let d = fixtures().join("model_key");
    let e = bad(verify_dir(&d, &d.join("model.sig"), &Method::PublicKey(key("other.pub.pem"))).unwrap_err());
    assert!(e.contains("another key"), "{e}");
}

#[test]
fn untrusted_ca_fails() {
    let d = fixtures().join("model_cert");
    let m = Method::CertificateChain(vec![key("unrelated_ca.pem")]);
    let e = bad(verify_dir(&d, &d.join("model.sig"), &m).unwrap_err());
    assert!(e.contains("does not lead to a trusted CA"), "{e}");
}

/// Rewrites the bundle's envelope: `f` gets the decoded payload and signature.
fn tamper(dir: &Path, f: impl Fn(&mut [u8], &mut [u8])) {
    let p = dir.join("model.sig");
    let mut v: serde_json::Value = serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap();
    let e = base64::engine::general_purpose::STANDARD;
    let env = &mut v["dsseEnvelope"];
    let mut payload = e.decode(env["payload"].as_str().unwrap()).unwrap();
    let mut sig = e.decode(env["signatures"][0]["sig"].as_str().unwrap()).unwrap();
    f(&mut payload, &mut sig);
    env["payload"] = e.encode(&payload).into();
    env["signatures"][0]["sig"] = e.encode(&sig).into();
    std::fs::write(&p, serde_json::to_vec(&v).unwrap()).unwrap();
}

/// Flips a byte inside a digest in the payload (the JSON stays valid).
fn flip_payload(payload: &mut [u8], _: &mut [u8]) {
    let text = String::from_utf8(payload.to_vec()).unwrap();
    let at = text.find("\"digest\": \"").unwrap() + 12;
    payload[at] = if payload[at] == b'0' { b'1' } else { b'0' };
}

/// Flips a bit in the signature's last byte (inside s).
fn flip_sig(_: &mut [u8], sig: &mut [u8]) {
    let last = sig.len() - 1;
    sig[last] ^= 1;
}

#[test]
fn tampered_envelope_fails() {
    let cases: [(&str, Method); 3] = [
        ("model_key", key_method()),
        ("model_cert", cert_method()),
        ("sigstore_v1.1.0/model", sigstore_method(IDENTITY, ISSUER)),
    ];
    for (name, method) in cases {
        for (what, f) in [
            ("payload", flip_payload as fn(&mut [u8], &mut [u8])),
            ("signature", flip_sig),
        ] {
            let (_t, d) = scratch(name);
            tamper(&d, f);
            let e = bad(verify_dir(&d, &d.join("model.sig"), &method).unwrap_err());
            assert!(
                e.contains("altered") || e.contains("does not verify"),
                "{name} {what}: {e}"
            );
        }
    }
}

#[test]
fn sigstore_wrong_identity_or_issuer_fails() {
    let d = sigstore_dir();
    let e = bad(verify_dir(
        &d,
        &d.join("model.sig"),
        &sigstore_method("mallory@example.com", ISSUER),
    )
    .unwrap_err());
    assert!(
        e.contains("identity is stefanb@us.ibm.com, not mallory@example.com"),
        "{e}"
    );
    let e = bad(verify_dir(
        &d,
        &d.join("model.sig"),
        &sigstore_method(IDENTITY, "https://accounts.google.com"),
    )
    .unwrap_err());
    assert!(
        e.contains("OIDC issuer is https://sigstore.verify.ibm.com/oauth2"),
        "{e}"
    );
}

#[test]
fn wrong_method_for_bundle_fails() {
    let d = fixtures().join("model_cert");
    let e = verify_dir(&d, &d.join("model.sig"), &key_method()).unwrap_err();
    assert!(e.is_verification_failure(), "{e}");
    let d = fixtures().join("model_key");
    let e = bad(verify_dir(&d, &d.join("model.sig"), &cert_method()).unwrap_err());
    assert!(e.contains("no certificate"), "{e}");
}

/// Rewrites the first transparency log entry of the Sigstore bundle.
fn tamper_tlog(f: impl Fn(&mut serde_json::Value)) -> String {
    let (_t, d) = scratch("sigstore_v1.1.0/model");
    let p = d.join("model.sig");
    let mut v: serde_json::Value = serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap();
    f(&mut v["verificationMaterial"]["tlogEntries"][0]);
    std::fs::write(&p, serde_json::to_vec(&v).unwrap()).unwrap();
    bad(verify_dir(&d, &p, &sigstore_method(IDENTITY, ISSUER)).unwrap_err())
}

#[test]
fn sigstore_tampered_log_entry_fails() {
    // Another integration time: the signed entry timestamp no longer verifies.
    let e = tamper_tlog(|t| t["integratedTime"] = "1760062341".into());
    assert!(e.contains("signed entry timestamp does not verify"), "{e}");
    // A wrong sibling hash: the inclusion proof no longer reaches the root.
    let e = tamper_tlog(|t| {
        t["inclusionProof"]["hashes"][0] = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=".into()
    });
    assert!(
        e.contains("inclusion proof does not lead to its root hash"),
        "{e}"
    );
    // A checkpoint for another size.
    let e = tamper_tlog(|t| {
        let cp = t["inclusionProof"]["checkpoint"]["envelope"]
            .as_str()
            .unwrap()
            .replace("\n476246825\n", "\n476246826\n");
        t["inclusionProof"]["checkpoint"]["envelope"] = cp.into();
    });
    assert!(e.contains("checkpoint is for another tree"), "{e}");
    // A log the trusted root does not hold.
    let e = tamper_tlog(|t| t["logId"]["keyId"] = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=".into());
    assert!(e.contains("which the trusted root does not hold"), "{e}");
}
