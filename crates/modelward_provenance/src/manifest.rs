//! The digest manifest of a model folder, in the form OpenSSF model signing signs: an in-toto
//! statement (`https://in-toto.io/Statement/v1`) whose predicate
//! (`https://model_signing/signature/v1.0`) lists every file's sha256 (`resources`) and how the
//! list was made (`serialization`), and whose one subject is the model, with a sha256 over the
//! raw file digests in order.
//!
//! Written the way `model-signing` 1.1.1 writes its DSSE payload (protobuf JSON: two-space
//! indent, no final newline), so the same folder gives the same digests, root digest and
//! resource list. Files are hashed streaming, in 1 MiB chunks.

use crate::{ProvenanceError, Result, hex, unhex};
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};

/// in-toto statement type.
pub const STATEMENT_TYPE: &str = "https://in-toto.io/Statement/v1";
/// model-signing v1.0 predicate type.
pub const PREDICATE_TYPE: &str = "https://model_signing/signature/v1.0";
/// model-signing v0.2 predicate type (one subject per file), still read.
pub const PREDICATE_TYPE_COMPAT: &str = "https://model_signing/Digests/v0.1";
/// The paths model-signing ignores by default (its `ignore_git_paths`).
pub const GIT_PATHS: [&str; 4] = [".git", ".gitattributes", ".github", ".gitignore"];
/// The signature's default name, which model-signing's CLI leaves out of what it signs.
pub const DEFAULT_SIGNATURE_NAME: &str = "model.sig";
/// Folders nested deeper than this are refused (a symlink loop, or a hostile tree).
const MAX_DEPTH: usize = 64;
/// Statements larger than this are refused before parsing.
pub const MAX_STATEMENT: u64 = 64 << 20;

/// How a manifest is made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestOptions {
    /// Paths relative to the folder left out (a folder leaves out everything under it).
    pub ignore_paths: Vec<String>,
    /// Follow symbolic links (hash what they point to); otherwise a symlink is an error, as in
    /// model-signing.
    pub allow_symlinks: bool,
}

impl Default for ManifestOptions {
    /// model-signing's CLI defaults: git paths and `model.sig` ignored, symlinks refused.
    fn default() -> Self {
        let mut ignore_paths: Vec<String> = GIT_PATHS.iter().map(|s| s.to_string()).collect();
        ignore_paths.push(DEFAULT_SIGNATURE_NAME.to_string());
        ignore_paths.sort();
        Self {
            ignore_paths,
            allow_symlinks: false,
        }
    }
}

/// One file and its digest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Resource {
    /// Path relative to the model folder, `/`-separated.
    pub name: String,
    /// Always `sha256` for what modelward writes.
    pub algorithm: String,
    /// Lower-case hex.
    pub digest: String,
}

/// How the resource list was made (`predicate.serialization`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Serialization {
    /// `files` (`shards` is refused).
    pub method: String,
    /// Whether symlinks were followed.
    pub allow_symlinks: bool,
    /// `sha256` (model-signing also knows `blake2`, `blake3`: refused).
    pub hash_type: String,
    /// Paths left out.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub ignore_paths: Vec<String>,
}

/// A digest manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    /// The model's name (its folder's name; informative only).
    pub model_name: String,
    /// How it was made.
    pub serialization: Serialization,
    /// Every file, in model-signing's order (by path components).
    pub resources: Vec<Resource>,
}

/// A way a folder differs from a manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Difference {
    /// In the folder, not in the manifest.
    Added {
        /// File.
        name: String,
    },
    /// In the manifest, not in the folder.
    Removed {
        /// File.
        name: String,
    },
    /// In both, different content.
    Changed {
        /// File.
        name: String,
        /// Digest in the manifest.
        expected: String,
        /// Digest of the file now.
        actual: String,
    },
}

impl fmt::Display for Difference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Difference::Added { name } => write!(f, "{name} was added (not in the manifest)"),
            Difference::Removed { name } => write!(f, "{name} was removed (listed in the manifest)"),
            Difference::Changed {
                name,
                expected,
                actual,
            } => write!(
                f,
                "{name} changed (sha256 {actual}, the manifest says {expected})"
            ),
        }
    }
}

#[derive(Serialize)]
struct StatementOut<'a> {
    #[serde(rename = "_type")]
    ty: &'a str,
    subject: [SubjectOut<'a>; 1],
    #[serde(rename = "predicateType")]
    predicate_type: &'a str,
    predicate: PredicateOut<'a>,
}

#[derive(Serialize)]
struct SubjectOut<'a> {
    name: &'a str,
    digest: BTreeMap<&'a str, String>,
}

#[derive(Serialize)]
struct PredicateOut<'a> {
    resources: &'a [Resource],
    serialization: &'a Serialization,
}

/// Sorts like Python's `PurePosixPath` ordering: by components, not by the whole string
/// (`a/b` sorts before `a-c`).
fn path_order(a: &str, b: &str) -> std::cmp::Ordering {
    a.split('/').cmp(b.split('/'))
}

impl Manifest {
    /// The manifest of `dir` made with `options`.
    pub fn of_dir(dir: &Path, options: &ManifestOptions) -> Result<Self> {
        let meta = std::fs::metadata(dir).map_err(|e| ProvenanceError::io(dir, e))?;
        if !meta.is_dir() {
            return Err(ProvenanceError::Unhashable {
                path: dir.to_path_buf(),
                reason: "not a folder".into(),
            });
        }
        let ignore: Vec<Vec<String>> = options
            .ignore_paths
            .iter()
            .map(|p| components(p))
            .filter(|c| !c.is_empty())
            .collect();
        let mut files = Vec::new();
        walk(
            dir,
            &mut Vec::new(),
            &ignore,
            options.allow_symlinks,
            &mut files,
            0,
        )?;
        let mut resources = Vec::with_capacity(files.len());
        for (name, path) in files {
            resources.push(Resource {
                name,
                algorithm: "sha256".into(),
                digest: hex(&sha256_file(&path)?),
            });
        }
        resources.sort_by(|a, b| path_order(&a.name, &b.name));
        let mut ignore_paths: Vec<String> = ignore.iter().map(|c| c.join("/")).collect::<Vec<_>>();
        ignore_paths.sort();
        ignore_paths.dedup();
        Ok(Self {
            model_name: model_name(dir),
            serialization: Serialization {
                method: "files".into(),
                allow_symlinks: options.allow_symlinks,
                hash_type: "sha256".into(),
                ignore_paths,
            },
            resources,
        })
    }

    /// The options this manifest was made with (to remake it from a folder).
    pub fn options(&self) -> ManifestOptions {
        ManifestOptions {
            ignore_paths: self.serialization.ignore_paths.clone(),
            allow_symlinks: self.serialization.allow_symlinks,
        }
    }

    /// The subject digest: sha256 over the raw digests of the resources, in order.
    pub fn root_digest(&self) -> String {
        let mut h = Sha256::new();
        for r in &self.resources {
            h.update(unhex(&r.digest).unwrap_or_default());
        }
        hex(&h.finalize())
    }

    /// The in-toto statement, as model-signing writes it.
    pub fn to_statement_json(&self) -> String {
        let mut digest = BTreeMap::new();
        digest.insert("sha256", self.root_digest());
        let st = StatementOut {
            ty: STATEMENT_TYPE,
            subject: [SubjectOut {
                name: &self.model_name,
                digest,
            }],
            predicate_type: PREDICATE_TYPE,
            predicate: PredicateOut {
                resources: &self.resources,
                serialization: &self.serialization,
            },
        };
        serde_json::to_string_pretty(&st).unwrap_or_default()
    }

    /// Reads an in-toto statement (a manifest file, or a DSSE payload), checking its types,
    /// its serialization and that its subject digest matches its resources.
    pub fn from_statement(bytes: &[u8]) -> Result<Self> {
        let what = "in-toto statement";
        let v: serde_json::Value =
            serde_json::from_slice(bytes).map_err(|e| ProvenanceError::malformed(what, e))?;
        let ty = v.get("_type").and_then(|t| t.as_str()).unwrap_or("");
        if ty != STATEMENT_TYPE {
            return Err(ProvenanceError::malformed(
                what,
                format!("_type is {ty:?}, expected {STATEMENT_TYPE}"),
            ));
        }
        let pt = v.get("predicateType").and_then(|t| t.as_str()).unwrap_or("");
        let subjects = v
            .get("subject")
            .and_then(|s| s.as_array())
            .ok_or_else(|| ProvenanceError::malformed(what, "no subject list"))?;
        if pt == PREDICATE_TYPE_COMPAT {
            // v0.2: one subject per file, sha256, no symlinks, nothing else recorded.
            let mut resources = Vec::new();
            for s in subjects {
                let name = str_field(s, "name", what)?;
                let digest = s
                    .get("digest")
                    .and_then(|d| d.get("sha256"))
                    .and_then(|d| d.as_str())
                    .ok_or_else(|| ProvenanceError::malformed(what, "a subject has no sha256"))?;
                resources.push(resource(name, "sha256", digest)?);
            }
            resources.sort_by(|a, b| path_order(&a.name, &b.name));
            return Ok(Self {
                model_name: "compat-undefined-not-present".into(),
                serialization: Serialization {
                    method: "files".into(),
                    allow_symlinks: false,
                    hash_type: "sha256".into(),
                    ignore_paths: Vec::new(),
                },
                resources,
            });
        }
        if pt != PREDICATE_TYPE {
            return Err(ProvenanceError::malformed(
                what,
                format!("predicateType is {pt:?}, expected {PREDICATE_TYPE}"),
            ));
        }
        if subjects.len() != 1 {
            return Err(ProvenanceError::malformed(
                what,
                format!("{} subjects, expected one", subjects.len()),
            ));
        }
        let model_name = str_field(&subjects[0], "name", what)?.to_string();
        let root = subjects[0]
            .get("digest")
            .and_then(|d| d.get("sha256"))
            .and_then(|d| d.as_str())
            .ok_or_else(|| ProvenanceError::malformed(what, "the subject has no sha256"))?
            .to_ascii_lowercase();
        let pred = v
            .get("predicate")
            .ok_or_else(|| ProvenanceError::malformed(what, "no predicate"))?;
        let ser = pred
            .get("serialization")
            .ok_or_else(|| ProvenanceError::malformed(what, "no predicate.serialization"))?;
        let method = str_field(ser, "method", what)?;
        if method != "files" {
            return Err(ProvenanceError::Unsupported(format!(
                "serialization method {method:?} (modelward verifies \"files\")"
            )));
        }
        let hash_type = str_field(ser, "hash_type", what)?;
        if hash_type != "sha256" {
            return Err(ProvenanceError::Unsupported(format!(
                "hash_type {hash_type:?} (modelward verifies sha256)"
            )));
        }
        // model-signing writes booleans; its reader also met the string "false".
        let allow_symlinks = match ser.get("allow_symlinks") {
            Some(serde_json::Value::Bool(b)) => *b,
            Some(serde_json::Value::String(s)) => s.eq_ignore_ascii_case("true"),
            _ => false,
        };
        let ignore_paths = match ser.get("ignore_paths") {
            None => Vec::new(),
            Some(a) => a
                .as_array()
                .ok_or_else(|| ProvenanceError::malformed(what, "ignore_paths is not a list"))?
                .iter()
                .map(|p| {
                    p.as_str()
                        .map(str::to_string)
                        .ok_or_else(|| ProvenanceError::malformed(what, "an ignore path is not text"))
                })
                .collect::<Result<Vec<_>>>()?,
        };
        let list = pred
            .get("resources")
            .and_then(|r| r.as_array())
            .ok_or_else(|| ProvenanceError::malformed(what, "no predicate.resources list"))?;
        // The root digest is over the resources in the order they are listed.
        let mut h = Sha256::new();
        let mut resources = Vec::with_capacity(list.len());
        for r in list {
            let res = resource(
                str_field(r, "name", what)?,
                str_field(r, "algorithm", what)?,
                str_field(r, "digest", what)?,
            )?;
            h.update(unhex(&res.digest).unwrap_or_default());
            resources.push(res);
        }
        let computed = hex(&h.finalize());
        if computed != root {
            return Err(ProvenanceError::malformed(
                what,
                format!("its subject digest is {root}, but its resources hash to {computed}"),
            ));
        }
        let mut seen = std::collections::HashSet::new();
        if let Some(dup) = resources.iter().find(|r| !seen.insert(r.name.as_str())) {
            return Err(ProvenanceError::malformed(
                what,
                format!("{} is listed twice", dup.name),
            ));
        }
        Ok(Self {
            model_name,
            serialization: Serialization {
                method: method.into(),
                allow_symlinks,
                hash_type: hash_type.into(),
                ignore_paths,
            },
            resources,
        })
    }

    /// Reads a manifest file.
    pub fn read(path: &Path) -> Result<Self> {
        Self::from_statement(&read_bounded(path, MAX_STATEMENT)?)
    }

    /// How `dir` differs from this manifest (remade with this manifest's options): added,
    /// removed and changed files, by name.
    pub fn check(&self, dir: &Path) -> Result<Vec<Difference>> {
        let now = Self::of_dir(dir, &self.options())?;
        Ok(self.diff(&now))
    }

    /// How `actual` differs from this (expected) manifest.
    pub fn diff(&self, actual: &Manifest) -> Vec<Difference> {
        let want: BTreeMap<&str, &str> = self
            .resources
            .iter()
            .map(|r| (r.name.as_str(), r.digest.as_str()))
            .collect();
        let have: BTreeMap<&str, &str> = actual
            .resources
            .iter()
            .map(|r| (r.name.as_str(), r.digest.as_str()))
            .collect();
        let mut out = Vec::new();
        for (name, d) in &want {
            match have.get(name) {
                None => out.push(Difference::Removed {
                    name: name.to_string(),
                }),
                Some(a) if a != d => out.push(Difference::Changed {
                    name: name.to_string(),
                    expected: d.to_string(),
                    actual: a.to_string(),
                }),
                Some(_) => {}
            }
        }
        for name in have.keys() {
            if !want.contains_key(name) {
                out.push(Difference::Added {
                    name: name.to_string(),
                });
            }
        }
        out
    }
}

fn resource(name: &str, algorithm: &str, digest: &str) -> Result<Resource> {
    let what = "in-toto statement";
    if algorithm != "sha256" {
        return Err(ProvenanceError::Unsupported(format!(
            "digest algorithm {algorithm:?} for {name}"
        )));
    }
    let ok = unhex(digest).is_some_and(|d| d.len() == 32);
    if !ok {
        return Err(ProvenanceError::malformed(
            what,
            format!("the digest of {name} is not 64 hex digits"),
        ));
    }
    let c = components(name);
    if c.is_empty() || c.iter().any(|p| p == "..") || name.starts_with('/') {
        return Err(ProvenanceError::malformed(
            what,
            format!("resource name {name:?} is not a path inside the model"),
        ));
    }
    Ok(Resource {
        name: c.join("/"),
        algorithm: algorithm.into(),
        digest: digest.to_ascii_lowercase(),
    })
}

fn str_field<'a>(v: &'a serde_json::Value, key: &str, what: &str) -> Result<&'a str> {
    v.get(key)
        .and_then(|x| x.as_str())
        .ok_or_else(|| ProvenanceError::malformed(what, format!("no text field {key:?}")))
}

/// Path components as pathlib sees them: empty and `.` parts dropped.
fn components(p: &str) -> Vec<String> {
    p.split(['/', '\\'])
        .filter(|c| !c.is_empty() && *c != ".")
        .map(str::to_string)
        .collect()
}

fn model_name(dir: &Path) -> String {
    let name = dir.file_name().and_then(|n| n.to_str()).unwrap_or("");
    if !name.is_empty() && name != ".." && name != "." {
        return name.to_string();
    }
    dir.canonicalize()
        .ok()
        .and_then(|p| p.file_name().and_then(|n| n.to_str()).map(str::to_string))
        .unwrap_or_default()
}

fn walk(
    dir: &Path,
    rel: &mut Vec<String>,
    ignore: &[Vec<String>],
    follow: bool,
    out: &mut Vec<(String, PathBuf)>,
    depth: usize,
) -> Result<()> {
    if depth > MAX_DEPTH {
        return Err(ProvenanceError::Unhashable {
            path: dir.to_path_buf(),
            reason: format!("nested deeper than {MAX_DEPTH} folders"),
        });
    }
    let entries = std::fs::read_dir(dir).map_err(|e| ProvenanceError::io(dir, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| ProvenanceError::io(dir, e))?;
        let path = entry.path();
        let Some(name) = entry.file_name().to_str().map(str::to_string) else {
            return Err(ProvenanceError::Unhashable {
                path,
                reason: "the name is not UTF-8".into(),
            });
        };
        rel.push(name);
        if ignore.iter().any(|i| rel.starts_with(i)) {
            rel.pop();
            continue;
        }
        let lmeta = std::fs::symlink_metadata(&path).map_err(|e| ProvenanceError::io(&path, e))?;
        let meta = if lmeta.file_type().is_symlink() {
            if !follow {
                return Err(ProvenanceError::Unhashable {
                    path,
                    reason: "is a symbolic link, and symlinks are not allowed (allow_symlinks false)".into(),
                });
            }
            std::fs::metadata(&path).map_err(|e| ProvenanceError::io(&path, e))?
        } else {
            lmeta
        };
        if meta.is_dir() {
            walk(&path, rel, ignore, follow, out, depth + 1)?;
        } else if meta.is_file() {
            out.push((rel.join("/"), path));
        } else {
            return Err(ProvenanceError::Unhashable {
                path,
                reason: "is neither a file nor a folder".into(),
            });
        }
        rel.pop();
    }
    Ok(())
}

/// sha256 of a file, read in 1 MiB chunks.
pub fn sha256_file(path: &Path) -> Result<[u8; 32]> {
    let mut f = std::fs::File::open(path).map_err(|e| ProvenanceError::io(path, e))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = match f.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(ProvenanceError::io(path, e)),
        };
        h.update(&buf[..n]);
    }
    Ok(h.finalize().into())
}

/// Reads a whole small file, refusing one larger than `limit`.
pub(crate) fn read_bounded(path: &Path, limit: u64) -> Result<Vec<u8>> {
    let f = std::fs::File::open(path).map_err(|e| ProvenanceError::io(path, e))?;
    let mut out = Vec::new();
    f.take(limit + 1)
        .read_to_end(&mut out)
        .map_err(|e| ProvenanceError::io(path, e))?;
    if out.len() as u64 > limit {
        return Err(ProvenanceError::malformed(
            path.display().to_string(),
            format!("larger than {limit} bytes"),
        ));
    }
    Ok(out)
}
