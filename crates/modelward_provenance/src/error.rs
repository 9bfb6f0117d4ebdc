//! Errors. Two kinds matter to callers: the input could not be read or is not what it claims
//! (usage/IO), or it was read and did not verify ([`ProvenanceError::is_verification_failure`]).

use std::path::PathBuf;

/// Result with [`ProvenanceError`].
pub type Result<T> = std::result::Result<T, ProvenanceError>;

/// What went wrong.
#[derive(Debug, thiserror::Error)]
pub enum ProvenanceError {
    /// A file or folder could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The folder holds something a manifest cannot describe (a symlink when symlinks are not
    /// allowed, a socket, a folder nested too deep).
    #[error("{path}: {reason}")]
    Unhashable {
        /// The path.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// A manifest, bundle, key, certificate or trusted root is malformed.
    #[error("{what} is malformed: {reason}")]
    Malformed {
        /// What was being read.
        what: String,
        /// Why it was refused.
        reason: String,
    },
    /// The signature or manifest uses something modelward does not verify (yet).
    #[error("unsupported: {0}")]
    Unsupported(String),
    /// The signature does not verify (wrong key, tampered envelope or payload, untrusted chain,
    /// identity mismatch, transparency log proof that fails...).
    #[error("signature verification failed: {0}")]
    BadSignature(String),
    /// The signature verified, but the folder does not match what was signed.
    #[error("the folder does not match the signed manifest: {}", summary(.0))]
    Mismatch(Vec<crate::Difference>),
}

fn summary(d: &[crate::Difference]) -> String {
    let mut s: Vec<String> = d.iter().take(10).map(|x| x.to_string()).collect();
    if d.len() > 10 {
        s.push(format!("and {} more", d.len() - 10));
    }
    s.join("; ")
}

impl ProvenanceError {
    /// Whether the input was read and failed verification (exit code 1), as opposed to not
    /// being readable or usable at all (exit code 2).
    pub fn is_verification_failure(&self) -> bool {
        matches!(self, Self::BadSignature(_) | Self::Mismatch(_))
    }

    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            path: path.into(),
            source,
        }
    }

    pub(crate) fn malformed(what: impl Into<String>, reason: impl std::fmt::Display) -> Self {
        Self::Malformed {
            what: what.into(),
            reason: reason.to_string(),
        }
    }

    pub(crate) fn bad(reason: impl Into<String>) -> Self {
        Self::BadSignature(reason.into())
    }
}
