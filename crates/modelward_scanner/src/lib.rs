//! The modelward scanning engine: give it paths or bytes, get a [`ScanReport`].
//!
//! ```no_run
//! use modelward_scanner::{Scanner, ScanLimits};
//! use modelward_policy::Policy;
//! let scanner = Scanner::new(Policy::builtin(), ScanLimits::default());
//! let report = scanner.scan_paths(&["model.pt".into()], |_| {});
//! for file in &report.files {
//!     println!("{} {}", file.path, file.verdict);
//! }
//! ```
//!
//! Formats are recognised by content at every level; archives are opened the way their real
//! loaders open them; only the bytes that can hold code are read; files are scanned in parallel
//! and each one's memory is bounded by [`ScanLimits`], whatever the file claims about itself.
#![forbid(unsafe_code)]

mod engine;
mod limits;
mod nested;
mod skops_scan;
pub mod walk;

pub use limits::ScanLimits;
pub use walk::Target;

use modelward_diagnostics::{Fact, FileReport, Location, ScanReport, Verdict};
use modelward_formats::io::Counting;
use modelward_policy::Policy;
use rayon::prelude::*;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

/// Scans files. Cheap to share between threads.
#[derive(Debug)]
pub struct Scanner {
    policy: Policy,
    limits: ScanLimits,
}

impl Scanner {
    /// One file's findings, with the chains they form (issue 14: evidence adds up).
    fn findings_of(&self, engine: engine::Engine<'_>) -> Vec<modelward_diagnostics::Finding> {
        let mut findings = engine.into_findings();
        self.policy.add_chain_findings(&mut findings);
        findings
    }

    /// A scanner with a policy and budgets.
    pub fn new(policy: Policy, limits: ScanLimits) -> Scanner {
        Scanner { policy, limits }
    }

    /// The policy in use.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// Scans one file, reporting it under `display`.
    pub fn scan_file(&self, target: &Target) -> FileReport {
        let mut report = FileReport {
            path: target.display.clone(),
            format: "unknown".into(),
            verdict: Verdict::Clean,
            severity: None,
            findings: Vec::new(),
            size: 0,
            bytes_read: 0,
            error: None,
            sha256: None,
            hub_sha256: None,
        };
        let loc = Location::file(&target.display);
        let file = match std::fs::File::open(&target.path) {
            Ok(f) => f,
            Err(e) => {
                report.error = Some(e.to_string());
                if let Some(f) = self
                    .policy
                    .finding(Fact::new("MWD001", format!("cannot open the file: {e}")), &loc)
                {
                    report.findings.push(f);
                }
                report.finish(false);
                return report;
            }
        };
        let len = file.metadata().map(|m| m.len()).unwrap_or(0);
        report.size = len;
        let mut engine = engine::Engine::new(&self.policy, &self.limits);
        if len > self.limits.max_file_size {
            engine.fact(
                Fact::new(
                    "MWD002",
                    format!(
                        "the file is {len} bytes, over the {} byte budget; it was not opened",
                        self.limits.max_file_size
                    ),
                ),
                &loc,
            );
            report.findings = self.findings_of(engine);
            report.finish(true);
            return report;
        }
        let count = Arc::new(AtomicU64::new(0));
        let mut reader = Counting::new(file, count.clone());
        let format = catch(|| engine.seekable(&mut reader, len, &loc, 0, Default::default()));
        report.format = match format {
            Ok(f) => f,
            Err(panic) => {
                engine.fact(
                    Fact::new(
                        "MWD002",
                        format!("internal error while scanning: {panic}; please report it"),
                    ),
                    &loc,
                );
                "unknown".into()
            }
        };
        report.bytes_read = count.load(Ordering::Relaxed);
        report.findings = self.findings_of(engine);
        let known = !matches!(report.format.as_str(), "unknown");
        report.finish(known);
        report
    }

    /// Scans content from any seekable source (a remote file over HTTP range requests, a blob
    /// in a cache), reporting it under `display`. `bytes_read` is left for the caller to fill
    /// when it counts reads itself; here it counts what passed through the scanner.
    pub fn scan_source(
        &self,
        display: &str,
        r: &mut dyn modelward_formats::io::ReadSeek,
        len: u64,
    ) -> FileReport {
        let loc = Location::file(display);
        let mut engine = engine::Engine::new(&self.policy, &self.limits);
        let count = Arc::new(AtomicU64::new(0));
        let mut reader = Counting::new(r, count.clone());
        let format = match catch(|| engine.seekable(&mut reader, len, &loc, 0, Default::default())) {
            Ok(f) => f,
            Err(panic) => {
                engine.fact(
                    Fact::new(
                        "MWD002",
                        format!("internal error while scanning: {panic}; please report it"),
                    ),
                    &loc,
                );
                "unknown".into()
            }
        };
        let mut report = FileReport {
            path: display.to_owned(),
            format,
            verdict: Verdict::Clean,
            severity: None,
            findings: self.findings_of(engine),
            size: len,
            bytes_read: count.load(Ordering::Relaxed),
            error: None,
            sha256: None,
            hub_sha256: None,
        };
        let known = report.format != "unknown";
        report.finish(known);
        report
    }

    /// Scans bytes held in memory.
    pub fn scan_bytes(&self, name: &str, data: &[u8]) -> FileReport {
        let loc = Location::file(name);
        let mut engine = engine::Engine::new(&self.policy, &self.limits);
        let mut cursor = std::io::Cursor::new(data);
        let format = catch(|| engine.seekable(&mut cursor, data.len() as u64, &loc, 0, Default::default()))
            .unwrap_or_else(|_| "unknown".into());
        let mut report = FileReport {
            path: name.to_owned(),
            format: String::new(),
            verdict: Verdict::Clean,
            severity: None,
            findings: self.findings_of(engine),
            size: data.len() as u64,
            bytes_read: data.len() as u64,
            error: None,
            sha256: None,
            hub_sha256: None,
        };
        report.format = format;
        let known = report.format != "unknown";
        report.finish(known);
        report
    }

    /// Scans files and directories in parallel; `progress` is called as each file finishes.
    pub fn scan_paths(&self, paths: &[PathBuf], progress: impl Fn(&FileReport) + Sync) -> ScanReport {
        let start = Instant::now();
        let (targets, errors) = walk::expand(paths);
        let mut files = self.scan_targets(&targets, progress);
        files.extend(errors.into_iter().map(|(path, err)| error_report(path, err)));
        ScanReport::new(
            env!("CARGO_PKG_VERSION"),
            files,
            start.elapsed().as_millis() as u64,
        )
    }

    /// Scans files already listed (see [`walk::expand`]) in parallel.
    pub fn scan_targets(&self, targets: &[Target], progress: impl Fn(&FileReport) + Sync) -> Vec<FileReport> {
        targets
            .par_iter()
            .map(|t| {
                let r = self.scan_file(t);
                progress(&r);
                r
            })
            .collect()
    }
}

/// The report for a path that could not be scanned at all.
pub fn error_report(path: String, error: String) -> FileReport {
    let mut r = FileReport {
        path,
        format: "unknown".into(),
        verdict: Verdict::Error,
        severity: None,
        findings: Vec::new(),
        size: 0,
        bytes_read: 0,
        error: Some(error),
        sha256: None,
        hub_sha256: None,
    };
    r.finish(false);
    r
}

/// Runs a scan step, turning a panic into an error message: one bad file must never abort a
/// directory scan. (Parsers are fuzzed so that this never fires.)
fn catch<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).map_err(|p| {
        p.downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| p.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "panic".into())
    })
}
