//! Where the service keeps its state, behind two traits so another backend can plug in
//! (issue 16: PostgreSQL behind [`Store`], NATS JetStream behind [`JobQueue`]):
//!
//! - [`Store`]: jobs as the API shows them, file verdicts cached by content, repository
//!   revisions, findings.
//! - [`JobQueue`]: submit with back-pressure and deduplication, lease with expiry, renew,
//!   complete, release, expire.
//!
//! [`SqliteDb`] implements both on one embedded SQLite file (WAL) under `--data`. Every call
//! is synchronous and short; the server calls them on tokio's blocking pool.

use crate::job::{JobResult, JobSource, JobSpec, JobStatus, Outcome, RepoRevision, now, now_ms};
use modelward_diagnostics::FileReport;
use rusqlite::{Connection, OptionalExtension, params};
use std::path::Path;
use std::sync::Mutex;

/// A storage failure.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// SQLite said no.
    #[error("database: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// A stored document does not parse (a newer or damaged database).
    #[error("stored document: {0}")]
    Json(#[from] serde_json::Error),
    /// PostgreSQL said no.
    #[error("database: {0}")]
    Postgres(String),
    /// The external queue or its key-value bucket (NATS JetStream) said no.
    #[error("queue: {0}")]
    Queue(String),
}

/// A job as the API and the web page show it.
#[derive(Debug, Clone, PartialEq)]
pub struct JobRecord {
    /// What was queued.
    pub spec: JobSpec,
    /// Where it is.
    pub status: JobStatus,
    /// Leases taken so far (1 for a job that ran once).
    pub attempts: u32,
    /// The worst file verdict, when done.
    pub verdict: Option<String>,
    /// The report document (`scan --format json`), when done. Left out of listings.
    pub report: Option<String>,
    /// Why it failed.
    pub reason: Option<String>,
    /// Unix ms when it finished.
    pub finished_at: Option<i64>,
    /// Wall time of the scan, ms.
    pub elapsed_ms: Option<i64>,
}

impl JobRecord {
    /// What the list shows as the job's name.
    pub fn name(&self) -> String {
        match &self.spec.source {
            JobSource::Upload { name, .. } => name.clone(),
            JobSource::Remote { source } => source.clone(),
        }
    }
}

/// A file verdict's cache key: content, engine and policy. The same bytes judged by the same
/// engine under the same policy give the same report, whatever they are called.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheKey {
    /// `sha256:HEX` (uploads; Hub LFS files from the listing) or `git:OID` (small Hub files).
    pub content: String,
    /// The scanner crate's version.
    pub engine: String,
    /// [`modelward_policy::Policy::fingerprint`].
    pub policy: String,
}

/// Jobs per status, for `/metrics` and back-pressure.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QueueDepth {
    /// Waiting.
    pub queued: u64,
    /// Leased.
    pub running: u64,
}

/// What [`JobQueue::submit`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Submitted {
    /// Queued as a new job.
    Queued,
    /// The repository revision was queued before: nothing new, here is that job.
    Duplicate(String),
    /// The queue holds its maximum: try again later.
    Full,
}

/// What [`JobQueue::expire`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Expired {
    /// Jobs queued again.
    pub requeued: u64,
    /// Jobs failed (out of attempts).
    pub failed: Vec<String>,
}

/// A job leased to a worker.
#[derive(Debug, Clone, PartialEq)]
pub struct Lease {
    /// The job.
    pub spec: JobSpec,
    /// This lease's number (1 on the first try).
    pub attempt: u32,
}

/// File verdicts cached by content: in the [`Store`] (SQLite) with the embedded queue, in a
/// JetStream key-value bucket with NATS (`crate::nats::KvCache`), shared by every worker.
pub trait VerdictCache: Send + Sync {
    /// A cached file verdict.
    fn cached_file(&self, key: &CacheKey) -> Result<Option<FileReport>, StoreError>;
    /// Caches a file verdict.
    fn cache_file(&self, key: &CacheKey, report: &FileReport) -> Result<(), StoreError>;
}

/// The service's records.
pub trait Store: VerdictCache + Send + Sync + 'static {
    /// One job, with its report.
    fn job(&self, id: &str) -> Result<Option<JobRecord>, StoreError>;
    /// The most recent jobs, newest first, optionally only those with `verdict`, without reports.
    fn recent(&self, verdict: Option<&str>, limit: u32) -> Result<Vec<JobRecord>, StoreError>;
    /// The latest job of a repository (at `revision` if given).
    fn repo_latest(
        &self,
        kind: &str,
        name: &str,
        revision: Option<&str>,
    ) -> Result<Option<JobRecord>, StoreError>;
    /// Jobs not finished that need the uploaded blob `sha256`.
    fn blob_in_use(&self, sha256: &str) -> Result<bool, StoreError>;
}

/// The job queue.
pub trait JobQueue: Send + Sync + 'static {
    /// Queues `spec` unless its repository revision was queued before ([`Submitted::Duplicate`])
    /// or `max_queued` jobs are waiting ([`Submitted::Full`]).
    fn submit(&self, spec: &JobSpec, max_queued: u64) -> Result<Submitted, StoreError>;
    /// Takes the oldest queued job for `lease_ms`, as `owner`.
    fn lease(&self, owner: &str, lease_ms: i64) -> Result<Option<Lease>, StoreError>;
    /// Extends a lease still held; `false` when it was lost (expired and taken back).
    fn renew(&self, id: &str, owner: &str, lease_ms: i64) -> Result<bool, StoreError>;
    /// Records the result of a job still leased by `owner`; `false` (nothing written) when the
    /// lease was lost, so a job finishes exactly once.
    fn complete(&self, result: &JobResult, owner: &str, elapsed_ms: i64) -> Result<bool, StoreError>;
    /// Gives a lease back unfinished (shutdown): queued again, the attempt not counted.
    fn release(&self, id: &str, owner: &str) -> Result<(), StoreError>;
    /// Leases past their time: queued again, or failed once `max_attempts` leases were taken.
    fn expire(&self, max_attempts: u32) -> Result<Expired, StoreError>;
    /// Jobs waiting and running.
    fn depth(&self) -> Result<QueueDepth, StoreError>;

    // With an external queue (NATS JetStream), this database keeps the records and the
    // revision dedup; the queue carries the jobs. A job is accepted here first (durable), then
    // handed to the queue by a dispatcher, which marks it published once the queue confirmed.

    /// Queued jobs not yet confirmed by the external queue, oldest first.
    fn unpublished(&self, limit: u32) -> Result<Vec<JobSpec>, StoreError>;
    /// The external queue confirmed it holds job `id`.
    fn mark_published(&self, id: &str) -> Result<(), StoreError>;
    /// Records a result that came back through the external queue, once: `false` (nothing
    /// written) when the job had already finished (a redelivered job scanned twice).
    fn finish(&self, result: &JobResult, elapsed_ms: i64) -> Result<bool, StoreError>;
}

/// [`Store`] and [`JobQueue`] on one SQLite database.
pub struct SqliteDb {
    conn: Mutex<Connection>,
}

/// The schema, one text for both databases: `time` is the 64-bit integer type of the time
/// columns (`INTEGER` in SQLite, `BIGINT` in PostgreSQL), `seq` an extra first column of the
/// jobs table (PostgreSQL's insertion order) or nothing.
pub(crate) fn schema(time: &str, seq: &str) -> String {
    SCHEMA.replace("{time}", time).replace("{seq}", seq)
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS jobs (
{seq}    id          TEXT PRIMARY KEY,
    spec        TEXT NOT NULL,
    status      TEXT NOT NULL,
    attempts    INTEGER NOT NULL DEFAULT 0,
    lease_owner TEXT,
    lease_until {time},
    verdict     TEXT,
    report      TEXT,
    reason      TEXT,
    created_at  {time} NOT NULL,
    finished_at {time},
    elapsed_ms  {time},
    blob        TEXT
);
CREATE INDEX IF NOT EXISTS jobs_queue ON jobs(status, created_at);
CREATE INDEX IF NOT EXISTS jobs_recent ON jobs(created_at DESC);
CREATE INDEX IF NOT EXISTS jobs_blob ON jobs(blob) WHERE blob IS NOT NULL;
CREATE TABLE IF NOT EXISTS revisions (
    kind       TEXT NOT NULL,
    repo       TEXT NOT NULL,
    revision   TEXT NOT NULL,
    job_id     TEXT NOT NULL REFERENCES jobs(id),
    created_at {time} NOT NULL,
    PRIMARY KEY (kind, repo, revision)
);
CREATE INDEX IF NOT EXISTS revisions_repo ON revisions(kind, repo, created_at DESC);
CREATE TABLE IF NOT EXISTS file_results (
    content    TEXT NOT NULL,
    engine     TEXT NOT NULL,
    policy     TEXT NOT NULL,
    report     TEXT NOT NULL,
    created_at {time} NOT NULL,
    PRIMARY KEY (content, engine, policy)
);
CREATE TABLE IF NOT EXISTS findings (
    job_id   TEXT NOT NULL REFERENCES jobs(id),
    path     TEXT NOT NULL,
    rule     TEXT NOT NULL,
    severity TEXT NOT NULL,
    message  TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS findings_job ON findings(job_id);
CREATE INDEX IF NOT EXISTS findings_rule ON findings(rule);
CREATE TABLE IF NOT EXISTS published (
    job_id TEXT PRIMARY KEY REFERENCES jobs(id)
);
";

pub(crate) const JOB_COLUMNS: &str = "spec, status, attempts, verdict, reason, finished_at, elapsed_ms";

impl SqliteDb {
    /// Opens (creating) the database at `path`: WAL, `synchronous=FULL` (an accepted job
    /// survives a crash and a power cut), a busy timeout.
    pub fn open(path: &Path) -> Result<SqliteDb, StoreError> {
        let conn = Connection::open(path)?;
        conn.busy_timeout(std::time::Duration::from_secs(10))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        conn.execute_batch(&schema("INTEGER", ""))?;
        Ok(SqliteDb {
            conn: Mutex::new(conn),
        })
    }

    fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        // A panic while holding the lock leaves SQLite consistent (transactions roll back).
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn record(row: &rusqlite::Row<'_>, with_report: bool) -> rusqlite::Result<(String, JobRecordParts)> {
    Ok((
        row.get(0)?,
        JobRecordParts {
            status: row.get(1)?,
            attempts: row.get(2)?,
            verdict: row.get(3)?,
            reason: row.get(4)?,
            finished_at: row.get(5)?,
            elapsed_ms: row.get(6)?,
            report: if with_report { row.get(7)? } else { None },
        },
    ))
}

struct JobRecordParts {
    status: String,
    attempts: u32,
    verdict: Option<String>,
    reason: Option<String>,
    finished_at: Option<i64>,
    elapsed_ms: Option<i64>,
    report: Option<String>,
}

fn assemble((spec, p): (String, JobRecordParts)) -> Result<JobRecord, StoreError> {
    Ok(JobRecord {
        spec: serde_json::from_str(&spec)?,
        status: JobStatus::parse(&p.status).unwrap_or(JobStatus::Failed),
        attempts: p.attempts,
        verdict: p.verdict,
        report: p.report,
        reason: p.reason,
        finished_at: p.finished_at,
        elapsed_ms: p.elapsed_ms,
    })
}

impl VerdictCache for SqliteDb {
    fn cached_file(&self, key: &CacheKey) -> Result<Option<FileReport>, StoreError> {
        let c = self.conn();
        let doc: Option<String> = c
            .query_row(
                "SELECT report FROM file_results WHERE content = ?1 AND engine = ?2 AND policy = ?3",
                params![key.content, key.engine, key.policy],
                |r| r.get(0),
            )
            .optional()?;
        Ok(doc.map(|d| serde_json::from_str(&d)).transpose()?)
    }

    fn cache_file(&self, key: &CacheKey, report: &FileReport) -> Result<(), StoreError> {
        let doc = serde_json::to_string(report)?;
        self.conn().execute(
            "INSERT OR REPLACE INTO file_results (content, engine, policy, report, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5)",
            params![key.content, key.engine, key.policy, doc, now()],
        )?;
        Ok(())
    }
}

impl Store for SqliteDb {
    fn job(&self, id: &str) -> Result<Option<JobRecord>, StoreError> {
        let c = self.conn();
        let row = c
            .query_row(
                &format!("SELECT {JOB_COLUMNS}, report FROM jobs WHERE id = ?1"),
                [id],
                |r| record(r, true),
            )
            .optional()?;
        row.map(assemble).transpose()
    }

    fn recent(&self, verdict: Option<&str>, limit: u32) -> Result<Vec<JobRecord>, StoreError> {
        let c = self.conn();
        let mut stmt = c.prepare_cached(&format!(
            "SELECT {JOB_COLUMNS} FROM jobs WHERE (?1 IS NULL OR verdict = ?1)
             ORDER BY created_at DESC, rowid DESC LIMIT ?2"
        ))?;
        let rows = stmt.query_map(params![verdict, limit], |r| record(r, false))?;
        rows.map(|r| assemble(r?)).collect()
    }

    fn repo_latest(
        &self,
        kind: &str,
        name: &str,
        revision: Option<&str>,
    ) -> Result<Option<JobRecord>, StoreError> {
        let c = self.conn();
        let row = c
            .query_row(
                &format!(
                    "SELECT {JOB_COLUMNS}, report FROM jobs WHERE id = (
                        SELECT job_id FROM revisions WHERE kind = ?1 AND repo = ?2
                        AND (?3 IS NULL OR revision = ?3) ORDER BY created_at DESC, rowid DESC LIMIT 1)"
                ),
                params![kind, name, revision],
                |r| record(r, true),
            )
            .optional()?;
        row.map(assemble).transpose()
    }

    fn blob_in_use(&self, sha256: &str) -> Result<bool, StoreError> {
        let n: i64 = self.conn().query_row(
            "SELECT count(*) FROM jobs WHERE blob = ?1 AND status IN ('queued', 'running')",
            [sha256],
            |r| r.get(0),
        )?;
        Ok(n > 0)
    }
}

impl JobQueue for SqliteDb {
    fn submit(&self, spec: &JobSpec, max_queued: u64) -> Result<Submitted, StoreError> {
        let mut c = self.conn();
        let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        if let Some(RepoRevision { kind, name, revision }) = &spec.repo {
            let existing: Option<String> = tx
                .query_row(
                    "SELECT job_id FROM revisions WHERE kind = ?1 AND repo = ?2 AND revision = ?3",
                    params![kind, name, revision],
                    |r| r.get(0),
                )
                .optional()?;
            if let Some(id) = existing {
                return Ok(Submitted::Duplicate(id));
            }
        }
        let queued: i64 = tx.query_row("SELECT count(*) FROM jobs WHERE status = 'queued'", [], |r| {
            r.get(0)
        })?;
        if queued as u64 >= max_queued {
            return Ok(Submitted::Full);
        }
        let blob = match &spec.source {
            JobSource::Upload { sha256, .. } => Some(sha256.as_str()),
            JobSource::Remote { .. } => None,
        };
        tx.execute(
            "INSERT INTO jobs (id, spec, status, created_at, blob) VALUES (?1, ?2, 'queued', ?3, ?4)",
            params![spec.id, serde_json::to_string(spec)?, now_ms(), blob],
        )?;
        if let Some(RepoRevision { kind, name, revision }) = &spec.repo {
            // The primary key makes a second row for the same revision impossible, even if two
            // deliveries race past the check above on another connection.
            tx.execute(
                "INSERT INTO revisions (kind, repo, revision, job_id, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![kind, name, revision, spec.id, now_ms()],
            )?;
        }
        tx.commit()?;
        Ok(Submitted::Queued)
    }

    fn lease(&self, owner: &str, lease_ms: i64) -> Result<Option<Lease>, StoreError> {
        let c = self.conn();
        let row: Option<(String, u32)> = c
            .query_row(
                "UPDATE jobs SET status = 'running', attempts = attempts + 1, lease_owner = ?1,
                     lease_until = ?2
                 WHERE id = (SELECT id FROM jobs WHERE status = 'queued'
                             ORDER BY created_at, rowid LIMIT 1)
                 RETURNING spec, attempts",
                params![owner, now_ms() + lease_ms],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        row.map(|(spec, attempt)| {
            Ok(Lease {
                spec: serde_json::from_str(&spec)?,
                attempt,
            })
        })
        .transpose()
    }

    fn renew(&self, id: &str, owner: &str, lease_ms: i64) -> Result<bool, StoreError> {
        let n = self.conn().execute(
            "UPDATE jobs SET lease_until = ?3 WHERE id = ?1 AND lease_owner = ?2 AND status = 'running'",
            params![id, owner, now_ms() + lease_ms],
        )?;
        Ok(n == 1)
    }

    fn complete(&self, result: &JobResult, owner: &str, elapsed_ms: i64) -> Result<bool, StoreError> {
        record_result(&mut self.conn(), result, Some(owner), elapsed_ms)
    }

    fn release(&self, id: &str, owner: &str) -> Result<(), StoreError> {
        self.conn().execute(
            "UPDATE jobs SET status = 'queued', attempts = max(attempts - 1, 0), lease_owner = NULL,
                 lease_until = NULL
             WHERE id = ?1 AND lease_owner = ?2 AND status = 'running'",
            params![id, owner],
        )?;
        Ok(())
    }

    fn expire(&self, max_attempts: u32) -> Result<Expired, StoreError> {
        let mut c = self.conn();
        let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let now = now_ms();
        let failed: Vec<String> = {
            let mut stmt = tx.prepare(
                "UPDATE jobs SET status = 'failed', verdict = 'failed', finished_at = ?1, lease_owner = NULL, lease_until = NULL,
                     reason = 'the scan did not finish in ' || attempts || ' attempts: each time its worker '
                              || 'stopped (crashed, killed or hung) before the lease expired'
                 WHERE status = 'running' AND lease_until < ?1 AND attempts >= ?2 RETURNING id",
            )?;
            stmt.query_map(params![now, max_attempts], |r| r.get(0))?
                .collect::<Result<_, _>>()?
        };
        let requeued = tx.execute(
            "UPDATE jobs SET status = 'queued', lease_owner = NULL, lease_until = NULL
             WHERE status = 'running' AND lease_until < ?1",
            [now],
        )?;
        tx.commit()?;
        Ok(Expired {
            requeued: requeued as u64,
            failed,
        })
    }

    fn unpublished(&self, limit: u32) -> Result<Vec<JobSpec>, StoreError> {
        let c = self.conn();
        let mut stmt = c.prepare_cached(
            "SELECT spec FROM jobs WHERE status = 'queued'
               AND NOT EXISTS (SELECT 1 FROM published p WHERE p.job_id = jobs.id)
             ORDER BY created_at, rowid LIMIT ?1",
        )?;
        let specs: Vec<String> = stmt.query_map([limit], |r| r.get(0))?.collect::<Result<_, _>>()?;
        specs
            .iter()
            .map(|s| serde_json::from_str(s).map_err(StoreError::from))
            .collect()
    }

    fn mark_published(&self, id: &str) -> Result<(), StoreError> {
        self.conn()
            .execute("INSERT OR IGNORE INTO published (job_id) VALUES (?1)", [id])?;
        Ok(())
    }

    fn finish(&self, result: &JobResult, elapsed_ms: i64) -> Result<bool, StoreError> {
        record_result(&mut self.conn(), result, None, elapsed_ms)
    }

    fn depth(&self) -> Result<QueueDepth, StoreError> {
        let c = self.conn();
        let (queued, running): (i64, i64) = c.query_row(
            "SELECT coalesce(sum(status = 'queued'), 0), coalesce(sum(status = 'running'), 0)
             FROM jobs WHERE status IN ('queued', 'running')",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        Ok(QueueDepth {
            queued: queued as u64,
            running: running as u64,
        })
    }
}

/// Writes a job's result and its findings in one transaction, only if the job is still
/// unfinished (and, with `owner`, still leased by it): a job finishes exactly once.
fn record_result(
    c: &mut Connection,
    result: &JobResult,
    owner: Option<&str>,
    elapsed_ms: i64,
) -> Result<bool, StoreError> {
    let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let (status, verdict, report, reason) = match &result.outcome {
        Outcome::Done { verdict, report } => ("done", Some(verdict.as_str()), Some(report.to_string()), None),
        Outcome::Failed { reason } => ("failed", Some("failed"), None, Some(reason.as_str())),
    };
    let n = tx.execute(
        "UPDATE jobs SET status = ?3, verdict = ?4, report = ?5, reason = ?6, finished_at = ?7,
             elapsed_ms = ?8, lease_owner = NULL, lease_until = NULL,
             attempts = coalesce(?9, attempts)
         WHERE id = ?1 AND ((?2 IS NOT NULL AND lease_owner = ?2 AND status = 'running')
                            OR (?2 IS NULL AND status IN ('queued', 'running')))",
        params![
            result.id,
            owner,
            status,
            verdict,
            report,
            reason,
            now_ms(),
            elapsed_ms,
            result.attempt
        ],
    )?;
    if n != 1 {
        return Ok(false);
    }
    if let Outcome::Done { report, .. } = &result.outcome {
        let mut ins = tx.prepare_cached(
            "INSERT INTO findings (job_id, path, rule, severity, message) VALUES (?1, ?2, ?3, ?4, ?5)",
        )?;
        for file in report["files"].as_array().into_iter().flatten() {
            for f in file["findings"].as_array().into_iter().flatten() {
                ins.execute(params![
                    result.id,
                    file["path"].as_str().unwrap_or(""),
                    f["rule"].as_str().unwrap_or(""),
                    f["severity"].as_str().unwrap_or(""),
                    f["message"].as_str().unwrap_or(""),
                ])?;
            }
        }
    }
    tx.commit()?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::job::{FORMAT_VERSION, JobSource};

    fn spec(id: &str, repo: Option<&str>) -> JobSpec {
        JobSpec {
            format: FORMAT_VERSION,
            id: id.into(),
            source: JobSource::Remote {
                source: "hf://a/b".into(),
            },
            repo: repo.map(|r| RepoRevision {
                kind: "model".into(),
                name: "a/b".into(),
                revision: r.into(),
            }),
            created_at: 0,
        }
    }

    // Leases, retries, dedup and the cache: tests/support/contract.rs, run on both stores.

    #[test]
    fn external_queue_publishes_each_job_once_and_records_its_result_once() {
        let dir = tempfile::tempdir().unwrap();
        let db = SqliteDb::open(&dir.path().join("db")).unwrap();
        db.submit(&spec("n1", Some("rev1")), 10).unwrap();
        db.submit(&spec("n2", None), 10).unwrap();
        let ids = |v: Vec<JobSpec>| v.into_iter().map(|s| s.id).collect::<Vec<_>>();
        assert_eq!(ids(db.unpublished(10).unwrap()), ["n1", "n2"]);
        db.mark_published("n1").unwrap();
        db.mark_published("n1").unwrap();
        assert_eq!(ids(db.unpublished(10).unwrap()), ["n2"]);
        let result = JobResult {
            format: FORMAT_VERSION,
            id: "n1".into(),
            attempt: Some(2),
            elapsed_ms: None,
            outcome: Outcome::Done {
                verdict: "malicious".into(),
                report: serde_json::json!({"files": [{"path": "a", "findings": [{"rule": "PKL001"}]}]}),
            },
        };
        assert!(db.finish(&result, 5).unwrap());
        // The same result again (a redelivered job scanned twice) changes nothing.
        assert!(!db.finish(&result, 5).unwrap());
        let j = db.job("n1").unwrap().unwrap();
        assert_eq!(
            (j.status, j.attempts, j.verdict.as_deref()),
            (JobStatus::Done, 2, Some("malicious"))
        );
        let findings: i64 = db
            .conn()
            .query_row("SELECT count(*) FROM findings WHERE job_id = 'n1'", [], |r| {
                r.get(0)
            })
            .unwrap();
        assert_eq!(findings, 1);
        assert_eq!(db.depth().unwrap().queued, 1);
    }
}
