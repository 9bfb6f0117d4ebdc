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
//!   [`Scanner::scan_many`], each file an [`Input`] over a [`RangeReader`]; reports are named `hf://OWNER/NAME@REV/PATH` and their
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

use modelward_diagnostics::FileReport;
use modelward_scanner::{Input, Scanner, Source, ToInput};
use std::sync::Arc;

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

/// A job bound to its client: opened (the first request) on the scanner's worker.
struct Fetch<'a> {
    job: &'a Job,
    client: &'a Client,
    opts: &'a RemoteOptions,
    stats: Arc<TransferStats>,
}

impl ToInput for Fetch<'_> {
    fn to_input(&self) -> Input<'_> {
        let job = self.job;
        match RangeReader::open_with_stats(self.client, &job.url, job.len, self.opts, self.stats.clone()) {
            Ok(reader) => {
                let len = reader.len();
                let file = HubFile {
                    reader,
                    listed_sha256: job.lfs_sha256.clone(),
                };
                Input::source(job.display.clone(), file, len)
            }
            Err(e) => Input::Unavailable {
                display: job.display.clone(),
                size: job.len.unwrap_or(0),
                bytes_read: self.stats.bytes(),
                error: e.to_string(),
                message: format!("cannot fetch the file: {e}"),
            },
        }
    }
}

/// A remote file as the scanner reads it: its `bytes_read` is the bytes transferred, a
/// transfer that failed part way keeps the file from being called clean, and the sha256 the
/// Hub lists is checked against the bytes served when every byte went through the reader.
struct HubFile {
    reader: RangeReader,
    listed_sha256: Option<String>,
}

impl std::io::Read for HubFile {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.reader.read(buf)
    }
}

impl std::io::Seek for HubFile {
    fn seek(&mut self, pos: std::io::SeekFrom) -> std::io::Result<u64> {
        self.reader.seek(pos)
    }
}

impl Source for HubFile {
    fn failure(&self) -> Option<String> {
        self.reader.failure().map(ToString::to_string)
    }
    fn bytes_fetched(&self) -> Option<u64> {
        Some(self.reader.bytes_transferred())
    }
    fn sha256(&self) -> Option<String> {
        self.reader
            .whole_sha256()
            .map(|d| d.iter().map(|b| format!("{b:02x}")).collect())
    }
    fn listed_sha256(&self) -> Option<String> {
        self.listed_sha256.clone()
    }
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
    let fetches: Vec<Fetch<'_>> = jobs
        .iter()
        .map(|job| Fetch {
            job,
            client: &client,
            opts,
            stats: Arc::new(TransferStats::default()),
        })
        .collect();
    // Remote files wait on the network, not the CPU: more workers than cores.
    let workers = opts.concurrency.clamp(1, 16).min(jobs.len().max(1));
    let files = scanner.scan_many_threads(&fetches, workers, progress);
    Ok(RemoteScan {
        files,
        transferred: listing.bytes() + fetches.iter().map(|f| f.stats.bytes()).sum::<u64>(),
        requests: listing.requests() + fetches.iter().map(|f| f.stats.requests()).sum::<u64>(),
    })
}

/// Scans one remote file (a URL whose length may be unknown), reporting it under `display`.
/// `bytes_read` is the bytes transferred for it; `lfs_sha256`, the digest its listing gives
/// ([`RepoFile::lfs_sha256`]), is checked against the bytes when the whole file is read.
pub fn scan_url(
    scanner: &Scanner,
    client: &Client,
    opts: &RemoteOptions,
    display: &str,
    url: &str,
    len: Option<u64>,
    lfs_sha256: Option<String>,
) -> FileReport {
    let job = Job {
        display: display.to_owned(),
        url: url.to_owned(),
        len,
        lfs_sha256,
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
    let fetch = Fetch {
        job,
        client,
        opts,
        stats: stats.clone(),
    };
    scanner.scan(fetch.to_input())
}
