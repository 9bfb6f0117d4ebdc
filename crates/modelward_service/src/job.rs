//! The job and result format: what the API accepts turns into a [`JobSpec`], a worker turns a
//! spec into a [`JobResult`]. The embedded queue stores them as JSON in SQLite; the NATS
//! JetStream queue of issue 16 is meant to carry exactly these documents as message bodies, so
//! a worker cannot tell which queue fed it. Documented in `docs/service.md`.

use serde::{Deserialize, Serialize};

/// Version of the job and result documents (bumped when a field changes meaning).
pub const FORMAT_VERSION: u32 = 1;

/// What to scan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum JobSource {
    /// An uploaded file, stored by the service as a blob named by its sha256.
    Upload {
        /// The name the client gave (`?name=`), shown in the report; never used as a path.
        name: String,
        /// Lowercase hex sha256 of the content: the blob's name and the cache key.
        sha256: String,
        /// Bytes.
        size: u64,
    },
    /// `hf://owner/name[@rev][/path]`, a Hub URL or any `https://` URL.
    Remote {
        /// The source as given.
        source: String,
    },
}

/// A job as queued: the unit both queues carry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobSpec {
    /// [`FORMAT_VERSION`].
    pub format: u32,
    /// Job id (32 lowercase hex digits).
    pub id: String,
    /// What to scan.
    pub source: JobSource,
    /// For Hub revisions: `owner/name` and the commit, the revision table's key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repo: Option<RepoRevision>,
    /// Unix time (seconds) the job was accepted.
    pub created_at: i64,
}

/// A repository revision a job judges.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RepoRevision {
    /// `model`, `dataset` or `space`.
    pub kind: String,
    /// `owner/name`.
    pub name: String,
    /// The commit sha (or the revision asked for).
    pub revision: String,
}

/// A job's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobStatus {
    /// Waiting for a worker.
    Queued,
    /// Leased by a worker.
    Running,
    /// Finished with a report.
    Done,
    /// Given up (see the reason).
    Failed,
}

impl JobStatus {
    /// The name used in the API and the database.
    pub fn as_str(self) -> &'static str {
        match self {
            JobStatus::Queued => "queued",
            JobStatus::Running => "running",
            JobStatus::Done => "done",
            JobStatus::Failed => "failed",
        }
    }

    /// The inverse of [`JobStatus::as_str`].
    pub fn parse(s: &str) -> Option<JobStatus> {
        Some(match s {
            "queued" => JobStatus::Queued,
            "running" => JobStatus::Running,
            "done" => JobStatus::Done,
            "failed" => JobStatus::Failed,
            _ => return None,
        })
    }
}

/// What a worker hands back.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobResult {
    /// [`FORMAT_VERSION`].
    pub format: u32,
    /// The job.
    pub id: String,
    /// How it ended.
    #[serde(flatten)]
    pub outcome: Outcome,
}

/// How a job ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Outcome {
    /// A report: the document `modelward scan --format json` prints.
    Done {
        /// The overall verdict (the worst file's).
        verdict: String,
        /// The report document.
        report: serde_json::Value,
    },
    /// No report (e.g. every attempt's lease expired).
    Failed {
        /// Why.
        reason: String,
    },
}

/// A fresh job id: 128 random bits from the OS-seeded hasher state, in hex. Unique enough for
/// ids (not a secret).
pub fn new_id() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut out = String::with_capacity(32);
    for i in 0..2u64 {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u64(i);
        h.write_u128(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos()),
        );
        out.push_str(&format!("{:016x}", h.finish()));
    }
    out
}

/// Unix time in seconds.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// Unix time in milliseconds.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}
