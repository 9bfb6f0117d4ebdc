//! The Sigstore bundle model-signing writes (`model.sig`): verification material (a public key
//! hint, a certificate chain or one Fulcio certificate, transparency log entries) and a DSSE
//! envelope. Only parsing here; nothing is trusted yet.

use crate::{ProvenanceError, Result};
use base64::Engine;
use serde::Deserialize;
use std::path::Path;

/// Signature files larger than this are refused before parsing.
pub const MAX_BUNDLE: u64 = 16 << 20;
/// The DSSE payload type model-signing signs.
pub const IN_TOTO_PAYLOAD_TYPE: &str = "application/vnd.in-toto+json";
/// Media types read: v0.3 (model-signing 1.x) and the older v0.1/v0.2 spellings.
pub const MEDIA_TYPES: [&str; 4] = [
    "application/vnd.dev.sigstore.bundle.v0.3+json",
    "application/vnd.dev.sigstore.bundle+json;version=0.3",
    "application/vnd.dev.sigstore.bundle+json;version=0.2",
    "application/vnd.dev.sigstore.bundle+json;version=0.1",
];

/// A parsed bundle.
#[derive(Debug, Clone)]
pub struct Bundle {
    /// Its media type.
    pub media_type: String,
    /// DER certificates, leaf first (certificate chain or single Fulcio certificate).
    pub certificates: Vec<Vec<u8>>,
    /// The public key hint (sha256 hex of the signer's PEM public key), key method.
    pub public_key_hint: Option<String>,
    /// Transparency log entries.
    pub tlog_entries: Vec<TlogEntry>,
    /// The DSSE envelope.
    pub envelope: Envelope,
}

/// A DSSE envelope.
#[derive(Debug, Clone)]
pub struct Envelope {
    /// The payload bytes (decoded).
    pub payload: Vec<u8>,
    /// The payload type.
    pub payload_type: String,
    /// Signatures (decoded), first one used.
    pub signatures: Vec<Vec<u8>>,
}

/// A Rekor transparency log entry, as the bundle carries it.
#[derive(Debug, Clone)]
pub struct TlogEntry {
    /// Log index (global).
    pub log_index: u64,
    /// The log's key id (sha256 of its DER public key).
    pub log_id: Vec<u8>,
    /// Entry kind and version (`dsse` `0.0.1`, `intoto`, `hashedrekord`).
    pub kind: String,
    /// Version of the kind.
    pub kind_version: String,
    /// Seconds since the epoch the log says it integrated the entry.
    pub integrated_time: i64,
    /// The signed entry timestamp (a signature by the log), if any.
    pub signed_entry_timestamp: Option<Vec<u8>>,
    /// The inclusion proof, if any.
    pub inclusion_proof: Option<InclusionProof>,
    /// The entry body, canonical JSON (decoded).
    pub canonicalized_body: Vec<u8>,
}

/// A Merkle inclusion proof with its checkpoint.
#[derive(Debug, Clone)]
pub struct InclusionProof {
    /// Index of the entry in the tree.
    pub log_index: u64,
    /// Root hash.
    pub root_hash: Vec<u8>,
    /// Tree size.
    pub tree_size: u64,
    /// Sibling hashes, leaf to root.
    pub hashes: Vec<Vec<u8>>,
    /// The signed checkpoint (a signed note), if any.
    pub checkpoint: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawBundle {
    media_type: Option<String>,
    verification_material: Option<RawMaterial>,
    dsse_envelope: Option<RawEnvelope>,
    message_signature: Option<serde_json::Value>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawMaterial {
    public_key: Option<RawKey>,
    x509_certificate_chain: Option<RawChain>,
    certificate: Option<RawCert>,
    #[serde(default)]
    tlog_entries: Vec<RawTlog>,
}

#[derive(Deserialize)]
struct RawKey {
    hint: Option<String>,
}

#[derive(Deserialize)]
struct RawChain {
    #[serde(default)]
    certificates: Vec<RawCert>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawCert {
    raw_bytes: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawTlog {
    log_index: Option<serde_json::Value>,
    log_id: Option<RawLogId>,
    kind_version: Option<RawKind>,
    integrated_time: Option<serde_json::Value>,
    inclusion_promise: Option<RawPromise>,
    inclusion_proof: Option<RawProof>,
    canonicalized_body: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawLogId {
    key_id: String,
}

#[derive(Deserialize)]
struct RawKind {
    kind: String,
    version: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawPromise {
    signed_entry_timestamp: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawProof {
    log_index: serde_json::Value,
    root_hash: String,
    tree_size: serde_json::Value,
    #[serde(default)]
    hashes: Vec<String>,
    checkpoint: Option<RawCheckpoint>,
}

#[derive(Deserialize)]
struct RawCheckpoint {
    envelope: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawEnvelope {
    payload: String,
    payload_type: String,
    #[serde(default)]
    signatures: Vec<RawSig>,
}

#[derive(Deserialize)]
struct RawSig {
    sig: String,
}

const WHAT: &str = "signature bundle";

/// Standard base64 (protobuf JSON writes standard, padded; URL-safe accepted too).
pub(crate) fn b64(s: &str, field: &str) -> Result<Vec<u8>> {
    let e = base64::engine::general_purpose::STANDARD;
    e.decode(s.trim())
        .or_else(|_| base64::engine::general_purpose::URL_SAFE.decode(s.trim()))
        .map_err(|err| ProvenanceError::malformed(WHAT, format!("{field} is not base64: {err}")))
}

/// protobuf JSON writes 64-bit integers as strings.
fn int(v: &serde_json::Value, field: &str) -> Result<i64> {
    match v {
        serde_json::Value::String(s) => s.parse().ok(),
        serde_json::Value::Number(n) => n.as_i64(),
        _ => None,
    }
    .ok_or_else(|| ProvenanceError::malformed(WHAT, format!("{field} is not an integer")))
}

fn uint(v: &serde_json::Value, field: &str) -> Result<u64> {
    u64::try_from(int(v, field)?)
        .map_err(|_| ProvenanceError::malformed(WHAT, format!("{field} is negative")))
}

impl Bundle {
    /// Reads a bundle file.
    pub fn read(path: &Path) -> Result<Self> {
        Self::parse(&crate::manifest::read_bounded(path, MAX_BUNDLE)?)
    }

    /// Parses bundle JSON.
    pub fn parse(bytes: &[u8]) -> Result<Self> {
        let raw: RawBundle =
            serde_json::from_slice(bytes).map_err(|e| ProvenanceError::malformed(WHAT, e))?;
        let media_type = raw.media_type.unwrap_or_default();
        if !MEDIA_TYPES.contains(&media_type.as_str()) {
            return Err(ProvenanceError::malformed(
                WHAT,
                format!("media type {media_type:?} is not a Sigstore bundle"),
            ));
        }
        if raw.message_signature.is_some() && raw.dsse_envelope.is_none() {
            return Err(ProvenanceError::Unsupported(
                "a bundle with a message signature instead of a DSSE envelope (not a model signature)".into(),
            ));
        }
        let env = raw
            .dsse_envelope
            .ok_or_else(|| ProvenanceError::malformed(WHAT, "no dsseEnvelope"))?;
        let envelope = Envelope {
            payload: b64(&env.payload, "dsseEnvelope.payload")?,
            payload_type: env.payload_type,
            signatures: env
                .signatures
                .iter()
                .map(|s| b64(&s.sig, "dsseEnvelope.signatures[].sig"))
                .collect::<Result<_>>()?,
        };
        let mat = raw
            .verification_material
            .ok_or_else(|| ProvenanceError::malformed(WHAT, "no verificationMaterial"))?;
        let mut certificates = Vec::new();
        if let Some(c) = &mat.certificate {
            certificates.push(b64(&c.raw_bytes, "certificate.rawBytes")?);
        }
        if let Some(chain) = &mat.x509_certificate_chain {
            for c in &chain.certificates {
                certificates.push(b64(&c.raw_bytes, "x509CertificateChain.certificates[]")?);
            }
        }
        let mut tlog_entries = Vec::new();
        for t in &mat.tlog_entries {
            let kv = t.kind_version.as_ref();
            tlog_entries.push(TlogEntry {
                log_index: t
                    .log_index
                    .as_ref()
                    .map(|v| uint(v, "logIndex"))
                    .transpose()?
                    .unwrap_or(0),
                log_id: t
                    .log_id
                    .as_ref()
                    .map(|l| b64(&l.key_id, "logId.keyId"))
                    .transpose()?
                    .unwrap_or_default(),
                kind: kv.map(|k| k.kind.clone()).unwrap_or_default(),
                kind_version: kv.map(|k| k.version.clone()).unwrap_or_default(),
                integrated_time: t
                    .integrated_time
                    .as_ref()
                    .map(|v| int(v, "integratedTime"))
                    .transpose()?
                    .unwrap_or(0),
                signed_entry_timestamp: t
                    .inclusion_promise
                    .as_ref()
                    .map(|p| b64(&p.signed_entry_timestamp, "signedEntryTimestamp"))
                    .transpose()?,
                inclusion_proof: t
                    .inclusion_proof
                    .as_ref()
                    .map(|p| -> Result<InclusionProof> {
                        Ok(InclusionProof {
                            log_index: uint(&p.log_index, "inclusionProof.logIndex")?,
                            root_hash: b64(&p.root_hash, "inclusionProof.rootHash")?,
                            tree_size: uint(&p.tree_size, "inclusionProof.treeSize")?,
                            hashes: p
                                .hashes
                                .iter()
                                .map(|h| b64(h, "inclusionProof.hashes[]"))
                                .collect::<Result<_>>()?,
                            checkpoint: p.checkpoint.as_ref().map(|c| c.envelope.clone()),
                        })
                    })
                    .transpose()?,
                canonicalized_body: t
                    .canonicalized_body
                    .as_ref()
                    .map(|b| b64(b, "canonicalizedBody"))
                    .transpose()?
                    .unwrap_or_default(),
            });
        }
        Ok(Self {
            media_type,
            certificates,
            public_key_hint: mat.public_key.and_then(|k| k.hint),
            tlog_entries,
            envelope,
        })
    }
}

/// DSSE pre-authentication encoding (DSSE v1): what the signature is over.
pub fn pae(payload_type: &str, payload: &[u8]) -> Vec<u8> {
    let mut out = format!(
        "DSSEv1 {} {} {} ",
        payload_type.len(),
        payload_type,
        payload.len()
    )
    .into_bytes();
    out.extend_from_slice(payload);
    out
}
