//! The local Hugging Face cache (`huggingface_hub`'s layout):
//!
//! ```text
//! {HF_HUB_CACHE}/models--OWNER--NAME/
//!     refs/main                      the commit `main` points at (refs/refs/pr/1 for PRs)
//!     snapshots/<commit>/path/file   symlinks to ../../blobs/<etag> (copies on Windows)
//!     blobs/<etag>
//! ```
//!
//! Files are named `hf://OWNER/NAME@<ref or commit>/path`, as remote scans name them.

use crate::target::RepoKind;
use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

/// Most files listed from one cache (a guard against symlink loops and odd trees).
const MAX_FILES: usize = 1_000_000;
/// Deepest folder nesting followed inside a snapshot.
const MAX_DEPTH: usize = 64;

/// A file of a cached snapshot.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct CachedFile {
    /// `hf://[datasets/|spaces/]OWNER/NAME@<ref or commit>/path`.
    pub display: String,
    /// The bytes: the blob the snapshot entry links to (or the snapshot file itself when it is
    /// a copy; or the dangling link when its blob is missing, so that the scan reports it).
    pub blob: PathBuf,
    /// The entry in `snapshots/`.
    pub snapshot_path: PathBuf,
}

/// The hub cache folder from the environment: `HF_HUB_CACHE`, else `HF_HOME/hub`, else
/// `~/.cache/huggingface/hub` (`$XDG_CACHE_HOME` honoured).
pub fn hf_cache_dir() -> Option<PathBuf> {
    crate::options::hub_cache(|k| std::env::var(k).ok())
}

/// Every file of every cached snapshot under `root` (default: [`hf_cache_dir`]), sorted by
/// display name. `root` may also be one repository's folder (`models--OWNER--NAME`).
pub fn resolve_hf_cache(root: Option<&Path>) -> Vec<CachedFile> {
    let Some(root) = root.map(Path::to_path_buf).or_else(hf_cache_dir) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let repos: Vec<PathBuf> = if repo_of_folder(&root).is_some() {
        vec![root]
    } else {
        let Ok(rd) = std::fs::read_dir(&root) else {
            return Vec::new();
        };
        let mut v: Vec<PathBuf> = rd
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| repo_of_folder(p).is_some() && p.is_dir())
            .collect();
        v.sort();
        v
    };
    for repo_dir in repos {
        let Some((kind, id)) = repo_of_folder(&repo_dir) else {
            continue;
        };
        let refs = read_refs(&repo_dir);
        let Ok(rd) = std::fs::read_dir(repo_dir.join("snapshots")) else {
            continue;
        };
        let mut snaps: Vec<PathBuf> = rd.filter_map(Result::ok).map(|e| e.path()).collect();
        snaps.sort();
        for snap in snaps {
            let Some(commit) = snap.file_name().and_then(|n| n.to_str()).map(str::to_owned) else {
                continue;
            };
            if !snap.is_dir() {
                continue;
            }
            let shown = ref_name(&refs, &commit);
            let mut files = Vec::new();
            walk(&snap, &mut Vec::new(), &mut files, 0);
            for (rel, entry) in files {
                if out.len() >= MAX_FILES {
                    break;
                }
                let blob = std::fs::canonicalize(&entry).unwrap_or_else(|_| entry.clone());
                out.push(CachedFile {
                    display: format!("hf://{}{id}@{shown}/{rel}", kind.url_prefix()),
                    blob,
                    snapshot_path: entry,
                });
            }
        }
    }
    out.sort();
    out
}

/// The `hf://` name of any path inside a cache: a snapshot file or folder
/// (`.../models--o--n/snapshots/<commit>/a/b.bin` → `hf://o/n@main/a/b.bin` when `refs/main`
/// holds that commit), or a blob (named after the snapshot entry that links to it).
/// `None` for paths outside any cache's layout.
pub fn cache_display_name(path: &Path) -> Option<String> {
    let comps: Vec<&str> = path
        .components()
        .map(|c| match c {
            Component::Normal(s) => s.to_str(),
            _ => Some(""),
        })
        .collect::<Option<Vec<_>>>()?;
    // The last repository folder in the path wins (caches inside caches are odd but possible).
    let i = (0..comps.len().saturating_sub(1))
        .rev()
        .find(|&i| repo_of_name(comps[i]).is_some() && matches!(comps[i + 1], "snapshots" | "blobs"))?;
    let (kind, id) = repo_of_name(comps[i])?;
    let repo_dir: PathBuf = path.components().take(i + 1).collect();
    match comps[i + 1] {
        "snapshots" => {
            let commit = comps.get(i + 2).filter(|c| !c.is_empty())?;
            let rest = comps[i + 3..].join("/");
            let shown = ref_name(&read_refs(&repo_dir), commit);
            let base = format!("hf://{}{id}@{shown}", kind.url_prefix());
            Some(if rest.is_empty() {
                base
            } else {
                format!("{base}/{rest}")
            })
        }
        _ => {
            comps.get(i + 2).filter(|c| !c.is_empty())?;
            if comps.len() != i + 3 {
                return None;
            }
            let target = std::fs::canonicalize(path).ok()?;
            let mut found: Vec<CachedFile> = resolve_hf_cache(Some(&repo_dir))
                .into_iter()
                .filter(|f| f.blob == target)
                .collect();
            // Prefer a name through a ref over one through a bare commit.
            found.sort_by_key(|f| (!f.display.contains("@main/"), f.display.len(), f.display.clone()));
            found.into_iter().next().map(|f| f.display)
        }
    }
}

/// `(kind, OWNER/NAME)` from a folder named `models--OWNER--NAME` (or `datasets--`, `spaces--`).
fn repo_of_folder(p: &Path) -> Option<(RepoKind, String)> {
    repo_of_name(p.file_name()?.to_str()?)
}

fn repo_of_name(name: &str) -> Option<(RepoKind, String)> {
    let (prefix, rest) = name.split_once("--")?;
    let kind = RepoKind::from_plural(prefix)?;
    let id = rest.replace("--", "/");
    crate::target::HubRepo::new(kind, &id).ok().map(|r| (kind, r.id))
}

/// commit → ref names, from `refs/` (nested refs such as `refs/refs/pr/1` included).
fn read_refs(repo_dir: &Path) -> BTreeMap<String, Vec<String>> {
    let mut map: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut files = Vec::new();
    walk(&repo_dir.join("refs"), &mut Vec::new(), &mut files, 0);
    for (name, path) in files {
        if let Ok(text) = std::fs::read_to_string(&path) {
            let commit = text.trim();
            if !commit.is_empty() {
                map.entry(commit.to_owned()).or_default().push(name);
            }
        }
    }
    map
}

/// The name to show for a snapshot: `main` if it points there, else another ref (sorted
/// first), else the commit itself.
fn ref_name(refs: &BTreeMap<String, Vec<String>>, commit: &str) -> String {
    match refs.get(commit) {
        Some(names) if names.iter().any(|n| n == "main") => "main".into(),
        Some(names) => names.iter().min().cloned().unwrap_or_else(|| commit.to_owned()),
        None => commit.to_owned(),
    }
}

/// Files under `dir` (following file symlinks, not folder symlinks) as `(relative path with /,
/// path)`.
fn walk(dir: &Path, rel: &mut Vec<String>, out: &mut Vec<(String, PathBuf)>, depth: usize) {
    if depth > MAX_DEPTH || out.len() >= MAX_FILES {
        return;
    }
    let Ok(rd) = std::fs::read_dir(dir) else { return };
    let mut entries: Vec<_> = rd.filter_map(Result::ok).collect();
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let Some(name) = e.file_name().to_str().map(str::to_owned) else {
            continue;
        };
        let path = e.path();
        let Ok(meta) = std::fs::symlink_metadata(&path) else {
            continue;
        };
        rel.push(name);
        if meta.is_dir() {
            walk(&path, rel, out, depth + 1);
        } else if meta.is_file() || (meta.file_type().is_symlink() && !path.is_dir()) {
            out.push((rel.join("/"), path));
        }
        rel.pop();
    }
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    const C1: &str = "1111111111111111111111111111111111111111";
    const C2: &str = "2222222222222222222222222222222222222222";

    /// A cache with a model (main and an older commit), a dataset with a PR ref, a copied file
    /// and a dangling link.
    fn cache() -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        let m = d.path().join("models--org--model");
        std::fs::create_dir_all(m.join("blobs")).unwrap();
        std::fs::create_dir_all(m.join("refs")).unwrap();
        std::fs::create_dir_all(m.join(format!("snapshots/{C1}/sub"))).unwrap();
        std::fs::create_dir_all(m.join(format!("snapshots/{C2}"))).unwrap();
        std::fs::write(m.join("refs/main"), format!("{C1}\n")).unwrap();
        std::fs::write(m.join("blobs/aaa"), b"weights").unwrap();
        std::fs::write(m.join("blobs/bbb"), b"{}").unwrap();
        symlink("../../blobs/aaa", m.join(format!("snapshots/{C1}/model.bin"))).unwrap();
        symlink(
            "../../../blobs/bbb",
            m.join(format!("snapshots/{C1}/sub/config.json")),
        )
        .unwrap();
        symlink("../../blobs/aaa", m.join(format!("snapshots/{C2}/model.bin"))).unwrap();
        symlink("../../blobs/missing", m.join(format!("snapshots/{C2}/gone.bin"))).unwrap();
        std::fs::create_dir_all(m.join(".no_exist").join(C1)).unwrap();

        let ds = d.path().join("datasets--org--data");
        std::fs::create_dir_all(ds.join("refs/refs/pr")).unwrap();
        std::fs::create_dir_all(ds.join(format!("snapshots/{C2}"))).unwrap();
        std::fs::write(ds.join("refs/refs/pr/1"), C2).unwrap();
        std::fs::write(ds.join(format!("snapshots/{C2}/d.pkl")), b"copy").unwrap();

        std::fs::create_dir_all(d.path().join("not-a-repo/snapshots")).unwrap();
        std::fs::write(d.path().join("version.txt"), b"1").unwrap();
        d
    }

    #[test]
    fn lists_snapshots_with_ref_names() {
        let d = cache();
        let files = resolve_hf_cache(Some(d.path()));
        let names: Vec<&str> = files.iter().map(|f| f.display.as_str()).collect();
        let g = format!("hf://org/model@{C2}/gone.bin");
        let o = format!("hf://org/model@{C2}/model.bin");
        assert_eq!(
            names,
            vec![
                "hf://datasets/org/data@refs/pr/1/d.pkl",
                &g,
                &o,
                "hf://org/model@main/model.bin",
                "hf://org/model@main/sub/config.json",
            ]
        );
        let blob = std::fs::canonicalize(d.path().join("models--org--model/blobs/aaa")).unwrap();
        assert_eq!(files[3].blob, blob);
        assert_eq!(files[2].blob, blob);
        assert!(files[0].blob.ends_with(format!("snapshots/{C2}/d.pkl")));
        // The dangling link is kept, pointing at itself, so a scan reports it unreadable.
        assert!(files[1].blob.ends_with("gone.bin"));
        // One repository's folder works as a root too.
        assert_eq!(
            resolve_hf_cache(Some(&d.path().join("datasets--org--data"))).len(),
            1
        );
        assert!(resolve_hf_cache(Some(&d.path().join("nothing"))).is_empty());
    }

    #[test]
    fn display_names_of_paths() {
        let d = cache();
        let m = d.path().join("models--org--model");
        assert_eq!(
            cache_display_name(&m.join(format!("snapshots/{C1}/sub/config.json"))).as_deref(),
            Some("hf://org/model@main/sub/config.json")
        );
        assert_eq!(
            cache_display_name(&m.join(format!("snapshots/{C2}/model.bin"))),
            Some(format!("hf://org/model@{C2}/model.bin"))
        );
        assert_eq!(
            cache_display_name(&m.join(format!("snapshots/{C1}"))).as_deref(),
            Some("hf://org/model@main")
        );
        assert_eq!(
            cache_display_name(&m.join("blobs/aaa")).as_deref(),
            Some("hf://org/model@main/model.bin")
        );
        assert_eq!(cache_display_name(&m.join("blobs/nothing")), None);
        assert_eq!(
            cache_display_name(&d.path().join(format!("datasets--org--data/snapshots/{C2}/d.pkl")))
                .as_deref(),
            Some("hf://datasets/org/data@refs/pr/1/d.pkl")
        );
        assert_eq!(cache_display_name(Path::new("/tmp/x/model.bin")), None);
        assert_eq!(cache_display_name(&m.join("refs/main")), None);
        assert_eq!(cache_display_name(&d.path().join("not-a-repo/snapshots/x")), None);
    }
}
