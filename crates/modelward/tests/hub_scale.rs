//! The driver of `bench/hub_scale.sh` (a benchmark, not a test: ignored by `cargo test`).
//!
//! A simulated Hub (the loopback Hub of `crates/modelward_remote/tests/support`, every request
//! answered after `HUB_SCALE_LATENCY_MS`) serving `HUB_SCALE_REPOS` synthetic repositories in
//! realistic layouts, a real `nats-server -js`, `modelward serve --nats` and
//! `HUB_SCALE_WORKERS` real `modelward worker` processes (`--concurrency
//! HUB_SCALE_CONCURRENCY`; `MODELWARD_BIN` selects the binary). `HUB_SCALE_FLAKY_PERMILLE`:
//! that share of repositories answers 503 once per file (an error rate the client retries). Every repository is submitted
//! through the HTTP API; the clock runs from the first submission to the last recorded result.
//! Prints one JSON line of measurements.

#[path = "../../modelward_remote/tests/support/mod.rs"]
mod hub;
mod serve_support;

use serve_support::nats::{NatsServer, start_worker};
use serve_support::*;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

const REV: &str = "0123456789abcdef0123456789abcdef01234567";

fn env_or(k: &str, d: u64) -> u64 {
    std::env::var(k).ok().and_then(|v| v.parse().ok()).unwrap_or(d)
}

fn lfs(path: &str, c: Arc<hub::Content>) -> hub::TestFile {
    let sha = sha256_hex(&c.to_vec());
    hub::TestFile::new(path, c, true).with_oid(&sha)
}

fn small(path: &str, c: Arc<hub::Content>) -> hub::TestFile {
    let oid = sha256_hex(&c.to_vec())[..40].to_owned();
    hub::TestFile::new(path, c, false).with_oid(&oid)
}

/// Repository `i`'s files: mostly distinct weights (no cache hits across repositories), the
/// shared bits a real hub shares (configs, a few copied GGUF/ONNX files, copies of one malware).
fn layout(i: u64, fixtures: &Fixtures) -> (&'static str, Vec<hub::TestFile>) {
    let config = small("config.json", fixtures.config.clone());
    match i % 10 {
        0..=3 => (
            "safetensors",
            vec![config, lfs("model.safetensors", hub::safetensors(1024 + i))],
        ),
        4 | 5 => (
            "sharded-bin",
            vec![
                config,
                small("pytorch_model.bin.index.json", fixtures.index.clone()),
                lfs(
                    "pytorch_model-00001-of-00002.bin",
                    hub::torch_zip(Some(64 + 4 * i)),
                ),
                lfs(
                    "pytorch_model-00002-of-00002.bin",
                    hub::torch_zip(Some(68 + 4 * i)),
                ),
            ],
        ),
        6 => (
            "gguf",
            vec![
                lfs("model-Q4_K_M.gguf", fixtures.gguf.clone()),
                lfs("model-Q8_0.gguf", fixtures.gguf_be.clone()),
            ],
        ),
        7 => (
            "onnx-external",
            vec![
                config,
                lfs("model.onnx", fixtures.onnx.clone()),
                lfs("ok_external_same_dir.onnx.data", fixtures.onnx_data.clone()),
            ],
        ),
        8 => (
            "auto_map",
            vec![
                small("config.json", hub::config_json()),
                small("modeling_evil.py", fixtures.modeling.clone()),
                lfs("model.safetensors", hub::safetensors(1024 + i)),
            ],
        ),
        _ if i % 100 == 9 => (
            "malicious",
            vec![config, lfs("pytorch_model.bin", fixtures.malicious.clone())],
        ),
        _ => (
            "safetensors",
            vec![config, lfs("model.safetensors", hub::safetensors(1024 + i))],
        ),
    }
}

struct Fixtures {
    config: Arc<hub::Content>,
    index: Arc<hub::Content>,
    gguf: Arc<hub::Content>,
    gguf_be: Arc<hub::Content>,
    onnx: Arc<hub::Content>,
    onnx_data: Arc<hub::Content>,
    modeling: Arc<hub::Content>,
    malicious: Arc<hub::Content>,
}

fn metric(base: &str, name: &str) -> f64 {
    get(&format!("{base}/metrics"), None)
        .body
        .lines()
        .filter(|l| l.starts_with(name))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[test]
#[ignore = "benchmark driver: run by bench/hub_scale.sh"]
fn hub_scale() {
    let repos = env_or("HUB_SCALE_REPOS", 1000);
    let workers = env_or("HUB_SCALE_WORKERS", 1);
    let concurrency = env_or("HUB_SCALE_CONCURRENCY", 32);
    let latency = env_or("HUB_SCALE_LATENCY_MS", 50);
    // Per mille of repositories whose every file answers 503 once before serving (retried).
    let flaky = env_or("HUB_SCALE_FLAKY_PERMILLE", 0);
    let nats = NatsServer::start().expect("nats-server is needed (apt-get install nats-server)");
    let fx = Fixtures {
        config: hub::Content::bytes(
            br#"{"architectures": ["BertModel"], "model_type": "bert", "hidden_size": 768}"#.to_vec(),
        ),
        index: hub::Content::bytes(
            br#"{"metadata": {"total_size": 1}, "weight_map": {"w": "pytorch_model-00001-of-00002.bin"}}"#
                .to_vec(),
        ),
        gguf: hub::Content::bytes(hub::read_fixture("tests/fixtures/gguf/ok_tiny_model_v3.gguf")),
        gguf_be: hub::Content::bytes(hub::read_fixture(
            "tests/fixtures/gguf/ok_tiny_model_big_endian.gguf",
        )),
        onnx: hub::Content::bytes(hub::read_fixture("tests/fixtures/onnx/ok_external_same_dir.onnx")),
        onnx_data: hub::Content::bytes(hub::read_fixture(
            "tests/fixtures/onnx/ok_external_same_dir.onnx.data",
        )),
        modeling: hub::Content::bytes(
            b"import torch\nclass EvilModel(torch.nn.Module):\n    pass\n".to_vec(),
        ),
        malicious: hub::Content::bytes(std::fs::read(repo_root().join("demo/model.bin")).unwrap()),
    };
    let mut builder = hub::Server::builder().latency(Duration::from_millis(latency));
    let mut kinds: BTreeMap<&str, u64> = BTreeMap::new();
    for i in 0..repos {
        let (kind, files) = layout(i, &fx);
        *kinds.entry(kind).or_default() += 1;
        let mut r = hub::Repo::new("models", &format!("sim{}/repo{i}", i % 97), files);
        r.revisions = vec![REV.into()];
        // Spread over the layouts: i * 7919 is a permutation of the residues mod 1000.
        if (i * 7919) % 1000 < flaky {
            r.flaky = 1;
        }
        builder = builder.repo(r);
    }
    let fake = builder.start();
    let data = tempfile::tempdir().unwrap();
    let env = [("HF_ENDPOINT", fake.hub.as_str())];
    let server = start(
        data.path(),
        &["--nats", &nats.url(), "--max-queue", "10000000"],
        &env,
    );
    let c = concurrency.to_string();
    let _workers: Vec<_> = (0..workers)
        .map(|_| start_worker(&nats.url(), data.path(), &["--concurrency", &c], &env))
        .collect();
    // Let the workers connect before the clock starts.
    std::thread::sleep(Duration::from_secs(2));
    fake.clear_log();
    let started = Instant::now();
    // Submitted by 8 clients at once, as a hub's webhooks would arrive.
    let ids: Vec<String> = std::thread::scope(|scope| {
        let clients: Vec<_> = (0..8u64)
            .map(|c| {
                let server = &server;
                scope.spawn(move || {
                    (c..repos)
                        .step_by(8)
                        .map(|i| {
                            let r = post_json(
                                &server.url("/v1/scans"),
                                &format!("{{\"source\":\"hf://sim{}/repo{i}@{REV}\"}}", i % 97),
                                &[],
                            );
                            assert_eq!(r.status, 202, "{}", r.body);
                            r.json()["id"].as_str().unwrap().to_owned()
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        clients.into_iter().flat_map(|c| c.join().unwrap()).collect()
    });
    let submitted = started.elapsed();
    while (metric(&server.base, "modelward_scans_total{") as u64) < repos {
        assert!(
            started.elapsed() < Duration::from_secs(3600),
            "not done in an hour"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let elapsed = started.elapsed().as_secs_f64();
    let requests = fake.log().len() as f64;
    // Totals from the reports (not timed).
    let (mut bytes, mut files, mut cached) = (0u64, 0u64, 0u64);
    let mut verdicts: BTreeMap<String, u64> = BTreeMap::new();
    for id in &ids {
        let job = get(&server.url(&format!("/v1/scans/{id}")), None).json();
        *verdicts
            .entry(job["verdict"].as_str().unwrap_or("?").to_owned())
            .or_default() += 1;
        bytes += job["report"]["summary"]["bytes_transferred"]
            .as_u64()
            .unwrap_or(0);
        for f in job["report"]["files"].as_array().into_iter().flatten() {
            files += 1;
            if f["bytes_read"] == 0 {
                cached += 1;
            }
        }
    }
    let per_s = repos as f64 / elapsed;
    println!(
        "{}",
        serde_json::json!({
            "repos": repos, "workers": workers, "concurrency_per_worker": concurrency,
            "latency_ms": latency, "flaky_permille": flaky, "seconds": (elapsed * 100.0).round() / 100.0,
            "submit_seconds": (submitted.as_secs_f64() * 100.0).round() / 100.0,
            "repos_per_s": (per_s * 10.0).round() / 10.0,
            "requests_per_repo": (requests / repos as f64 * 100.0).round() / 100.0,
            "bytes_per_repo": bytes / repos,
            "files": files, "files_from_cache": cached,
            "layouts": kinds, "verdicts": verdicts,
            "hours_for_2m_repos": (2_000_000.0 / per_s / 3600.0 * 10.0).round() / 10.0,
        })
    );
}
