//! A small blocking HTTP client on ureq: redirects followed by hand (so `Range` survives and the
//! token never leaves the Hub's origin), bounded retries for 429 / 5xx / connection failures
//! honouring `Retry-After`, and the Hub's error conventions turned into clear errors.

use crate::error::RemoteError;
use crate::options::RemoteOptions;
use crate::url;
use std::io::Read;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use ureq::http::Response;

/// Redirects followed per request.
const MAX_REDIRECTS: u32 = 10;

/// Bytes received (response bodies) and requests sent, shared between the readers and
/// listings of one scan or one file.
#[derive(Debug, Default)]
pub struct TransferStats {
    bytes: AtomicU64,
    requests: AtomicU64,
}

impl TransferStats {
    /// Response body bytes received.
    pub fn bytes(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed)
    }

    /// HTTP requests sent (each redirect hop and each retry counts).
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    pub(crate) fn add_bytes(&self, n: u64) {
        self.bytes.fetch_add(n, Ordering::Relaxed);
    }

    fn add_request(&self) {
        self.requests.fetch_add(1, Ordering::Relaxed);
    }
}

/// An HTTP client configured from [`RemoteOptions`]. Cheap to clone; clones share connections.
#[derive(Clone)]
pub struct Client {
    agent: ureq::Agent,
    inner: Arc<Inner>,
}

struct Inner {
    endpoint: String,
    endpoint_origin: Option<String>,
    token: Option<String>,
    max_attempts: u32,
    backoff: Duration,
    max_backoff: Duration,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("endpoint", &self.inner.endpoint)
            .field("token", &self.inner.token.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

/// A response that is neither a redirect nor (after retries) a 429 or 5xx.
pub(crate) struct Reply {
    pub status: u16,
    /// The URL that answered (after redirects).
    pub url: String,
    pub response: Response<ureq::Body>,
    /// Whether the token was sent with the request that answered.
    pub sent_token: bool,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.response.headers().get(name).and_then(|v| v.to_str().ok())
    }
}

enum Failure {
    Retry(String),
    Fatal(RemoteError),
}

impl Client {
    /// A client for `opts` (endpoint, token, retries, timeouts, proxy, user agent).
    pub fn new(opts: &RemoteOptions) -> Client {
        let mut cfg = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .max_redirects(0)
            .user_agent(opts.user_agent.as_str())
            .timeout_connect(Some(opts.connect_timeout))
            .timeout_per_read(Some(opts.read_timeout))
            .timeout_recv_response(Some(opts.read_timeout));
        if !opts.env_proxy {
            cfg = cfg.proxy(None);
        }
        let endpoint = opts.endpoint.trim_end_matches('/').to_owned();
        Client {
            agent: ureq::Agent::new_with_config(cfg.build()),
            inner: Arc::new(Inner {
                endpoint_origin: url::origin(&endpoint),
                endpoint,
                token: opts.token.clone(),
                max_attempts: opts.max_attempts.max(1),
                backoff: opts.backoff,
                max_backoff: opts.max_backoff,
            }),
        }
    }

    /// The Hub endpoint, without a trailing `/`.
    pub fn endpoint(&self) -> &str {
        &self.inner.endpoint
    }

    /// Whether a token is configured.
    pub fn has_token(&self) -> bool {
        self.inner.token.is_some()
    }

    /// GET `url` (with `Range: range` if given), following redirects and retrying 429, 5xx and
    /// connection failures. Any other status is returned for the caller to judge.
    pub(crate) fn get(
        &self,
        url: &str,
        range: Option<&str>,
        stats: &TransferStats,
    ) -> Result<Reply, RemoteError> {
        let max = self.inner.max_attempts;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let wait = match self.follow(url, range, stats) {
                Ok(reply) if reply.status == 429 => {
                    if attempt >= max {
                        return Err(RemoteError::RateLimited {
                            url: url::redact(url),
                            attempts: attempt,
                        });
                    }
                    retry_after(&reply).unwrap_or_else(|| self.backoff(attempt))
                }
                Ok(reply) if reply.status >= 500 => {
                    if attempt >= max {
                        return Err(RemoteError::Server {
                            url: url::redact(url),
                            status: reply.status,
                            attempts: attempt,
                        });
                    }
                    retry_after(&reply).unwrap_or_else(|| self.backoff(attempt))
                }
                Ok(reply) => return Ok(reply),
                Err(Failure::Fatal(e)) => return Err(e),
                Err(Failure::Retry(message)) => {
                    if attempt >= max {
                        return Err(RemoteError::Transport {
                            url: url::redact(url),
                            message: format!("{message} (after {attempt} attempts)"),
                        });
                    }
                    self.backoff(attempt)
                }
            };
            std::thread::sleep(wait.min(self.inner.max_backoff));
        }
    }

    /// `backoff * 2^(attempt-1)`, capped.
    fn backoff(&self, attempt: u32) -> Duration {
        let factor = 1u32 << (attempt.saturating_sub(1)).min(16);
        self.inner
            .backoff
            .saturating_mul(factor)
            .min(self.inner.max_backoff)
    }

    /// One attempt: the request and its redirects.
    fn follow(&self, url: &str, range: Option<&str>, stats: &TransferStats) -> Result<Reply, Failure> {
        let mut current = url.to_owned();
        for _ in 0..=MAX_REDIRECTS {
            let send_token = self.token_for(&current);
            let mut req = self.agent.get(current.as_str());
            if let Some(r) = range {
                // A range of a gzip-encoded representation is not a range of the file.
                req = req.header("Range", r).header("Accept-Encoding", "identity");
            }
            if let Some(token) = send_token {
                req = req.header("Authorization", format!("Bearer {token}"));
            }
            stats.add_request();
            let response = req.call().map_err(|e| classify(&current, e))?;
            let status = response.status().as_u16();
            if matches!(status, 301 | 302 | 303 | 307 | 308) {
                let location = response
                    .headers()
                    .get("location")
                    .and_then(|v| v.to_str().ok())
                    .ok_or_else(|| {
                        Failure::Fatal(RemoteError::Redirect {
                            url: url::redact(&current),
                            message: format!("HTTP {status} without a Location header"),
                        })
                    })?;
                current = url::join(&current, location).ok_or_else(|| {
                    Failure::Fatal(RemoteError::Redirect {
                        url: url::redact(&current),
                        message: format!("HTTP {status} to an unusable location `{location}`"),
                    })
                })?;
                continue;
            }
            return Ok(Reply {
                status,
                url: current,
                response,
                sent_token: send_token.is_some(),
            });
        }
        Err(Failure::Fatal(RemoteError::Redirect {
            url: url::redact(url),
            message: format!("more than {MAX_REDIRECTS} redirects"),
        }))
    }

    /// The token, if `url` is on the endpoint's origin.
    fn token_for(&self, target: &str) -> Option<&str> {
        let token = self.inner.token.as_deref()?;
        let origin = self.inner.endpoint_origin.as_deref()?;
        (url::origin(target).as_deref() == Some(origin)).then_some(token)
    }
}

fn classify(url: &str, e: ureq::Error) -> Failure {
    let message = e.to_string();
    match e {
        ureq::Error::Io(_)
        | ureq::Error::Timeout(_)
        | ureq::Error::ConnectionFailed
        | ureq::Error::Protocol(_)
        | ureq::Error::BodyStalled => Failure::Retry(message),
        _ => Failure::Fatal(RemoteError::Transport {
            url: url::redact(url),
            message,
        }),
    }
}

/// `Retry-After` in seconds (the HTTP-date form falls back to the backoff).
fn retry_after(reply: &Reply) -> Option<Duration> {
    let secs: u64 = reply.header("retry-after")?.trim().parse().ok()?;
    Some(Duration::from_secs(secs))
}

/// The error for a status the caller cannot use, following the Hub's `X-Error-Code`
/// (`RepoNotFound`, `GatedRepo`, `RevisionNotFound`, `EntryNotFound`) and `X-Error-Message`.
pub(crate) fn status_error(mut reply: Reply, stats: &TransferStats, has_token: bool) -> RemoteError {
    let url = url::redact(&reply.url);
    let status = reply.status;
    let code = reply.header("x-error-code").map(str::to_owned);
    let mut message = reply.header("x-error-message").map(str::to_owned);
    if message.is_none() {
        message = body_message(&mut reply, stats);
    }
    let detail = message.map(|m| format!(": {m}")).unwrap_or_default();
    let code = code.as_deref();
    match status {
        401 | 403 => {
            let hint = if code == Some("GatedRepo") {
                "the repository is gated: accept its conditions on its Hub page, then set HF_TOKEN to a token of that account".to_owned()
            } else if status == 401 && has_token && reply.sent_token {
                "the token (HF_TOKEN or the token file) was refused, or the repository is private, gated or missing; check the token".to_owned()
            } else if has_token && reply.sent_token {
                "the token cannot read this repository (private or gated; a fine-grained token needs read access to it)".to_owned()
            } else if reply.sent_token || !has_token {
                "the repository is private or gated (or does not exist); set HF_TOKEN to a token that can read it (https://huggingface.co/settings/tokens)".to_owned()
            } else {
                "access denied by a server that was not sent the Hub token".to_owned()
            };
            RemoteError::Access {
                url,
                status,
                hint: format!("{hint}{detail}"),
            }
        }
        404 | 410 => {
            let what = match code {
                Some("RepoNotFound") => "repository",
                Some("RevisionNotFound") => "revision",
                Some("EntryNotFound") => "file or folder",
                _ => "resource",
            };
            RemoteError::NotFound {
                url,
                status,
                what: what.into(),
                detail,
            }
        }
        _ => RemoteError::Status { url, status, detail },
    }
}

/// `{"error": "..."}` from a small error body, or its first line of text.
fn body_message(reply: &mut Reply, stats: &TransferStats) -> Option<String> {
    let mut buf = Vec::new();
    let n = reply
        .response
        .body_mut()
        .as_reader()
        .take(4096)
        .read_to_end(&mut buf)
        .ok()?;
    stats.add_bytes(n as u64);
    if let Ok(v) = serde_json::from_slice::<serde_json::Value>(&buf)
        && let Some(m) = v.get("error").and_then(|m| m.as_str())
    {
        return Some(m.chars().take(300).collect());
    }
    let text = String::from_utf8_lossy(&buf);
    let line = text.lines().map(str::trim).find(|l| !l.is_empty())?;
    if line.starts_with('<') {
        return None; // an HTML error page says nothing useful in one line
    }
    Some(line.chars().take(300).collect())
}

/// Reads a body into memory, at most `limit` bytes (`Err` with what was read when longer).
pub(crate) fn read_body(
    reply: &mut Reply,
    limit: u64,
    stats: &TransferStats,
) -> Result<Vec<u8>, RemoteError> {
    let mut buf = Vec::new();
    let mut reader = reply
        .response
        .body_mut()
        .as_reader()
        .take(limit.saturating_add(1));
    let mut chunk = vec![0u8; 64 << 10];
    loop {
        match reader.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => {
                stats.add_bytes(n as u64);
                buf.extend_from_slice(&chunk[..n]);
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => {
                return Err(RemoteError::Transport {
                    url: url::redact(&reply.url),
                    message: format!("reading the response: {e}"),
                });
            }
        }
    }
    if buf.len() as u64 > limit {
        return Err(RemoteError::Protocol {
            url: url::redact(&reply.url),
            message: format!("the response is longer than the {limit} bytes expected"),
        });
    }
    Ok(buf)
}
