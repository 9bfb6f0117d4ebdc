//! Keys, signatures and certificate chains (RustCrypto: p256, p384, ecdsa, x509-cert).
//!
//! model-signing signs with EC keys only (P-256, P-384, P-521; the hash follows the curve:
//! SHA-256, SHA-384, SHA-512). modelward verifies P-256 and P-384; Sigstore's Fulcio and Rekor
//! use those too.

use crate::{ProvenanceError, Result};
use der::asn1::ObjectIdentifier;
use der::{Decode, DecodePem, Encode, EncodePem, Reader};
use sha2::{Digest, Sha256, Sha384, Sha512};
use spki::SubjectPublicKeyInfoOwned;
use x509_cert::Certificate;
use x509_cert::ext::pkix::{BasicConstraints, ExtendedKeyUsage, KeyUsage, KeyUsages};

const EC_PUBLIC_KEY: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
const P256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");
const P384: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.34");
const P521: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.35");
const ECDSA_SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.2");
const ECDSA_SHA384: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.3");
const ECDSA_SHA512: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.4");
const CODE_SIGNING: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.3.3");

/// Hash functions used with ECDSA here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Hash {
    Sha256,
    Sha384,
    Sha512,
}

impl Hash {
    fn digest(self, msg: &[u8]) -> Vec<u8> {
        match self {
            Hash::Sha256 => Sha256::digest(msg).to_vec(),
            Hash::Sha384 => Sha384::digest(msg).to_vec(),
            Hash::Sha512 => Sha512::digest(msg).to_vec(),
        }
    }
}

/// An EC public key modelward can verify with.
#[derive(Debug, Clone)]
pub(crate) enum PublicKey {
    P256(p256::ecdsa::VerifyingKey),
    P384(p384::ecdsa::VerifyingKey),
}

impl PublicKey {
    pub(crate) fn from_spki(spki: &SubjectPublicKeyInfoOwned, what: &str) -> Result<Self> {
        if spki.algorithm.oid != EC_PUBLIC_KEY {
            return Err(ProvenanceError::Unsupported(format!(
                "{what}: key algorithm {} (model-signing signs with EC keys; modelward verifies P-256 and P-384)",
                spki.algorithm.oid
            )));
        }
        let curve: ObjectIdentifier = spki
            .algorithm
            .parameters
            .as_ref()
            .ok_or_else(|| ProvenanceError::malformed(what, "EC key without a curve"))?
            .decode_as()
            .map_err(|e| ProvenanceError::malformed(what, e))?;
        let point = spki.subject_public_key.raw_bytes();
        let bad = |e: p256::ecdsa::Error| ProvenanceError::malformed(what, e);
        if curve == P256 {
            Ok(Self::P256(
                p256::ecdsa::VerifyingKey::from_sec1_bytes(point).map_err(bad)?,
            ))
        } else if curve == P384 {
            Ok(Self::P384(
                p384::ecdsa::VerifyingKey::from_sec1_bytes(point).map_err(bad)?,
            ))
        } else if curve == P521 {
            Err(ProvenanceError::Unsupported(format!(
                "{what}: P-521 keys (modelward verifies P-256 and P-384)"
            )))
        } else {
            Err(ProvenanceError::Unsupported(format!("{what}: EC curve {curve}")))
        }
    }

    /// The hash model-signing pairs with the curve.
    pub(crate) fn curve_hash(&self) -> Hash {
        match self {
            PublicKey::P256(_) => Hash::Sha256,
            PublicKey::P384(_) => Hash::Sha384,
        }
    }

    /// Verifies a DER ECDSA signature over `msg` hashed with `hash`.
    pub(crate) fn verify(&self, msg: &[u8], sig_der: &[u8], hash: Hash) -> bool {
        use ecdsa::signature::hazmat::PrehashVerifier;
        let prehash = hash.digest(msg);
        match self {
            PublicKey::P256(k) => p256::ecdsa::Signature::from_der(sig_der)
                .is_ok_and(|s| k.verify_prehash(&prehash, &s).is_ok()),
            PublicKey::P384(k) => p384::ecdsa::Signature::from_der(sig_der)
                .is_ok_and(|s| k.verify_prehash(&prehash, &s).is_ok()),
        }
    }
}

/// A PEM public key file: the key, and its SubjectPublicKeyInfo.
pub(crate) fn public_key_from_pem(text: &str, what: &str) -> Result<(PublicKey, SubjectPublicKeyInfoOwned)> {
    let spki = SubjectPublicKeyInfoOwned::from_pem(text.trim().as_bytes()).map_err(|e| {
        ProvenanceError::malformed(
            what,
            format!("not a PEM \"PUBLIC KEY\" (SubjectPublicKeyInfo): {e}"),
        )
    })?;
    Ok((PublicKey::from_spki(&spki, what)?, spki))
}

/// sha256 hex of the PEM text Python's `cryptography` writes for a public key: model-signing's
/// key hint.
pub(crate) fn pem_hint(spki: &SubjectPublicKeyInfoOwned) -> Option<String> {
    let pem = spki.to_pem(der::pem::LineEnding::LF).ok()?;
    Some(crate::hex(&Sha256::digest(pem.as_bytes())))
}

/// A parsed certificate with its DER and the bytes its signature covers.
#[derive(Debug, Clone)]
pub(crate) struct Cert {
    pub(crate) der: Vec<u8>,
    pub(crate) cert: Certificate,
    tbs: Vec<u8>,
}

impl Cert {
    pub(crate) fn from_der(der: &[u8], what: &str) -> Result<Self> {
        let cert = Certificate::from_der(der).map_err(|e| ProvenanceError::malformed(what, e))?;
        // The signed bytes as they are in the file, not re-encoded.
        let tbs = (|| -> der::Result<Vec<u8>> {
            let outer = der::asn1::AnyRef::from_der(der)?;
            let mut r = der::SliceReader::new(outer.value())?;
            Ok(r.tlv_bytes()?.to_vec())
        })()
        .map_err(|e| ProvenanceError::malformed(what, e))?;
        Ok(Self {
            der: der.to_vec(),
            cert,
            tbs,
        })
    }

    /// All certificates of a PEM file.
    pub(crate) fn from_pem_chain(text: &[u8], what: &str) -> Result<Vec<Self>> {
        let certs = Certificate::load_pem_chain(text).map_err(|e| ProvenanceError::malformed(what, e))?;
        if certs.is_empty() {
            return Err(ProvenanceError::malformed(what, "no certificate in it"));
        }
        certs
            .iter()
            .map(|c| {
                let der = c.to_der().map_err(|e| ProvenanceError::malformed(what, e))?;
                Self::from_der(&der, what)
            })
            .collect()
    }

    pub(crate) fn public_key(&self, what: &str) -> Result<PublicKey> {
        PublicKey::from_spki(self.cert.tbs_certificate().subject_public_key_info(), what)
    }

    pub(crate) fn subject(&self) -> String {
        self.cert.tbs_certificate().subject().to_string()
    }

    /// Not-before and not-after, seconds since the epoch.
    pub(crate) fn validity(&self) -> (i64, i64) {
        let v = self.cert.tbs_certificate().validity();
        (
            v.not_before.to_unix_duration().as_secs() as i64,
            v.not_after.to_unix_duration().as_secs() as i64,
        )
    }

    fn valid_at(&self, t: i64) -> bool {
        let (a, b) = self.validity();
        a <= t && t <= b
    }

    fn is_ca(&self) -> bool {
        let tbs = self.cert.tbs_certificate();
        let ca = matches!(tbs.get_extension::<BasicConstraints>(), Ok(Some((_, bc))) if bc.ca);
        let may_sign_certs = match tbs.get_extension::<KeyUsage>() {
            Ok(Some((_, ku))) => ku.0.contains(KeyUsages::KeyCertSign),
            Ok(None) => true,
            Err(_) => false,
        };
        ca && may_sign_certs
    }

    /// Whether `issuer` signed this certificate.
    fn signed_by(&self, issuer: &Cert) -> bool {
        if self.cert.tbs_certificate().issuer() != issuer.cert.tbs_certificate().subject() {
            return false;
        }
        let hash = match self.cert.signature_algorithm().oid {
            o if o == ECDSA_SHA256 => Hash::Sha256,
            o if o == ECDSA_SHA384 => Hash::Sha384,
            o if o == ECDSA_SHA512 => Hash::Sha512,
            _ => return false,
        };
        let Ok(key) = issuer.public_key("issuer certificate") else {
            return false;
        };
        let Some(sig) = self.cert.signature().as_bytes() else {
            return false;
        };
        key.verify(&self.tbs, sig, hash)
    }

    /// Whether the key may sign code/data: key usage digitalSignature, or extended key usage
    /// codeSigning (model-signing's rule).
    pub(crate) fn may_sign(&self) -> bool {
        let tbs = self.cert.tbs_certificate();
        let ku = matches!(tbs.get_extension::<KeyUsage>(), Ok(Some((_, ku))) if ku.0.contains(KeyUsages::DigitalSignature));
        let eku = matches!(tbs.get_extension::<ExtendedKeyUsage>(), Ok(Some((_, e))) if e.0.contains(&CODE_SIGNING));
        ku || eku
    }

    /// The raw value of an extension.
    pub(crate) fn extension(&self, oid: &ObjectIdentifier) -> Option<&[u8]> {
        self.cert
            .tbs_certificate()
            .extensions()?
            .iter()
            .find(|e| &e.extn_id == oid)
            .map(|e| e.extn_value.as_bytes())
    }
}

/// Builds a chain from `leaf` through `intermediates` to one of `anchors`, every certificate
/// valid at `time`, every issuer a CA whose key signed the certificate below it. Returns the
/// anchor's subject.
pub(crate) fn verify_chain(
    leaf: &Cert,
    intermediates: &[Cert],
    anchors: &[Cert],
    time: i64,
) -> Result<String> {
    let mut current = leaf.clone();
    let mut used = vec![false; intermediates.len()];
    for _ in 0..=intermediates.len() + 1 {
        if !current.valid_at(time) {
            let (a, b) = current.validity();
            return Err(ProvenanceError::bad(format!(
                "certificate {:?} is not valid at the signing time {} (valid {} to {})",
                current.subject(),
                fmt_time(time),
                fmt_time(a),
                fmt_time(b)
            )));
        }
        if anchors.iter().any(|a| a.der == current.der) {
            return Ok(current.subject());
        }
        if let Some(a) = anchors.iter().find(|a| a.is_ca() && current.signed_by(a)) {
            if !a.valid_at(time) {
                return Err(ProvenanceError::bad(format!(
                    "trusted CA {:?} is not valid at the signing time {}",
                    a.subject(),
                    fmt_time(time)
                )));
            }
            return Ok(a.subject());
        }
        let next = intermediates
            .iter()
            .enumerate()
            .find(|(i, c)| !used[*i] && c.is_ca() && current.signed_by(c));
        match next {
            Some((i, c)) => {
                used[i] = true;
                current = c.clone();
            }
            None => {
                return Err(ProvenanceError::bad(format!(
                    "the certificate chain does not lead to a trusted CA: no trusted issuer signed {:?} (issuer {:?})",
                    current.subject(),
                    current.cert.tbs_certificate().issuer().to_string()
                )));
            }
        }
    }
    Err(ProvenanceError::bad("the certificate chain is too long"))
}

/// RFC 3339 UTC of seconds since the epoch.
pub(crate) fn fmt_time(t: i64) -> String {
    let days = t.div_euclid(86_400);
    let secs = t.rem_euclid(86_400);
    // Civil from days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}
