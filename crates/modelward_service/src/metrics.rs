//! Counters for `/metrics`, written in the Prometheus text exposition format by hand (a few
//! atomics; no registry needed).

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};

/// Verdict labels counted (jobs, by their overall verdict; `failed` for jobs given up).
pub const VERDICTS: [&str; 6] = ["clean", "suspicious", "malicious", "skipped", "error", "failed"];

/// Upper bounds (seconds) of the scan latency histogram.
const BUCKETS: [f64; 12] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// The service's counters.
#[derive(Default)]
pub struct Metrics {
    scans: [AtomicU64; 6],
    bytes_read: AtomicU64,
    cache_hits: AtomicU64,
    files_scanned: AtomicU64,
    rejected_full: AtomicU64,
    rejected_too_large: AtomicU64,
    retried: AtomicU64,
    latency_buckets: [AtomicU64; 12],
    latency_count: AtomicU64,
    latency_sum_us: AtomicU64,
}

impl Metrics {
    /// A job ended with `verdict` after `seconds`.
    pub fn job_done(&self, verdict: &str, seconds: f64) {
        if let Some(i) = VERDICTS.iter().position(|v| *v == verdict) {
            self.scans[i].fetch_add(1, Ordering::Relaxed);
        }
        for (i, b) in BUCKETS.iter().enumerate() {
            if seconds <= *b {
                self.latency_buckets[i].fetch_add(1, Ordering::Relaxed);
            }
        }
        self.latency_count.fetch_add(1, Ordering::Relaxed);
        self.latency_sum_us
            .fetch_add((seconds * 1e6) as u64, Ordering::Relaxed);
    }

    /// What a scan read.
    pub fn scanned(&self, bytes: u64, files: u64, cache_hits: u64) {
        self.bytes_read.fetch_add(bytes, Ordering::Relaxed);
        self.files_scanned.fetch_add(files, Ordering::Relaxed);
        self.cache_hits.fetch_add(cache_hits, Ordering::Relaxed);
    }

    /// A submission refused with 429.
    pub fn rejected_full(&self) {
        self.rejected_full.fetch_add(1, Ordering::Relaxed);
    }

    /// An upload refused with 413.
    pub fn rejected_too_large(&self) {
        self.rejected_too_large.fetch_add(1, Ordering::Relaxed);
    }

    /// Leases that expired and were queued again or failed.
    pub fn retried(&self, n: u64) {
        self.retried.fetch_add(n, Ordering::Relaxed);
    }

    /// The exposition text, with the queue gauges read from the store.
    pub fn render(&self, queued: u64, running: u64) -> String {
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let mut s = String::new();
        let _ = writeln!(s, "# HELP modelward_queue_depth Jobs waiting for a worker.");
        let _ = writeln!(s, "# TYPE modelward_queue_depth gauge");
        let _ = writeln!(s, "modelward_queue_depth {queued}");
        let _ = writeln!(s, "# HELP modelward_jobs_running Jobs leased by a worker.");
        let _ = writeln!(s, "# TYPE modelward_jobs_running gauge");
        let _ = writeln!(s, "modelward_jobs_running {running}");
        let _ = writeln!(
            s,
            "# HELP modelward_scans_total Jobs finished, by overall verdict."
        );
        let _ = writeln!(s, "# TYPE modelward_scans_total counter");
        for (i, v) in VERDICTS.iter().enumerate() {
            let _ = writeln!(
                s,
                "modelward_scans_total{{verdict=\"{v}\"}} {}",
                g(&self.scans[i])
            );
        }
        for (name, help, v) in [
            (
                "modelward_bytes_read_total",
                "Bytes read from uploads and remote sources.",
                &self.bytes_read,
            ),
            (
                "modelward_files_scanned_total",
                "Files judged by the engine.",
                &self.files_scanned,
            ),
            (
                "modelward_cache_hits_total",
                "Files answered from the verdict cache.",
                &self.cache_hits,
            ),
            (
                "modelward_rejected_queue_full_total",
                "Submissions refused with 429.",
                &self.rejected_full,
            ),
            (
                "modelward_rejected_too_large_total",
                "Uploads refused with 413.",
                &self.rejected_too_large,
            ),
            (
                "modelward_leases_expired_total",
                "Leases that expired (worker crashed or hung).",
                &self.retried,
            ),
        ] {
            let _ = writeln!(s, "# HELP {name} {help}");
            let _ = writeln!(s, "# TYPE {name} counter");
            let _ = writeln!(s, "{name} {}", g(v));
        }
        let _ = writeln!(
            s,
            "# HELP modelward_scan_duration_seconds Time from lease to result."
        );
        let _ = writeln!(s, "# TYPE modelward_scan_duration_seconds histogram");
        for (i, b) in BUCKETS.iter().enumerate() {
            let _ = writeln!(
                s,
                "modelward_scan_duration_seconds_bucket{{le=\"{b}\"}} {}",
                g(&self.latency_buckets[i])
            );
        }
        let count = g(&self.latency_count);
        let _ = writeln!(s, "modelward_scan_duration_seconds_bucket{{le=\"+Inf\"}} {count}");
        let _ = writeln!(
            s,
            "modelward_scan_duration_seconds_sum {}",
            g(&self.latency_sum_us) as f64 / 1e6
        );
        let _ = writeln!(s, "modelward_scan_duration_seconds_count {count}");
        s
    }
}
