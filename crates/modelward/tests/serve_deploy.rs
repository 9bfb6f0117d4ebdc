//! The deployment of docs/service.md, for real: PostgreSQL (initdb'd by the test), a
//! `nats-server -js`, two `modelward serve --database postgres://… --nats …` nodes and two
//! `modelward worker` processes, all on 127.0.0.1. A job submitted to one node is read from
//! the other; a webhook delivered to both nodes queues one scan.

#[path = "../../modelward_remote/tests/support/mod.rs"]
mod hub;
#[path = "../../modelward_service/tests/support/pg.rs"]
mod pg;
mod serve_support;

use serve_support::nats::{NatsServer, start_worker};
use serve_support::*;

const SECRET: &str = "webhook-secret-for-tests";
const REV: &str = "0123456789abcdef0123456789abcdef01234567";

#[test]
fn two_service_nodes_one_postgres_one_nats_two_workers() {
    let Some(pg) = pg::PgServer::start() else { return };
    let Some(nats) = NatsServer::start() else { return };
    let malicious = std::fs::read(repo_root().join("demo/model.bin")).unwrap();
    let mut repo = hub::Repo::new(
        "models",
        "acme/evil",
        vec![
            hub::TestFile::new("pytorch_model.bin", hub::Content::bytes(malicious.clone()), true)
                .with_oid(&sha256_hex(&malicious)),
        ],
    );
    repo.revisions = vec![REV.into()];
    let fake = hub::Server::builder().repo(repo).start();
    // One data folder: the shared storage for uploads the docs ask for.
    let data = tempfile::tempdir().unwrap();
    let env = [("HF_ENDPOINT", fake.hub.as_str())];
    let args = [
        "--database",
        &pg.url(),
        "--nats",
        &nats.url(),
        "--webhook-secret",
        SECRET,
    ];
    let a = start(data.path(), &args, &env);
    let b = start(data.path(), &args, &env);
    let _workers: Vec<_> = (0..2)
        .map(|_| start_worker(&nats.url(), data.path(), &["--concurrency", "1"], &env))
        .collect();

    // Uploads to node A, read from node B: the CLI's verdicts.
    for name in ["model.bin", "clean_checkpoint.pt"] {
        let path = repo_root().join("demo").join(name);
        let r = upload(&a.base, name, &std::fs::read(&path).unwrap(), None);
        assert_eq!(r.status, 202, "{}", r.body);
        let job = wait_done(&b.base, r.json()["id"].as_str().unwrap(), None);
        assert_eq!(job["status"], "done", "{job}");
        assert_eq!(
            job["report"]["files"][0]["verdict"],
            cli_report(&path)["files"][0]["verdict"]
        );
    }

    // The Hub's webhook, delivered to both nodes (a load balancer retried it): one job.
    let body = serde_json::json!({
        "event": { "action": "update", "scope": "repo.content" },
        "repo": { "type": "model", "name": "acme/evil", "id": "1", "private": false, "headSha": REV },
        "webhook": { "id": "64fe", "version": 3 }
    })
    .to_string();
    let auth = [("X-Webhook-Secret", SECRET)];
    let ra = post_json(&a.url("/v1/webhooks/huggingface"), &body, &auth);
    let rb = post_json(&b.url("/v1/webhooks/huggingface"), &body, &auth);
    assert_eq!(ra.status, 202, "{}", ra.body);
    assert_eq!(rb.status, 200, "{}", rb.body);
    assert_eq!(rb.json()["duplicate"], true);
    assert_eq!(ra.json()["id"], rb.json()["id"]);
    let id = ra.json()["id"].as_str().unwrap().to_owned();
    let job = wait_done(&a.base, &id, None);
    assert_eq!(job["verdict"], "malicious", "{job}");
    let repo = get(&b.url(&format!("/v1/repos/acme/evil?revision={REV}")), None);
    assert_eq!(repo.status, 200);
    assert_eq!(repo.json()["id"], id.as_str());
    // Both nodes list the same three scans (one database).
    for node in [&a, &b] {
        assert_eq!(get(&node.url("/"), None).body.matches("/scans/").count(), 3);
    }
}
