//! The golden snapshot: every committed fixture (`tests/fixtures/**`, `demo/`) and every file
//! of the picklescan corpus, scanned, with the full per-file report (format, verdict, severity,
//! findings with rule, severity, confidence, location, message, evidence; size and bytes_read)
//! compared with `tests/golden/scan.json`. A change to the engine that moves any of it fails
//! here. After a deliberate change, `MODELWARD_BLESS=1 cargo test -p modelward_scanner --test
//! golden` rewrites the snapshot; the diff of that file is what the change did.

mod common;

use serde_json::{Value, json};
use std::path::{Path, PathBuf};

fn files_under(root: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(root)
        .unwrap_or_else(|e| panic!("{}: {e}", root.display()))
        .map(|e| e.expect("dir entry").path())
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            files_under(&p, out);
        } else if p.is_file() {
            out.push(p);
        }
    }
}

/// One file's report as JSON, its path relative to `base` (nothing time-dependent is in a
/// file report).
fn entry(base: &Path, label: &str, path: &Path) -> Value {
    let rel = path
        .strip_prefix(base)
        .expect("under base")
        .to_string_lossy()
        .replace('\\', "/");
    let name = format!("{label}/{rel}");
    let mut r = common::scan_file_as(path, &name);
    // The error text of an OS error can differ between machines; the verdict says enough.
    if r.error.is_some() {
        r.error = Some("<error>".into());
    }
    json!(r)
}

fn snapshot() -> Value {
    let repo = common::repo();
    let mut out = Vec::new();
    for (label, base, dir) in [
        (
            "tests/fixtures",
            repo.join("tests/fixtures"),
            repo.join("tests/fixtures"),
        ),
        ("demo", repo.join("demo"), repo.join("demo")),
        (
            "corpus/picklescan",
            common::shared().join("corpus/picklescan"),
            common::shared().join("corpus/picklescan"),
        ),
    ] {
        let mut files = Vec::new();
        files_under(&dir, &mut files);
        assert!(!files.is_empty(), "{} holds no files", dir.display());
        out.extend(files.iter().map(|p| entry(&base, label, p)));
    }
    Value::Array(out)
}

#[test]
fn every_committed_file_scans_as_the_snapshot_says() {
    let path = common::repo().join("crates/modelward_scanner/tests/golden/scan.json");
    let now = snapshot();
    let text = serde_json::to_string_pretty(&now).expect("json") + "\n";
    let bless = ["MODELWARD_BLESS", "MODELWARD_UPDATE_SNAPSHOTS"]
        .iter()
        .any(|v| std::env::var_os(v).is_some_and(|v| v == "1"));
    if bless {
        std::fs::write(&path, &text).expect("write snapshot");
        return;
    }
    let want: Value = serde_json::from_slice(
        &std::fs::read(&path)
            .unwrap_or_else(|e| panic!("{}: {e} (MODELWARD_BLESS=1 writes it)", path.display())),
    )
    .expect("snapshot json");
    let (Value::Array(want), Value::Array(got)) = (&want, &now) else {
        panic!("snapshot is not a list")
    };
    let mut diffs = Vec::new();
    let name = |v: &Value| v["path"].as_str().unwrap_or_default().to_owned();
    let want_names: Vec<String> = want.iter().map(name).collect();
    let got_names: Vec<String> = got.iter().map(name).collect();
    for n in &want_names {
        if !got_names.contains(n) {
            diffs.push(format!("{n}: in the snapshot, no longer scanned"));
        }
    }
    for g in got {
        match want.iter().find(|w| name(w) == name(g)) {
            None => diffs.push(format!("{}: new file, not in the snapshot", name(g))),
            Some(w) if w != g => diffs.push(format!(
                "{}:\n  snapshot: {}\n  now:      {}",
                name(g),
                serde_json::to_string(w).unwrap_or_default(),
                serde_json::to_string(g).unwrap_or_default()
            )),
            Some(_) => {}
        }
    }
    assert!(
        diffs.is_empty(),
        "{} file(s) differ from {} (MODELWARD_BLESS=1 rewrites it after a deliberate change):\n{}",
        diffs.len(),
        path.display(),
        diffs.join("\n")
    );
}
