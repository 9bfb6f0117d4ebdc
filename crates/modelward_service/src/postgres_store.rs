//! [`Store`] and [`JobQueue`] on PostgreSQL (`modelward serve --database postgres://…`), for
//! several service nodes sharing one database. Same tables and semantics as
//! [`crate::store::SqliteDb`]; leases are taken with `FOR UPDATE SKIP LOCKED`, so nodes never
//! take the same job, and the revision key makes a webhook delivered to two nodes at once
//! queue one job. The client is the synchronous `postgres` crate: store calls run on tokio's
//! blocking pool, like SQLite's.

use crate::job::{JobResult, JobSource, JobSpec, JobStatus, Outcome, RepoRevision, now, now_ms};
use crate::store::{
    CacheKey, Expired, JOB_COLUMNS, JobQueue, JobRecord, Lease, QueueDepth, Store, StoreError, Submitted,
    VerdictCache,
};
use modelward_diagnostics::FileReport;
use postgres::{Client, NoTls, Row};
use std::sync::Mutex;

fn pg(e: postgres::Error) -> StoreError {
    StoreError::Postgres(e.to_string())
}

/// The PostgreSQL store.
pub struct PgDb {
    client: Mutex<Client>,
}

impl PgDb {
    /// Connects (`postgres://user@host:port/db`, or `host=/run/postgresql user=…`) and creates
    /// the tables if missing. Plain TCP or a Unix socket: put TLS in front for remote servers.
    pub fn connect(url: &str) -> Result<PgDb, StoreError> {
        let mut client = Client::connect(url, NoTls).map_err(pg)?;
        // Two nodes starting at once may race on CREATE ... IF NOT EXISTS: serialise them.
        let mut tx = client.transaction().map_err(pg)?;
        tx.execute("SELECT pg_advisory_xact_lock(7316001)", &[])
            .map_err(pg)?;
        tx.batch_execute(&crate::store::schema("BIGINT", "    seq         BIGSERIAL,\n"))
            .map_err(pg)?;
        tx.commit().map_err(pg)?;
        Ok(PgDb {
            client: Mutex::new(client),
        })
    }

    fn client(&self) -> std::sync::MutexGuard<'_, Client> {
        self.client.lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn record(row: &Row, with_report: bool) -> Result<JobRecord, StoreError> {
    let spec: String = row.get(0);
    let status: String = row.get(1);
    let attempts: i32 = row.get(2);
    Ok(JobRecord {
        spec: serde_json::from_str(&spec)?,
        status: JobStatus::parse(&status).unwrap_or(JobStatus::Failed),
        attempts: attempts.max(0) as u32,
        verdict: row.get(3),
        reason: row.get(4),
        finished_at: row.get(5),
        elapsed_ms: row.get(6),
        report: if with_report { row.get(7) } else { None },
    })
}

impl VerdictCache for PgDb {
    fn cached_file(&self, key: &CacheKey) -> Result<Option<FileReport>, StoreError> {
        let row = self
            .client()
            .query_opt(
                "SELECT report FROM file_results WHERE content = $1 AND engine = $2 AND policy = $3",
                &[&key.content, &key.engine, &key.policy],
            )
            .map_err(pg)?;
        Ok(row
            .map(|r| serde_json::from_str(&r.get::<_, String>(0)))
            .transpose()?)
    }

    fn cache_file(&self, key: &CacheKey, report: &FileReport) -> Result<(), StoreError> {
        let doc = serde_json::to_string(report)?;
        self.client()
            .execute(
                "INSERT INTO file_results (content, engine, policy, report, created_at)
                 VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT (content, engine, policy) DO UPDATE SET report = EXCLUDED.report",
                &[&key.content, &key.engine, &key.policy, &doc, &now()],
            )
            .map_err(pg)?;
        Ok(())
    }
}

impl Store for PgDb {
    fn job(&self, id: &str) -> Result<Option<JobRecord>, StoreError> {
        let row = self
            .client()
            .query_opt(
                &format!("SELECT {JOB_COLUMNS}, report FROM jobs WHERE id = $1"),
                &[&id],
            )
            .map_err(pg)?;
        row.map(|r| record(&r, true)).transpose()
    }

    fn recent(&self, verdict: Option<&str>, limit: u32) -> Result<Vec<JobRecord>, StoreError> {
        let rows = self
            .client()
            .query(
                &format!(
                    "SELECT {JOB_COLUMNS} FROM jobs WHERE ($1::TEXT IS NULL OR verdict = $1)
                     ORDER BY created_at DESC, seq DESC LIMIT $2"
                ),
                &[&verdict, &i64::from(limit)],
            )
            .map_err(pg)?;
        rows.iter().map(|r| record(r, false)).collect()
    }

    fn repo_latest(
        &self,
        kind: &str,
        name: &str,
        revision: Option<&str>,
    ) -> Result<Option<JobRecord>, StoreError> {
        let row = self
            .client()
            .query_opt(
                &format!(
                    "SELECT {JOB_COLUMNS}, report FROM jobs WHERE id = (
                        SELECT job_id FROM revisions WHERE kind = $1 AND repo = $2
                        AND ($3::TEXT IS NULL OR revision = $3) ORDER BY created_at DESC LIMIT 1)"
                ),
                &[&kind, &name, &revision],
            )
            .map_err(pg)?;
        row.map(|r| record(&r, true)).transpose()
    }

    fn blob_in_use(&self, sha256: &str) -> Result<bool, StoreError> {
        let n: i64 = self
            .client()
            .query_one(
                "SELECT count(*) FROM jobs WHERE blob = $1 AND status IN ('queued', 'running')",
                &[&sha256],
            )
            .map_err(pg)?
            .get(0);
        Ok(n > 0)
    }
}

impl JobQueue for PgDb {
    fn submit(&self, spec: &JobSpec, max_queued: u64) -> Result<Submitted, StoreError> {
        let mut c = self.client();
        let mut tx = c.transaction().map_err(pg)?;
        if let Some(RepoRevision { kind, name, revision }) = &spec.repo
            && let Some(row) = tx
                .query_opt(
                    "SELECT job_id FROM revisions WHERE kind = $1 AND repo = $2 AND revision = $3",
                    &[kind, name, revision],
                )
                .map_err(pg)?
        {
            return Ok(Submitted::Duplicate(row.get(0)));
        }
        let queued: i64 = tx
            .query_one("SELECT count(*) FROM jobs WHERE status = 'queued'", &[])
            .map_err(pg)?
            .get(0);
        if queued as u64 >= max_queued {
            return Ok(Submitted::Full);
        }
        let blob = match &spec.source {
            JobSource::Upload { sha256, .. } => Some(sha256.as_str()),
            JobSource::Remote { .. } => None,
        };
        tx.execute(
            "INSERT INTO jobs (id, spec, status, created_at, blob) VALUES ($1, $2, 'queued', $3, $4)",
            &[&spec.id, &serde_json::to_string(spec)?, &now_ms(), &blob],
        )
        .map_err(pg)?;
        if let Some(RepoRevision { kind, name, revision }) = &spec.repo {
            // Another node may have queued the same revision since the check above: the key
            // decides, and this job is dropped in favour of that one.
            let won = tx
                .execute(
                    "INSERT INTO revisions (kind, repo, revision, job_id, created_at)
                     VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
                    &[kind, name, revision, &spec.id, &now_ms()],
                )
                .map_err(pg)?;
            if won == 0 {
                drop(tx);
                let row = c
                    .query_one(
                        "SELECT job_id FROM revisions WHERE kind = $1 AND repo = $2 AND revision = $3",
                        &[kind, name, revision],
                    )
                    .map_err(pg)?;
                return Ok(Submitted::Duplicate(row.get(0)));
            }
        }
        tx.commit().map_err(pg)?;
        Ok(Submitted::Queued)
    }

    fn lease(&self, owner: &str, lease_ms: i64) -> Result<Option<Lease>, StoreError> {
        let row = self
            .client()
            .query_opt(
                "UPDATE jobs SET status = 'running', attempts = attempts + 1, lease_owner = $1,
                     lease_until = $2
                 WHERE id = (SELECT id FROM jobs WHERE status = 'queued'
                             ORDER BY created_at, seq LIMIT 1 FOR UPDATE SKIP LOCKED)
                 RETURNING spec, attempts",
                &[&owner, &(now_ms() + lease_ms)],
            )
            .map_err(pg)?;
        row.map(|r| {
            let attempt: i32 = r.get(1);
            Ok(Lease {
                spec: serde_json::from_str(&r.get::<_, String>(0))?,
                attempt: attempt.max(0) as u32,
            })
        })
        .transpose()
    }

    fn renew(&self, id: &str, owner: &str, lease_ms: i64) -> Result<bool, StoreError> {
        let n = self
            .client()
            .execute(
                "UPDATE jobs SET lease_until = $3 WHERE id = $1 AND lease_owner = $2 AND status = 'running'",
                &[&id, &owner, &(now_ms() + lease_ms)],
            )
            .map_err(pg)?;
        Ok(n == 1)
    }

    fn complete(&self, result: &JobResult, owner: &str, elapsed_ms: i64) -> Result<bool, StoreError> {
        record_result(&mut self.client(), result, Some(owner), elapsed_ms)
    }

    fn release(&self, id: &str, owner: &str) -> Result<(), StoreError> {
        self.client()
            .execute(
                "UPDATE jobs SET status = 'queued', attempts = greatest(attempts - 1, 0),
                     lease_owner = NULL, lease_until = NULL
                 WHERE id = $1 AND lease_owner = $2 AND status = 'running'",
                &[&id, &owner],
            )
            .map_err(pg)?;
        Ok(())
    }

    fn expire(&self, max_attempts: u32) -> Result<Expired, StoreError> {
        let mut c = self.client();
        let mut tx = c.transaction().map_err(pg)?;
        let now = now_ms();
        let max = i32::try_from(max_attempts).unwrap_or(i32::MAX);
        let failed: Vec<String> = tx
            .query(
                "UPDATE jobs SET status = 'failed', verdict = 'failed', finished_at = $1,
                     lease_owner = NULL, lease_until = NULL,
                     reason = 'the scan did not finish in ' || attempts || ' attempts: each time its worker '
                              || 'stopped (crashed, killed or hung) before the lease expired'
                 WHERE status = 'running' AND lease_until < $1 AND attempts >= $2 RETURNING id",
                &[&now, &max],
            )
            .map_err(pg)?
            .iter()
            .map(|r| r.get(0))
            .collect();
        let requeued = tx
            .execute(
                "UPDATE jobs SET status = 'queued', lease_owner = NULL, lease_until = NULL
                 WHERE status = 'running' AND lease_until < $1",
                &[&now],
            )
            .map_err(pg)?;
        tx.commit().map_err(pg)?;
        Ok(Expired { requeued, failed })
    }

    fn depth(&self) -> Result<QueueDepth, StoreError> {
        let row = self
            .client()
            .query_one(
                "SELECT count(*) FILTER (WHERE status = 'queued'), count(*) FILTER (WHERE status = 'running')
                 FROM jobs WHERE status IN ('queued', 'running')",
                &[],
            )
            .map_err(pg)?;
        let (q, r): (i64, i64) = (row.get(0), row.get(1));
        Ok(QueueDepth {
            queued: q as u64,
            running: r as u64,
        })
    }

    fn unpublished(&self, limit: u32) -> Result<Vec<JobSpec>, StoreError> {
        let rows = self
            .client()
            .query(
                "SELECT spec FROM jobs WHERE status = 'queued'
                   AND NOT EXISTS (SELECT 1 FROM published p WHERE p.job_id = jobs.id)
                 ORDER BY created_at, seq LIMIT $1",
                &[&i64::from(limit)],
            )
            .map_err(pg)?;
        rows.iter()
            .map(|r| serde_json::from_str(&r.get::<_, String>(0)).map_err(StoreError::from))
            .collect()
    }

    fn mark_published(&self, id: &str) -> Result<(), StoreError> {
        self.client()
            .execute(
                "INSERT INTO published (job_id) VALUES ($1) ON CONFLICT DO NOTHING",
                &[&id],
            )
            .map_err(pg)?;
        Ok(())
    }

    fn finish(&self, result: &JobResult, elapsed_ms: i64) -> Result<bool, StoreError> {
        record_result(&mut self.client(), result, None, elapsed_ms)
    }
}

/// As SQLite's: the result and its findings in one transaction, only if still unfinished.
fn record_result(
    c: &mut Client,
    result: &JobResult,
    owner: Option<&str>,
    elapsed_ms: i64,
) -> Result<bool, StoreError> {
    let mut tx = c.transaction().map_err(pg)?;
    let (status, verdict, report, reason) = match &result.outcome {
        Outcome::Done { verdict, report } => ("done", Some(verdict.as_str()), Some(report.to_string()), None),
        Outcome::Failed { reason } => ("failed", Some("failed"), None, Some(reason.as_str())),
    };
    let attempt = result.attempt.map(|a| i32::try_from(a).unwrap_or(i32::MAX));
    let n = tx
        .execute(
            "UPDATE jobs SET status = $3, verdict = $4, report = $5, reason = $6, finished_at = $7,
                 elapsed_ms = $8, lease_owner = NULL, lease_until = NULL,
                 attempts = coalesce($9, attempts)
             WHERE id = $1 AND (($2::TEXT IS NOT NULL AND lease_owner = $2 AND status = 'running')
                                OR ($2::TEXT IS NULL AND status IN ('queued', 'running')))",
            &[
                &result.id,
                &owner,
                &status,
                &verdict,
                &report,
                &reason,
                &now_ms(),
                &elapsed_ms,
                &attempt,
            ],
        )
        .map_err(pg)?;
    if n != 1 {
        return Ok(false);
    }
    if let Outcome::Done { report, .. } = &result.outcome {
        let ins = tx
            .prepare(
                "INSERT INTO findings (job_id, path, rule, severity, message) VALUES ($1, $2, $3, $4, $5)",
            )
            .map_err(pg)?;
        for file in report["files"].as_array().into_iter().flatten() {
            for f in file["findings"].as_array().into_iter().flatten() {
                tx.execute(
                    &ins,
                    &[
                        &result.id,
                        &file["path"].as_str().unwrap_or(""),
                        &f["rule"].as_str().unwrap_or(""),
                        &f["severity"].as_str().unwrap_or(""),
                        &f["message"].as_str().unwrap_or(""),
                    ],
                )
                .map_err(pg)?;
            }
        }
    }
    tx.commit().map_err(pg)?;
    Ok(true)
}
