//! The real `modelward serve` process on 127.0.0.1 (a free port, a temporary data folder) and
//! a small HTTP client for the service tests.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The binary under test; `MODELWARD_BIN` points the benchmark driver at an optimised build.
pub fn modelward_bin() -> PathBuf {
    std::env::var_os("MODELWARD_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_modelward")))
}

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A running server; killed when dropped.
pub struct Server {
    pub child: Child,
    pub base: String,
    pub data: PathBuf,
    pub stderr: Arc<Mutex<Vec<String>>>,
}

/// Starts `modelward serve --listen 127.0.0.1:0 --data DATA ARGS...` with `env`, and waits for
/// the address it prints.
pub fn start(data: &Path, args: &[&str], env: &[(&str, &str)]) -> Server {
    let mut cmd = Command::new(modelward_bin());
    cmd.args(["serve", "--listen", "127.0.0.1:0", "--data"])
        .arg(data)
        .args(args)
        .env_remove("MODELWARD_API_TOKENS")
        .env_remove("MODELWARD_WEBHOOK_SECRET")
        .env_remove("HF_TOKEN")
        .env("HF_HUB_OFFLINE", "0")
        .env("NO_PROXY", "*")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("start modelward serve");
    let stderr = child.stderr.take().unwrap();
    let lines = Arc::new(Mutex::new(Vec::new()));
    let (tx, rx) = std::sync::mpsc::channel();
    let l2 = lines.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(rest) = line.split("listening on ").nth(1) {
                let _ = tx.send(rest.split_whitespace().next().unwrap_or("").to_owned());
            }
            l2.lock().unwrap().push(line);
        }
    });
    let base = match rx.recv_timeout(Duration::from_secs(60)) {
        Ok(b) => b,
        Err(_) => {
            let _ = child.kill();
            panic!("the server did not start: {:?}", lines.lock().unwrap());
        }
    };
    Server {
        child,
        base,
        data: data.to_path_buf(),
        stderr: lines,
    }
}

impl Server {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGKILL, no chance to clean up.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM and wait for a clean exit.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.pid().to_string())
            .status();
        self.child.wait().unwrap()
    }

    /// Peak resident memory (VmHWM) in KiB.
    pub fn peak_rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmHWM")
    }

    pub fn is_running(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(120)))
        .proxy(None)
        .build()
        .into()
}

/// A response: status, headers we look at, body.
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub retry_after: Option<String>,
    pub content_type: String,
    pub body: String,
}

impl Resp {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
}

fn finish(r: Result<ureq::http::Response<ureq::Body>, ureq::Error>) -> Resp {
    let mut r = r.expect("HTTP request");
    let status = r.status().as_u16();
    let h = |k: &str| {
        r.headers()
            .get(k)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let retry_after = h("retry-after");
    let content_type = h("content-type").unwrap_or_default();
    let mut body = String::new();
    let _ = r.body_mut().as_reader().read_to_string(&mut body);
    Resp {
        status,
        retry_after,
        content_type,
        body,
    }
}

pub fn get(url: &str, token: Option<&str>) -> Resp {
    let mut req = agent().get(url);
    if let Some(t) = token {
        req = req.header("Authorization", format!("Bearer {t}"));
    }
    finish(req.call())
}

pub fn upload(base: &str, name: &str, bytes: &[u8], token: Option<&str>) -> Resp {
    let mut req = agent()
        .post(format!("{base}/v1/scans?name={}", encode(name)))
        .header("Content-Type", "application/octet-stream");
    if let Some(t) = token {
        req = req.header("Authorization", format!("Bearer {t}"));
    }
    finish(req.send(bytes))
}

pub fn post_json(url: &str, body: &str, headers: &[(&str, &str)]) -> Resp {
    let mut req = agent().post(url).header("Content-Type", "application/json");
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    finish(req.send(body.as_bytes()))
}

fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// Polls `GET /v1/scans/{id}` until done or failed.
pub fn wait_done(base: &str, id: &str, token: Option<&str>) -> serde_json::Value {
    let start = Instant::now();
    loop {
        let r = get(&format!("{base}/v1/scans/{id}"), token);
        assert_eq!(r.status, 200, "{}", r.body);
        let v = r.json();
        if v["status"] == "done" || v["status"] == "failed" {
            return v;
        }
        assert!(
            start.elapsed() < Duration::from_secs(300),
            "job {id} never finished: {v}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// What the CLI says about a file: `modelward scan --format json FILE`.
pub fn cli_report(path: &Path) -> serde_json::Value {
    let out = Command::new(modelward_bin())
        .args(["scan", "--no-config", "--no-progress", "--format", "json"])
        .arg(path)
        .output()
        .unwrap();
    serde_json::from_slice(&out.stdout).unwrap()
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
pub mod hostile;
pub mod nats;
