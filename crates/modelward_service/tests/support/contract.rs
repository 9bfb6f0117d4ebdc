//! What every `Store` + `JobQueue` + `VerdictCache` must do, run against SQLite
//! (`tests/sqlite_store.rs`) and PostgreSQL (`tests/postgres_store.rs`): one text of the
//! semantics, so the two stores cannot drift apart.
#![allow(dead_code)] // each test crate uses what it needs

use modelward_service::job::{
    FORMAT_VERSION, JobResult, JobSource, JobSpec, JobStatus, Outcome, RepoRevision,
};
use modelward_service::store::{CacheKey, JobQueue, Store, Submitted, VerdictCache};

pub fn spec(id: &str, repo: Option<&str>) -> JobSpec {
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

pub fn done(id: &str, attempt: Option<u32>) -> JobResult {
    JobResult {
        format: FORMAT_VERSION,
        id: id.into(),
        attempt,
        elapsed_ms: None,
        outcome: Outcome::Done {
            verdict: "malicious".into(),
            report: serde_json::json!({"files": [{"path": "a", "findings": [{"rule": "PKL001", "severity": "critical", "message": "m"}]}]}),
        },
    }
}

/// Dedup, the queue bound, leases that expire into retries and then a failure, results that
/// only the lease holder records, once; repository revisions; the external queue's published
/// marks; uploads in use; the verdict cache by content, engine and policy.
pub fn store_and_queue<D: Store + JobQueue + VerdictCache>(db: &D) {
    assert_eq!(
        db.submit(&spec("j1", Some("abc1234")), 10).unwrap(),
        Submitted::Queued
    );
    assert_eq!(
        db.submit(&spec("j2", Some("abc1234")), 10).unwrap(),
        Submitted::Duplicate("j1".into())
    );
    assert_eq!(db.submit(&spec("j3", None), 1).unwrap(), Submitted::Full);
    for attempt in 1..=3 {
        let l = db.lease("w", -1).unwrap().unwrap();
        assert_eq!((l.spec.id.as_str(), l.attempt), ("j1", attempt));
        let e = db.expire(3).unwrap();
        if attempt < 3 {
            assert_eq!((e.requeued, e.failed.len()), (1, 0));
        } else {
            assert_eq!(e.failed, ["j1"]);
        }
    }
    let j = db.job("j1").unwrap().unwrap();
    assert_eq!(j.status, JobStatus::Failed);
    assert!(j.reason.unwrap().contains("3 attempts"));
    assert_eq!(
        db.repo_latest("model", "a/b", Some("abc1234"))
            .unwrap()
            .unwrap()
            .spec
            .id,
        "j1"
    );
    assert!(db.repo_latest("model", "a/b", Some("other")).unwrap().is_none());

    // A stale worker cannot record a result; the lease holder does, once.
    db.submit(&spec("j4", None), 10).unwrap();
    db.lease("old", -1).unwrap().unwrap();
    db.expire(3).unwrap();
    db.lease("new", 60_000).unwrap().unwrap();
    assert!(db.renew("j4", "new", 60_000).unwrap());
    assert!(!db.renew("j4", "old", 60_000).unwrap());
    let r = done("j4", None);
    assert!(!db.complete(&r, "old", 1).unwrap());
    assert!(db.complete(&r, "new", 1).unwrap());
    assert!(!db.complete(&r, "new", 1).unwrap());
    let j = db.job("j4").unwrap().unwrap();
    assert_eq!(
        (j.status, j.verdict.as_deref()),
        (JobStatus::Done, Some("malicious"))
    );
    assert!(j.report.unwrap().contains("PKL001"));
    assert_eq!(db.recent(Some("malicious"), 10).unwrap().len(), 1);
    assert_eq!(db.recent(None, 10).unwrap().len(), 2);

    // The external queue's side: published marks, results recorded once.
    db.submit(&spec("n1", None), 10).unwrap();
    assert_eq!(
        db.unpublished(10)
            .unwrap()
            .iter()
            .map(|s| s.id.as_str())
            .collect::<Vec<_>>(),
        ["n1"]
    );
    db.mark_published("n1").unwrap();
    db.mark_published("n1").unwrap();
    assert!(db.unpublished(10).unwrap().is_empty());
    assert_eq!(db.depth().unwrap().queued, 1);
    assert!(db.finish(&done("n1", Some(2)), 3).unwrap());
    assert!(!db.finish(&done("n1", Some(3)), 3).unwrap());
    assert_eq!(db.job("n1").unwrap().unwrap().attempts, 2);
    assert_eq!(db.depth().unwrap().queued, 0);

    // Upload blobs in use.
    let mut up = spec("u1", None);
    up.source = JobSource::Upload {
        name: "m.pt".into(),
        sha256: "ab".repeat(32),
        size: 1,
    };
    db.submit(&up, 10).unwrap();
    assert!(db.blob_in_use(&"ab".repeat(32)).unwrap());
    assert!(!db.blob_in_use(&"cd".repeat(32)).unwrap());

    // The verdict cache: by content, engine and policy.
    let key = CacheKey {
        content: "sha256:00".into(),
        engine: "0.1.0".into(),
        policy: "p1".into(),
    };
    assert!(db.cached_file(&key).unwrap().is_none());
    let report = modelward_scanner::error_report("x".into(), "y".into());
    db.cache_file(&key, &report).unwrap();
    db.cache_file(&key, &report).unwrap();
    assert_eq!(db.cached_file(&key).unwrap().unwrap().path, "x");
    let other_policy = CacheKey {
        policy: "p2".into(),
        ..key
    };
    assert!(db.cached_file(&other_policy).unwrap().is_none());
}
