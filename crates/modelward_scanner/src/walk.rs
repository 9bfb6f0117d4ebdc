//! Turning the paths a user gives into the files to scan: recursive, no ignore files, never
//! following directory symlinks (a model folder must not lead the scanner elsewhere).

use std::path::{Path, PathBuf};

/// A file to scan and the name it is reported under.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// Where to read it.
    pub path: PathBuf,
    /// The path as given, or joined under the directory given.
    pub display: String,
}

/// How a path is shown: as given, without a leading `./`.
fn display(p: &Path) -> String {
    let s = p.display().to_string();
    match s.strip_prefix("./") {
        Some(rest) if !rest.is_empty() => rest.to_owned(),
        _ => s,
    }
}

/// Expands files and directories into files, sorted, each once. Unreadable paths are returned
/// as errors beside the targets.
pub fn expand(paths: &[PathBuf]) -> (Vec<Target>, Vec<(String, String)>) {
    let mut targets = Vec::new();
    let mut errors = Vec::new();
    for p in paths {
        match std::fs::metadata(p) {
            Ok(m) if m.is_file() => targets.push(Target {
                path: p.clone(),
                display: display(p),
            }),
            Ok(m) if m.is_dir() => walk_dir(p, &mut targets, &mut errors),
            Ok(_) => errors.push((
                p.display().to_string(),
                "not a regular file or directory (a device, socket or pipe is not scanned)".into(),
            )),
            Err(e) => errors.push((p.display().to_string(), path_error(&e))),
        }
    }
    targets.sort_by(|a, b| a.display.cmp(&b.display));
    targets.dedup_by(|a, b| a.display == b.display);
    (targets, errors)
}

/// Why a path given cannot be scanned, and what to do about it, in one line.
fn path_error(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => {
            "no such file or directory; check the path (relative paths start from the current directory)"
                .into()
        }
        std::io::ErrorKind::PermissionDenied => "permission denied; scan it as a user who can read it".into(),
        _ => format!("cannot read it: {e}"),
    }
}

fn walk_dir(root: &Path, targets: &mut Vec<Target>, errors: &mut Vec<(String, String)>) {
    let walker = ignore::WalkBuilder::new(root)
        .standard_filters(false)
        .hidden(false)
        .follow_links(false)
        .build();
    for entry in walker {
        match entry {
            Ok(e) => {
                let path = e.path();
                let is_file = match e.file_type() {
                    Some(t) if t.is_file() => true,
                    // A symlink to a file is scanned (its content, reported under the link's name);
                    // a symlink to a directory is not followed.
                    Some(t) if t.is_symlink() => std::fs::metadata(path).is_ok_and(|m| m.is_file()),
                    _ => false,
                };
                if is_file {
                    targets.push(Target {
                        path: path.to_path_buf(),
                        display: display(path),
                    });
                }
            }
            Err(e) => errors.push((root.display().to_string(), e.to_string())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_path_is_an_error_that_says_what_to_check() {
        let (targets, errors) = expand(&[PathBuf::from("no/such/path/anywhere")]);
        assert!(targets.is_empty());
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].0, "no/such/path/anywhere");
        assert!(
            errors[0]
                .1
                .starts_with("no such file or directory; check the path"),
            "{}",
            errors[0].1
        );
    }
}
