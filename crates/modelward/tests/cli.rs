//! The command line: exit codes, output formats, configuration, explain and rules.

use std::path::PathBuf;
use std::process::{Command, Output};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn modelward(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_modelward"))
        .args(args)
        .current_dir(repo())
        .env("NO_COLOR", "1")
        .output()
        .expect("run modelward")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn scanning_the_demo_files_shows_every_verdict_and_fails() {
    let o = modelward(&["scan"]);
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    let text = stdout(&o);
    assert!(text.contains("MALICIOUS"), "{text}");
    assert!(text.contains("SUSPICIOUS"), "{text}");
    assert!(
        text.contains("Summary: 7 file(s) scanned: 2 malicious, 1 suspicious, 4 clean, 0 skipped"),
        "{text}"
    );
    assert!(!text.contains('\x1b'), "NO_COLOR must give plain text");
}

#[test]
fn exit_codes_follow_the_threshold() {
    assert_eq!(
        modelward(&["scan", "demo/clean_array.npy"]).status.code(),
        Some(0)
    );
    assert_eq!(
        modelward(&["scan", "demo/custom_class.pkl"]).status.code(),
        Some(0)
    );
    assert_eq!(
        modelward(&["scan", "--fail-on", "medium", "demo/custom_class.pkl"])
            .status
            .code(),
        Some(1)
    );
    assert_eq!(
        modelward(&["scan", "--fail-on", "never", "demo/model.bin"])
            .status
            .code(),
        Some(0)
    );
    assert_eq!(modelward(&["scan", "does/not/exist"]).status.code(), Some(2));
    assert_eq!(
        modelward(&["scan", "--format", "yaml", "demo"]).status.code(),
        Some(2)
    );
}

#[test]
fn json_output_follows_the_documented_contract() {
    let o = modelward(&["scan", "--format", "json", "demo"]);
    let doc: serde_json::Value = serde_json::from_slice(&o.stdout).expect("valid JSON");
    assert_eq!(doc["schema_version"], 1);
    assert_eq!(doc["tool"]["name"], "modelward");
    let files = doc["files"].as_array().expect("files");
    assert_eq!(
        files.len(),
        8,
        "five models, a README (text), a .gitattributes, and the folder's provenance (PRV003: no model.sig)"
    );
    let bin = files
        .iter()
        .find(|f| f["path"].as_str().is_some_and(|p| p.ends_with("model.bin")))
        .expect("model.bin");
    assert_eq!(bin["format"], "pickle");
    assert_eq!(bin["verdict"], "malicious");
    assert_eq!(bin["severity"], "critical");
    let finding = &bin["findings"][0];
    assert_eq!(finding["rule"], "PKL102");
    assert_eq!(finding["location"]["offset"], 2);
    assert_eq!(finding["evidence"], "posix.system('echo modelward-fixture')");
    assert!(bin["bytes_read"].as_u64().is_some());
    assert_eq!(doc["summary"]["malicious"], 2);
}

#[test]
fn a_config_allows_a_teams_class_but_never_a_dangerous_global() {
    let dir = std::env::temp_dir().join(format!("modelward-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("tmp");
    std::fs::copy(repo().join("demo/custom_class.pkl"), dir.join("custom_class.pkl")).expect("copy");
    std::fs::copy(repo().join("demo/model.bin"), dir.join("model.bin")).expect("copy");
    std::fs::write(
        dir.join("modelward.toml"),
        "fail-on = \"medium\"\n[[allow-globals]]\nname = \"mylib.models.CustomNet\"\nreason = \"our own model class\"\n[[allow-globals]]\nname = \"mylib.never.Used\"\nreason = \"stale\"\n",
    )
    .expect("config");
    let o = modelward(&["scan", "--format", "json", dir.to_str().expect("utf8")]);
    let doc: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    let verdict = |name: &str| {
        doc["files"]
            .as_array()
            .expect("files")
            .iter()
            .find(|f| f["path"].as_str().is_some_and(|p| p.ends_with(name)))
            .map(|f| f["verdict"].clone())
    };
    assert_eq!(verdict("custom_class.pkl"), Some("clean".into()));
    assert_eq!(verdict("model.bin"), Some("malicious".into()));
    assert_eq!(o.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(
        stderr.contains("MWD003") && stderr.contains("mylib.never.Used"),
        "{stderr}"
    );
    // A broken config names its file and line.
    std::fs::write(dir.join("modelward.toml"), "fail-on = \"high\"\nbogus = 3\n").expect("config");
    let o = modelward(&["scan", dir.to_str().expect("utf8")]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("modelward.toml:2"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn explain_shows_the_call_in_pseudo_python() {
    let o = modelward(&["explain", "demo/model.bin"]);
    assert_eq!(o.status.code(), Some(0));
    let text = stdout(&o);
    assert!(text.contains("GLOBAL           'posix system'"), "{text}");
    assert!(text.contains("from posix import system"), "{text}");
    assert!(text.contains("_v0 = system('echo modelward-fixture')"), "{text}");
    assert!(text.contains("!! dangerous (PKL102)"), "{text}");
    // A member of a zip checkpoint
    let o = modelward(&[
        "explain",
        "demo/malicious_checkpoint.pt!malicious_checkpoint/data.pkl",
    ]);
    let text = stdout(&o);
    assert!(
        text.contains("system('echo modelward-fixture')") || !o.status.success(),
        "{text}"
    );
    // A benign real-writer checkpoint reads as tensor rebuilding, with nothing marked
    let o = modelward(&[
        "explain",
        "tests/fixtures/torch/state_dict_zip.pt!state_dict_zip/data.pkl",
    ]);
    let text = stdout(&o);
    assert!(
        text.contains("from torch._utils import _rebuild_tensor_v2"),
        "{text}"
    );
    assert!(!text.contains("!!"), "{text}");
}

#[test]
fn rules_are_listed_and_documented_from_the_catalog() {
    let o = modelward(&["rules"]);
    assert!(stdout(&o).contains("PKL102   critical   process-execution-global"));
    let o = modelward(&["rule", "pkl102"]);
    let text = stdout(&o);
    assert!(
        text.contains("Why it matters") && text.contains("posix"),
        "{text}"
    );
    assert_eq!(modelward(&["rule", "XYZ999"]).status.code(), Some(2));
}

#[test]
fn select_and_ignore_flags_override_the_configuration() {
    let o = modelward(&["scan", "--ignore", "PKL10", "demo/model.bin"]);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    let o = modelward(&["scan", "--select", "ARC", "demo/model.bin"]);
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(
        modelward(&["scan", "--select", "NOPE", "demo"]).status.code(),
        Some(2)
    );
}

#[test]
fn files_in_the_hugging_face_cache_are_reported_under_their_repository_names() {
    let cache = std::env::temp_dir().join(format!("modelward-hfc-{}", std::process::id()));
    let repo_dir = cache.join("models--acme--net");
    std::fs::create_dir_all(repo_dir.join("blobs")).expect("mkdir");
    std::fs::create_dir_all(repo_dir.join("snapshots/abc123")).expect("mkdir");
    std::fs::create_dir_all(repo_dir.join("refs")).expect("mkdir");
    std::fs::copy(repo().join("demo/model.bin"), repo_dir.join("blobs/deadbeef")).expect("copy");
    std::os::unix::fs::symlink(
        "../../blobs/deadbeef",
        repo_dir.join("snapshots/abc123/pytorch_model.bin"),
    )
    .expect("link");
    std::fs::write(repo_dir.join("refs/main"), "abc123").expect("ref");
    let o = Command::new(env!("CARGO_BIN_EXE_modelward"))
        .args(["scan", "--hf-cache", "--format", "json"])
        .env("HF_HUB_CACHE", &cache)
        .output()
        .expect("run");
    let doc: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    assert_eq!(doc["files"][0]["path"], "hf://acme/net@main/pytorch_model.bin");
    assert_eq!(doc["files"][0]["verdict"], "malicious");
    std::fs::remove_dir_all(&cache).ok();
}

/// A one-file HTTP server on 127.0.0.1 with real `Range` semantics; returns its URL and a count
/// of bytes it sent.
fn serve_once(body: Vec<u8>) -> (String, std::sync::Arc<std::sync::atomic::AtomicU64>) {
    use std::io::{BufRead, BufReader, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}/models/model.bin", listener.local_addr().expect("addr"));
    let sent = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let counter = sent.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().take(32) {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().expect("clone"));
            let mut range = None;
            let mut line = String::new();
            while reader.read_line(&mut line).is_ok_and(|n| n > 0) {
                if line == "\r\n" {
                    break;
                }
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("range: bytes=") {
                    let (a, b) = v.trim().split_once('-').unwrap_or(("0", ""));
                    let len = body.len() as u64;
                    let (start, end) = match (a.parse::<u64>().ok(), b.parse::<u64>().ok()) {
                        (Some(a), Some(b)) => (a, b.min(len - 1)),
                        (Some(a), None) => (a, len - 1),
                        (None, Some(n)) => (len.saturating_sub(n), len - 1),
                        _ => (0, len - 1),
                    };
                    range = Some((start, end));
                }
                line.clear();
            }
            let (status, start, end) = match range {
                Some((s, e)) => ("206 Partial Content", s, e),
                None => ("200 OK", 0, body.len() as u64 - 1),
            };
            let part = &body[start as usize..=end as usize];
            let head = format!(
                "HTTP/1.1 {status}\r\nContent-Length: {}\r\nContent-Range: bytes {start}-{end}/{}\r\nAccept-Ranges: bytes\r\nConnection: close\r\n\r\n",
                part.len(),
                body.len()
            );
            let _ = stream.write_all(head.as_bytes());
            let _ = stream.write_all(part);
            counter.fetch_add(part.len() as u64, std::sync::atomic::Ordering::Relaxed);
        }
    });
    (url, sent)
}

#[test]
fn a_url_is_scanned_over_range_requests_and_the_transfer_is_reported() {
    // The malicious demo checkpoint, served with real range semantics.
    let data = std::fs::read(repo().join("demo/malicious_checkpoint.pt")).expect("demo");
    let (url, sent) = serve_once(data.clone());
    let o = modelward(&["scan", "--format", "json", &url]);
    let doc: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    assert_eq!(o.status.code(), Some(1), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(doc["files"][0]["verdict"], "malicious", "{doc}");
    assert!(
        doc["summary"]["requests"].as_u64().is_some_and(|n| n >= 1),
        "{doc}"
    );
    assert!(sent.load(std::sync::atomic::Ordering::Relaxed) <= data.len() as u64 * 2);
}

#[test]
fn convert_writes_safetensors_for_tensors_and_refuses_payloads() {
    let out = std::env::temp_dir().join(format!("modelward-convert-{}.safetensors", std::process::id()));
    let o = modelward(&[
        "convert",
        "tests/fixtures/torch/state_dict_zip.pt",
        "-o",
        out.to_str().expect("utf8"),
        "--verify",
        "--force",
    ]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}{}",
        stdout(&o),
        String::from_utf8_lossy(&o.stderr)
    );
    let header = modelward_convert::read_header(&out).expect("a valid safetensors header");
    assert_eq!(header.tensors.len(), 3);
    std::fs::remove_file(&out).ok();
    let refused = std::env::temp_dir().join(format!("modelward-refused-{}.safetensors", std::process::id()));
    let o = modelward(&[
        "convert",
        "demo/malicious_checkpoint.pt",
        "-o",
        refused.to_str().expect("utf8"),
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stdout(&o).contains("PKL102") || String::from_utf8_lossy(&o.stderr).contains("PKL102"));
    assert!(!refused.exists(), "nothing may be written for a refused input");
}
