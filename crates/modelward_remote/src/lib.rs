//! Scan models where they live: Hugging Face Hub repositories, URLs and the local HF cache,
//! reading only the bytes that matter.
//!
//! ```no_run
//! use modelward_policy::Policy;
//! use modelward_remote::{RemoteOptions, RemoteTarget, scan_remote};
//! use modelward_scanner::{ScanLimits, Scanner};
//!
//! let scanner = Scanner::new(Policy::builtin(), ScanLimits::default());
//! let target = RemoteTarget::parse("hf://openai-community/gpt2")?;
//! for file in scan_remote(&scanner, &target, &RemoteOptions::from_env())? {
//!     println!("{} {} ({} bytes fetched)", file.path, file.verdict, file.bytes_read);
//! }
//! # Ok::<(), modelward_remote::RemoteError>(())
//! ```
//!
//! - [`RemoteTarget`]: `hf://[datasets/|spaces/]OWNER/NAME[@REV][/PATH]`, Hub web URLs
//!   (`/tree/`, `/blob/`, `/resolve/`) and plain URLs.
//! - [`RangeReader`]: `Read + Seek` over HTTP range requests with a small block cache; the
//!   scanner reads a zip's directory and pickles, a header, never tensor data, so a checkpoint
//!   of gigabytes costs a few requests and tens of kilobytes.
//! - [`scan_remote`]: lists a repository and scans every file through
//!   [`Scanner::scan_source`]; reports are named `hf://OWNER/NAME@REV/PATH` and their
//!   `bytes_read` is the bytes actually transferred.
//! - [`resolve_hf_cache`], [`cache_display_name`]: the local `huggingface_hub` cache.
//!
//! Nothing fetched is ever executed; the Hub token goes only to the Hub endpoint's origin.
#![forbid(unsafe_code)]

mod cache;
mod error;
mod http;
mod hub;
mod options;
mod range;
mod target;
mod url;

pub use cache::{CachedFile, cache_display_name, hf_cache_dir, resolve_hf_cache};
pub use error::RemoteError;
pub use http::{Client, TransferStats};
pub use hub::{RepoFile, list_files, resolve_url, tree_url};
pub use options::{DEFAULT_ENDPOINT, RemoteOptions};
pub use range::RangeReader;
pub use target::{DEFAULT_REVISION, HubRepo, RemoteTarget, RepoKind};

use modelward_diagnostics::{Fact, FileReport, Location, Verdict};
use modelward_scanner::Scanner;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// The result of a remote scan, with what it cost.
#[derive(Debug, Clone, PartialEq)]
pub struct RemoteScan {
    /// One report per file, in listing order (sorted by path).
    pub files: Vec<FileReport>,
    /// Bytes received in all, listing included.
    pub transferred: u64,
    /// Requests sent in all, listing, redirects and retries included.
    pub requests: u64,
}

/// One file to fetch and scan.
struct Job {
    display: String,
    url: String,
    len: Option<u64>,
    /// The Hub's sha256 for the file (LFS), checked when the whole file is read.
    lfs_sha256: Option<String>,
}

/// Scans a remote target: lists a repository (or takes the one file or URL) and scans every
/// file over range requests, a few at a time. Each report is named `hf://OWNER/NAME@REV/PATH`
/// (or the URL without its query) and its `bytes_read` is the bytes transferred for it.
///
/// `Err` only when nothing could be scanned (a listing that failed: not found, no access,
/// offline). A file that cannot be fetched gets a report with verdict `error` and an
/// `MWD001` finding saying why (refused because the server ignores `Range` and the file is too
/// large, 404, ...).
pub fn scan_remote(
    scanner: &Scanner,
    target: &RemoteTarget,
    opts: &RemoteOptions,
) -> Result<Vec<FileReport>, RemoteError> {
    scan_remote_with(scanner, target, opts, &|_| {}).map(|s| s.files)
}

/// [`scan_remote`], calling `progress` as each file finishes and returning the totals.
pub fn scan_remote_with(
    scanner: &Scanner,
    target: &RemoteTarget,
    opts: &RemoteOptions,
    progress: &(dyn Fn(&FileReport) + Sync),
) -> Result<RemoteScan, RemoteError> {
    let client = Client::new(opts);
    let listing = TransferStats::default();
    let jobs = jobs(&client, target, opts, &listing)?;
    let total_bytes = std::sync::atomic::AtomicU64::new(listing.bytes());
    let total_requests = std::sync::atomic::AtomicU64::new(listing.requests());
    let results: Mutex<Vec<Option<FileReport>>> = Mutex::new(vec![None; jobs.len()]);
    let next = AtomicUsize::new(0);
    let workers = opts.concurrency.clamp(1, 16).min(jobs.len().max(1));
    std::thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(job) = jobs.get(i) else { break };
                    let stats = Arc::new(TransferStats::default());
                    let report = scan_job(scanner, &client, opts, job, &stats);
                    total_bytes.fetch_add(stats.bytes(), Ordering::Relaxed);
                    total_requests.fetch_add(stats.requests(), Ordering::Relaxed);
                    progress(&report);
                    results.lock().unwrap_or_else(|p| p.into_inner())[i] = Some(report);
                }
            });
        }
    });
    let files = results
        .into_inner()
        .unwrap_or_else(|p| p.into_inner())
        .into_iter()
        .flatten()
        .collect();
    Ok(RemoteScan {
        files,
        transferred: total_bytes.into_inner(),
        requests: total_requests.into_inner(),
    })
}

/// Scans one remote file (a URL whose length may be unknown), reporting it under `display`.
/// `bytes_read` is the bytes transferred for it.
pub fn scan_url(
    scanner: &Scanner,
    client: &Client,
    opts: &RemoteOptions,
    display: &str,
    url: &str,
    len: Option<u64>,
) -> FileReport {
    let job = Job {
        display: display.to_owned(),
        url: url.to_owned(),
        len,
        lfs_sha256: None,
    };
    scan_job(scanner, client, opts, &job, &Arc::new(TransferStats::default()))
}

fn jobs(
    client: &Client,
    target: &RemoteTarget,
    opts: &RemoteOptions,
    stats: &TransferStats,
) -> Result<Vec<Job>, RemoteError> {
    if opts.offline && target.repo().is_some() {
        return Err(RemoteError::Offline {
            target: target.display(),
        });
    }
    let endpoint = client.endpoint();
    Ok(match target {
        RemoteTarget::Hub { repo, revision, path } => {
            let base = repo.display(revision);
            list_files(client, repo, revision, path.as_deref(), stats)?
                .into_iter()
                .map(|f| Job {
                    display: format!("{base}/{}", f.path),
                    url: resolve_url(endpoint, repo, revision, &f.path),
                    len: Some(f.size),
                    lfs_sha256: f.lfs_sha256,
                })
                .collect()
        }
        RemoteTarget::HubFile { repo, revision, path } => vec![Job {
            display: format!("{}/{path}", repo.display(revision)),
            url: resolve_url(endpoint, repo, revision, path),
            len: None,
            lfs_sha256: None,
        }],
        RemoteTarget::Url(u) => vec![Job {
            display: url::redact(u),
            url: u.clone(),
            len: None,
            lfs_sha256: None,
        }],
    })
}

fn scan_job(
    scanner: &Scanner,
    client: &Client,
    opts: &RemoteOptions,
    job: &Job,
    stats: &Arc<TransferStats>,
) -> FileReport {
    let loc = Location::file(&job.display);
    let mut reader = match RangeReader::open_with_stats(client, &job.url, job.len, opts, stats.clone()) {
        Ok(r) => r,
        Err(e) => {
            let mut report = FileReport {
                path: job.display.clone(),
                format: "unknown".into(),
                verdict: Verdict::Error,
                severity: None,
                findings: Vec::new(),
                size: job.len.unwrap_or(0),
                bytes_read: stats.bytes(),
                error: Some(e.to_string()),
                sha256: None,
                hub_sha256: None,
            };
            if let Some(f) = scanner
                .policy()
                .finding(Fact::new("MWD001", format!("cannot fetch the file: {e}")), &loc)
            {
                report.findings.push(f);
            }
            report.finish(false);
            return report;
        }
    };
    let len = reader.len();
    let mut report = scanner.scan_source(&job.display, &mut reader, len);
    report.bytes_read = stats.bytes();
    check_hub_digest(scanner, job, &reader, &mut report);
    if let Some(e) = reader.failure() {
        if let Some(f) = scanner.policy().finding(
            Fact::new(
                "MWD001",
                format!("the file could not be read completely: {e}; what was not read was not judged"),
            ),
            &loc,
        ) {
            report.findings.push(f);
        }
        // What was found stays; a file with nothing dangerous found is not "clean" when part
        // of it could not be read.
        let known = report.format != "unknown";
        report.finish(known);
        if !matches!(report.verdict, Verdict::Malicious) {
            report.error = Some(e.to_string());
            report.finish(known);
        }
    }
    report
}

/// Records the Hub's LFS sha256 and, when every byte of the file went through the reader, the
/// file's own sha256; PRV004 when they differ.
fn check_hub_digest(scanner: &Scanner, job: &Job, reader: &RangeReader, report: &mut FileReport) {
    report.hub_sha256 = job.lfs_sha256.clone();
    let Some(actual) = reader.whole_sha256() else {
        return;
    };
    let actual: String = actual.iter().map(|b| format!("{b:02x}")).collect();
    if let Some(expected) = &job.lfs_sha256
        && *expected != actual
        && let Some(f) = scanner.policy().finding(
            Fact::new(
                "PRV004",
                format!("the bytes served have sha256 {actual}; the Hub lists {expected} for this file"),
            ),
            &Location::file(&job.display),
        )
    {
        report.findings.push(f);
        let known = report.format != "unknown";
        report.finish(known);
    }
    report.sha256 = Some(actual);
}
