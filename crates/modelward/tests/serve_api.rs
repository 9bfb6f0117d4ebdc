//! `modelward serve` over real HTTP: the real binary on 127.0.0.1 (a free port, a temporary
//! data folder), a loopback Hugging Face Hub stand-in for remote sources. No network.

#[path = "../../modelward_remote/tests/support/mod.rs"]
mod hub;
mod serve_support;

use serve_support::*;
use std::io::{Read, Write};

const SECRET: &str = "webhook-secret-for-tests";
const REV: &str = "0123456789abcdef0123456789abcdef01234567";

fn demo_files() -> Vec<std::path::PathBuf> {
    let mut v: Vec<_> = std::fs::read_dir(repo_root().join("demo"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_none_or(|e| e != "md"))
        .collect();
    v.sort();
    assert!(v.len() >= 5, "the demo files are missing");
    v
}

fn rules(file: &serde_json::Value) -> Vec<String> {
    let mut r: Vec<String> = file["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| format!("{} {} {}", f["rule"], f["severity"], f["message"]))
        .collect();
    r.sort();
    r
}

#[test]
fn demo_uploads_get_the_cli_verdicts_and_the_cli_document() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), &["--workers", "2"], &[]);
    let schema: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(repo_root().join("docs/json-schema.json")).unwrap())
            .unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    let mut malicious = 0;
    for path in demo_files() {
        let name = path.file_name().unwrap().to_str().unwrap().to_owned();
        let bytes = std::fs::read(&path).unwrap();
        let r = upload(&server.base, &name, &bytes, None);
        assert_eq!(r.status, 202, "{}", r.body);
        let accepted = r.json();
        assert_eq!(accepted["status"], "queued");
        let id = accepted["id"].as_str().unwrap().to_owned();
        let job = wait_done(&server.base, &id, None);
        assert_eq!(job["status"], "done", "{job}");
        let report = &job["report"];
        assert!(
            validator.is_valid(report),
            "not the scan --format json document: {report}"
        );
        let cli = cli_report(&path);
        let (ours, theirs) = (&report["files"][0], &cli["files"][0]);
        assert_eq!(ours["verdict"], theirs["verdict"], "{name}");
        assert_eq!(ours["format"], theirs["format"], "{name}");
        assert_eq!(rules(ours), rules(theirs), "{name}");
        assert_eq!(ours["path"], name.as_str());
        assert_eq!(job["verdict"], theirs["verdict"]);
        if ours["verdict"] == "malicious" {
            malicious += 1;
        }
        // The same bytes under another name: judged once, answered from the cache.
        let again = upload(&server.base, &format!("copy-of-{name}"), &bytes, None).json();
        let job2 = wait_done(&server.base, again["id"].as_str().unwrap(), None);
        let f2 = &job2["report"]["files"][0];
        assert_eq!(f2["verdict"], theirs["verdict"]);
        assert_eq!(rules(f2).len(), rules(theirs).len());
        assert_eq!(f2["path"], format!("copy-of-{name}").as_str());
        assert_eq!(f2["bytes_read"], 0, "a cached verdict reads nothing");
        for f in f2["findings"].as_array().unwrap() {
            assert_eq!(f["location"]["path"], format!("copy-of-{name}").as_str());
        }
    }
    assert!(malicious >= 2);
    let n = demo_files().len();
    let metrics = get(&server.url("/metrics"), None);
    assert!(metrics.content_type.starts_with("text/plain"));
    let m = &metrics.body;
    assert!(m.contains(&format!("modelward_cache_hits_total {n}")), "{m}");
    assert!(m.contains(&format!("modelward_files_scanned_total {n}")), "{m}");
    assert!(
        m.contains(&format!(
            "modelward_scans_total{{verdict=\"malicious\"}} {}",
            2 * malicious
        )),
        "{m}"
    );
    assert!(
        m.contains(&format!("modelward_scan_duration_seconds_count {}", 2 * n)),
        "{m}"
    );
    assert!(m.contains("modelward_queue_depth 0"));
    let health = get(&server.url("/healthz"), None);
    assert_eq!(health.status, 200);
    assert_eq!(health.json()["status"], "ok");
    // Unknown ids and endpoints.
    assert_eq!(get(&server.url("/v1/scans/nope"), None).status, 404);
    assert_eq!(get(&server.url("/v2/whatever"), None).status, 404);
}

fn webhook_body(kind: &str, name: &str, sha: &str, scope: &str) -> String {
    serde_json::json!({
        "event": { "action": "update", "scope": scope },
        "repo": {
            "type": kind, "name": name, "id": "6412345", "private": false, "headSha": sha,
            "url": { "web": format!("https://hub.example/{name}"), "api": format!("https://hub.example/api/models/{name}") }
        },
        "updatedRefs": [{ "ref": "refs/heads/main", "oldSha": "1111111111111111111111111111111111111111", "newSha": sha }],
        "webhook": { "id": "64fe", "version": 3 }
    })
    .to_string()
}

#[test]
fn huggingface_webhook_secret_scan_cache_and_redelivery() {
    let malicious = std::fs::read(repo_root().join("demo/model.bin")).unwrap();
    let mal_sha = sha256_hex(&malicious);
    let st = hub::safetensors(1 << 16);
    let st_sha = sha256_hex(&st.to_vec());
    let files = |with_config: bool| {
        let mut v = vec![
            hub::TestFile::new("pytorch_model.bin", hub::Content::bytes(malicious.clone()), true)
                .with_oid(&mal_sha),
            hub::TestFile::new("model.safetensors", st.clone(), true).with_oid(&st_sha),
        ];
        if with_config {
            v.push(
                hub::TestFile::new("config.json", hub::config_json(), false)
                    .with_oid("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"),
            );
        }
        v
    };
    let mut evil = hub::Repo::new("models", "acme/evil", files(true));
    evil.revisions = vec![REV.into(), "main".into()];
    let mut copy = hub::Repo::new("models", "other/copy", files(false));
    copy.revisions = vec![REV.into()];
    let fake = hub::Server::builder().repo(evil).repo(copy).start();
    let dir = tempfile::tempdir().unwrap();
    let server = start(
        dir.path(),
        &["--webhook-secret", SECRET],
        &[("HF_ENDPOINT", &fake.hub)],
    );
    let url = server.url("/v1/webhooks/huggingface");
    let body = webhook_body("model", "acme/evil", REV, "repo.content");

    // Refused: no secret, a wrong one, one a byte short.
    for headers in [
        vec![],
        vec![("X-Webhook-Secret", "wrong")],
        vec![("X-Webhook-Secret", &SECRET[1..])],
    ] {
        let r = post_json(&url, &body, &headers);
        assert_eq!(r.status, 401, "{}", r.body);
    }
    assert!(fake.log().is_empty(), "a refused webhook fetched something");
    assert_eq!(get(&server.url("/v1/repos/acme/evil"), None).status, 404);

    // Accepted: queued, scanned through the stand-in Hub.
    let auth = [("X-Webhook-Secret", SECRET)];
    let r = post_json(&url, &body, &auth);
    assert_eq!(r.status, 202, "{}", r.body);
    let id = r.json()["id"].as_str().unwrap().to_owned();
    let job = wait_done(&server.base, &id, None);
    assert_eq!(job["status"], "done", "{job}");
    assert_eq!(job["verdict"], "malicious");
    assert_eq!(job["repo"]["name"], "acme/evil");
    assert_eq!(job["repo"]["revision"], REV);
    let files_seen: Vec<&str> = job["report"]["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["path"].as_str().unwrap())
        .collect();
    assert_eq!(
        files_seen,
        [
            format!("hf://acme/evil@{REV}/config.json"),
            format!("hf://acme/evil@{REV}/model.safetensors"),
            format!("hf://acme/evil@{REV}/pytorch_model.bin"),
        ]
    );
    let by_path = |j: &serde_json::Value, suffix: &str| {
        j["report"]["files"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["path"].as_str().unwrap().ends_with(suffix))
            .cloned()
            .unwrap()
    };
    assert_eq!(by_path(&job, "pytorch_model.bin")["verdict"], "malicious");
    assert_eq!(by_path(&job, "config.json")["verdict"], "suspicious");
    assert!(
        fake.log()
            .iter()
            .any(|l| l.target.contains("/api/models/acme/evil/tree/"))
    );

    // Redelivered (the Hub retries; a replay from its activity tab): nothing new is queued.
    fake.clear_log();
    for _ in 0..3 {
        let r = post_json(&url, &body, &auth);
        assert_eq!(r.status, 200, "{}", r.body);
        let v = r.json();
        assert_eq!(v["id"], id.as_str());
        assert_eq!(v["duplicate"], true);
    }
    std::thread::sleep(std::time::Duration::from_millis(500));
    assert!(
        fake.log().is_empty(),
        "a redelivery fetched something: {:?}",
        fake.log()
    );
    let repo = get(&server.url(&format!("/v1/repos/acme/evil?revision={REV}")), None);
    assert_eq!(repo.status, 200);
    assert_eq!(repo.json()["id"], id.as_str());
    assert_eq!(
        get(&server.url("/v1/repos/acme/evil"), None).json()["verdict"],
        "malicious"
    );
    assert_eq!(
        get(&server.url("/v1/repos/acme/evil?revision=feedface"), None).status,
        404
    );
    let recent = get(&server.url("/"), None).body;
    assert_eq!(
        recent.matches("/scans/").count(),
        1,
        "one job for four deliveries"
    );

    // Another repository with the same LFS files: judged by the listing's sha256, not a byte of
    // them is fetched.
    fake.clear_log();
    let r = post_json(
        &url,
        &webhook_body("model", "other/copy", REV, "repo.content"),
        &auth,
    );
    assert_eq!(r.status, 202, "{}", r.body);
    let job2 = wait_done(&server.base, r.json()["id"].as_str().unwrap(), None);
    assert_eq!(job2["verdict"], "malicious");
    let cached = by_path(&job2, "pytorch_model.bin");
    assert_eq!(
        cached["path"],
        format!("hf://other/copy@{REV}/pytorch_model.bin").as_str()
    );
    assert_eq!(cached["bytes_read"], 0);
    assert_eq!(cached["findings"][0]["location"]["path"], cached["path"]);
    let log = fake.log();
    assert!(
        log.iter()
            .all(|l| !l.target.contains("resolve") && l.listener == "hub"),
        "{log:?}"
    );
    assert!(
        log.iter()
            .any(|l| l.target.contains("/api/models/other/copy/tree/"))
    );

    // Events that are not content updates are acknowledged and ignored; junk is a 400.
    let r = post_json(
        &url,
        &webhook_body("model", "acme/evil", REV, "discussion"),
        &auth,
    );
    assert_eq!(r.status, 200);
    assert!(r.json()["ignored"].is_string());
    assert_eq!(post_json(&url, "{\"event\":", &auth).status, 400);
    let r = post_json(
        &url,
        &webhook_body("model", "../../etc", REV, "repo.content"),
        &auth,
    );
    assert_eq!(r.status, 400);
    let big = format!("{{\"pad\":\"{}\"}}", "x".repeat(300 << 10));
    assert_eq!(post_json(&url, &big, &auth).status, 413);

    // The same scan through the API: {"source": "hf://..."}.
    let r = post_json(
        &server.url("/v1/scans"),
        &format!("{{\"source\":\"hf://acme/evil@{REV}\"}}"),
        &[],
    );
    assert_eq!(r.status, 202, "{}", r.body);
    let job3 = wait_done(&server.base, r.json()["id"].as_str().unwrap(), None);
    assert_eq!(job3["verdict"], "malicious");
    assert_eq!(job3["report"]["files"].as_array().unwrap().len(), 3);
    for bad in [
        r#"{"source":"file:///etc/passwd"}"#,
        r#"{"source":"/etc/passwd"}"#,
        r#"{"src":"x"}"#,
        "[]",
    ] {
        let r = post_json(&server.url("/v1/scans"), bad, &[]);
        assert_eq!(r.status, 400, "{bad}: {}", r.body);
    }
}

#[test]
fn limits_tokens_and_loopback() {
    let dir = tempfile::tempdir().unwrap();
    // No token: only loopback.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_modelward"))
        .args(["serve", "--listen", "0.0.0.0:0", "--data"])
        .arg(dir.path())
        .env_remove("MODELWARD_API_TOKENS")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("refusing to listen on 0.0.0.0"));
    // A malformed token list is refused.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_modelward"))
        .args(["serve", "--listen", "127.0.0.1:0", "--data"])
        .arg(dir.path())
        .env("MODELWARD_API_TOKENS", "justatokenwithoutrole")
        .output()
        .unwrap();
    assert!(!out.status.success());

    let (admin, ro) = ("admin-token-0123456789", "read-only-token-0123456789");
    let tokens = format!("admin:{admin},ro:{ro}");
    let server = start(
        dir.path(),
        &["--max-upload", "1000"],
        &[("MODELWARD_API_TOKENS", &tokens)],
    );
    let bytes = std::fs::read(repo_root().join("demo/model.bin")).unwrap();
    assert_eq!(upload(&server.base, "m", &bytes, None).status, 401);
    assert_eq!(
        upload(&server.base, "m", &bytes, Some("admin-token-012345678")).status,
        401
    );
    assert_eq!(upload(&server.base, "m", &bytes, Some(ro)).status, 403);
    let r = upload(&server.base, "m", &bytes, Some(admin));
    assert_eq!(r.status, 202);
    let id = r.json()["id"].as_str().unwrap().to_owned();
    assert_eq!(get(&server.url(&format!("/v1/scans/{id}")), None).status, 401);
    assert_eq!(wait_done(&server.base, &id, Some(ro))["verdict"], "malicious");
    assert_eq!(get(&server.url("/metrics"), None).status, 401);
    assert_eq!(get(&server.url("/metrics"), Some(ro)).status, 200);
    assert_eq!(get(&server.url("/"), None).status, 401);
    assert_eq!(get(&server.url("/"), Some(ro)).status, 200);
    assert_eq!(get(&server.url("/healthz"), None).status, 200);
    // Browsers: Basic with the token as password.
    let basic = {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD.encode(format!("anyone:{ro}"))
    };
    let r = agent()
        .get(server.url("/"))
        .header("Authorization", format!("Basic {basic}"))
        .call()
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);

    // Upload limit: by the declared length, and by the bytes when the length is not declared.
    let r = upload(&server.base, "big", &vec![0u8; 1001], Some(admin));
    assert_eq!(r.status, 413, "{}", r.body);
    let mut s = std::net::TcpStream::connect(server.base.trim_start_matches("http://")).unwrap();
    write!(
        s,
        "POST /v1/scans HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {admin}\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    // The server may answer 413 and close as soon as the bytes pass the limit, before the
    // client has written them all: a failed write here is that answer arriving early.
    for _ in 0..3 {
        let _ = write!(s, "200\r\n{}\r\n", "A".repeat(0x200));
    }
    let _ = s.write_all(b"0\r\n\r\n");
    let mut answer = String::new();
    let _ = s.read_to_string(&mut answer);
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    // A 2^60-byte claim is refused before a byte is read.
    let mut s = std::net::TcpStream::connect(server.base.trim_start_matches("http://")).unwrap();
    write!(
        s,
        "POST /v1/scans HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {admin}\r\nContent-Length: {}\r\nConnection: close\r\n\r\nPK",
        1u64 << 60
    )
    .unwrap();
    let mut answer = String::new();
    let _ = s.read_to_string(&mut answer);
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(
        std::fs::read_dir(dir.path().join("tmp"))
            .unwrap()
            .next()
            .is_none(),
        "partial uploads are removed"
    );
    // JSON bodies and headers.
    let big = format!("{{\"source\":\"hf://a/b\",\"x\":\"{}\"}}", "x".repeat(70 << 10));
    let r = post_json(
        &server.url("/v1/scans"),
        &big,
        &[("Authorization", &format!("Bearer {admin}"))],
    );
    assert_eq!(r.status, 413);
    let r = agent()
        .get(server.url("/healthz"))
        .header("X-Padding", "p".repeat(20 << 10))
        .call()
        .unwrap();
    assert_eq!(r.status().as_u16(), 431);
    assert_eq!(get(&server.url("/healthz"), None).status, 200);
}

/// A job whose source never answers holds the only worker: the queue fills (429 with
/// Retry-After); SIGTERM stops the service within the grace period and gives the lease back;
/// a restart finishes every accepted job.
#[test]
fn back_pressure_graceful_shutdown_and_restart() {
    let hole = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let hole_addr = hole.local_addr().unwrap();
    let accepted = std::sync::Arc::new(std::sync::Mutex::new(Some(Vec::new())));
    let acc = accepted.clone();
    std::thread::spawn(move || {
        for c in hole.incoming().flatten() {
            // Held open and never answered; once the test says so, closed at once.
            if let Some(held) = acc.lock().unwrap().as_mut() {
                held.push(c);
            }
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let args = ["--workers", "1", "--max-queue", "2", "--shutdown-grace-secs", "1"];
    let mut server = start(dir.path(), &args, &[]);
    let r = post_json(
        &server.url("/v1/scans"),
        &format!("{{\"source\":\"http://{hole_addr}/model.pt\"}}"),
        &[],
    );
    assert_eq!(r.status, 202);
    let stuck = r.json()["id"].as_str().unwrap().to_owned();
    let t0 = std::time::Instant::now();
    while get(&server.url(&format!("/v1/scans/{stuck}")), None).json()["status"] != "running" {
        assert!(t0.elapsed().as_secs() < 30);
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let demo = std::fs::read(repo_root().join("demo/clean_checkpoint.pt")).unwrap();
    let mut ids = vec![stuck.clone()];
    for i in 0..2 {
        let r = upload(&server.base, &format!("q{i}"), &demo, None);
        assert_eq!(r.status, 202);
        ids.push(r.json()["id"].as_str().unwrap().to_owned());
    }
    let full = upload(&server.base, "q3", &demo, None);
    assert_eq!(full.status, 429, "{}", full.body);
    assert!(full.retry_after.is_some_and(|s| s.parse::<u64>().is_ok()));
    assert!(
        get(&server.url("/metrics"), None)
            .body
            .contains("modelward_rejected_queue_full_total 1")
    );

    let t = std::time::Instant::now();
    let status = server.terminate();
    assert!(
        status.success(),
        "{status:?}: {:?}",
        server.stderr.lock().unwrap()
    );
    assert!(t.elapsed().as_secs() < 15, "shutdown took {:?}", t.elapsed());
    drop(server);

    // The source now refuses connections: the job ends with an error verdict, not a hang.
    accepted.lock().unwrap().take();
    let server = start(dir.path(), &["--workers", "1"], &[]);
    for id in &ids {
        let job = wait_done(&server.base, id, None);
        assert_eq!(job["status"], "done", "{job}");
    }
    let stuck_job = get(&server.url(&format!("/v1/scans/{stuck}")), None).json();
    assert_eq!(
        stuck_job["attempts"], 1,
        "a released lease does not count as an attempt"
    );
}
