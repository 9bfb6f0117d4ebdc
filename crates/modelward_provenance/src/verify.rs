//! Verifying a model-signing signature: the bundle's DSSE signature with the method's key,
//! the in-toto statement, then every file digest against the folder.

use crate::bundle::{Bundle, IN_TOTO_PAYLOAD_TYPE, pae};
use crate::crypto::{self, Cert};
use crate::manifest::read_bounded;
use crate::{Manifest, ProvenanceError, Result};
use std::path::{Path, PathBuf};

/// Key and certificate files larger than this are refused.
const MAX_KEY_FILE: u64 = 4 << 20;

/// Who is trusted to have signed.
#[derive(Debug, Clone)]
pub enum Method {
    /// The signer's public key (PEM SubjectPublicKeyInfo).
    PublicKey(PathBuf),
    /// PEM files of trusted CA certificates; the bundle's leaf certificate must chain to one.
    CertificateChain(Vec<PathBuf>),
    /// Sigstore keyless: the Fulcio certificate's identity (SAN) and OIDC issuer, against a
    /// trusted root (`None`: the embedded public-good one).
    Sigstore {
        /// The expected identity (email or URI SAN).
        identity: String,
        /// The expected OIDC issuer.
        issuer: String,
        /// A trusted_root.json, or `None` for the embedded one.
        trusted_root: Option<PathBuf>,
    },
}

/// What a successful verification established.
#[derive(Debug, Clone)]
pub struct Verified {
    /// `key`, `certificate` or `sigstore`.
    pub method: &'static str,
    /// Who signed: the key hint, the leaf certificate's subject and CA, or the Sigstore identity.
    pub signer: String,
    /// The signing time used for certificate validity (seconds since the epoch), if any.
    pub signing_time: Option<i64>,
    /// The signed manifest.
    pub manifest: Manifest,
}

impl Verified {
    /// The signing time, RFC 3339.
    pub fn signing_time_rfc3339(&self) -> Option<String> {
        self.signing_time.map(crypto::fmt_time)
    }
}

fn read_text(path: &Path) -> Result<String> {
    String::from_utf8(read_bounded(path, MAX_KEY_FILE)?)
        .map_err(|_| ProvenanceError::malformed(path.display().to_string(), "not UTF-8 text"))
}

/// Checks the bundle's signature for `method` and returns the signed manifest (folder not
/// looked at).
pub fn verify_bundle(bundle: &Bundle, method: &Method) -> Result<Verified> {
    let env = &bundle.envelope;
    let (sig, signed) = signing_input(bundle)?;
    let (name, signer, time) = match method {
        Method::PublicKey(path) => {
            let what = path.display().to_string();
            let (key, spki) = crypto::public_key_from_pem(&read_text(path)?, &what)?;
            if let (Some(hint), Some(ours)) = (&bundle.public_key_hint, crypto::pem_hint(&spki))
                && !hint.is_empty()
                && !hint.eq_ignore_ascii_case(&ours)
            {
                return Err(ProvenanceError::bad(format!(
                    "the signature was made with another key: its key hint is {hint}, {what} hashes to {ours}"
                )));
            }
            if !bundle.certificates.is_empty() {
                return Err(ProvenanceError::bad(
                    "the signature carries a certificate chain, not a public key: verify it with --certificate-chain",
                ));
            }
            if !key.verify(&signed, sig, key.curve_hash()) {
                return Err(ProvenanceError::bad(format!(
                    "the DSSE signature does not verify with the public key {what} (payload or signature altered, or another key)"
                )));
            }
            (
                "key",
                format!(
                    "public key {what} (sha256 of PEM {})",
                    crypto::pem_hint(&spki).unwrap_or_default()
                ),
                None,
            )
        }
        Method::CertificateChain(paths) => {
            let mut anchors = Vec::new();
            for p in paths {
                let text = read_bounded(p, MAX_KEY_FILE)?;
                anchors.extend(Cert::from_pem_chain(&text, &p.display().to_string())?);
            }
            let chain: Vec<Cert> = bundle
                .certificates
                .iter()
                .map(|d| Cert::from_der(d, "certificate in the signature"))
                .collect::<Result<_>>()?;
            let (leaf, rest) = chain.split_first().ok_or_else(|| {
                ProvenanceError::bad(
                    "the signature carries no certificate (signed with a key? use --public-key)",
                )
            })?;
            // model-signing takes the leaf's start of validity as the signing time.
            let time = leaf.validity().0;
            let ca = crypto::verify_chain(leaf, rest, &anchors, time)?;
            if !leaf.may_sign() {
                return Err(ProvenanceError::bad(format!(
                    "certificate {:?} may not sign (neither key usage digitalSignature nor extended key usage codeSigning)",
                    leaf.subject()
                )));
            }
            let key = leaf.public_key("signing certificate")?;
            if !key.verify(&signed, sig, key.curve_hash()) {
                return Err(ProvenanceError::bad(format!(
                    "the DSSE signature does not verify with the key of certificate {:?} (payload or signature altered)",
                    leaf.subject()
                )));
            }
            (
                "certificate",
                format!("{} (issued under {ca})", leaf.subject()),
                Some(time),
            )
        }
        Method::Sigstore {
            identity,
            issuer,
            trusted_root,
        } => {
            let root = match trusted_root {
                Some(p) => crate::sigstore::TrustedRoot::read(p)?,
                None => crate::sigstore::TrustedRoot::embedded()?,
            };
            let s = crate::sigstore::verify(bundle, &root, Some(identity), Some(issuer), &signed, sig)?;
            ("sigstore", format!("{identity} (issuer {issuer})"), Some(s.time))
        }
    };
    let manifest = Manifest::from_statement(&env.payload)?;
    Ok(Verified {
        method: name,
        signer,
        signing_time: time,
        manifest,
    })
}

/// Verifies `signature` for `method`, then that `dir` matches every file digest it lists (and
/// holds no file it does not list, outside its ignored paths).
pub fn verify_dir(dir: &Path, signature: &Path, method: &Method) -> Result<Verified> {
    let bundle = Bundle::read(signature)?;
    let verified = verify_bundle(&bundle, method)?;
    let mut options = verified.manifest.options();
    // The signature file itself is never part of what it signs.
    if let (Ok(sig), Ok(d)) = (signature.canonicalize(), dir.canonicalize())
        && let Ok(rel) = sig.strip_prefix(&d)
        && let Some(rel) = rel.to_str()
    {
        options.ignore_paths.push(rel.replace('\\', "/"));
    }
    let now = Manifest::of_dir(dir, &options)?;
    let diff = verified.manifest.diff(&now);
    if !diff.is_empty() {
        return Err(ProvenanceError::Mismatch(diff));
    }
    Ok(verified)
}

/// What a signature found in a folder says on its own, with no trust configured (for `scan`).
#[derive(Debug, Clone)]
pub enum FolderSignature {
    /// No signature file.
    Absent,
    /// The signature is consistent and the folder matches what it signs; `detail` says what
    /// was and was not established.
    Consistent {
        /// Human-readable: who, how, what is left to `modelward verify`.
        detail: String,
    },
    /// The signature is malformed, does not verify, or the folder differs from it.
    Invalid {
        /// Why.
        reason: String,
    },
}

/// Checks `dir/model.sig` without a key or identity to hold it to: a Sigstore bundle is
/// verified against the embedded trusted root (any identity, reported); a certificate bundle's
/// envelope with the certificate's key (chain not anchored); a key bundle only by its digests.
/// Then every signed digest against the folder.
pub fn check_folder(dir: &Path) -> FolderSignature {
    let sig_path = dir.join(crate::manifest::DEFAULT_SIGNATURE_NAME);
    if !sig_path.is_file() {
        return FolderSignature::Absent;
    }
    match check_folder_inner(dir, &sig_path) {
        Ok(detail) => FolderSignature::Consistent { detail },
        Err(e) => FolderSignature::Invalid {
            reason: e.to_string(),
        },
    }
}

fn check_folder_inner(dir: &Path, sig_path: &Path) -> Result<String> {
    let bundle = Bundle::read(sig_path)?;
    let env = &bundle.envelope;
    let (sig, signed) = signing_input(&bundle)?;
    let detail = if !bundle.certificates.is_empty() && !bundle.tlog_entries.is_empty() {
        let root = crate::sigstore::TrustedRoot::embedded()?;
        let s = crate::sigstore::verify(&bundle, &root, None, None, &signed, sig)?;
        format!(
            "Sigstore signature by {} (OIDC issuer {}) at {}, verified against the public-good trusted root; pin the signer with `modelward verify --identity … --issuer …`",
            s.identities.join(", "),
            s.issuer,
            crypto::fmt_time(s.time)
        )
    } else if let Some(leaf) = bundle.certificates.first() {
        let leaf = Cert::from_der(leaf, "signing certificate")?;
        let key = leaf.public_key("signing certificate")?;
        if !key.verify(&signed, sig, key.curve_hash()) {
            return Err(ProvenanceError::bad(
                "the DSSE signature does not verify with the key of the certificate it carries",
            ));
        }
        format!(
            "signed with certificate {:?}; whether its chain is trusted is checked by `modelward verify --certificate-chain CA.pem`",
            leaf.subject()
        )
    } else {
        format!(
            "signed with a key (hint {}); the signature itself is checked by `modelward verify --public-key KEY`",
            bundle.public_key_hint.as_deref().unwrap_or("none")
        )
    };
    let manifest = Manifest::from_statement(&env.payload)?;
    let mut options = manifest.options();
    options
        .ignore_paths
        .push(crate::manifest::DEFAULT_SIGNATURE_NAME.to_string());
    let now = Manifest::of_dir(dir, &options)?;
    let diff = manifest.diff(&now);
    if !diff.is_empty() {
        return Err(ProvenanceError::Mismatch(diff));
    }
    Ok(format!("{} files match; {detail}", manifest.resources.len()))
}

/// The envelope's first signature and the bytes it signs (DSSE PAE), once the payload type is
/// the in-toto statement model signing writes. Shared by `verify_bundle` and `check_folder`.
fn signing_input(bundle: &Bundle) -> Result<(&[u8], Vec<u8>)> {
    let env = &bundle.envelope;
    if env.payload_type != IN_TOTO_PAYLOAD_TYPE {
        return Err(ProvenanceError::bad(format!(
            "the DSSE payload type is {:?}, expected {IN_TOTO_PAYLOAD_TYPE}",
            env.payload_type
        )));
    }
    let sig = env
        .signatures
        .first()
        .ok_or_else(|| ProvenanceError::bad("the DSSE envelope has no signature"))?;
    Ok((sig.as_slice(), pae(&env.payload_type, &env.payload)))
}
