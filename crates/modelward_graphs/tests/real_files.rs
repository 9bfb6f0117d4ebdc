//! ONNX checks against real, benign models: onnx's own backend test models and silero-vad's,
//! as `../shared/real/fetch_real.sh` fetches them into `$MODELWARD_REAL` (default
//! `~/.cache/modelward/real`). Skipped with a message when absent, unless
//! `MODELWARD_REQUIRE_REAL=1`. None may give a high or critical finding; today none gives any.

use modelward_graphs::onnx;
use std::path::{Path, PathBuf};

const RULES_TOML: &str = include_str!("../../modelward_policy/catalog/rules.toml");

#[path = "../../../tests/support/real_sets.rs"]
mod real_sets;

fn real_dir() -> Option<PathBuf> {
    real_sets::shared()
}

/// Files under `dir` whose extension is `ext`, sorted.
fn files(dir: &Path, ext: &str) -> Vec<PathBuf> {
    real_sets::files_with_extension(dir, ext)
}

fn severity(rule: &str) -> String {
    let mut code = None;
    for line in RULES_TOML.lines().map(str::trim) {
        if let Some(v) = line.strip_prefix("code = ") {
            code = Some(v.trim_matches('"'));
        } else if let Some(v) = line.strip_prefix("severity = ")
            && code == Some(rule)
        {
            return v.trim_matches('"').to_owned();
        }
    }
    "medium".to_owned()
}

#[test]
fn real_onnx_models_give_no_high_or_critical_finding() {
    let Some(dir) = real_dir() else { return };
    let models = files(&dir, "onnx");
    assert!(
        models.len() >= 150,
        "expected the onnx backend models and silero-vad's, found {}",
        models.len()
    );
    assert!(models.iter().any(|p| p.to_string_lossy().contains("silero")));
    let mut medium = Vec::new();
    for p in &models {
        let bytes = std::fs::read(p).unwrap();
        assert!(
            onnx::looks_like_onnx(&bytes[..bytes.len().min(4096)], bytes.len() as u64),
            "{}",
            p.display()
        );
        // As a file on disk, and as if it were an archive member (folder unknown).
        for dir_known in [true, false] {
            for f in onnx::check_model(&bytes, dir_known) {
                let sev = severity(f.rule);
                assert!(
                    sev != "high" && sev != "critical",
                    "{}: {} {} ({:?})",
                    p.display(),
                    f.rule,
                    f.message,
                    f.evidence
                );
                if sev == "medium" {
                    medium.push(format!("{}: {} {}", p.display(), f.rule, f.message));
                }
            }
        }
    }
    eprintln!(
        "{} real ONNX models, {} medium findings",
        models.len(),
        medium.len()
    );
    for m in &medium {
        eprintln!("  {m}");
    }
}
