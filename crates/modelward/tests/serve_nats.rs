//! `modelward serve --nats` with real `modelward worker` processes and a real `nats-server -js`
//! (127.0.0.1, free port, temporary store), remote sources from the loopback Hub stand-in.
//! The HTTP API is the one of the embedded queue; these tests talk only HTTP to the service.

#[path = "../../modelward_remote/tests/support/mod.rs"]
mod hub;
mod serve_support;

use serve_support::nats::{NatsServer, start_worker};
use serve_support::*;
use std::net::TcpStream;
use std::time::Duration;

const SECRET: &str = "webhook-secret-for-tests";
const REV: &str = "0123456789abcdef0123456789abcdef01234567";

fn webhook_body(name: &str, sha: &str) -> String {
    serde_json::json!({
        "event": { "action": "update", "scope": "repo.content" },
        "repo": {
            "type": "model", "name": name, "id": "6412345", "private": false, "headSha": sha,
            "url": { "web": format!("https://hub.example/{name}"), "api": format!("https://hub.example/api/models/{name}") }
        },
        "updatedRefs": [{ "ref": "refs/heads/main", "oldSha": "1111111111111111111111111111111111111111", "newSha": sha }],
        "webhook": { "id": "64fe", "version": 3 }
    })
    .to_string()
}

/// `modelward_scans_total` summed over verdicts: results the service recorded.
fn scans_recorded(base: &str) -> u64 {
    get(&format!("{base}/metrics"), None)
        .body
        .lines()
        .filter(|l| l.starts_with("modelward_scans_total{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64
}

fn file_names(job: &serde_json::Value) -> Vec<String> {
    job["report"]["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["path"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn uploads_webhooks_and_the_shared_cache_through_jetstream() {
    let Some(nats) = NatsServer::start() else { return };
    let malicious = std::fs::read(repo_root().join("demo/model.bin")).unwrap();
    let mal_sha = sha256_hex(&malicious);
    let content = hub::Content::bytes(malicious.clone());
    let shared = || hub::TestFile::new("pytorch_model.bin", content.clone(), true).with_oid(&mal_sha);
    let mut fake = hub::Server::builder();
    for i in 0..5 {
        let mut r = hub::Repo::new("models", &format!("org{i}/copy"), vec![shared()]);
        r.revisions = vec![REV.into()];
        fake = fake.repo(r);
    }
    let fake = fake.start();
    let dir = tempfile::tempdir().unwrap();
    let server = start(
        dir.path(),
        &["--nats", &nats.url(), "--webhook-secret", SECRET],
        &[("HF_ENDPOINT", &fake.hub)],
    );
    let workers: Vec<_> = (0..2)
        .map(|_| {
            start_worker(
                &nats.url(),
                dir.path(),
                &["--concurrency", "1"],
                &[("HF_ENDPOINT", &fake.hub)],
            )
        })
        .collect();

    // Uploads: the CLI's verdicts, through the queue.
    for name in ["model.bin", "clean_checkpoint.pt", "malicious_checkpoint.pt"] {
        let path = repo_root().join("demo").join(name);
        let r = upload(&server.base, name, &std::fs::read(&path).unwrap(), None);
        assert_eq!(r.status, 202, "{}", r.body);
        assert_eq!(r.json()["status"], "queued");
        let job = wait_done(&server.base, r.json()["id"].as_str().unwrap(), None);
        assert_eq!(job["status"], "done", "{job}");
        let cli = cli_report(&path);
        assert_eq!(
            job["report"]["files"][0]["verdict"], cli["files"][0]["verdict"],
            "{name}"
        );
        assert_eq!(job["attempts"], 1);
        if name == "model.bin" {
            assert!(job["report"]["files"][0]["bytes_read"].as_u64().unwrap() > 0);
        }
    }

    // The same bytes in five repositories (webhooks): judged once, by the upload above; every
    // worker answers from the JetStream bucket by the listing's LFS sha256, and not a byte of
    // the file is fetched. The first webhook is delivered four times: one job, one scan.
    fake.clear_log();
    let url = server.url("/v1/webhooks/huggingface");
    let auth = [("X-Webhook-Secret", SECRET)];
    let body = webhook_body("org0/copy", REV);
    let r = post_json(&url, &body, &auth);
    assert_eq!(r.status, 202, "{}", r.body);
    let first = r.json()["id"].as_str().unwrap().to_owned();
    for _ in 0..3 {
        let again = post_json(&url, &body, &auth);
        assert_eq!(again.status, 200, "{}", again.body);
        assert_eq!(again.json()["id"], first.as_str());
        assert_eq!(again.json()["duplicate"], true);
    }
    let mut ids = vec![first.clone()];
    ids.extend((1..5).map(|i| {
        let r = post_json(&url, &webhook_body(&format!("org{i}/copy"), REV), &auth);
        assert_eq!(r.status, 202, "{}", r.body);
        r.json()["id"].as_str().unwrap().to_owned()
    }));
    for (i, id) in ids.iter().enumerate() {
        let job = wait_done(&server.base, id, None);
        assert_eq!(job["verdict"], "malicious", "{job}");
        assert_eq!(
            file_names(&job),
            [format!("hf://org{i}/copy@{REV}/pytorch_model.bin")]
        );
        let f = &job["report"]["files"][0];
        assert_eq!(f["bytes_read"], 0, "{job}");
        assert_eq!(f["findings"][0]["location"]["path"], f["path"]);
    }
    let scanned: usize = workers
        .iter()
        .map(|w| w.lines_with(&format!("scanning job {first}")).len())
        .sum();
    assert_eq!(scanned, 1, "the redelivered webhook was scanned again");
    let log = fake.log();
    assert!(
        log.iter().all(|l| !l.target.contains("resolve")),
        "a cached file was fetched: {log:?}"
    );
    assert_eq!(
        log.iter().filter(|l| l.target.contains("/tree/")).count(),
        5,
        "{log:?}"
    );
    // 3 uploads + 5 repositories, each recorded once.
    assert_eq!(scans_recorded(&server.base), 8);
}

#[test]
fn a_worker_killed_mid_scan_the_job_is_redelivered_and_completed_once() {
    let Some(nats) = NatsServer::start() else { return };
    let malicious = std::fs::read(repo_root().join("demo/model.bin")).unwrap();
    let files: Vec<hub::TestFile> = (0..4)
        .map(|i| {
            let st = hub::safetensors(1 << 10 << i);
            let sha = sha256_hex(&st.to_vec());
            hub::TestFile::new(&format!("model-{i}.safetensors"), st, true).with_oid(&sha)
        })
        .chain([
            hub::TestFile::new("pytorch_model.bin", hub::Content::bytes(malicious.clone()), true)
                .with_oid(&sha256_hex(&malicious)),
        ])
        .collect();
    let mut repo = hub::Repo::new("models", "acme/slow", files);
    repo.revisions = vec![REV.into()];
    // Every request takes 500 ms: the scan of this repository takes over a second, even with
    // its files judged at once.
    let fake = hub::Server::builder()
        .repo(repo)
        .latency(Duration::from_millis(500))
        .start();
    let dir = tempfile::tempdir().unwrap();
    let env = [("HF_ENDPOINT", fake.hub.as_str())];
    let server = start(dir.path(), &["--nats", &nats.url(), "--lease-secs", "2"], &env);
    let args = ["--concurrency", "1", "--lease-secs", "2"];
    let mut first = start_worker(&nats.url(), dir.path(), &args, &env);
    let r = post_json(
        &server.url("/v1/scans"),
        &format!("{{\"source\":\"hf://acme/slow@{REV}\"}}"),
        &[],
    );
    assert_eq!(r.status, 202, "{}", r.body);
    let id = r.json()["id"].as_str().unwrap().to_owned();
    first.wait_line(
        &format!("scanning job {id} (delivery 1)"),
        Duration::from_secs(60),
    );
    std::thread::sleep(Duration::from_millis(700));
    first.kill9();
    assert_eq!(
        get(&server.url(&format!("/v1/scans/{id}")), None).json()["status"],
        "queued",
        "the killed worker's job finished anyway; the test did not kill it mid-scan"
    );
    let second = start_worker(&nats.url(), dir.path(), &args, &env);
    let job = wait_done(&server.base, &id, None);
    assert_eq!(job["status"], "done", "{job}");
    assert_eq!(job["verdict"], "malicious");
    assert_eq!(job["attempts"], 2, "{job}");
    assert_eq!(file_names(&job).len(), 5);
    second.wait_line(&format!("scanning job {id} (delivery 2)"), Duration::from_secs(5));
    // Acked: not delivered again after the ack wait.
    std::thread::sleep(Duration::from_secs(5));
    assert_eq!(second.lines_with(&format!("scanning job {id}")).len(), 1);
    assert_eq!(scans_recorded(&server.base), 1);
}

#[test]
fn the_nats_server_restarted_mid_run_nothing_is_lost() {
    let Some(mut nats) = NatsServer::start() else {
        return;
    };
    // Twelve repositories with different content (no cache hits), 100 ms per request.
    let mut fake = hub::Server::builder().latency(Duration::from_millis(100));
    for i in 0..12 {
        let st = hub::safetensors(256 + i);
        let sha = sha256_hex(&st.to_vec());
        let mut r = hub::Repo::new(
            "models",
            &format!("org/r{i}"),
            vec![hub::TestFile::new("model.safetensors", st, true).with_oid(&sha)],
        );
        r.revisions = vec![REV.into()];
        fake = fake.repo(r);
    }
    let fake = fake.start();
    let dir = tempfile::tempdir().unwrap();
    let env = [("HF_ENDPOINT", fake.hub.as_str())];
    let server = start(dir.path(), &["--nats", &nats.url(), "--lease-secs", "2"], &env);
    let args = ["--concurrency", "2", "--lease-secs", "2"];
    let worker = start_worker(&nats.url(), dir.path(), &args, &env);
    let submit = |i: usize| {
        let r = post_json(
            &server.url("/v1/scans"),
            &format!("{{\"source\":\"hf://org/r{i}@{REV}\"}}"),
            &[],
        );
        assert_eq!(r.status, 202, "{}", r.body);
        r.json()["id"].as_str().unwrap().to_owned()
    };
    let mut ids: Vec<String> = (0..6).map(submit).collect();
    worker.wait_line("scanning job", Duration::from_secs(60));
    // Stopped while scans are in flight; jobs submitted meanwhile are accepted (the service's
    // database holds them) and handed over once it is back.
    nats.stop();
    let done_before = ids
        .iter()
        .filter(|id| get(&server.url(&format!("/v1/scans/{id}")), None).json()["status"] == "done")
        .count();
    assert!(done_before < 6, "every job finished before the restart");
    assert!(
        TcpStream::connect(("127.0.0.1", nats.port)).is_err(),
        "nats-server still listening"
    );
    ids.extend((6..9).map(submit));
    std::thread::sleep(Duration::from_secs(2));
    nats.start_again();
    ids.extend((9..12).map(submit));
    for id in &ids {
        let job = wait_done(&server.base, id, None);
        assert_eq!(job["status"], "done", "{job}");
        assert_eq!(job["verdict"], "clean", "{job}");
    }
    let mut names: Vec<String> = ids
        .iter()
        .map(|id| file_names(&get(&server.url(&format!("/v1/scans/{id}")), None).json())[0].clone())
        .collect();
    names.sort();
    names.dedup();
    assert_eq!(names.len(), 12);
    assert_eq!(scans_recorded(&server.base), 12);
}
