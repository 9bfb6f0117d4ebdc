//! The Hugging Face Hub endpoints used: the recursive tree listing (paginated through `Link`)
//! and `resolve` URLs for file bytes.

use crate::error::RemoteError;
use crate::http::{Client, TransferStats, read_body, status_error};
use crate::target::HubRepo;
use crate::url;
use serde::Deserialize;

/// Largest listing page read.
const MAX_PAGE: u64 = 64 << 20;
/// Most pages followed.
const MAX_PAGES: usize = 10_000;

/// A file of a repository, as listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepoFile {
    /// Its path in the repository.
    pub path: String,
    /// Its size (for LFS files, the real size, not the pointer's).
    pub size: u64,
    /// Whether it is stored in LFS / Xet (its bytes come from a CDN).
    pub lfs: bool,
    /// For an LFS / Xet file, the sha256 the listing gives (its LFS oid), lower-case hex: a
    /// content key known before any byte is read (checked against the bytes; the service's
    /// verdict cache uses it).
    pub lfs_sha256: Option<String>,
    /// The git object id the listing gives (`oid`; for LFS files, the pointer's).
    pub oid: Option<String>,
}

#[derive(Deserialize)]
struct TreeEntry {
    #[serde(rename = "type")]
    kind: String,
    path: String,
    #[serde(default)]
    size: u64,
    #[serde(default)]
    lfs: Option<LfsInfo>,
    #[serde(default)]
    oid: Option<String>,
}

#[derive(Deserialize)]
struct LfsInfo {
    size: u64,
    /// The LFS object id: the sha256 of the file.
    #[serde(default)]
    oid: Option<String>,
}

/// `{endpoint}/api/{models|datasets|spaces}/{id}/tree/{rev}[/{path}]`.
pub fn tree_url(
    endpoint: &str,
    repo: &HubRepo,
    revision: &str,
    path: Option<&str>,
    recursive: bool,
) -> String {
    let mut u = format!(
        "{}/api/{}/{}/tree/{}",
        endpoint.trim_end_matches('/'),
        repo.kind.plural(),
        repo.id,
        url::encode(revision, false)
    );
    if let Some(p) = path {
        u.push('/');
        u.push_str(&url::encode(p, true));
    }
    if recursive {
        u.push_str("?recursive=true");
    }
    u
}

/// `{endpoint}/[datasets/|spaces/]{id}/resolve/{rev}/{path}`.
pub fn resolve_url(endpoint: &str, repo: &HubRepo, revision: &str, path: &str) -> String {
    format!(
        "{}/{}{}/resolve/{}/{}",
        endpoint.trim_end_matches('/'),
        repo.kind.url_prefix(),
        repo.id,
        url::encode(revision, false),
        url::encode(path, true)
    )
}

/// Every file of `repo` at `revision` (under `path` if given), sorted by path. When `path`
/// names a file rather than a folder, that one file.
pub fn list_files(
    client: &Client,
    repo: &HubRepo,
    revision: &str,
    path: Option<&str>,
    stats: &TransferStats,
) -> Result<Vec<RepoFile>, RemoteError> {
    let first = tree_url(client.endpoint(), repo, revision, path, true);
    let listed = list_pages(client, &first, stats);
    let Some(p) = path else {
        return listed;
    };
    let miss = match listed {
        Ok(files) if !files.is_empty() => return Ok(files),
        Ok(_) => RemoteError::NotFound {
            url: url::redact(&first),
            status: 404,
            what: "file or folder".into(),
            detail: format!(": nothing at `{p}`"),
        },
        Err(e @ RemoteError::NotFound { .. }) if !repo_level(&e) => e,
        Err(e @ RemoteError::Status { status: 400, .. }) => e,
        Err(e) => return Err(e),
    };
    // Not a folder: perhaps a file. List its folder to learn its size.
    let parent = p.rsplit_once('/').map(|(d, _)| d);
    let url = tree_url(client.endpoint(), repo, revision, parent, false);
    let found: Vec<RepoFile> = match list_pages(client, &url, stats) {
        Ok(files) => files.into_iter().filter(|f| f.path == p).collect(),
        Err(e) if repo_level(&e) || e.is_access() => return Err(e),
        Err(_) => Vec::new(),
    };
    if found.is_empty() {
        return Err(miss);
    }
    Ok(found)
}

/// Whether a 404 is about the repository or the revision rather than a path.
fn repo_level(e: &RemoteError) -> bool {
    matches!(e, RemoteError::NotFound { what, .. } if what == "repository" || what == "revision")
}

fn list_pages(client: &Client, first: &str, stats: &TransferStats) -> Result<Vec<RepoFile>, RemoteError> {
    let mut files = Vec::new();
    let mut next = Some(first.to_owned());
    let mut seen = std::collections::HashSet::new();
    while let Some(page) = next.take() {
        if !seen.insert(page.clone()) || seen.len() > MAX_PAGES {
            return Err(RemoteError::Protocol {
                url: url::redact(first),
                message: "the listing's pages loop or never end".into(),
            });
        }
        let mut reply = client.get(&page, None, stats)?;
        if reply.status != 200 {
            return Err(status_error(reply, stats, client.has_token()));
        }
        next = reply
            .header("link")
            .and_then(next_link)
            .and_then(|l| url::join(&reply.url, &l));
        let body = read_body(&mut reply, MAX_PAGE, stats)?;
        let entries: Vec<TreeEntry> = serde_json::from_slice(&body).map_err(|e| RemoteError::Protocol {
            url: url::redact(&reply.url),
            message: format!("the listing is not the expected JSON array: {e}"),
        })?;
        files.extend(entries.into_iter().filter(|e| e.kind == "file").map(|e| {
            RepoFile {
                size: e.lfs.as_ref().map_or(e.size, |l| l.size),
                lfs: e.lfs.is_some(),
                lfs_sha256: e
                    .lfs
                    .as_ref()
                    .and_then(|l| l.oid.as_deref())
                    .filter(|o| o.len() == 64 && o.bytes().all(|b| b.is_ascii_hexdigit()))
                    .map(str::to_ascii_lowercase),
                oid: e
                    .oid
                    .filter(|o| o.len() <= 64 && o.bytes().all(|b| b.is_ascii_hexdigit())),
                path: e.path,
            }
        }));
    }
    files.sort_by(|a, b| a.path.cmp(&b.path));
    files.dedup_by(|a, b| a.path == b.path);
    Ok(files)
}

/// The `rel="next"` target of a `Link` header.
pub(crate) fn next_link(header: &str) -> Option<String> {
    for part in split_links(header) {
        let part = part.trim();
        let Some(rest) = part.strip_prefix('<') else {
            continue;
        };
        let Some((target, params)) = rest.split_once('>') else {
            continue;
        };
        let is_next = params.split(';').any(|p| {
            let p = p.trim();
            p.strip_prefix("rel=")
                .map(|v| {
                    v.trim_matches('"')
                        .split_ascii_whitespace()
                        .any(|r| r.eq_ignore_ascii_case("next"))
                })
                .unwrap_or(false)
        });
        if is_next {
            return Some(target.trim().to_owned());
        }
    }
    None
}

/// Splits a `Link` header at the commas between links (not the ones inside `<...>`).
fn split_links(header: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut depth = false;
    let mut start = 0;
    for (i, c) in header.char_indices() {
        match c {
            '<' => depth = true,
            '>' => depth = false,
            ',' if !depth => {
                parts.push(&header[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&header[start..]);
    parts
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::target::RepoKind;

    #[test]
    fn urls() {
        let m = HubRepo::new(RepoKind::Model, "o/n").unwrap();
        let d = HubRepo::new(RepoKind::Dataset, "o/n").unwrap();
        assert_eq!(
            tree_url("https://hf.co/", &m, "refs/pr/1", None, true),
            "https://hf.co/api/models/o/n/tree/refs%2Fpr%2F1?recursive=true"
        );
        assert_eq!(
            tree_url("https://hf.co", &d, "main", Some("a b/c"), false),
            "https://hf.co/api/datasets/o/n/tree/main/a%20b/c"
        );
        assert_eq!(
            resolve_url("https://hf.co", &m, "main", "x/y.bin"),
            "https://hf.co/o/n/resolve/main/x/y.bin"
        );
        assert_eq!(
            resolve_url("https://hf.co", &d, "v1", "d.pkl"),
            "https://hf.co/datasets/o/n/resolve/v1/d.pkl"
        );
        let s = HubRepo::new(RepoKind::Space, "o/n").unwrap();
        assert_eq!(
            resolve_url("https://hf.co", &s, "main", "app.py"),
            "https://hf.co/spaces/o/n/resolve/main/app.py"
        );
    }

    #[test]
    fn links() {
        assert_eq!(
            next_link(r#"<https://hf.co/api/models/o/n/tree/main?recursive=true&cursor=abc>; rel="next""#)
                .as_deref(),
            Some("https://hf.co/api/models/o/n/tree/main?recursive=true&cursor=abc")
        );
        assert_eq!(
            next_link(r#"<https://x/?a=1,2>; rel="prev", </p2>; rel=next"#).as_deref(),
            Some("/p2")
        );
        assert_eq!(next_link(r#"<https://x/>; rel="last""#), None);
        assert_eq!(next_link(""), None);
    }
}
