//! The modelward scanning engine: give it an [`Input`] (a path, bytes, or any seekable
//! source), get a [`FileReport`]. Everything that scans goes through [`Scanner::scan`] (one
//! file) or [`Scanner::scan_many`] (many, in parallel): the CLI's `scan` and `explain`, remote
//! scans, and services built on top.
//!
//! ```no_run
//! use modelward_policy::Policy;
//! use modelward_scanner::{Input, ScanLimits, Scanner};
//! use std::path::Path;
//!
//! let scanner = Scanner::new(Policy::builtin(), ScanLimits::default());
//! // A file on disk.
//! let report = scanner.scan(Input::path(Path::new("model.pt")));
//! println!("{} {} ({} findings)", report.path, report.verdict, report.findings.len());
//! // Bytes received from elsewhere.
//! let upload: Vec<u8> = std::fs::read("upload.bin")?;
//! let report = scanner.scan(Input::bytes("upload.bin", &upload));
//! // Any Read + Seek, e.g. a file opened by the caller.
//! let f = std::fs::File::open("big.safetensors")?;
//! let len = f.metadata()?.len();
//! let report = scanner.scan(Input::reader("big.safetensors", f, len));
//! assert!(report.bytes_read <= len);
//! // Files and directories, in parallel.
//! let all = scanner.scan_paths(&["models/".into()], |file| eprintln!("{}", file.path));
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! Formats are recognised by content at every level; archives are opened the way their real
//! loaders open them; only the bytes that can hold code are read; files are scanned in parallel
//! and each one's memory is bounded by [`ScanLimits`], whatever the file claims about itself.
//! A panic inside a parser never escapes [`Scanner::scan`]: it becomes an `MWD002` finding.
#![forbid(unsafe_code)]

mod engine;
mod input;
mod limits;
mod nested;
mod skops_scan;
pub mod walk;

pub use input::{Input, Source, ToInput};
pub use limits::ScanLimits;
pub use walk::Target;

use modelward_diagnostics::{Fact, FileReport, Location, ScanReport, Verdict};
use modelward_formats::io::{Counting, ReadSeek};
use modelward_policy::Policy;
use rayon::prelude::*;
use std::io::Cursor;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

/// Scans files. Cheap to share between threads (`Scanner: Send + Sync`); one scanner serves
/// any number of scans.
#[derive(Debug)]
pub struct Scanner {
    policy: Policy,
    limits: ScanLimits,
}

/// How `bytes_read` is counted for one input.
enum Counted {
    /// What passed through the scanner's reader.
    Reads,
    /// A fixed number (bytes already in memory).
    Exactly(u64),
}

impl Scanner {
    /// One file's findings, with the chains they form (evidence adds up: a download then a
    /// load is worse than either).
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

    /// The budgets in use.
    pub fn limits(&self) -> &ScanLimits {
        &self.limits
    }

    /// Scans one input and reports it under the input's name. Never panics and never fails:
    /// a file that cannot be opened or read gets verdict `error` (with an `MWD001` finding),
    /// a file over a budget an `MWD002` finding, a parser panic an `MWD002` finding.
    pub fn scan(&self, input: Input<'_>) -> FileReport {
        match input {
            Input::Path { path, display } => {
                let file = match std::fs::File::open(path) {
                    Ok(f) => f,
                    Err(e) => {
                        return self.unavailable(
                            display,
                            0,
                            0,
                            e.to_string(),
                            format!("cannot open the file: {e}"),
                        );
                    }
                };
                let len = file.metadata().map(|m| m.len()).unwrap_or(0);
                let mut file = file;
                self.judge(display, len, &mut file, Counted::Reads)
            }
            Input::Bytes { name, data } => {
                let len = data.len() as u64;
                self.judge(name, len, &mut Cursor::new(data), Counted::Exactly(len))
            }
            Input::Reader {
                display,
                mut reader,
                len,
            } => {
                let mut report = self.judge(display, len, &mut reader, Counted::Reads);
                if let Some(n) = reader.bytes_fetched() {
                    report.bytes_read = n;
                }
                report.sha256 = reader.sha256();
                report.hub_sha256 = reader.listed_sha256();
                self.check_listed_digest(&mut report);
                if let Some(e) = reader.failure() {
                    self.incomplete(&mut report, e);
                }
                report
            }
            Input::Unavailable {
                display,
                size,
                bytes_read,
                error,
                message,
            } => self.unavailable(display, size, bytes_read, error, message),
        }
    }

    /// Scans one input as [`Scanner::scan`] does and returns, beside its report, every pickle
    /// stream met in it, found by content at any nesting level (a zip member, a tar member
    /// inside a gzip, an `.npy` object array, a Keras `TorchModuleWrapper` payload), each with
    /// the pickles exactly as the scan ran them and the findings the scan reported there. What
    /// `modelward explain` shows is therefore what `modelward scan` judged.
    ///
    /// ```no_run
    /// # use modelward_policy::Policy;
    /// # use modelward_scanner::{Input, ScanLimits, Scanner};
    /// let scanner = Scanner::new(Policy::builtin(), ScanLimits::default());
    /// let (report, streams) = scanner.find_pickles(Input::path("model.pt".as_ref()));
    /// for s in &streams {
    ///     println!("{}: {} pickle(s), {} findings", s.name(&report.path), s.pickles.len(), s.findings.len());
    /// }
    /// ```
    pub fn find_pickles(&self, input: Input<'_>) -> (FileReport, Vec<PickleStream>) {
        let mut found = Vec::new();
        let report = match input {
            Input::Path { path, display } => match std::fs::File::open(path) {
                Ok(mut file) => {
                    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
                    self.judge_keeping(display, len, &mut file, Counted::Reads, Some(&mut found))
                }
                Err(e) => {
                    self.unavailable(display, 0, 0, e.to_string(), format!("cannot open the file: {e}"))
                }
            },
            Input::Bytes { name, data } => {
                let len = data.len() as u64;
                self.judge_keeping(
                    name,
                    len,
                    &mut Cursor::new(data),
                    Counted::Exactly(len),
                    Some(&mut found),
                )
            }
            Input::Reader {
                display,
                mut reader,
                len,
            } => self.judge_keeping(display, len, &mut reader, Counted::Reads, Some(&mut found)),
            other @ Input::Unavailable { .. } => self.scan(other),
        };
        let streams = found
            .into_iter()
            .map(|f| {
                let findings = report
                    .findings
                    .iter()
                    .filter(|x| x.location.members == f.members)
                    .cloned()
                    .collect();
                PickleStream {
                    members: f.members,
                    start: f.start,
                    data: f.data,
                    torch: f.torch,
                    pickles: f.traces,
                    findings,
                }
            })
            .collect();
        (report, streams)
    }

    /// Scans many inputs in parallel (rayon's pool), calling `progress` as each one finishes.
    /// Each target becomes its [`Input`] on the worker that scans it. Reports are in the order
    /// of `targets`.
    pub fn scan_many<T: ToInput + Sync>(
        &self,
        targets: &[T],
        progress: impl Fn(&FileReport) + Sync,
    ) -> Vec<FileReport> {
        targets
            .par_iter()
            .map(|t| {
                let r = self.scan(t.to_input());
                progress(&r);
                r
            })
            .collect()
    }

    /// [`Scanner::scan_many`] on `threads` workers of its own, for inputs that wait on the
    /// network more than on the CPU (remote files).
    pub fn scan_many_threads<T: ToInput + Sync>(
        &self,
        targets: &[T],
        threads: usize,
        progress: impl Fn(&FileReport) + Sync,
    ) -> Vec<FileReport> {
        match rayon::ThreadPoolBuilder::new()
            .num_threads(threads.max(1))
            .build()
        {
            Ok(pool) => pool.install(|| self.scan_many(targets, &progress)),
            Err(_) => self.scan_many(targets, progress),
        }
    }

    /// Scans files and directories in parallel; `progress` is called as each file finishes.
    /// A path that cannot be listed is reported with verdict `error`.
    pub fn scan_paths(&self, paths: &[PathBuf], progress: impl Fn(&FileReport) + Sync) -> ScanReport {
        let start = Instant::now();
        let (targets, errors) = walk::expand(paths);
        let mut files = self.scan_many(&targets, progress);
        files.extend(errors.into_iter().map(|(path, err)| error_report(path, err)));
        ScanReport::new(
            env!("CARGO_PKG_VERSION"),
            files,
            start.elapsed().as_millis() as u64,
        )
    }

    /// The one report builder: budgets checked, the engine run under the one panic catch,
    /// findings capped, verdict set.
    fn judge(&self, display: String, len: u64, r: &mut dyn ReadSeek, counted: Counted) -> FileReport {
        self.judge_keeping(display, len, r, counted, None)
    }

    /// [`Scanner::judge`], keeping the pickle streams met in `found` when given.
    fn judge_keeping(
        &self,
        display: String,
        len: u64,
        r: &mut dyn ReadSeek,
        counted: Counted,
        found: Option<&mut Vec<engine::Found>>,
    ) -> FileReport {
        let loc = Location::file(&display);
        let mut engine = engine::Engine::new(&self.policy, &self.limits);
        if found.is_some() {
            engine.keep_pickles();
        }
        let mut report = blank(display, len);
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
        let mut reader = Counting::new(r, count.clone());
        report.format = match catch(|| engine.seekable(&mut reader, len, &loc, 0, Default::default())) {
            Ok(f) => f.name().into(),
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
        report.bytes_read = match counted {
            Counted::Reads => count.load(Ordering::Relaxed),
            Counted::Exactly(n) => n,
        };
        if let Some(found) = found {
            *found = engine.take_found();
        }
        report.findings = self.findings_of(engine);
        let known = report.format != "unknown";
        report.finish(known);
        report
    }

    /// The bytes served are not the bytes the host lists (a swapped CDN object, a repository
    /// rewritten under its listing): `PRV004`.
    fn check_listed_digest(&self, report: &mut FileReport) {
        let (Some(actual), Some(listed)) = (&report.sha256, &report.hub_sha256) else {
            return;
        };
        if actual == listed {
            return;
        }
        let fact = Fact::new(
            "PRV004",
            format!("the bytes served have sha256 {actual}; the host lists {listed} for this file"),
        );
        if let Some(f) = self.policy.finding(fact, &Location::file(&report.path)) {
            report.findings.push(f);
            let known = report.format != "unknown";
            report.finish(known);
        }
    }

    /// A source that failed part way: what was found stays; nothing is called clean.
    fn incomplete(&self, report: &mut FileReport, error: String) {
        let loc = Location::file(&report.path);
        if let Some(f) = self.policy.finding(
            Fact::new(
                "MWD001",
                format!("the file could not be read completely: {error}; what was not read was not judged"),
            ),
            &loc,
        ) {
            report.findings.push(f);
        }
        let known = report.format != "unknown";
        report.finish(known);
        if !matches!(report.verdict, Verdict::Malicious) {
            report.error = Some(error);
            report.finish(known);
        }
    }

    /// The report of an input that could not be opened.
    fn unavailable(
        &self,
        display: String,
        size: u64,
        bytes_read: u64,
        error: String,
        message: String,
    ) -> FileReport {
        let loc = Location::file(&display);
        let mut report = blank(display, size);
        report.bytes_read = bytes_read;
        report.error = Some(error);
        if let Some(f) = self.policy.finding(Fact::new("MWD001", message), &loc) {
            report.findings.push(f);
        }
        report.finish(false);
        report
    }
}

/// A pickle stream found in an input by [`Scanner::find_pickles`].
#[derive(Debug)]
pub struct PickleStream {
    /// The archive members that lead to it, outermost first (empty: the input itself).
    pub members: Vec<String>,
    /// Where the stream starts in its innermost content (after an `.npy` header, say); the
    /// pickles' offsets are relative to it.
    pub start: u64,
    /// The stream's bytes, up to the end of its last pickle.
    pub data: Vec<u8>,
    /// Whether the scan judged it as part of a PyTorch file.
    pub torch: bool,
    /// Its pickles (several back to back, PyTorch's legacy five, ...), as the scan ran them.
    pub pickles: Vec<modelward_pickle::Trace>,
    /// The findings the scan reported at this stream's location.
    pub findings: Vec<modelward_diagnostics::Finding>,
}

impl PickleStream {
    /// `FILE!member!member`, the way reports and `explain` name it.
    pub fn name(&self, file: &str) -> String {
        std::iter::once(file)
            .chain(self.members.iter().map(String::as_str))
            .collect::<Vec<_>>()
            .join("!")
    }
}

fn blank(path: String, size: u64) -> FileReport {
    FileReport {
        path,
        format: "unknown".into(),
        verdict: Verdict::Clean,
        severity: None,
        findings: Vec::new(),
        size,
        bytes_read: 0,
        error: None,
        sha256: None,
        hub_sha256: None,
    }
}

/// The report for a path that could not be listed at all (no finding: nothing was opened).
pub fn error_report(path: String, error: String) -> FileReport {
    let mut r = blank(path, 0);
    r.error = Some(error);
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
