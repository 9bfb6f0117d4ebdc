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
    /// Which delivery of the job this is (1 on the first try), when the queue counts them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attempt: Option<u32>,
    /// Wall time of the scan, ms, when the worker measured it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub elapsed_ms: Option<u64>,
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

/// Largest job or result message accepted from a queue (NATS's default `max_payload`).
pub const MAX_MESSAGE_BYTES: usize = 1 << 20;

/// Why a queue message was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MessageError {
    /// Larger than [`MAX_MESSAGE_BYTES`].
    #[error("message of {0} bytes, over the limit of {MAX_MESSAGE_BYTES}")]
    TooLarge(usize),
    /// Not the document.
    #[error("not a job/result document: {0}")]
    Json(String),
    /// Another format version.
    #[error("format {0} is not understood (this build reads format {FORMAT_VERSION})")]
    Format(u32),
    /// A field out of bounds.
    #[error("{0}")]
    Invalid(&'static str),
}

fn check_id(id: &str) -> Result<(), MessageError> {
    if id.is_empty() || id.len() > 64 || !id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
        return Err(MessageError::Invalid(
            "the id must be 1-64 letters, digits or '-'",
        ));
    }
    Ok(())
}

/// Parses a job message off a queue (NATS delivers bytes anyone with access could have
/// published): bounded size, the format version, an id safe to use as a key. Never panics
/// (fuzzed: `fuzz/fuzz_targets/queue_message.rs`).
pub fn parse_job_message(bytes: &[u8]) -> Result<JobSpec, MessageError> {
    if bytes.len() > MAX_MESSAGE_BYTES {
        return Err(MessageError::TooLarge(bytes.len()));
    }
    let spec: JobSpec = serde_json::from_slice(bytes).map_err(|e| MessageError::Json(e.to_string()))?;
    if spec.format != FORMAT_VERSION {
        return Err(MessageError::Format(spec.format));
    }
    check_id(&spec.id)?;
    match &spec.source {
        JobSource::Upload { sha256, name, .. } => {
            // The blob's file name: exactly 64 lowercase hex digits, never a path.
            if sha256.len() != 64 || !sha256.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
                return Err(MessageError::Invalid(
                    "an upload's sha256 must be 64 lowercase hex digits",
                ));
            }
            if name.len() > 1024 {
                return Err(MessageError::Invalid("upload name too long"));
            }
        }
        JobSource::Remote { source } => {
            if source.len() > 4096 {
                return Err(MessageError::Invalid("source too long"));
            }
        }
    }
    Ok(spec)
}

/// Parses a result message off a queue: bounded size, the format version, a safe id.
pub fn parse_result_message(bytes: &[u8]) -> Result<JobResult, MessageError> {
    if bytes.len() > MAX_MESSAGE_BYTES {
        return Err(MessageError::TooLarge(bytes.len()));
    }
    let r: JobResult = serde_json::from_slice(bytes).map_err(|e| MessageError::Json(e.to_string()))?;
    if r.format != FORMAT_VERSION {
        return Err(MessageError::Format(r.format));
    }
    check_id(&r.id)?;
    Ok(r)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queue_messages_round_trip_and_hostile_ones_are_refused() {
        let spec = JobSpec {
            format: FORMAT_VERSION,
            id: new_id(),
            source: JobSource::Upload {
                name: "m.pt".into(),
                sha256: "ab".repeat(32),
                size: 3,
            },
            repo: None,
            created_at: 1,
        };
        let bytes = serde_json::to_vec(&spec).unwrap();
        assert_eq!(parse_job_message(&bytes).unwrap(), spec);
        let mut traversal = spec.clone();
        traversal.source = JobSource::Upload {
            name: "x".into(),
            sha256: "../../etc/passwd".into(),
            size: 1,
        };
        let bytes = serde_json::to_vec(&traversal).unwrap();
        assert!(matches!(parse_job_message(&bytes), Err(MessageError::Invalid(_))));
        let mut future = spec.clone();
        future.format = 2;
        assert_eq!(
            parse_job_message(&serde_json::to_vec(&future).unwrap()),
            Err(MessageError::Format(2))
        );
        assert!(matches!(
            parse_job_message(&vec![b' '; MAX_MESSAGE_BYTES + 1]),
            Err(MessageError::TooLarge(_))
        ));
        let result = JobResult {
            format: FORMAT_VERSION,
            id: spec.id.clone(),
            attempt: Some(2),
            elapsed_ms: None,
            outcome: Outcome::Failed { reason: "x".into() },
        };
        let bytes = serde_json::to_vec(&result).unwrap();
        assert_eq!(parse_result_message(&bytes).unwrap(), result);
        assert!(
            parse_result_message(b"{\"format\":1,\"id\":\"a b\",\"status\":\"failed\",\"reason\":\"\"}")
                .is_err()
        );
    }
}
