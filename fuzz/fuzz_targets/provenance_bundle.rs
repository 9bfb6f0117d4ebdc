//! The provenance parsers on untrusted input: a Sigstore bundle (`model.sig`) as
//! `modelward verify` and `scan` read it (JSON, base64, DER certificates, the DSSE envelope,
//! the in-toto statement, Rekor entries), verified against the embedded trusted root; the same
//! bytes as an in-toto statement (a manifest file) and as a trusted root.
#![no_main]

use libfuzzer_sys::fuzz_target;
use modelward_provenance::bundle::Bundle;
use modelward_provenance::sigstore::TrustedRoot;
use modelward_provenance::verify::{Method, verify_bundle};
use modelward_provenance::Manifest;

fuzz_target!(|data: &[u8]| {
    let _ = Manifest::from_statement(data);
    let _ = TrustedRoot::parse(data);
    if let Ok(b) = Bundle::parse(data) {
        let m = Method::Sigstore {
            identity: "fuzz@example.com".into(),
            issuer: "https://example.com".into(),
            trusted_root: None,
        };
        let _ = verify_bundle(&b, &m);
    }
});
