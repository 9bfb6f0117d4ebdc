//! The PostgreSQL store against a real server (initdb'd into a temporary folder, 127.0.0.1 on
//! a free port): the store contract (`support/contract.rs`, which SQLite keeps too), and two
//! nodes sharing one database.

mod support;

use modelward_service::postgres_store::PgDb;
use modelward_service::store::{JobQueue, Submitted};
use std::sync::Arc;
use support::contract::{self, spec};
use support::pg::PgServer;

#[test]
fn leases_dedup_cache_and_results_like_sqlite() {
    let Some(pg) = PgServer::start() else { return };
    let db = PgDb::connect(&pg.url()).unwrap();
    // Connecting again finds the tables.
    drop(PgDb::connect(&pg.url()).unwrap());
    contract::store_and_queue(&db);
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
