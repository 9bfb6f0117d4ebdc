//! Crash safety: SIGKILL the server while scans are in flight, restart it on the same data
//! folder, and every accepted job finishes exactly once.

mod serve_support;

use serve_support::hostile::many_members;
use serve_support::*;
use std::time::{Duration, Instant};

#[test]
fn sigkill_mid_scan_then_every_accepted_job_finishes_once() {
    let dir = tempfile::tempdir().unwrap();
    let args = ["--workers", "1", "--lease-secs", "2", "--max-attempts", "3"];
    let demo = std::fs::read(repo_root().join("demo/malicious_checkpoint.pt")).unwrap();
    // Distinct content (no cache hits) that takes a while to judge, made before the server
    // starts so the uploads outrun the scans.
    let payloads: Vec<Vec<u8>> = (0..30)
        .map(|i| {
            if i % 3 == 0 {
                demo.clone()
            } else {
                many_members(i, 10_000)
            }
        })
        .collect();
    let mut server = start(dir.path(), &args, &[]);
    let mut ids = Vec::new();
    for (i, bytes) in payloads.iter().enumerate() {
        let r = upload(&server.base, &format!("f{i}"), bytes, None);
        assert_eq!(r.status, 202, "{}", r.body);
        ids.push(r.json()["id"].as_str().unwrap().to_owned());
    }
    // Wait until some jobs are done and some are running, then kill -9.
    let t0 = Instant::now();
    let running_at_kill = loop {
        let statuses: Vec<String> = ids
            .iter()
            .map(|id| {
                get(&server.url(&format!("/v1/scans/{id}")), None).json()["status"]
                    .as_str()
                    .unwrap()
                    .to_owned()
            })
            .collect();
        let done = statuses.iter().filter(|s| *s == "done").count();
        let running: Vec<String> = ids
            .iter()
            .zip(&statuses)
            .filter(|(_, s)| *s == "running")
            .map(|(id, _)| id.clone())
            .collect();
        if done >= 1 && !running.is_empty() && done < ids.len() - 2 {
            server.kill9();
            break running;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(120),
            "never caught scans in flight: {statuses:?}"
        );
        std::thread::sleep(Duration::from_millis(10));
    };
    eprintln!("killed with {} scans in flight", running_at_kill.len());
    drop(server);

    let server = start(dir.path(), &args, &[]);
    let db = rusqlite::Connection::open(dir.path().join("modelward.sqlite3")).unwrap();
    for id in &ids {
        let job = wait_done(&server.base, id, None);
        assert_eq!(job["status"], "done", "{job}");
        // Exactly once: one result row, its findings recorded once.
        let in_report: usize = job["report"]["files"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["findings"].as_array().unwrap().len())
            .sum();
        let rows: i64 = db
            .query_row("SELECT count(*) FROM findings WHERE job_id = ?1", [id], |r| {
                r.get(0)
            })
            .unwrap();
        assert_eq!(
            rows as usize, in_report,
            "job {id}'s result was recorded {rows} vs {in_report}"
        );
    }
    for id in &running_at_kill {
        let job = get(&server.url(&format!("/v1/scans/{id}")), None).json();
        // Unless it finished in the instant before the kill, it ran again after the restart.
        assert!(job["attempts"].as_u64().unwrap() >= 1);
    }
    // The scan in flight at the kill (the one running then, or the next one the worker took in
    // the instant between the poll and the kill) lost its lease and ran again.
    let attempts: u64 = ids
        .iter()
        .map(|id| {
            get(&server.url(&format!("/v1/scans/{id}")), None).json()["attempts"]
                .as_u64()
                .unwrap()
        })
        .sum();
    assert!(
        attempts > ids.len() as u64,
        "no scan in flight at the kill was run again"
    );
    let metrics = get(&server.url("/metrics"), None).body;
    assert!(!metrics.contains("modelward_leases_expired_total 0"), "{metrics}");
    let jobs: i64 = db
        .query_row("SELECT count(*) FROM jobs", [], |r| r.get(0))
        .unwrap();
    assert_eq!(jobs as usize, ids.len(), "nothing lost, nothing extra");
}
