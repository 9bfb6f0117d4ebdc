//! The SQLite store (a real file in a temporary folder) keeps the same contract as PostgreSQL.

mod support;

use modelward_service::store::SqliteDb;
use support::contract;

#[test]
fn leases_dedup_cache_and_results() {
    let dir = tempfile::tempdir().unwrap();
    let db = SqliteDb::open(&dir.path().join("db")).unwrap();
    contract::store_and_queue(&db);
}
