//! Settings of a remote scan, and the Hugging Face conventions that fill them from the
//! environment (`HF_ENDPOINT`, `HF_TOKEN`, `HF_TOKEN_PATH`, `HF_HOME`, `HF_HUB_CACHE`,
//! `HF_HUB_OFFLINE`), read the way `huggingface_hub` reads them.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

/// The public Hub.
pub const DEFAULT_ENDPOINT: &str = "https://huggingface.co";

/// How a remote scan talks to servers.
#[derive(Clone)]
pub struct RemoteOptions {
    /// The Hub endpoint (`HF_ENDPOINT`, default `https://huggingface.co`), no trailing `/`.
    pub endpoint: String,
    /// The Hub token. It is sent only to the endpoint's origin, never to other hosts (CDNs
    /// that redirects lead to, plain URLs).
    pub token: Option<String>,
    /// `HF_HUB_OFFLINE`: Hub targets are refused rather than fetched.
    pub offline: bool,
    /// Files scanned at the same time.
    pub concurrency: usize,
    /// Bytes fetched per range request (a request continuing a sequential read fetches up to
    /// 16 times more).
    pub block_size: u64,
    /// Blocks kept per file (least recently used are dropped).
    pub cache_blocks: usize,
    /// Largest file downloaded whole when a server ignores `Range`; larger ones are refused.
    pub max_whole_download: u64,
    /// Attempts per request for 429, 5xx and connection failures.
    pub max_attempts: u32,
    /// First wait between attempts; doubled at each attempt.
    pub backoff: Duration,
    /// Longest wait between attempts (also caps `Retry-After`).
    pub max_backoff: Duration,
    /// Connection timeout.
    pub connect_timeout: Duration,
    /// Timeout for each read from the network.
    pub read_timeout: Duration,
    /// Whether `HTTP(S)_PROXY` / `ALL_PROXY` / `NO_PROXY` are honoured.
    pub env_proxy: bool,
    /// The `User-Agent` header.
    pub user_agent: String,
}

impl Default for RemoteOptions {
    /// Defaults that read nothing from the environment: the public Hub, no token.
    fn default() -> RemoteOptions {
        RemoteOptions {
            endpoint: DEFAULT_ENDPOINT.to_owned(),
            token: None,
            offline: false,
            concurrency: 4,
            block_size: 64 << 10,
            cache_blocks: 8,
            max_whole_download: 64 << 20,
            max_attempts: 5,
            backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(15),
            read_timeout: Duration::from_secs(60),
            env_proxy: true,
            user_agent: format!(
                "modelward/{} (+https://github.com/modelward/modelward)",
                env!("CARGO_PKG_VERSION")
            ),
        }
    }
}

impl fmt::Debug for RemoteOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RemoteOptions")
            .field("endpoint", &self.endpoint)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("offline", &self.offline)
            .field("concurrency", &self.concurrency)
            .field("block_size", &self.block_size)
            .field("cache_blocks", &self.cache_blocks)
            .field("max_whole_download", &self.max_whole_download)
            .field("max_attempts", &self.max_attempts)
            .field("backoff", &self.backoff)
            .field("max_backoff", &self.max_backoff)
            .field("connect_timeout", &self.connect_timeout)
            .field("read_timeout", &self.read_timeout)
            .field("env_proxy", &self.env_proxy)
            .field("user_agent", &self.user_agent)
            .finish()
    }
}

impl RemoteOptions {
    /// Defaults with the Hugging Face environment applied: `HF_ENDPOINT`, the token
    /// (`HF_TOKEN`, then the token file), `HF_HUB_OFFLINE`.
    pub fn from_env() -> RemoteOptions {
        RemoteOptions::from_vars(|k| std::env::var(k).ok())
    }

    /// [`RemoteOptions::from_env`] over any variable lookup (for tests and embedding).
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> RemoteOptions {
        RemoteOptions {
            endpoint: endpoint_from(&var),
            token: token_from(&var),
            offline: var("HF_HUB_OFFLINE").is_some_and(|v| truthy(&v)),
            ..RemoteOptions::default()
        }
    }
}

/// `HF_ENDPOINT` without its trailing `/`, or the public Hub.
pub(crate) fn endpoint_from(var: impl Fn(&str) -> Option<String>) -> String {
    var("HF_ENDPOINT")
        .map(|e| e.trim().trim_end_matches('/').to_owned())
        .filter(|e| !e.is_empty())
        .unwrap_or_else(|| DEFAULT_ENDPOINT.to_owned())
}

/// The token as `huggingface_hub` finds it: `HF_TOKEN`, then the legacy
/// `HUGGING_FACE_HUB_TOKEN`, then the file at `HF_TOKEN_PATH`, else `HF_HOME/token`. Blank
/// values count as unset.
pub(crate) fn token_from(var: impl Fn(&str) -> Option<String>) -> Option<String> {
    let clean = |t: String| Some(t.trim().to_owned()).filter(|t| !t.is_empty());
    if let Some(t) = var("HF_TOKEN").and_then(clean) {
        return Some(t);
    }
    if let Some(t) = var("HUGGING_FACE_HUB_TOKEN").and_then(clean) {
        return Some(t);
    }
    let path = var("HF_TOKEN_PATH")
        .filter(|p| !p.trim().is_empty())
        .map(|p| expand_home(&p, &var))
        .or_else(|| hf_home(&var).map(|h| h.join("token")))?;
    std::fs::read_to_string(path).ok().and_then(clean)
}

/// `HF_HOME`, else `$XDG_CACHE_HOME/huggingface`, else `~/.cache/huggingface`.
pub(crate) fn hf_home(var: impl Fn(&str) -> Option<String>) -> Option<PathBuf> {
    if let Some(h) = var("HF_HOME").filter(|h| !h.trim().is_empty()) {
        return Some(expand_home(&h, &var));
    }
    if let Some(x) = var("XDG_CACHE_HOME").filter(|h| !h.trim().is_empty()) {
        return Some(expand_home(&x, &var).join("huggingface"));
    }
    home(&var).map(|h| h.join(".cache").join("huggingface"))
}

/// The hub cache: `HF_HUB_CACHE`, else the legacy `HUGGINGFACE_HUB_CACHE`, else
/// `HF_HOME/hub`.
pub(crate) fn hub_cache(var: impl Fn(&str) -> Option<String>) -> Option<PathBuf> {
    for k in ["HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE"] {
        if let Some(c) = var(k).filter(|c| !c.trim().is_empty()) {
            return Some(expand_home(&c, &var));
        }
    }
    hf_home(&var).map(|h| h.join("hub"))
}

fn home(var: impl Fn(&str) -> Option<String>) -> Option<PathBuf> {
    var("HOME")
        .or_else(|| var("USERPROFILE"))
        .filter(|h| !h.is_empty())
        .map(PathBuf::from)
}

/// `~` and `~/...` expanded like Python's `os.path.expanduser`.
fn expand_home(p: &str, var: impl Fn(&str) -> Option<String>) -> PathBuf {
    let p = p.trim();
    if p == "~" {
        return home(&var).unwrap_or_else(|| PathBuf::from(p));
    }
    if let Some(rest) = p.strip_prefix("~/")
        && let Some(h) = home(&var)
    {
        return h.join(rest);
    }
    PathBuf::from(p)
}

/// `huggingface_hub`'s truthy values for boolean variables.
fn truthy(v: &str) -> bool {
    matches!(
        v.trim().to_ascii_uppercase().as_str(),
        "1" | "ON" | "YES" | "TRUE"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn vars(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn endpoint() {
        assert_eq!(endpoint_from(vars(&[])), "https://huggingface.co");
        assert_eq!(
            endpoint_from(vars(&[("HF_ENDPOINT", "https://hf-mirror.com/")])),
            "https://hf-mirror.com"
        );
        assert_eq!(
            endpoint_from(vars(&[("HF_ENDPOINT", " ")])),
            "https://huggingface.co"
        );
    }

    #[test]
    fn token_order() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("tok");
        std::fs::write(&file, "hf_from_file\n").unwrap();
        std::fs::create_dir_all(dir.path().join("home")).unwrap();
        std::fs::write(dir.path().join("home/token"), " hf_home_file ").unwrap();
        let f = file.to_str().unwrap();
        let h = dir.path().join("home");
        let h = h.to_str().unwrap();
        assert_eq!(
            token_from(vars(&[("HF_TOKEN", "hf_env"), ("HF_TOKEN_PATH", f)])).as_deref(),
            Some("hf_env")
        );
        assert_eq!(
            token_from(vars(&[("HF_TOKEN", " "), ("HF_TOKEN_PATH", f)])).as_deref(),
            Some("hf_from_file")
        );
        assert_eq!(
            token_from(vars(&[("HUGGING_FACE_HUB_TOKEN", "hf_old")])).as_deref(),
            Some("hf_old")
        );
        assert_eq!(
            token_from(vars(&[("HF_HOME", h)])).as_deref(),
            Some("hf_home_file")
        );
        assert_eq!(
            token_from(vars(&[("HF_TOKEN_PATH", f), ("HF_HOME", h)])).as_deref(),
            Some("hf_from_file")
        );
        assert_eq!(token_from(vars(&[("HOME", dir.path().to_str().unwrap())])), None);
    }

    #[test]
    fn cache_dirs() {
        assert_eq!(
            hub_cache(vars(&[("HF_HUB_CACHE", "/c")])),
            Some(PathBuf::from("/c"))
        );
        assert_eq!(
            hub_cache(vars(&[("HUGGINGFACE_HUB_CACHE", "/old")])),
            Some(PathBuf::from("/old"))
        );
        assert_eq!(
            hub_cache(vars(&[("HF_HOME", "/h")])),
            Some(PathBuf::from("/h/hub"))
        );
        assert_eq!(
            hub_cache(vars(&[("HF_HOME", "~/h"), ("HOME", "/u")])),
            Some(PathBuf::from("/u/h/hub"))
        );
        assert_eq!(
            hub_cache(vars(&[("XDG_CACHE_HOME", "/x"), ("HOME", "/u")])),
            Some(PathBuf::from("/x/huggingface/hub"))
        );
        assert_eq!(
            hub_cache(vars(&[("HOME", "/u")])),
            Some(PathBuf::from("/u/.cache/huggingface/hub"))
        );
        assert_eq!(hub_cache(vars(&[])), None);
    }

    #[test]
    fn from_vars_and_debug() {
        let o = RemoteOptions::from_vars(vars(&[
            ("HF_ENDPOINT", "http://127.0.0.1:1/"),
            ("HF_TOKEN", "hf_secret"),
            ("HF_HUB_OFFLINE", "1"),
        ]));
        assert_eq!(o.endpoint, "http://127.0.0.1:1");
        assert_eq!(o.token.as_deref(), Some("hf_secret"));
        assert!(o.offline);
        assert!(!format!("{o:?}").contains("hf_secret"));
        assert!(!RemoteOptions::from_vars(vars(&[("HF_HUB_OFFLINE", "0")])).offline);
    }
}
