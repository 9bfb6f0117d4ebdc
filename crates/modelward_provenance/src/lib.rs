//! Provenance of model folders: the digest manifest OpenSSF model signing (`model-signing`) signs,
//! and verification of its signatures (a Sigstore bundle holding a DSSE envelope over an in-toto
//! statement) with a public key, a certificate chain or Sigstore (Fulcio + Rekor), offline.
//!
//! Nothing here executes or parses model content: files are only hashed, in bounded chunks.
#![forbid(unsafe_code)]

pub mod bundle;
mod crypto;
mod error;
pub mod manifest;
pub mod sigstore;
pub mod verify;

pub use error::{ProvenanceError, Result};
pub use manifest::{Difference, Manifest, ManifestOptions};
pub use verify::{Method, Verified};

/// Lower-case hex of bytes.
pub(crate) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[(b >> 4) as usize] as char);
        s.push(DIGITS[(b & 15) as usize] as char);
    }
    s
}

/// Bytes of lower- or upper-case hex, `None` when it is not hex.
pub(crate) fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}
