//! Turning a job into a report: the service's only door to the engine.
//!
//! [`engine_scan`] is the one function that calls `modelward_scanner::Scanner::scan` (directly,
//! or through `modelward_remote`, whose range reader is an `Input` of the same entry point).

use crate::job::{JobSource, JobSpec};
use crate::store::{CacheKey, VerdictCache};
use modelward_diagnostics::{FileReport, ScanReport, Verdict};
use modelward_remote::{Client, RemoteOptions, RemoteTarget, TransferStats};
use modelward_scanner::{Input, Scanner};
use std::path::Path;

/// The engine's version, part of every cache key.
pub const ENGINE_VERSION: &str = env!("CARGO_PKG_VERSION");

/// What the engine is asked to read.
enum EngineInput<'a> {
    /// A file on the service's disk.
    File { path: &'a Path, display: &'a str },
    /// One remote file, read with range requests.
    RemoteFile {
        client: &'a Client,
        display: &'a str,
        url: &'a str,
        len: Option<u64>,
        /// The sha256 the listing gives, checked against the bytes read (PRV004).
        lfs_sha256: Option<String>,
    },
    /// A remote target that is not a Hub repository (a URL, a Hub file), scanned whole.
    RemoteTarget(&'a RemoteTarget),
}

/// Every call into the scanner is here.
fn engine_scan(
    scanner: &Scanner,
    opts: &RemoteOptions,
    input: EngineInput<'_>,
) -> Result<Vec<FileReport>, String> {
    match input {
        EngineInput::File { path, display } => Ok(vec![scanner.scan(Input::Path {
            path,
            display: display.to_owned(),
        })]),
        EngineInput::RemoteFile {
            client,
            display,
            url,
            len,
            lfs_sha256,
        } => Ok(vec![modelward_remote::scan_url(
            scanner, client, opts, display, url, len, lfs_sha256,
        )]),
        EngineInput::RemoteTarget(t) => modelward_remote::scan_remote_with(scanner, t, opts, &|_| {})
            .map(|r| r.files)
            .map_err(|e| e.to_string()),
    }
}

/// What a scan read and whether the cache answered.
#[derive(Debug, Default, Clone, Copy)]
pub struct ScanStats {
    /// Bytes read from disk or the network.
    pub bytes_read: u64,
    /// Files answered from the cache.
    pub cache_hits: u64,
    /// Files judged by the engine.
    pub scanned: u64,
}

/// Scans a job: the report is the document `modelward scan --format json` prints. `store`
/// is the verdict cache (the service's database, or the JetStream bucket of NATS workers).
pub fn run_job(
    scanner: &Scanner,
    store: &dyn VerdictCache,
    blobs: &Path,
    opts: &RemoteOptions,
    spec: &JobSpec,
) -> (ScanReport, ScanStats) {
    let started = std::time::Instant::now();
    let mut stats = ScanStats::default();
    let key = |content: String| CacheKey {
        content,
        engine: ENGINE_VERSION.to_owned(),
        policy: scanner.policy().fingerprint(),
    };
    let cached = |k: &CacheKey, display: &str, stats: &mut ScanStats| -> Option<FileReport> {
        let hit = store.cached_file(k).ok().flatten()?;
        stats.cache_hits += 1;
        Some(relabel(hit, display))
    };
    let remember = |k: &CacheKey, r: &FileReport, stats: &mut ScanStats| {
        stats.scanned += 1;
        stats.bytes_read += r.bytes_read;
        // A file that could not be read (network, limits of the moment) is judged again later.
        if r.verdict != Verdict::Error {
            let _ = store.cache_file(k, r);
        }
    };
    let mut files = Vec::new();
    let (mut transferred, mut requests) = (0, 0);
    match &spec.source {
        JobSource::Upload { name, sha256, .. } => {
            let k = key(format!("sha256:{sha256}"));
            match cached(&k, name, &mut stats) {
                Some(r) => files.push(r),
                None => {
                    let path = blobs.join(sha256);
                    let reports = engine_scan(
                        scanner,
                        opts,
                        EngineInput::File {
                            path: &path,
                            display: name,
                        },
                    )
                    .unwrap_or_default();
                    for r in reports {
                        remember(&k, &r, &mut stats);
                        files.push(r);
                    }
                }
            }
        }
        JobSource::Remote { source } => match RemoteTarget::parse(source) {
            Err(e) => files.push(modelward_scanner::error_report(source.clone(), e.to_string())),
            Ok(RemoteTarget::Hub { repo, revision, path }) => {
                // A repository: list it, then judge each file by the content key the listing
                // gives before any byte is read.
                let client = Client::new(opts);
                let listing = TransferStats::default();
                match modelward_remote::list_files(&client, &repo, &revision, path.as_deref(), &listing) {
                    Err(e) => files.push(modelward_scanner::error_report(source.clone(), e.to_string())),
                    Ok(list) => {
                        transferred += listing.bytes();
                        requests += listing.requests();
                        let base = repo.display(&revision);
                        // The files of a repository are judged FILES_IN_FLIGHT at a time, so
                        // their round trips overlap instead of queueing one after another.
                        let judged = in_flight(&list, FILES_IN_FLIGHT, |f| {
                            let display = format!("{base}/{}", f.path);
                            let k = f
                                .lfs_sha256
                                .as_ref()
                                .map(|s| format!("sha256:{s}"))
                                .or_else(|| f.oid.as_ref().map(|o| format!("git:{o}")))
                                .map(key);
                            if let Some(hit) = k.as_ref().and_then(|k| store.cached_file(k).ok().flatten()) {
                                return (k, vec![relabel(hit, &display)], true);
                            }
                            let url =
                                modelward_remote::resolve_url(client.endpoint(), &repo, &revision, &f.path);
                            let input = EngineInput::RemoteFile {
                                client: &client,
                                display: &display,
                                url: &url,
                                len: Some(f.size),
                                lfs_sha256: f.lfs_sha256.clone(),
                            };
                            (k, engine_scan(scanner, opts, input).unwrap_or_default(), false)
                        });
                        for (k, reports, hit) in judged {
                            if hit {
                                stats.cache_hits += 1;
                                files.extend(reports);
                                continue;
                            }
                            for r in reports {
                                transferred += r.bytes_read;
                                match &k {
                                    Some(k) => remember(k, &r, &mut stats),
                                    None => {
                                        stats.scanned += 1;
                                        stats.bytes_read += r.bytes_read;
                                    }
                                }
                                files.push(r);
                            }
                        }
                    }
                }
            }
            Ok(target) => match engine_scan(scanner, opts, EngineInput::RemoteTarget(&target)) {
                Ok(reports) => {
                    for r in reports {
                        stats.scanned += 1;
                        stats.bytes_read += r.bytes_read;
                        transferred += r.bytes_read;
                        files.push(r);
                    }
                }
                Err(e) => files.push(modelward_scanner::error_report(source.clone(), e)),
            },
        },
    }
    if !matches!(spec.source, JobSource::Upload { .. }) {
        stats.bytes_read = stats.bytes_read.max(transferred);
    }
    let mut report = ScanReport::new(ENGINE_VERSION, files, started.elapsed().as_millis() as u64);
    if !matches!(spec.source, JobSource::Upload { .. }) {
        report.summary.bytes_transferred = transferred;
        report.summary.requests = requests;
    }
    // As the CLI does: only enabled rules are reported.
    report
        .files
        .iter_mut()
        .for_each(|f| f.findings.retain(|x| scanner.policy().enabled(&x.rule)));
    (report, stats)
}

/// Files of one repository judged at once. Each holds at most one range request in flight, so
/// a worker keeps at most `--concurrency` × this many requests open to the Hub.
pub const FILES_IN_FLIGHT: usize = 8;

/// `f` over `items`, `width` at a time on scoped threads, results in the order of `items`.
fn in_flight<T: Sync, R: Send>(items: &[T], width: usize, f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let mut out = Vec::with_capacity(items.len());
    for chunk in items.chunks(width.max(1)) {
        if chunk.len() == 1 {
            out.push(f(&chunk[0]));
            continue;
        }
        std::thread::scope(|s| {
            let handles: Vec<_> = chunk.iter().map(|item| s.spawn(|| f(item))).collect();
            for h in handles {
                match h.join() {
                    Ok(r) => out.push(r),
                    // The engine catches parser panics itself; a panic here is a bug: surface it.
                    Err(p) => std::panic::resume_unwind(p),
                }
            }
        });
    }
    out
}

/// A cached report under another file's name: the path and every location that named the
/// file. Nothing was read for it this time.
fn relabel(mut r: FileReport, display: &str) -> FileReport {
    let old = std::mem::replace(&mut r.path, display.to_owned());
    for f in &mut r.findings {
        if f.location.path == old {
            f.location.path = display.to_owned();
        }
    }
    r.bytes_read = 0;
    r
}

/// The job's verdict: its worst file's (malicious > suspicious > error > clean > skipped).
pub fn overall_verdict(report: &ScanReport) -> &'static str {
    let rank = |v: Verdict| match v {
        Verdict::Malicious => 4,
        Verdict::Suspicious => 3,
        Verdict::Error => 2,
        Verdict::Clean => 1,
        _ => 0,
    };
    report
        .files
        .iter()
        .map(|f| f.verdict)
        .max_by_key(|v| rank(*v))
        .map_or("skipped", Verdict::as_str)
}

/// The report as the JSON document the CLI prints.
pub fn report_json(report: &ScanReport) -> serde_json::Value {
    let mut buf = Vec::new();
    if modelward_report::json::write(report, &mut buf).is_err() {
        return serde_json::Value::Null;
    }
    serde_json::from_slice(&buf).unwrap_or(serde_json::Value::Null)
}
