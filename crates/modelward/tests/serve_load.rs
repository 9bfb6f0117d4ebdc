//! Hostile load: 200 concurrent uploads mixing malicious, benign and hostile files against the
//! real server. Every one gets a verdict or a clear error, the server stays up, and its peak
//! memory stays bounded.

mod serve_support;

use serve_support::hostile::*;
use serve_support::*;
use std::sync::Arc;
use std::time::Duration;

#[test]
fn two_hundred_concurrent_hostile_uploads() {
    let demo = |n: &str| std::fs::read(repo_root().join("demo").join(n)).unwrap();
    let bombs = [zip_bomb(0), zip_bomb(1)];
    let many = [over_member_budget(0), over_member_budget(1)];
    let payload = |i: usize| -> (&'static str, Vec<u8>) {
        match i % 10 {
            0 => ("malicious", demo("model.bin")),
            1 => ("malicious", demo("malicious_checkpoint.pt")),
            2 => ("clean", demo("clean_checkpoint.pt")),
            3 => ("bomb", bombs[i % 2].clone()),
            4 => ("zip64-2^60", zip_claims_2_pow_60(i)),
            5 => ("safetensors-2^60", safetensors_claims_2_pow_60(i)),
            6 => ("12000-members", many[i % 2].clone()),
            7 => ("truncated", truncated(&demo("malicious_checkpoint.pt"))),
            8 => ("not-a-model", not_a_model(i)),
            _ => ("suspicious", demo("custom_class.pkl")),
        }
    };
    let payloads: Vec<_> = (0..200).map(payload).collect();
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), &["--workers", "2", "--max-queue", "40"], &[]);
    let base = Arc::new(server.base.clone());
    let rejected = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let threads: Vec<_> = payloads
        .into_iter()
        .enumerate()
        .map(|(i, (kind, bytes))| {
            let (base, rejected) = (base.clone(), rejected.clone());
            std::thread::spawn(move || {
                loop {
                    let r = upload(&base, &format!("{i}-{kind}"), &bytes, None);
                    match r.status {
                        202 => return (kind, r.json()["id"].as_str().unwrap().to_owned()),
                        429 => {
                            let after: u64 = r.retry_after.expect("429 without Retry-After").parse().unwrap();
                            assert!(after >= 1);
                            rejected.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                            std::thread::sleep(Duration::from_millis(500));
                        }
                        s => panic!("upload {i} ({kind}): {s} {}", r.body),
                    }
                }
            })
        })
        .collect();
    let jobs: Vec<(&str, String)> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    let mut seen = std::collections::BTreeMap::<String, u32>::new();
    for (kind, id) in &jobs {
        let job = wait_done(&server.base, id, None);
        assert_eq!(job["status"], "done", "{kind}: {job}");
        let verdict = job["verdict"].as_str().unwrap().to_owned();
        assert!(
            ["malicious", "suspicious", "clean", "skipped", "error"].contains(&verdict.as_str()),
            "{kind}: {verdict}"
        );
        let file = &job["report"]["files"][0];
        if verdict == "error" {
            assert!(
                file["error"].as_str().is_some_and(|e| !e.is_empty()),
                "an error says why: {file}"
            );
        }
        match *kind {
            "malicious" | "truncated" => assert_eq!(verdict, "malicious", "{kind}: {file}"),
            "clean" => assert_eq!(verdict, "clean", "{kind}: {file}"),
            "suspicious" => assert_eq!(verdict, "suspicious", "{kind}: {file}"),
            // Hostile containers are not passed as clean without a word: a finding says what
            // was not read, or the verdict says they are not models.
            // (A zip64 member claiming 2^60 bytes that inflates to a tiny clean pickle is judged
            // by what it holds: the engine reads compressed bytes under its own budget.)
            "bomb" | "12000-members" => {
                assert!(
                    verdict != "clean" || !file["findings"].as_array().unwrap().is_empty(),
                    "{kind}: {file}"
                )
            }
            _ => {}
        }
        *seen.entry(format!("{kind} -> {verdict}")).or_default() += 1;
    }
    eprintln!("verdicts: {seen:#?}");
    eprintln!(
        "429 answers: {}",
        rejected.load(std::sync::atomic::Ordering::Relaxed)
    );
    let mut server = server;
    assert!(
        server.is_running(),
        "the server died: {:?}",
        server.stderr.lock().unwrap()
    );
    assert_eq!(get(&server.url("/healthz"), None).status, 200);
    let peak = server.peak_rss_kib();
    eprintln!("server peak RSS (VmHWM): {} MiB", peak / 1024);
    assert!(peak < 1 << 20, "peak RSS {peak} KiB");
}
