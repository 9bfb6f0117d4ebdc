//! The user's Python: found on `PATH` and asked (on the host, before any sample is involved)
//! where it lives, so the sandbox can show it exactly those folders, read-only.

use crate::SandboxError;
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::process::Command;

/// What the interpreter says about itself.
#[derive(Debug, Clone, Deserialize)]
pub struct PythonInfo {
    /// The real interpreter binary (symlinks resolved), not a shim or a launcher script.
    pub executable: PathBuf,
    /// `sys.executable` as Python reports it (a virtualenv's own path).
    pub launcher: PathBuf,
    /// `sys.prefix`, `sys.base_prefix`, `sys.exec_prefix`, `sys.base_exec_prefix`.
    pub prefixes: Vec<PathBuf>,
    /// `sys.path` without the script folder: what the loader puts back inside the sandbox.
    pub sys_path: Vec<String>,
    /// `major.minor`.
    pub version: String,
}

/// Asked of the interpreter; prints one JSON object. Runs the user's Python on the host, but
/// only this fixed script: the sample is not involved.
const PROBE: &str = r#"
import json, os, sys
paths = [p for p in sys.path if p and os.path.isabs(p)]
print(json.dumps({
    "executable": os.path.realpath(sys.executable),
    "launcher": sys.executable,
    "prefixes": sorted({sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix}),
    "sys_path": paths,
    "version": "%d.%d" % sys.version_info[:2],
}))
"#;

/// Finds `name` on `PATH` (or takes it as a path when it has a slash).
pub fn which(name: &str) -> Option<PathBuf> {
    if name.contains('/') {
        let p = PathBuf::from(name);
        return p.is_file().then_some(p);
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// Asks `python` about itself.
pub fn probe(python: &Path) -> Result<PythonInfo, SandboxError> {
    let out = Command::new(python)
        .arg("-c")
        .arg(PROBE)
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|e| SandboxError::Python(format!("cannot run {}: {e}", python.display())))?;
    if !out.status.success() {
        return Err(SandboxError::Python(format!(
            "{} failed: {}",
            python.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    let info: PythonInfo = serde_json::from_slice(&out.stdout)
        .map_err(|e| SandboxError::Python(format!("{} gave an unreadable answer: {e}", python.display())))?;
    if info
        .version
        .split('.')
        .nth(1)
        .and_then(|m| m.parse::<u32>().ok())
        .unwrap_or(0)
        < 8
        || !info.version.starts_with("3.")
    {
        return Err(SandboxError::Python(format!(
            "Python {} is too old: audit hooks need 3.8 or newer",
            info.version
        )));
    }
    Ok(info)
}

impl PythonInfo {
    /// Folders to show read-only: the prefixes and the `sys.path` entries that hold installed
    /// code (zip entries by their file), with the real paths of symlinks, nested ones dropped.
    pub fn read_only_roots(&self) -> Vec<PathBuf> {
        let mut roots: Vec<PathBuf> = Vec::new();
        let mut add = |p: &Path| {
            for q in [
                p.to_path_buf(),
                std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf()),
            ] {
                if q.exists() {
                    roots.push(q);
                }
            }
        };
        for p in &self.prefixes {
            add(p);
        }
        for p in self.sys_path.iter().map(Path::new) {
            // Installed code only: the prefixes' folders, site-packages (a virtualenv's, the
            // user site) and zipped stdlib. A project checkout on PYTHONPATH stays hidden, with
            // whatever `.env` files and keys it holds.
            let installed = self.prefixes.iter().any(|pre| p.starts_with(pre))
                || p.components()
                    .any(|c| matches!(c.as_os_str().to_str(), Some("site-packages" | "dist-packages")))
                || p.is_file();
            if installed {
                add(p);
            }
        }
        if let Some(dir) = self.executable.parent() {
            add(dir);
        }
        roots.sort();
        roots.dedup();
        let mut kept: Vec<PathBuf> = Vec::new();
        for r in roots {
            if !kept.iter().any(|k| r.starts_with(k)) {
                kept.push(r);
            }
        }
        kept
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_installed_code_on_sys_path_is_shown() {
        let dir = std::env::temp_dir();
        let info = PythonInfo {
            executable: "/usr/bin/python3.11".into(),
            launcher: "/usr/bin/python3".into(),
            prefixes: vec!["/usr".into()],
            sys_path: vec![
                "/usr/lib/python3.11".into(),
                dir.display().to_string(),
                "/usr/lib/python3/dist-packages".into(),
            ],
            version: "3.11".into(),
        };
        let roots = info.read_only_roots();
        // /usr holds the stdlib and dist-packages; the temp folder (a "project" on
        // PYTHONPATH) is not shown.
        assert!(roots.iter().any(|r| r == Path::new("/usr")), "{roots:?}");
        assert!(!roots.iter().any(|r| r.starts_with(&dir)), "{roots:?}");
    }
}
