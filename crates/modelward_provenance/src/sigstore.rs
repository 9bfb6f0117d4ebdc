//! Sigstore keyless verification, offline: the Fulcio certificate chains to a CA of the trusted
//! root, its SAN is the expected identity and its OIDC-issuer extension the expected issuer;
//! the Rekor entry is signed by a log of the trusted root (signed entry timestamp), its
//! inclusion proof leads to a root hash in a checkpoint signed by the same log, its body names
//! this envelope, signature and certificate; and the log's integration time, the signing time,
//! lies within the certificate's validity.
//!
//! Not checked: the certificate's embedded SCTs (CT log promises) and RFC 3161 timestamps;
//! the signing time comes from the SET-signed Rekor entry instead.

use crate::bundle::{Bundle, TlogEntry, b64};
use crate::crypto::{self, Cert, Hash, PublicKey};
use crate::manifest::read_bounded;
use crate::{ProvenanceError, Result, hex};
use base64::Engine;
use der::Decode;
use der::asn1::ObjectIdentifier;
use sha2::{Digest, Sha256};
use spki::SubjectPublicKeyInfoOwned;
use std::path::Path;
use x509_cert::ext::pkix::SubjectAltName;
use x509_cert::ext::pkix::name::GeneralName;

/// Sigstore's public-good trusted root (from the `sigstore` 4.5.1 PyPI package; see
/// `data/README.md` for its provenance and how to update it).
const EMBEDDED_ROOT: &str = include_str!("../data/trusted_root.json");
/// Fulcio's OIDC issuer extension (v2, a DER UTF8String).
const OIDC_ISSUER_V2: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.57264.1.8");
/// Fulcio's OIDC issuer extension (v1, raw bytes; deprecated).
const OIDC_ISSUER_V1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.57264.1.1");
const MAX_ROOT: u64 = 4 << 20;
const WHAT: &str = "trusted root";

/// A transparency log of the trusted root.
#[derive(Debug, Clone)]
struct Log {
    key_id: Vec<u8>,
    key: PublicKey,
    start: i64,
    end: Option<i64>,
}

/// A certificate authority of the trusted root.
#[derive(Debug, Clone)]
struct Ca {
    certs: Vec<Cert>,
    start: i64,
    end: Option<i64>,
}

/// A Sigstore trusted root (`trusted_root.json`, media type
/// `application/vnd.dev.sigstore.trustedroot+json;version=0.1`).
#[derive(Debug, Clone)]
pub struct TrustedRoot {
    logs: Vec<Log>,
    cas: Vec<Ca>,
}

fn parse_time(s: &str) -> Option<i64> {
    // RFC 3339, UTC: 2022-04-13T20:06:15Z or with fractional seconds.
    let b = s.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[10] != b'T' {
        return None;
    }
    let n = |r: std::ops::Range<usize>| s.get(r)?.parse::<i64>().ok();
    let (y, m, d) = (n(0..4)?, n(5..7)?, n(8..10)?);
    let (hh, mm, ss) = (n(11..13)?, n(14..16)?, n(17..19)?);
    let y2 = if m <= 2 { y - 1 } else { y };
    let era = y2.div_euclid(400);
    let yoe = y2 - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days * 86_400 + hh * 3600 + mm * 60 + ss)
}

fn valid_for(v: Option<&serde_json::Value>) -> Result<(i64, Option<i64>)> {
    let start = v
        .and_then(|v| v.get("start"))
        .and_then(|s| s.as_str())
        .and_then(parse_time)
        .ok_or_else(|| ProvenanceError::malformed(WHAT, "an entry has no validFor.start"))?;
    let end = v
        .and_then(|v| v.get("end"))
        .and_then(|s| s.as_str())
        .map(|s| parse_time(s).ok_or_else(|| ProvenanceError::malformed(WHAT, "bad validFor.end")))
        .transpose()?;
    Ok((start, end))
}

fn within(t: i64, start: i64, end: Option<i64>) -> bool {
    start <= t && end.is_none_or(|e| t <= e)
}

impl TrustedRoot {
    /// The embedded public-good root.
    pub fn embedded() -> Result<Self> {
        Self::parse(EMBEDDED_ROOT.as_bytes())
    }

    /// Reads a trusted_root.json.
    pub fn read(path: &Path) -> Result<Self> {
        Self::parse(&read_bounded(path, MAX_ROOT)?)
    }

    /// Parses a trusted_root.json.
    pub fn parse(bytes: &[u8]) -> Result<Self> {
        let v: serde_json::Value =
            serde_json::from_slice(bytes).map_err(|e| ProvenanceError::malformed(WHAT, e))?;
        let mt = v.get("mediaType").and_then(|m| m.as_str()).unwrap_or("");
        if !mt.starts_with("application/vnd.dev.sigstore.trustedroot") {
            return Err(ProvenanceError::malformed(WHAT, format!("media type {mt:?}")));
        }
        let mut logs = Vec::new();
        for t in v.get("tlogs").and_then(|t| t.as_array()).into_iter().flatten() {
            let pk = t.get("publicKey");
            let raw = pk
                .and_then(|p| p.get("rawBytes"))
                .and_then(|r| r.as_str())
                .ok_or_else(|| ProvenanceError::malformed(WHAT, "a tlog has no publicKey.rawBytes"))?;
            let der = b64(raw, "tlog publicKey")?;
            let spki =
                SubjectPublicKeyInfoOwned::from_der(&der).map_err(|e| ProvenanceError::malformed(WHAT, e))?;
            let key = match PublicKey::from_spki(&spki, "tlog key") {
                Ok(k) => k,
                // A log whose key kind we do not verify (Ed25519 Rekor v2) is skipped.
                Err(ProvenanceError::Unsupported(_)) => continue,
                Err(e) => return Err(e),
            };
            let key_id = t
                .get("logId")
                .and_then(|l| l.get("keyId"))
                .and_then(|k| k.as_str())
                .map(|k| b64(k, "tlog logId"))
                .transpose()?
                .unwrap_or_else(|| Sha256::digest(&der).to_vec());
            let (start, end) = valid_for(pk.and_then(|p| p.get("validFor")))?;
            logs.push(Log {
                key_id,
                key,
                start,
                end,
            });
        }
        let mut cas = Vec::new();
        for c in v
            .get("certificateAuthorities")
            .and_then(|t| t.as_array())
            .into_iter()
            .flatten()
        {
            let certs = c
                .get("certChain")
                .and_then(|c| c.get("certificates"))
                .and_then(|c| c.as_array())
                .ok_or_else(|| ProvenanceError::malformed(WHAT, "a CA has no certChain"))?
                .iter()
                .map(|x| {
                    let raw = x.get("rawBytes").and_then(|r| r.as_str()).unwrap_or("");
                    Cert::from_der(&b64(raw, "CA certificate")?, "trusted root CA certificate")
                })
                .collect::<Result<Vec<_>>>()?;
            let (start, end) = valid_for(c.get("validFor"))?;
            cas.push(Ca { certs, start, end });
        }
        if logs.is_empty() || cas.is_empty() {
            return Err(ProvenanceError::malformed(
                WHAT,
                "it has no usable transparency log or no certificate authority",
            ));
        }
        Ok(Self { logs, cas })
    }
}

/// Who a keyless signature names, and when it was made.
#[derive(Debug, Clone)]
pub struct Signer {
    /// The certificate's identities (email or URI SANs).
    pub identities: Vec<String>,
    /// The certificate's OIDC issuer.
    pub issuer: String,
    /// The signing time (the log's integration time), seconds since the epoch.
    pub time: i64,
}

/// Verifies a keyless bundle; `signed` is the PAE of the envelope and `sig` its signature.
/// `identity` and `issuer`, when given, must be the certificate's (`None`: any, reported).
pub(crate) fn verify(
    bundle: &Bundle,
    root: &TrustedRoot,
    identity: Option<&str>,
    issuer: Option<&str>,
    signed: &[u8],
    sig: &[u8],
) -> Result<Signer> {
    let leaf_der = bundle.certificates.first().ok_or_else(|| {
        ProvenanceError::bad("the signature carries no Fulcio certificate (not a Sigstore keyless signature)")
    })?;
    let leaf = Cert::from_der(leaf_der, "Fulcio certificate")?;
    let intermediates: Vec<Cert> = bundle.certificates[1..]
        .iter()
        .map(|d| Cert::from_der(d, "certificate in the signature"))
        .collect::<Result<_>>()?;
    let entry = bundle.tlog_entries.first().ok_or_else(|| {
        ProvenanceError::bad("the signature has no transparency log entry (offline verification needs one)")
    })?;
    let time = verify_tlog(entry, root, leaf_der, &bundle.envelope.payload, sig)?;

    // The certificate: chained to a Fulcio CA valid then, valid itself then.
    let anchors: Vec<Cert> = root
        .cas
        .iter()
        .filter(|c| within(time, c.start, c.end))
        .flat_map(|c| c.certs.iter().cloned())
        .collect();
    crypto::verify_chain(&leaf, &intermediates, &anchors, time)?;
    if !leaf.may_sign() {
        return Err(ProvenanceError::bad("the Fulcio certificate may not sign"));
    }
    let sans = subject_alt_names(&leaf);
    if let Some(identity) = identity
        && !sans.iter().any(|s| s == identity)
    {
        let have = if sans.is_empty() {
            "absent".to_string()
        } else {
            sans.join(", ")
        };
        return Err(ProvenanceError::bad(format!(
            "the certificate's identity is {have}, not {identity}"
        )));
    }
    let got = oidc_issuer(&leaf)
        .ok_or_else(|| ProvenanceError::bad("the certificate has no Fulcio OIDC issuer extension"))?;
    if let Some(issuer) = issuer
        && got != issuer
    {
        return Err(ProvenanceError::bad(format!(
            "the certificate's OIDC issuer is {got}, not {issuer}"
        )));
    }
    let key = leaf.public_key("Fulcio certificate")?;
    if !key.verify(signed, sig, key.curve_hash()) {
        return Err(ProvenanceError::bad(
            "the DSSE signature does not verify with the Fulcio certificate's key (payload or signature altered)",
        ));
    }
    Ok(Signer {
        identities: sans,
        issuer: got,
        time,
    })
}

fn subject_alt_names(c: &Cert) -> Vec<String> {
    let Ok(Some((_, san))) = c.cert.tbs_certificate().get_extension::<SubjectAltName>() else {
        return Vec::new();
    };
    san.0
        .iter()
        .filter_map(|g| match g {
            GeneralName::Rfc822Name(s) | GeneralName::UniformResourceIdentifier(s) => Some(s.to_string()),
            _ => None,
        })
        .collect()
}

fn oidc_issuer(c: &Cert) -> Option<String> {
    if let Some(v) = c.extension(&OIDC_ISSUER_V2) {
        return der::asn1::Utf8StringRef::from_der(v).ok().map(|s| s.to_string());
    }
    c.extension(&OIDC_ISSUER_V1)
        .and_then(|v| std::str::from_utf8(v).ok())
        .map(str::to_string)
}

/// Checks the Rekor entry and returns its integration time.
fn verify_tlog(
    entry: &TlogEntry,
    root: &TrustedRoot,
    leaf_der: &[u8],
    payload: &[u8],
    sig: &[u8],
) -> Result<i64> {
    let log = root
        .logs
        .iter()
        .find(|l| l.key_id == entry.log_id)
        .ok_or_else(|| {
            ProvenanceError::bad(format!(
                "the transparency log entry is from log {}, which the trusted root does not hold",
                hex(&entry.log_id)
            ))
        })?;
    let time = entry.integrated_time;
    if !within(time, log.start, log.end) {
        return Err(ProvenanceError::bad(format!(
            "the log entry's time {} is outside the log key's validity",
            crypto::fmt_time(time)
        )));
    }
    // The signed entry timestamp: the log's signature over the entry and its time.
    let set = entry.signed_entry_timestamp.as_ref().ok_or_else(|| {
        ProvenanceError::Unsupported(
            "a log entry without a signed entry timestamp (RFC 3161 timestamps are not verified by modelward)"
                .into(),
        )
    })?;
    let body_b64 = base64::engine::general_purpose::STANDARD.encode(&entry.canonicalized_body);
    // Canonical JSON (RFC 8785): keys sorted, no spaces.
    let set_payload = format!(
        "{{\"body\":\"{body_b64}\",\"integratedTime\":{time},\"logID\":\"{}\",\"logIndex\":{}}}",
        hex(&entry.log_id),
        entry.log_index
    );
    if !log.key.verify(set_payload.as_bytes(), set, Hash::Sha256) {
        return Err(ProvenanceError::bad(
            "the transparency log's signed entry timestamp does not verify (entry or time altered)",
        ));
    }
    if let Some(proof) = &entry.inclusion_proof {
        let mut leaf = vec![0u8];
        leaf.extend_from_slice(&entry.canonicalized_body);
        let leaf_hash: [u8; 32] = Sha256::digest(&leaf).into();
        if !inclusion_ok(
            proof.log_index,
            proof.tree_size,
            &leaf_hash,
            &proof.hashes,
            &proof.root_hash,
        ) {
            return Err(ProvenanceError::bad(
                "the transparency log inclusion proof does not lead to its root hash",
            ));
        }
        if let Some(cp) = &proof.checkpoint {
            verify_checkpoint(cp, log, proof.tree_size, &proof.root_hash)?;
        }
    }
    check_body(entry, leaf_der, payload, sig)?;
    Ok(time)
}

/// The entry body must name this payload, this signature and this certificate.
fn check_body(entry: &TlogEntry, leaf_der: &[u8], payload: &[u8], sig: &[u8]) -> Result<()> {
    let body: serde_json::Value = serde_json::from_slice(&entry.canonicalized_body)
        .map_err(|e| ProvenanceError::malformed("transparency log entry body", e))?;
    let kind = body.get("kind").and_then(|k| k.as_str()).unwrap_or("");
    if kind != "dsse" {
        return Err(ProvenanceError::Unsupported(format!(
            "transparency log entries of kind {kind:?} (modelward checks \"dsse\")"
        )));
    }
    let spec = &body["spec"];
    let payload_hash = spec["payloadHash"]["value"].as_str().unwrap_or("");
    if payload_hash != hex(&Sha256::digest(payload)) {
        return Err(ProvenanceError::bad(
            "the transparency log entry is for another payload (payload altered)",
        ));
    }
    let e = base64::engine::general_purpose::STANDARD;
    let sigs = spec["signatures"].as_array().cloned().unwrap_or_default();
    let ours = e.encode(sig);
    let Some(s) = sigs
        .iter()
        .find(|s| s["signature"].as_str() == Some(ours.as_str()))
    else {
        return Err(ProvenanceError::bad(
            "the transparency log entry records another signature (signature altered)",
        ));
    };
    let verifier = s["verifier"]
        .as_str()
        .and_then(|v| e.decode(v).ok())
        .unwrap_or_default();
    let pem_der = std::str::from_utf8(&verifier)
        .ok()
        .and_then(|p| Cert::from_pem_chain(p.as_bytes(), "log verifier").ok())
        .and_then(|c| c.into_iter().next())
        .map(|c| c.der);
    if pem_der.as_deref() != Some(leaf_der) {
        return Err(ProvenanceError::bad(
            "the transparency log entry records another certificate",
        ));
    }
    Ok(())
}

/// RFC 9162 section 2.1.3.2.
fn inclusion_ok(index: u64, size: u64, leaf: &[u8; 32], proof: &[Vec<u8>], root: &[u8]) -> bool {
    if index >= size {
        return false;
    }
    let node = |l: &[u8], r: &[u8]| -> [u8; 32] {
        let mut h = Sha256::new();
        h.update([1u8]);
        h.update(l);
        h.update(r);
        h.finalize().into()
    };
    let (mut f, mut s) = (index, size - 1);
    let mut r = *leaf;
    for p in proof {
        if s == 0 || p.len() != 32 {
            return false;
        }
        if f & 1 == 1 || f == s {
            r = node(p, &r);
            if f & 1 == 0 {
                while f & 1 == 0 && f != 0 {
                    f >>= 1;
                    s >>= 1;
                }
            }
        } else {
            r = node(&r, p);
        }
        f >>= 1;
        s >>= 1;
    }
    s == 0 && r.as_slice() == root
}

/// A checkpoint (signed note): origin, size, root hash, blank line, signature lines
/// `— name base64(keyhint[4] || signature)`.
fn verify_checkpoint(note: &str, log: &Log, size: u64, root: &[u8]) -> Result<()> {
    let Some(split) = note.find("\n\n") else {
        return Err(ProvenanceError::malformed("checkpoint", "no blank line"));
    };
    let text = &note[..split + 1];
    let mut lines = text.lines();
    let _origin = lines.next();
    let cp_size: Option<u64> = lines.next().and_then(|l| l.parse().ok());
    let cp_root = lines.next().and_then(|l| b64(l, "checkpoint root hash").ok());
    if cp_size != Some(size) || cp_root.as_deref() != Some(root) {
        return Err(ProvenanceError::bad(
            "the checkpoint is for another tree than the inclusion proof",
        ));
    }
    let e = base64::engine::general_purpose::STANDARD;
    for line in note[split + 2..].lines() {
        let Some(rest) = line.strip_prefix("\u{2014} ") else {
            continue;
        };
        let Some(sig_b64) = rest.rsplit(' ').next() else {
            continue;
        };
        let Ok(raw) = e.decode(sig_b64) else { continue };
        if raw.len() > 4 && raw[..4] == log.key_id[..4.min(log.key_id.len())] {
            if log.key.verify(text.as_bytes(), &raw[4..], Hash::Sha256) {
                return Ok(());
            }
            return Err(ProvenanceError::bad("the checkpoint's signature does not verify"));
        }
    }
    Err(ProvenanceError::bad("the checkpoint is not signed by the log"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_parse() {
        assert_eq!(parse_time("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(parse_time("2022-04-13T20:06:15.000Z"), Some(1_649_880_375));
        assert_eq!(crypto::fmt_time(1_649_880_375), "2022-04-13T20:06:15Z");
    }

    #[test]
    fn embedded_root_parses() {
        let r = TrustedRoot::embedded().unwrap();
        assert!(!r.logs.is_empty() && !r.cas.is_empty());
    }
}
