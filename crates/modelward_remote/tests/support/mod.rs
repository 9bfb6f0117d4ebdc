//! A fake Hugging Face Hub on 127.0.0.1 (std `TcpListener`, a thread per connection) and the
//! fixture files it serves. Nothing here touches the internet.
//!
//! Two listeners share one state: the "hub" (API, `resolve`, plain files) and a "CDN" on
//! another port (another origin), where `resolve` redirects LFS files as the real Hub does.
#![allow(dead_code)]

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

/// The token the fake Hub accepts for gated repositories.
pub const GOOD_TOKEN: &str = "hf_good_token";

// ---------------------------------------------------------------------------------------------
// Content: real bytes, or virtual files made of byte runs and generated zeros.

/// A piece of a served file.
pub enum Segment {
    Bytes(Vec<u8>),
    /// `n` zero bytes, produced on the fly.
    Zeros(u64),
}

/// A served file: segments, never materialised whole.
pub struct Content {
    segments: Vec<Segment>,
    len: u64,
}

impl Content {
    pub fn bytes(b: impl Into<Vec<u8>>) -> Arc<Content> {
        Content::virtual_file(vec![Segment::Bytes(b.into())])
    }

    pub fn virtual_file(segments: Vec<Segment>) -> Arc<Content> {
        let len = segments
            .iter()
            .map(|s| match s {
                Segment::Bytes(b) => b.len() as u64,
                Segment::Zeros(n) => *n,
            })
            .sum();
        Arc::new(Content { segments, len })
    }

    pub fn len(&self) -> u64 {
        self.len
    }

    /// Bytes `[start, end)` written to `w`.
    pub fn write_range(&self, w: &mut impl Write, start: u64, end: u64) -> std::io::Result<()> {
        let zeros = [0u8; 64 << 10];
        let mut at = 0u64;
        for s in &self.segments {
            let n = match s {
                Segment::Bytes(b) => b.len() as u64,
                Segment::Zeros(n) => *n,
            };
            let (a, b) = (start.max(at), end.min(at + n));
            if a < b {
                match s {
                    Segment::Bytes(bytes) => w.write_all(&bytes[(a - at) as usize..(b - at) as usize])?,
                    Segment::Zeros(_) => {
                        let mut left = b - a;
                        while left > 0 {
                            let k = left.min(zeros.len() as u64) as usize;
                            w.write_all(&zeros[..k])?;
                            left -= k as u64;
                        }
                    }
                }
            }
            at += n;
        }
        Ok(())
    }

    /// The whole file in memory (small files only).
    pub fn to_vec(&self) -> Vec<u8> {
        let mut v = Vec::new();
        self.write_range(&mut v, 0, self.len).unwrap();
        v
    }
}

// ---------------------------------------------------------------------------------------------
// Repositories.

pub struct TestFile {
    pub path: String,
    pub content: Arc<Content>,
    /// Served from the CDN through a 302, like LFS / Xet files.
    pub lfs: bool,
    /// The content's id in the listing: `lfs.oid` (the sha256) for LFS files, `oid` (the git
    /// blob id) otherwise. Placeholders when not given.
    pub oid: Option<String>,
}

impl TestFile {
    pub fn new(path: &str, content: Arc<Content>, lfs: bool) -> TestFile {
        TestFile {
            path: path.into(),
            content,
            lfs,
            oid: None,
        }
    }

    /// The listing gives `oid` as this file's content id (a real sha256 for LFS files).
    pub fn with_oid(mut self, oid: &str) -> TestFile {
        self.oid = Some(oid.into());
        self
    }
}

#[derive(Default)]
pub struct Repo {
    /// `models`, `datasets` or `spaces`.
    pub kind: &'static str,
    pub id: String,
    /// Revisions that exist (all with the same files).
    pub revisions: Vec<String>,
    pub files: Vec<TestFile>,
    /// Needs `Authorization: Bearer GOOD_TOKEN`.
    pub gated: bool,
    /// The first listing request gets a 429 with `Retry-After: 1`.
    pub rate_limit_once: bool,
    /// `resolve` answers 503 this many times per file before answering.
    pub flaky: u32,
    /// `resolve` always answers 500.
    pub broken: bool,
    /// `resolve` redirects to a CDN URL with a signature that works once (a stand-in for
    /// signed URLs that expire); later uses get 403.
    pub single_use_cdn: bool,
    /// `resolve` answers 500 to every request for a file after this many.
    pub fail_after: Option<u32>,
}

impl Repo {
    pub fn new(kind: &'static str, id: &str, files: Vec<TestFile>) -> Repo {
        Repo {
            kind,
            id: id.into(),
            revisions: vec!["main".into()],
            files,
            ..Repo::default()
        }
    }
}

/// One request as the server saw it.
#[derive(Debug, Clone)]
pub struct Logged {
    /// `hub` or `cdn`.
    pub listener: &'static str,
    /// Path and query.
    pub target: String,
    pub range: Option<String>,
    pub auth: Option<String>,
    pub status: u16,
}

struct State {
    hub: String,
    cdn: String,
    repos: Vec<Repo>,
    plain: HashMap<String, (Arc<Content>, bool)>,
    page_size: usize,
    latency: std::time::Duration,
    log: Mutex<Vec<Logged>>,
    counters: Mutex<HashMap<String, u32>>,
}

pub struct Server {
    pub hub: String,
    pub cdn: String,
    state: Arc<State>,
}

pub struct Builder {
    repos: Vec<Repo>,
    plain: HashMap<String, (Arc<Content>, bool)>,
    page_size: usize,
    latency: std::time::Duration,
}

impl Server {
    pub fn builder() -> Builder {
        Builder {
            repos: Vec::new(),
            plain: HashMap::new(),
            page_size: 1000,
            latency: std::time::Duration::ZERO,
        }
    }

    pub fn log(&self) -> Vec<Logged> {
        self.state.log.lock().unwrap().clone()
    }

    pub fn clear_log(&self) {
        self.state.log.lock().unwrap().clear();
    }

    /// Options pointing at this server, retries quick, no proxy, no token.
    pub fn options(&self) -> modelward_remote::RemoteOptions {
        modelward_remote::RemoteOptions {
            endpoint: self.hub.clone(),
            token: None,
            backoff: std::time::Duration::from_millis(5),
            max_backoff: std::time::Duration::from_secs(5),
            env_proxy: false,
            ..modelward_remote::RemoteOptions::default()
        }
    }
}

impl Builder {
    pub fn repo(mut self, r: Repo) -> Builder {
        self.repos.push(r);
        self
    }

    /// A plain file at `/plain/{name}`; `ignore_range` makes the server answer 200 with the
    /// whole body whatever `Range` says.
    pub fn plain(mut self, name: &str, content: Arc<Content>, ignore_range: bool) -> Builder {
        self.plain.insert(name.into(), (content, ignore_range));
        self
    }

    /// Every answer waits this long first (a far-away Hub; a scan that takes a while).
    pub fn latency(mut self, d: std::time::Duration) -> Builder {
        self.latency = d;
        self
    }

    /// Entries per listing page (a `Link: <...>; rel="next"` header leads to the next).
    pub fn page_size(mut self, n: usize) -> Builder {
        self.page_size = n;
        self
    }

    pub fn start(self) -> Server {
        let hub_l = TcpListener::bind("127.0.0.1:0").unwrap();
        let cdn_l = TcpListener::bind("127.0.0.1:0").unwrap();
        let hub = format!("http://{}", hub_l.local_addr().unwrap());
        let cdn = format!("http://{}", cdn_l.local_addr().unwrap());
        let state = Arc::new(State {
            hub: hub.clone(),
            cdn: cdn.clone(),
            repos: self.repos,
            plain: self.plain,
            page_size: self.page_size.max(1),
            latency: self.latency,
            log: Mutex::new(Vec::new()),
            counters: Mutex::new(HashMap::new()),
        });
        for (listener, name) in [(hub_l, "hub"), (cdn_l, "cdn")] {
            let state = state.clone();
            std::thread::spawn(move || {
                for conn in listener.incoming() {
                    let Ok(conn) = conn else { continue };
                    let state = state.clone();
                    std::thread::spawn(move || {
                        let _ = handle(&state, name, conn);
                    });
                }
            });
        }
        Server { hub, cdn, state }
    }
}

// ---------------------------------------------------------------------------------------------
// HTTP.

enum Body {
    Empty,
    Text(Vec<u8>),
    Range(Arc<Content>, u64, u64),
}

struct Resp {
    status: u16,
    headers: Vec<(String, String)>,
    body: Body,
}

impl Resp {
    fn new(status: u16) -> Resp {
        Resp {
            status,
            headers: Vec::new(),
            body: Body::Empty,
        }
    }

    fn header(mut self, k: &str, v: impl Into<String>) -> Resp {
        self.headers.push((k.into(), v.into()));
        self
    }

    fn json(status: u16, v: serde_json::Value) -> Resp {
        let mut r = Resp::new(status).header("Content-Type", "application/json");
        r.body = Body::Text(v.to_string().into_bytes());
        r
    }

    fn hub_error(status: u16, code: &str, message: &str) -> Resp {
        Resp::json(status, serde_json::json!({ "error": message }))
            .header("X-Error-Code", code)
            .header("X-Error-Message", message)
    }
}

struct Req {
    path: String,
    query: String,
    headers: HashMap<String, String>,
}

fn handle(state: &State, listener: &'static str, conn: TcpStream) -> std::io::Result<()> {
    let mut reader = BufReader::new(conn.try_clone()?);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let mut parts = line.split_whitespace();
    let _method = parts.next().unwrap_or("");
    let target = parts.next().unwrap_or("/").to_owned();
    let mut headers = HashMap::new();
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h)? == 0 || h.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_owned());
        }
    }
    let (path, query) = target.split_once('?').unwrap_or((&target, ""));
    let req = Req {
        path: path.to_owned(),
        query: query.to_owned(),
        headers,
    };
    std::thread::sleep(state.latency);
    let resp = if listener == "cdn" {
        cdn(state, &req)
    } else {
        route(state, &req)
    };
    state.log.lock().unwrap().push(Logged {
        listener,
        target: target.clone(),
        range: req.headers.get("range").cloned(),
        auth: req.headers.get("authorization").cloned(),
        status: resp.status,
    });
    write_resp(conn, resp)
}

fn write_resp(mut conn: TcpStream, resp: Resp) -> std::io::Result<()> {
    let len = match &resp.body {
        Body::Empty => 0,
        Body::Text(t) => t.len() as u64,
        Body::Range(_, a, b) => b - a,
    };
    let mut head = format!("HTTP/1.1 {} {}\r\n", resp.status, reason(resp.status));
    for (k, v) in &resp.headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str(&format!("Content-Length: {len}\r\nConnection: close\r\n\r\n"));
    let mut w = std::io::BufWriter::with_capacity(64 << 10, &mut conn);
    w.write_all(head.as_bytes())?;
    match resp.body {
        Body::Empty => {}
        Body::Text(t) => w.write_all(&t)?,
        Body::Range(c, a, b) => c.write_range(&mut w, a, b)?,
    }
    w.flush()?;
    drop(w);
    let _ = conn.shutdown(std::net::Shutdown::Write);
    Ok(())
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        206 => "Partial Content",
        302 => "Found",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        416 => "Range Not Satisfiable",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Whatever",
    }
}

fn decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && i + 3 <= b.len()
            && let Ok(v) = u8::from_str_radix(&s[i + 1..i + 3], 16)
        {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8(out).unwrap()
}

/// Real `Range` semantics for one range: `bytes=a-b`, `bytes=a-`, `bytes=-n`; 206 with
/// `Content-Range`, 416 when unsatisfiable; 200 with the whole body without `Range` (or when
/// the server ignores it).
fn serve(content: &Arc<Content>, range: Option<&String>, ignore_range: bool) -> Resp {
    let len = content.len();
    let whole = || {
        let mut r = Resp::new(200).header("Content-Type", "application/octet-stream");
        r.body = Body::Range(content.clone(), 0, len);
        r
    };
    let Some(range) = range.filter(|_| !ignore_range) else {
        return whole();
    };
    let Some(spec) = range.trim().strip_prefix("bytes=") else {
        return whole();
    };
    let Some((a, b)) = spec.split_once('-') else {
        return whole();
    };
    let (start, end) = match (a.trim(), b.trim()) {
        ("", n) => match n.parse::<u64>() {
            Ok(0) | Err(_) => (u64::MAX, 0),
            Ok(n) => (len.saturating_sub(n), len),
        },
        (a, "") => match a.parse::<u64>() {
            Ok(a) => (a, len),
            Err(_) => return whole(),
        },
        (a, b) => match (a.parse::<u64>(), b.parse::<u64>()) {
            (Ok(a), Ok(b)) if a <= b => (a, (b + 1).min(len)),
            _ => return whole(),
        },
    };
    if start >= len || start >= end {
        return Resp::new(416).header("Content-Range", format!("bytes */{len}"));
    }
    let mut r = Resp::new(206)
        .header("Content-Type", "application/octet-stream")
        .header("Content-Range", format!("bytes {start}-{}/{len}", end - 1))
        .header("Accept-Ranges", "bytes");
    r.body = Body::Range(content.clone(), start, end);
    r
}

fn bump(state: &State, key: &str) -> u32 {
    let mut c = state.counters.lock().unwrap();
    let n = c.entry(key.to_owned()).or_insert(0);
    *n += 1;
    *n
}

/// `None` when allowed, else the 401/403 answer.
fn check_access(repo: &Repo, req: &Req) -> Option<Resp> {
    if !repo.gated {
        return None;
    }
    match req.headers.get("authorization").map(String::as_str) {
        Some(a) if a == format!("Bearer {GOOD_TOKEN}") => None,
        Some(_) => Some(Resp::hub_error(
            403,
            "GatedRepo",
            "Access to this repository is restricted and you are not in the authorized list.",
        )),
        None => Some(Resp::hub_error(
            401,
            "GatedRepo",
            "Access to this repository is restricted. You must be authenticated to access it.",
        )),
    }
}

fn find_repo<'a>(state: &'a State, kind: &str, id: &str) -> Option<&'a Repo> {
    state.repos.iter().find(|r| r.kind == kind && r.id == id)
}

fn route(state: &State, req: &Req) -> Resp {
    let path = req.path.trim_start_matches('/');
    if let Some(name) = path.strip_prefix("plain/") {
        return match state.plain.get(name) {
            Some((c, ignore)) => serve(c, req.headers.get("range"), *ignore),
            None => Resp::new(404),
        };
    }
    if let Some(name) = path.strip_prefix("moved/") {
        // A plain URL that redirects to the CDN (another origin).
        return Resp::new(302).header("Location", format!("{}/plain/{name}", state.cdn));
    }
    if let Some(rest) = path.strip_prefix("api/") {
        return listing(state, req, rest);
    }
    // [datasets/|spaces/]owner/name/resolve/rev/path
    let segs: Vec<&str> = path.split('/').collect();
    let (kind, segs) = match segs.first() {
        Some(&"datasets") => ("datasets", &segs[1..]),
        Some(&"spaces") => ("spaces", &segs[1..]),
        _ => ("models", &segs[..]),
    };
    if segs.len() < 5 || segs[2] != "resolve" {
        return Resp::new(404);
    }
    let id = format!("{}/{}", segs[0], segs[1]);
    let Some(repo) = find_repo(state, kind, &id) else {
        return Resp::hub_error(404, "RepoNotFound", "Repository not found");
    };
    if let Some(r) = check_access(repo, req) {
        return r;
    }
    let rev = decode(segs[3]);
    if !repo.revisions.contains(&rev) {
        return Resp::hub_error(404, "RevisionNotFound", "Invalid rev id");
    }
    let file_path = decode(&segs[4..].join("/"));
    let Some(file) = repo.files.iter().find(|f| f.path == file_path) else {
        return Resp::hub_error(404, "EntryNotFound", "Entry not found");
    };
    if repo.broken {
        return Resp::new(500);
    }
    if let Some(n) = repo.fail_after
        && bump(state, &format!("fail_after {kind}/{id}/{file_path}")) > n
    {
        return Resp::new(500);
    }
    if repo.flaky > 0 && bump(state, &format!("flaky {kind}/{id}/{file_path}")) <= repo.flaky {
        return Resp::new(503);
    }
    if file.lfs && repo.single_use_cdn {
        let sig = bump(state, "signatures");
        return Resp::new(302).header(
            "Location",
            format!(
                "{}/cdn/{kind}/{id}/{}/{}?sig={sig}",
                state.cdn,
                segs[3],
                segs[4..].join("/")
            ),
        );
    }
    if file.lfs {
        return Resp::new(302)
            .header(
                "Location",
                format!(
                    "{}/cdn/{kind}/{id}/{}/{}",
                    state.cdn,
                    segs[3],
                    segs[4..].join("/")
                ),
            )
            .header("X-Linked-Size", file.content.len().to_string());
    }
    serve(&file.content, req.headers.get("range"), false)
}

fn cdn(state: &State, req: &Req) -> Resp {
    let path = req.path.trim_start_matches('/');
    if let Some(name) = path.strip_prefix("plain/") {
        return match state.plain.get(name) {
            Some((c, ignore)) => serve(c, req.headers.get("range"), *ignore),
            None => Resp::new(404),
        };
    }
    let Some(rest) = path.strip_prefix("cdn/") else {
        return Resp::new(404);
    };
    let segs: Vec<&str> = rest.split('/').collect();
    if segs.len() < 5 {
        return Resp::new(404);
    }
    if let Some(sig) = req.query.strip_prefix("sig=")
        && bump(state, &format!("used {sig}")) > 1
    {
        return Resp::new(403);
    }
    let id = format!("{}/{}", segs[1], segs[2]);
    let file_path = decode(&segs[4..].join("/"));
    let Some(file) =
        find_repo(state, segs[0], &id).and_then(|r| r.files.iter().find(|f| f.path == file_path))
    else {
        return Resp::new(404);
    };
    serve(&file.content, req.headers.get("range"), false)
}

/// `api/{kind}/{owner}/{name}/tree/{rev}[/{path}]?recursive=true[&cursor=N]`.
fn listing(state: &State, req: &Req, rest: &str) -> Resp {
    let segs: Vec<&str> = rest.split('/').collect();
    if segs.len() < 5 || segs[3] != "tree" {
        return Resp::new(404);
    }
    let kind = segs[0];
    let id = format!("{}/{}", segs[1], segs[2]);
    let Some(repo) = find_repo(state, kind, &id) else {
        return Resp::hub_error(404, "RepoNotFound", "Repository not found");
    };
    if let Some(r) = check_access(repo, req) {
        return r;
    }
    if repo.rate_limit_once && bump(state, &format!("listing {kind}/{id}")) == 1 {
        return Resp::hub_error(429, "RateLimited", "slow down").header("Retry-After", "1");
    }
    let rev = decode(segs[4]);
    if !repo.revisions.contains(&rev) {
        return Resp::hub_error(404, "RevisionNotFound", "Invalid rev id");
    }
    let dir = decode(&segs[5..].join("/"));
    let params: HashMap<&str, &str> = req.query.split('&').filter_map(|p| p.split_once('=')).collect();
    let recursive = params.get("recursive").is_some_and(|v| *v == "true" || *v == "1");
    if repo.files.iter().any(|f| f.path == dir) {
        return Resp::hub_error(404, "EntryNotFound", "not a directory");
    }
    let prefix = if dir.is_empty() {
        String::new()
    } else {
        format!("{dir}/")
    };
    let mut entries: Vec<serde_json::Value> = Vec::new();
    let mut dirs = std::collections::BTreeSet::new();
    for f in &repo.files {
        let Some(below) = f.path.strip_prefix(&prefix) else {
            continue;
        };
        let parts: Vec<&str> = below.split('/').collect();
        for i in 1..parts.len() {
            if recursive || i == 1 {
                dirs.insert(format!("{prefix}{}", parts[..i].join("/")));
            }
        }
        if !recursive && parts.len() > 1 {
            continue;
        }
        let size = f.content.len();
        let git_oid = f.oid.as_deref().filter(|_| !f.lfs).unwrap_or("0123");
        let mut e = serde_json::json!({"type": "file", "oid": git_oid, "size": size, "path": f.path});
        if f.lfs {
            let lfs_oid = f.oid.as_deref().unwrap_or("abcd");
            e["lfs"] = serde_json::json!({"oid": lfs_oid, "size": size, "pointerSize": 134});
        }
        entries.push(e);
    }
    if entries.is_empty() && !dir.is_empty() {
        return Resp::hub_error(404, "EntryNotFound", "no such folder");
    }
    for d in dirs {
        entries.push(serde_json::json!({"type": "directory", "oid": "4567", "size": 0, "path": d}));
    }
    let cursor: usize = params.get("cursor").and_then(|c| c.parse().ok()).unwrap_or(0);
    let end = (cursor + state.page_size).min(entries.len());
    let page: Vec<serde_json::Value> = entries[cursor.min(end)..end].to_vec();
    let mut resp = Resp::json(200, serde_json::Value::Array(page));
    if end < entries.len() {
        let base = format!("{}/api/{rest}", state.hub);
        let mut q = if recursive {
            "recursive=true&".to_owned()
        } else {
            String::new()
        };
        q.push_str(&format!("cursor={end}"));
        resp = resp.header("Link", format!("<{base}?{q}>; rel=\"next\""));
    }
    resp
}

// ---------------------------------------------------------------------------------------------
// Fixtures.

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

pub fn read_fixture(rel: &str) -> Vec<u8> {
    std::fs::read(repo_root().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

/// A clean safetensors file: 8-byte LE header length, JSON header (padded with spaces to 8
/// bytes), then `floats` F32 zeros, generated on the fly.
pub fn safetensors(floats: u64) -> Arc<Content> {
    let bytes = floats * 4;
    let mut header = format!(
        r#"{{"__metadata__":{{"format":"pt"}},"weight":{{"dtype":"F32","shape":[{floats}],"data_offsets":[0,{bytes}]}}}}"#
    )
    .into_bytes();
    while header.len() % 8 != 0 {
        header.push(b' ');
    }
    let mut head = (header.len() as u64).to_le_bytes().to_vec();
    head.extend_from_slice(&header);
    Content::virtual_file(vec![Segment::Bytes(head), Segment::Zeros(bytes)])
}

/// A `config.json` asking for remote code through `auto_map`.
pub fn config_json() -> Arc<Content> {
    Content::bytes(
        serde_json::to_vec_pretty(&serde_json::json!({
            "architectures": ["EvilModel"],
            "auto_map": {
                "AutoConfig": "configuration_evil.EvilConfig",
                "AutoModel": "modeling_evil.EvilModel"
            },
            "model_type": "evil",
            "hidden_size": 8
        }))
        .unwrap(),
    )
}

// ---------------------------------------------------------------------------------------------
// Zip checkpoints with a generated member.

/// What a member holds.
pub enum Member {
    Bytes(Vec<u8>),
    /// `n` zero bytes, never materialised.
    Zeros(u64),
}

/// The stored members of a zip: `(name, data)`, read through the central directory.
pub fn zip_members(zip: &[u8]) -> Vec<(String, Vec<u8>)> {
    let u16_at = |o: usize| u16::from_le_bytes([zip[o], zip[o + 1]]) as usize;
    let u32_at = |o: usize| u32::from_le_bytes(zip[o..o + 4].try_into().unwrap()) as usize;
    let eocd = (0..=zip.len() - 22)
        .rev()
        .find(|&o| zip[o..o + 4] == *b"PK\x05\x06")
        .unwrap();
    let count = u16_at(eocd + 10);
    let mut at = u32_at(eocd + 16);
    let mut out = Vec::new();
    for _ in 0..count {
        assert_eq!(&zip[at..at + 4], b"PK\x01\x02");
        assert_eq!(u16_at(at + 10), 0, "stored members only");
        let size = u32_at(at + 20);
        let (nlen, xlen, clen) = (u16_at(at + 28), u16_at(at + 30), u16_at(at + 32));
        let local = u32_at(at + 42);
        let name = String::from_utf8(zip[at + 46..at + 46 + nlen].to_vec()).unwrap();
        let data_at = local + 30 + u16_at(local + 26) + u16_at(local + 28);
        out.push((name, zip[data_at..data_at + size].to_vec()));
        at += 46 + nlen + xlen + clen;
    }
    out
}

/// CRC-32 of `n` zeros without producing them (combining the CRC of 1 MiB with itself).
fn crc_of_zeros(n: u64) -> u32 {
    let mut crc = flate2::Crc::new();
    let mut rest = n;
    let mut chunk = flate2::Crc::new();
    chunk.update(&vec![0u8; 1 << 20]);
    while rest >= 1 << 20 {
        crc.combine(&chunk);
        rest -= 1 << 20;
    }
    crc.update(&vec![0u8; rest as usize]);
    crc.sum()
}

/// A stored zip (data aligned to 64 bytes like PyTorch's writer) as a virtual file.
pub fn build_zip(members: Vec<(String, Member)>) -> Arc<Content> {
    let mut segments = Vec::new();
    let mut cd = Vec::new();
    let mut offset = 0u64;
    let mut pending: Vec<u8> = Vec::new();
    let count = members.len();
    for (name, data) in members {
        let (size, crc) = match &data {
            Member::Bytes(b) => {
                let mut c = flate2::Crc::new();
                c.update(b);
                (b.len() as u64, c.sum())
            }
            Member::Zeros(n) => (*n, crc_of_zeros(*n)),
        };
        let size32 = u32::try_from(size).expect("no zip64 here");
        let header_at = offset + pending.len() as u64;
        let base = header_at + 30 + name.len() as u64;
        let mut pad = (64 - (base + 4) % 64) % 64;
        let mut extra = b"FB".to_vec();
        extra.extend_from_slice(&(pad as u16).to_le_bytes());
        extra.resize(4 + pad as usize, b'Z');
        pad += 4;
        let mut lh = Vec::new();
        lh.extend_from_slice(b"PK\x03\x04");
        lh.extend_from_slice(&20u16.to_le_bytes());
        lh.extend_from_slice(&0u16.to_le_bytes()); // flags
        lh.extend_from_slice(&0u16.to_le_bytes()); // stored
        lh.extend_from_slice(&0u16.to_le_bytes()); // time
        lh.extend_from_slice(&0x21u16.to_le_bytes()); // date 1980-01-01
        lh.extend_from_slice(&crc.to_le_bytes());
        lh.extend_from_slice(&size32.to_le_bytes());
        lh.extend_from_slice(&size32.to_le_bytes());
        lh.extend_from_slice(&(name.len() as u16).to_le_bytes());
        lh.extend_from_slice(&(pad as u16).to_le_bytes());
        lh.extend_from_slice(name.as_bytes());
        lh.extend_from_slice(&extra);
        pending.extend_from_slice(&lh);
        match data {
            Member::Bytes(b) => pending.extend_from_slice(&b),
            Member::Zeros(n) => {
                offset += pending.len() as u64 + n;
                segments.push(Segment::Bytes(std::mem::take(&mut pending)));
                segments.push(Segment::Zeros(n));
            }
        }
        cd.extend_from_slice(b"PK\x01\x02");
        cd.extend_from_slice(&20u16.to_le_bytes()); // made by
        cd.extend_from_slice(&20u16.to_le_bytes()); // needed
        cd.extend_from_slice(&0u16.to_le_bytes());
        cd.extend_from_slice(&0u16.to_le_bytes());
        cd.extend_from_slice(&0u16.to_le_bytes());
        cd.extend_from_slice(&0x21u16.to_le_bytes());
        cd.extend_from_slice(&crc.to_le_bytes());
        cd.extend_from_slice(&size32.to_le_bytes());
        cd.extend_from_slice(&size32.to_le_bytes());
        cd.extend_from_slice(&(name.len() as u16).to_le_bytes());
        cd.extend_from_slice(&0u16.to_le_bytes()); // extra
        cd.extend_from_slice(&0u16.to_le_bytes()); // comment
        cd.extend_from_slice(&0u16.to_le_bytes()); // disk
        cd.extend_from_slice(&0u16.to_le_bytes()); // internal attributes
        cd.extend_from_slice(&0u32.to_le_bytes()); // external attributes
        cd.extend_from_slice(&u32::try_from(header_at).unwrap().to_le_bytes());
        cd.extend_from_slice(name.as_bytes());
    }
    let cd_at = offset + pending.len() as u64;
    let mut tail = pending;
    let cd_len = cd.len();
    tail.extend_from_slice(&cd);
    tail.extend_from_slice(b"PK\x05\x06");
    tail.extend_from_slice(&0u16.to_le_bytes());
    tail.extend_from_slice(&0u16.to_le_bytes());
    tail.extend_from_slice(&(count as u16).to_le_bytes());
    tail.extend_from_slice(&(count as u16).to_le_bytes());
    tail.extend_from_slice(&(cd_len as u32).to_le_bytes());
    tail.extend_from_slice(&u32::try_from(cd_at).unwrap().to_le_bytes());
    tail.extend_from_slice(&0u16.to_le_bytes());
    segments.push(Segment::Bytes(tail));
    Content::virtual_file(segments)
}

/// state_dict_zip.pt's `data.pkl` with storage 0's element count set to `numel`.
fn with_numel0(pickle: &[u8], numel: u64) -> Vec<u8> {
    let at = pickle
        .windows(8)
        .position(|w| w == b"cpuq\x06K\x06t")
        .expect("storage 0's numel in state_dict_zip.pt")
        + 5;
    let numel = u32::try_from(numel).expect("numel fits a BININT");
    let mut out = pickle[..at].to_vec();
    out.push(b'J');
    out.extend_from_slice(&numel.to_le_bytes());
    out.extend_from_slice(&pickle[at + 2..]);
    out
}

/// `tests/fixtures/torch/state_dict_zip.pt` re-packed under `archive/`, with `archive/data/0`
/// replaced by `data0` (zeros of that size when `Some`, a multiple of 4: float32s, and the
/// pickle's element count to match; the original bytes otherwise).
pub fn torch_zip(data0: Option<u64>) -> Arc<Content> {
    assert!(data0.is_none_or(|n| n % 4 == 0), "storage 0 holds float32s");
    let original = read_fixture("tests/fixtures/torch/state_dict_zip.pt");
    let members = zip_members(&original)
        .into_iter()
        .map(|(name, data)| {
            let rel = name.split_once('/').map_or(name.as_str(), |(_, r)| r).to_owned();
            let m = match data0 {
                Some(n) if rel == "data/0" => Member::Zeros(n),
                // The pickle then loads storage 0 as n / 4 floats (a size that disagrees with
                // the storage is TEN102): its BININT1 6 becomes a BININT.
                Some(n) if rel == "data.pkl" => Member::Bytes(with_numel0(&data, n / 4)),
                _ => Member::Bytes(data),
            };
            (format!("archive/{rel}"), m)
        })
        .collect();
    build_zip(members)
}
