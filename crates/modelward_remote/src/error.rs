//! Why a remote scan (or one remote file) could not be done.

/// An error talking to a server or understanding what it said. Every message names the URL and
/// says what to do about it where something can be done.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RemoteError {
    /// The text is not a target this crate understands.
    #[error("`{input}` is not a remote target: {reason}")]
    InvalidTarget {
        /// The text given.
        input: String,
        /// What is wrong with it.
        reason: String,
    },
    /// `HF_HUB_OFFLINE` is set.
    #[error("HF_HUB_OFFLINE is set, so the Hugging Face Hub is not contacted; unset it to scan `{target}`")]
    Offline {
        /// The target that would have been fetched.
        target: String,
    },
    /// 401 or 403: private, gated, or a token that is missing or not good enough.
    #[error("{url}: HTTP {status}: {hint}")]
    Access {
        /// The URL requested.
        url: String,
        /// 401 or 403.
        status: u16,
        /// What to do (set `HF_TOKEN`, accept the conditions of a gated repository, ...).
        hint: String,
    },
    /// 404 (or the Hub's `X-Error-Code` saying the repository, revision or file is missing).
    #[error("{url}: HTTP {status}: {what} not found{detail}")]
    NotFound {
        /// The URL requested.
        url: String,
        /// Usually 404; the Hub answers 401 for repositories it will not admit exist.
        status: u16,
        /// `repository`, `revision`, `file or folder`, ...
        what: String,
        /// The server's own message, prefixed with `: `, or empty.
        detail: String,
    },
    /// 429 on every attempt.
    #[error(
        "{url}: HTTP 429 Too Many Requests on all {attempts} attempts; try again later (a HF_TOKEN raises the Hub's rate limits)"
    )]
    RateLimited {
        /// The URL requested.
        url: String,
        /// Attempts made.
        attempts: u32,
    },
    /// A 5xx answer on every attempt.
    #[error("{url}: HTTP {status} (server error) on all {attempts} attempts")]
    Server {
        /// The URL requested.
        url: String,
        /// The last status.
        status: u16,
        /// Attempts made.
        attempts: u32,
    },
    /// Any other unexpected status.
    #[error("{url}: unexpected HTTP {status}{detail}")]
    Status {
        /// The URL requested.
        url: String,
        /// The status.
        status: u16,
        /// The server's own message, prefixed with `: `, or empty.
        detail: String,
    },
    /// The connection failed (after retries), timed out, or TLS failed.
    #[error("{url}: {message}")]
    Transport {
        /// The URL requested.
        url: String,
        /// What failed.
        message: String,
    },
    /// The server ignores `Range` and the file is too large to download whole.
    #[error(
        "{url}: the server ignores HTTP range requests and the file is {}, over the {limit}-byte limit for downloading a file whole; it was not scanned",
        describe_size(*.size)
    )]
    RangeUnsupported {
        /// The URL requested.
        url: String,
        /// The size the server announced, if it did.
        size: Option<u64>,
        /// The limit ([`crate::RemoteOptions::max_whole_download`]).
        limit: u64,
    },
    /// Redirects that never end, or a redirect without a location.
    #[error("{url}: {message}")]
    Redirect {
        /// The URL requested.
        url: String,
        /// What went wrong.
        message: String,
    },
    /// An answer that does not make sense: a bad `Content-Range`, a listing that is not JSON,
    /// a body shorter than announced.
    #[error("{url}: bad response: {message}")]
    Protocol {
        /// The URL requested.
        url: String,
        /// What was wrong.
        message: String,
    },
}

impl RemoteError {
    /// The HTTP status behind the error, if there was one.
    pub fn status(&self) -> Option<u16> {
        match self {
            RemoteError::Access { status, .. }
            | RemoteError::NotFound { status, .. }
            | RemoteError::Server { status, .. }
            | RemoteError::Status { status, .. } => Some(*status),
            RemoteError::RateLimited { .. } => Some(429),
            _ => None,
        }
    }

    /// Whether the error is about credentials or access (401/403).
    pub fn is_access(&self) -> bool {
        matches!(self, RemoteError::Access { .. })
    }
}

fn describe_size(size: Option<u64>) -> String {
    match size {
        Some(n) => format!("{n} bytes"),
        None => "of unknown size".into(),
    }
}
