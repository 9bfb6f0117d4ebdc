//! What to scan: `hf://` references, Hub web URLs and plain URLs, parsed into a
//! [`RemoteTarget`].

use crate::error::RemoteError;
use crate::url;
use std::fmt;

/// The three kinds of Hub repository.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RepoKind {
    /// `OWNER/NAME` (the default).
    Model,
    /// `datasets/OWNER/NAME`.
    Dataset,
    /// `spaces/OWNER/NAME`.
    Space,
}

impl RepoKind {
    /// The plural used in API paths and cache folder names: `models`, `datasets`, `spaces`.
    pub fn plural(self) -> &'static str {
        match self {
            RepoKind::Model => "models",
            RepoKind::Dataset => "datasets",
            RepoKind::Space => "spaces",
        }
    }

    /// The prefix of web and `hf://` paths: empty for models, `datasets/`, `spaces/`.
    pub fn url_prefix(self) -> &'static str {
        match self {
            RepoKind::Model => "",
            RepoKind::Dataset => "datasets/",
            RepoKind::Space => "spaces/",
        }
    }

    /// The kind named by a plural (`models`, `datasets`, `spaces`).
    pub fn from_plural(s: &str) -> Option<RepoKind> {
        match s {
            "models" => Some(RepoKind::Model),
            "datasets" => Some(RepoKind::Dataset),
            "spaces" => Some(RepoKind::Space),
            _ => None,
        }
    }
}

/// A Hub repository: its kind and its id (`OWNER/NAME`, or a bare `NAME` for the few old
/// canonical models).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct HubRepo {
    /// Model, dataset or space.
    pub kind: RepoKind,
    /// `OWNER/NAME`.
    pub id: String,
}

impl HubRepo {
    /// A repository, its id checked against the Hub's naming rules.
    pub fn new(kind: RepoKind, id: &str) -> Result<HubRepo, String> {
        validate_id(id)?;
        Ok(HubRepo {
            kind,
            id: id.to_owned(),
        })
    }

    /// `hf://[datasets/|spaces/]OWNER/NAME@REVISION`, the prefix of every report path.
    pub fn display(&self, revision: &str) -> String {
        format!("hf://{}{}@{revision}", self.kind.url_prefix(), self.id)
    }
}

/// Something remote to scan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RemoteTarget {
    /// A Hub repository, or a folder or file inside it when `path` is set: listed, then every
    /// file is scanned.
    Hub {
        /// The repository.
        repo: HubRepo,
        /// Branch, tag, commit or `refs/pr/N`; `main` unless given.
        revision: String,
        /// A folder or file inside the repository.
        path: Option<String>,
    },
    /// One file of a Hub repository (a `/blob/` or `/resolve/` web URL).
    HubFile {
        /// The repository.
        repo: HubRepo,
        /// Branch, tag, commit or `refs/pr/N`.
        revision: String,
        /// The file.
        path: String,
    },
    /// Any other `http://` or `https://` URL: one file.
    Url(String),
}

/// The revision used when none is given.
pub const DEFAULT_REVISION: &str = "main";

/// Hosts that always mean the Hugging Face Hub (besides `HF_ENDPOINT`).
const HUB_HOSTS: &[&str] = &["huggingface.co", "www.huggingface.co", "hf.co", "www.hf.co"];

impl RemoteTarget {
    /// Whether `input` should be treated as remote (`hf://`, `http://`, `https://`) rather
    /// than as a local path.
    pub fn is_remote(input: &str) -> bool {
        let lower = input.get(..8).unwrap_or(input).to_ascii_lowercase();
        lower.starts_with("hf://") || lower.starts_with("http://") || lower.starts_with("https://")
    }

    /// Parses `input`, recognising web URLs of `huggingface.co`, `hf.co` and of the endpoint
    /// in `HF_ENDPOINT` as Hub repositories.
    pub fn parse(input: &str) -> Result<RemoteTarget, RemoteError> {
        let endpoint = crate::options::endpoint_from(|k| std::env::var(k).ok());
        RemoteTarget::parse_with_endpoint(input, &endpoint)
    }

    /// Parses `input`, recognising web URLs of `huggingface.co`, `hf.co` and of `endpoint`
    /// (a mirror, or a test server) as Hub repositories.
    pub fn parse_with_endpoint(input: &str, endpoint: &str) -> Result<RemoteTarget, RemoteError> {
        let bad = |reason: &str| RemoteError::InvalidTarget {
            input: input.to_owned(),
            reason: reason.to_owned(),
        };
        let trimmed = input.trim();
        let scheme_end = trimmed
            .find("://")
            .ok_or_else(|| bad("expected hf://, http:// or https://"))?;
        let scheme = trimmed[..scheme_end].to_ascii_lowercase();
        match scheme.as_str() {
            "hf" => parse_hf(&trimmed[scheme_end + 3..]).map_err(|r| bad(&r)),
            "http" | "https" => {
                if url::origin(trimmed).is_none() {
                    return Err(bad("the URL has no host"));
                }
                match hub_path(trimmed, endpoint) {
                    Some(rest) => parse_web(rest).map_err(|r| bad(&r)),
                    None => Ok(RemoteTarget::Url(trimmed.to_owned())),
                }
            }
            _ => Err(bad("expected hf://, http:// or https://")),
        }
    }

    /// How the target is shown: `hf://...` for Hub targets, the URL (without user info or
    /// query, which may hold secrets) otherwise.
    pub fn display(&self) -> String {
        match self {
            RemoteTarget::Hub { repo, revision, path } => match path {
                Some(p) => format!("{}/{p}", repo.display(revision)),
                None => repo.display(revision),
            },
            RemoteTarget::HubFile { repo, revision, path } => format!("{}/{path}", repo.display(revision)),
            RemoteTarget::Url(u) => url::redact(u),
        }
    }

    /// The repository, for Hub targets.
    pub fn repo(&self) -> Option<&HubRepo> {
        match self {
            RemoteTarget::Hub { repo, .. } | RemoteTarget::HubFile { repo, .. } => Some(repo),
            RemoteTarget::Url(_) => None,
        }
    }
}

impl fmt::Display for RemoteTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.display())
    }
}

impl std::str::FromStr for RemoteTarget {
    type Err = RemoteError;
    fn from_str(s: &str) -> Result<RemoteTarget, RemoteError> {
        RemoteTarget::parse(s)
    }
}

/// `hf://[datasets/|spaces/]OWNER/NAME[@REVISION][/PATH]` (the `HfFileSystem` syntax).
fn parse_hf(rest: &str) -> Result<RemoteTarget, String> {
    let rest = rest.trim_end_matches('/');
    let mut segs: Vec<&str> = rest.split('/').collect();
    let mut kind = RepoKind::Model;
    if segs.len() > 1
        && let Some(k) = RepoKind::from_plural(segs[0])
        && k != RepoKind::Model
    {
        kind = k;
        segs.remove(0);
    }
    if segs.first().is_none_or(|s| s.is_empty()) {
        return Err("no repository after hf://".into());
    }
    // The id is OWNER/NAME, or a bare NAME when the first segment carries the revision.
    let id_len = if segs[0].contains('@') || segs.len() == 1 {
        1
    } else {
        2
    };
    let mut id_segs: Vec<String> = segs[..id_len].iter().map(|s| (*s).to_owned()).collect();
    let mut rest_segs: Vec<&str> = segs[id_len..].to_vec();
    let mut revision = None;
    let last = id_segs.last_mut().expect("one segment at least");
    if let Some(at) = last.find('@') {
        let rev_head = last[at + 1..].to_owned();
        last.truncate(at);
        let mut rev_segs = vec![rev_head];
        rev_segs.extend(rest_segs.iter().map(|s| (*s).to_owned()));
        let (rev, used) = take_revision(&rev_segs)?;
        revision = Some(rev);
        rest_segs = rest_segs[used - 1..].to_vec();
    }
    let id = id_segs.join("/");
    let repo = HubRepo::new(kind, &id)?;
    let path = clean_path(&rest_segs.join("/"))?;
    Ok(RemoteTarget::Hub {
        repo,
        revision: revision.unwrap_or_else(|| DEFAULT_REVISION.to_owned()),
        path,
    })
}

/// The revision at the head of `segs` (percent-decoded; `refs/pr/N` and `refs/convert/X` span
/// three segments) and how many segments it used.
fn take_revision(segs: &[String]) -> Result<(String, usize), String> {
    let first = url::decode(segs.first().map_or("", String::as_str))
        .ok_or("the revision is not valid percent-encoded UTF-8")?;
    let (rev, used) = if first == "refs" && segs.len() >= 3 {
        (format!("refs/{}/{}", segs[1], segs[2]), 3)
    } else {
        (first, 1)
    };
    if rev.is_empty() {
        return Err("empty revision after @".into());
    }
    if rev.split('/').any(|s| s.is_empty() || s == "." || s == "..")
        || rev.chars().any(|c| c.is_control() || c == '\\')
    {
        return Err(format!("bad revision `{rev}`"));
    }
    Ok((rev, used))
}

/// The path below a Hub host (`OWNER/NAME/...`), if `input` is a Hub web URL.
fn hub_path<'a>(input: &'a str, endpoint: &str) -> Option<&'a str> {
    let endpoint = endpoint.trim_end_matches('/');
    if let Some(rest) = strip_prefix_ci(input, endpoint)
        && (rest.is_empty() || rest.starts_with('/'))
    {
        return Some(rest.trim_start_matches('/'));
    }
    let host = url::host(input)?;
    if HUB_HOSTS.contains(&host.as_str()) {
        return Some(url::path(input).trim_start_matches('/'));
    }
    None
}

fn strip_prefix_ci<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix).then(|| &s[prefix.len()..])
}

/// `[datasets/|spaces/]OWNER/NAME[/tree/REV[/PATH] | /blob/REV/PATH | /resolve/REV/PATH]`.
fn parse_web(rest: &str) -> Result<RemoteTarget, String> {
    let rest = rest.split(['?', '#']).next().unwrap_or("").trim_end_matches('/');
    let mut segs: Vec<&str> = rest.split('/').filter(|s| !s.is_empty()).collect();
    let mut kind = RepoKind::Model;
    if segs.len() > 1
        && let Some(k) = RepoKind::from_plural(segs[0])
        && k != RepoKind::Model
    {
        kind = k;
        segs.remove(0);
    }
    if segs.is_empty() {
        return Err("no repository in the URL".into());
    }
    const VIEWS: &[&str] = &["tree", "blob", "resolve", "raw"];
    let id_len = if segs.len() == 1 || (segs.len() > 2 && VIEWS.contains(&segs[1])) {
        1
    } else {
        2
    };
    let repo = HubRepo::new(kind, &segs[..id_len].join("/"))?;
    let tail = &segs[id_len..];
    let Some(view) = tail.first() else {
        return Ok(RemoteTarget::Hub {
            repo,
            revision: DEFAULT_REVISION.to_owned(),
            path: None,
        });
    };
    if !VIEWS.contains(view) {
        return Err(format!(
            "`/{view}` is not a repository, folder or file page (expected /tree/, /blob/ or /resolve/)"
        ));
    }
    let rev_segs: Vec<String> = tail[1..].iter().map(|s| (*s).to_owned()).collect();
    if rev_segs.is_empty() {
        return Err(format!("no revision after /{view}/"));
    }
    let (revision, used) = take_revision(&rev_segs)?;
    let raw_path = tail[1 + used..]
        .iter()
        .map(|s| url::decode(s).ok_or_else(|| format!("bad percent-encoding in `{s}`")))
        .collect::<Result<Vec<_>, _>>()?
        .join("/");
    let path = clean_path(&raw_path)?;
    match (*view, path) {
        ("tree", path) => Ok(RemoteTarget::Hub { repo, revision, path }),
        (_, Some(path)) => Ok(RemoteTarget::HubFile { repo, revision, path }),
        (_, None) => Err(format!("no file after /{view}/{revision}/")),
    }
}

/// A path inside a repository: no empty, `.` or `..` segments, no backslashes.
fn clean_path(p: &str) -> Result<Option<String>, String> {
    let p = p.trim_matches('/');
    if p.is_empty() {
        return Ok(None);
    }
    if p.split('/').any(|s| s.is_empty() || s == "." || s == "..")
        || p.chars().any(|c| c.is_control() || c == '\\')
    {
        return Err(format!("bad path `{p}` inside the repository"));
    }
    Ok(Some(p.to_owned()))
}

/// The Hub's repository naming rules: one or two segments of `[A-Za-z0-9._-]`, none starting
/// or ending with `-` or `.`, no `--` or `..`, names at most 96 characters.
fn validate_id(id: &str) -> Result<(), String> {
    let segs: Vec<&str> = id.split('/').collect();
    if segs.is_empty() || segs.len() > 2 {
        return Err(format!("`{id}` is not a repository id (OWNER/NAME)"));
    }
    for s in segs {
        let ok = !s.is_empty()
            && s.len() <= 96
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
            && !s.starts_with(['-', '.'])
            && !s.ends_with(['-', '.'])
            && !s.contains("--")
            && !s.contains("..");
        if !ok {
            return Err(format!("`{id}` is not a valid repository id"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const EP: &str = "https://huggingface.co";

    fn hub(kind: RepoKind, id: &str, rev: &str, path: Option<&str>) -> RemoteTarget {
        RemoteTarget::Hub {
            repo: HubRepo::new(kind, id).unwrap(),
            revision: rev.into(),
            path: path.map(Into::into),
        }
    }

    fn file(kind: RepoKind, id: &str, rev: &str, path: &str) -> RemoteTarget {
        RemoteTarget::HubFile {
            repo: HubRepo::new(kind, id).unwrap(),
            revision: rev.into(),
            path: path.into(),
        }
    }

    fn p(s: &str) -> RemoteTarget {
        RemoteTarget::parse_with_endpoint(s, EP).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn hf_scheme() {
        use RepoKind::*;
        assert_eq!(
            p("hf://openai/whisper"),
            hub(Model, "openai/whisper", "main", None)
        );
        assert_eq!(
            p("hf://openai/whisper@v1.0"),
            hub(Model, "openai/whisper", "v1.0", None)
        );
        assert_eq!(
            p("hf://openai/whisper/"),
            hub(Model, "openai/whisper", "main", None)
        );
        assert_eq!(p("hf://gpt2"), hub(Model, "gpt2", "main", None));
        assert_eq!(
            p("hf://gpt2@abc123/x.bin"),
            hub(Model, "gpt2", "abc123", Some("x.bin"))
        );
        assert_eq!(p("hf://datasets/o/n"), hub(Dataset, "o/n", "main", None));
        assert_eq!(p("hf://datasets/o/n@dev"), hub(Dataset, "o/n", "dev", None));
        assert_eq!(
            p("hf://spaces/o/n@main/app.py"),
            hub(Space, "o/n", "main", Some("app.py"))
        );
        assert_eq!(
            p("hf://o/n@main/a/b.pt"),
            hub(Model, "o/n", "main", Some("a/b.pt"))
        );
        assert_eq!(p("hf://o/n/a/b.pt"), hub(Model, "o/n", "main", Some("a/b.pt")));
        assert_eq!(
            p("hf://o/n@refs/pr/3/a.pt"),
            hub(Model, "o/n", "refs/pr/3", Some("a.pt"))
        );
        assert_eq!(p("hf://o/n@refs%2Fpr%2F3"), hub(Model, "o/n", "refs/pr/3", None));
        assert_eq!(p("HF://o/n"), hub(Model, "o/n", "main", None));
        // A user called `datasets` still has models.
        assert_eq!(p("hf://datasets"), hub(Model, "datasets", "main", None));
    }

    #[test]
    fn hf_scheme_rejects() {
        for bad in [
            "hf://",
            "hf://o/n@",
            "hf://o/n@main/../x",
            "hf://o/n/a//b",
            "hf://o/../n",
            "hf://o--x/n",
            "hf://o/n..x",
            "hf://-o/n",
            "hf://o/n b",
            "ftp://x/y",
            "o/n",
            "https://",
        ] {
            assert!(RemoteTarget::parse_with_endpoint(bad, EP).is_err(), "{bad}");
        }
    }

    #[test]
    fn web_urls() {
        use RepoKind::*;
        assert_eq!(p("https://huggingface.co/o/n"), hub(Model, "o/n", "main", None));
        assert_eq!(p("https://huggingface.co/o/n/"), hub(Model, "o/n", "main", None));
        assert_eq!(p("https://hf.co/o/n"), hub(Model, "o/n", "main", None));
        assert_eq!(
            p("https://huggingface.co/o/n/tree/dev"),
            hub(Model, "o/n", "dev", None)
        );
        assert_eq!(
            p("https://huggingface.co/o/n/tree/main/sub/dir"),
            hub(Model, "o/n", "main", Some("sub/dir"))
        );
        assert_eq!(
            p("https://huggingface.co/o/n/blob/main/pytorch_model.bin"),
            file(Model, "o/n", "main", "pytorch_model.bin")
        );
        assert_eq!(
            p("https://huggingface.co/o/n/resolve/abc/a%20b/c.pt?download=true"),
            file(Model, "o/n", "abc", "a b/c.pt")
        );
        assert_eq!(
            p("https://huggingface.co/o/n/tree/refs%2Fpr%2F7"),
            hub(Model, "o/n", "refs/pr/7", None)
        );
        assert_eq!(
            p("https://huggingface.co/o/n/blob/refs/pr/7/x.pt"),
            file(Model, "o/n", "refs/pr/7", "x.pt")
        );
        assert_eq!(
            p("https://huggingface.co/datasets/o/n"),
            hub(Dataset, "o/n", "main", None)
        );
        assert_eq!(
            p("https://huggingface.co/datasets/o/n/resolve/main/d.pkl"),
            file(Dataset, "o/n", "main", "d.pkl")
        );
        assert_eq!(
            p("https://huggingface.co/spaces/o/n/tree/main"),
            hub(Space, "o/n", "main", None)
        );
        assert_eq!(
            p("https://huggingface.co/gpt2/resolve/main/config.json"),
            file(Model, "gpt2", "main", "config.json")
        );
        assert_eq!(p("https://huggingface.co/gpt2"), hub(Model, "gpt2", "main", None));
        assert!(RemoteTarget::parse_with_endpoint("https://huggingface.co/o/n/discussions", EP).is_err());
        assert!(RemoteTarget::parse_with_endpoint("https://huggingface.co/o/n/blob/main", EP).is_err());
        assert!(RemoteTarget::parse_with_endpoint("https://huggingface.co/", EP).is_err());
    }

    #[test]
    fn mirrors_and_plain_urls() {
        let ep = "http://127.0.0.1:9999/mirror";
        assert_eq!(
            RemoteTarget::parse_with_endpoint("http://127.0.0.1:9999/mirror/o/n/tree/v2", ep).unwrap(),
            hub(RepoKind::Model, "o/n", "v2", None)
        );
        // The public Hub is recognised whatever the endpoint.
        assert_eq!(
            RemoteTarget::parse_with_endpoint("https://huggingface.co/o/n", ep).unwrap(),
            hub(RepoKind::Model, "o/n", "main", None)
        );
        assert_eq!(
            RemoteTarget::parse_with_endpoint("http://127.0.0.1:9999/other/x.pt", ep).unwrap(),
            RemoteTarget::Url("http://127.0.0.1:9999/other/x.pt".into())
        );
        assert_eq!(
            p("https://example.com/m.pt"),
            RemoteTarget::Url("https://example.com/m.pt".into())
        );
        assert_eq!(
            p("https://example.com/m.pt?sig=secret").display(),
            "https://example.com/m.pt"
        );
    }

    #[test]
    fn display_round_trips() {
        for s in [
            "hf://o/n@main",
            "hf://datasets/o/n@dev/a/b.pkl",
            "hf://spaces/o/n@main",
            "hf://o/n@refs/pr/1/x.pt",
        ] {
            assert_eq!(p(s).display(), s);
            assert_eq!(p(&p(s).display()), p(s));
        }
        assert!(RemoteTarget::is_remote("hf://o/n"));
        assert!(RemoteTarget::is_remote("HTTPS://x"));
        assert!(!RemoteTarget::is_remote("./hf:/x"));
        assert!(!RemoteTarget::is_remote("C:\\x"));
    }
}
