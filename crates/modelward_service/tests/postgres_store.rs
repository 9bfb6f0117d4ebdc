//! The PostgreSQL store against a real server (initdb'd into a temporary folder, 127.0.0.1 on
//! a free port): the semantics of the SQLite store, and two nodes sharing one database.

mod support;

use modelward_service::job::{
    FORMAT_VERSION, JobResult, JobSource, JobSpec, JobStatus, Outcome, RepoRevision,
};
use modelward_service::postgres_store::PgDb;
use modelward_service::store::{CacheKey, JobQueue, Store, Submitted, VerdictCache};
use std::sync::Arc;
use support::pg::PgServer;

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

fn done(id: &str, attempt: Option<u32>) -> JobResult {
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

#[test]
fn leases_dedup_cache_and_results_like_sqlite() {
    let Some(pg) = PgServer::start() else { return };
    let db = PgDb::connect(&pg.url()).unwrap();
    // Connecting again finds the tables.
    drop(PgDb::connect(&pg.url()).unwrap());
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

#[test]
fn two_nodes_on_one_database_never_take_the_same_job_or_queue_a_revision_twice() {
    let Some(pg) = PgServer::start() else { return };
    let nodes: Vec<Arc<PgDb>> = (0..2)
        .map(|_| Arc::new(PgDb::connect(&pg.url()).unwrap()))
        .collect();
    for i in 0..40 {
        nodes[i % 2].submit(&spec(&format!("j{i}"), None), 1000).unwrap();
    }
    // The same revision delivered to both nodes at once, many times: one job.
    let dup: Vec<_> = (0..8)
        .map(|i| {
            let n = nodes[i % 2].clone();
            std::thread::spawn(move || n.submit(&spec(&format!("r{i}"), Some("feedface")), 1000).unwrap())
        })
        .collect();
    let outcomes: Vec<Submitted> = dup.into_iter().map(|t| t.join().unwrap()).collect();
    assert_eq!(
        outcomes.iter().filter(|o| **o == Submitted::Queued).count(),
        1,
        "{outcomes:?}"
    );
    // Both nodes lease concurrently until the queue is empty: every job exactly once.
    let takers: Vec<_> = nodes
        .iter()
        .enumerate()
        .map(|(n, db)| {
            let db = db.clone();
            std::thread::spawn(move || {
                let mut got = Vec::new();
                while let Some(l) = db.lease(&format!("node{n}"), 60_000).unwrap() {
                    got.push(l.spec.id);
                }
                got
            })
        })
        .collect();
    let mut all: Vec<String> = takers.into_iter().flat_map(|t| t.join().unwrap()).collect();
    assert_eq!(all.len(), 41);
    all.sort();
    all.dedup();
    assert_eq!(all.len(), 41, "a job was leased twice");
}
