//! Shared by the sandbox tests: the real bubblewrap and python3, or a skip (a failure in CI).

#![allow(dead_code)]

use modelward_diagnostics::{Finding, Severity};
use modelward_policy::Policy;
use modelward_sandbox::{Detonation, Loader, Options, Sandbox};
use std::path::{Path, PathBuf};

/// The sandbox, or `None` (with a message) when bwrap or python3 is missing locally. With
/// `CI=true` (or `MODELWARD_REQUIRE_SANDBOX=1`, which `.ci/run` sets) a missing tool is a
/// failure: `.ci/run` installs bubblewrap.
pub fn sandbox() -> Option<Sandbox> {
    match Sandbox::discover() {
        Ok(s) => Some(s),
        Err(e) => {
            if required() {
                panic!("CI=true or MODELWARD_REQUIRE_SANDBOX=1, but the sandbox is not available: {e}");
            }
            eprintln!("skipping: {e}");
            None
        }
    }
}

fn required() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
        || std::env::var("MODELWARD_REQUIRE_SANDBOX").is_ok_and(|v| v == "1")
}

/// Options with a short wall clock for tests.
pub fn options() -> Options {
    Options {
        timeout: std::time::Duration::from_secs(20),
        ..Options::default()
    }
}

pub fn detonate(sb: &Sandbox, path: &Path, loader: Loader) -> (Detonation, Vec<Finding>) {
    detonate_with(sb, path, loader, &options())
}

pub fn detonate_with(
    sb: &Sandbox,
    path: &Path,
    loader: Loader,
    opts: &Options,
) -> (Detonation, Vec<Finding>) {
    let d = sb
        .detonate(path, loader, opts)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let findings = d.findings(&Policy::builtin(), &path.display().to_string());
    eprintln!(
        "{}: {:?} in {} ms, {} events",
        path.display(),
        d.outcome,
        d.elapsed.as_millis(),
        d.events.len()
    );
    for line in d.behaviour() {
        eprintln!("    {line}");
    }
    for f in &findings {
        eprintln!(
            "  {} {} {} | {}",
            f.severity,
            f.rule,
            f.message,
            f.evidence.as_deref().unwrap_or("")
        );
    }
    (d, findings)
}

pub fn rules(findings: &[Finding]) -> Vec<&str> {
    findings.iter().map(|f| f.rule.as_str()).collect()
}

/// Findings above info: behaviour, not notes about stand-ins or loader errors.
pub fn behaviour_findings(findings: &[Finding]) -> Vec<&Finding> {
    findings.iter().filter(|f| f.severity > Severity::Info).collect()
}

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

pub fn corpus() -> PathBuf {
    repo().join("../shared/corpus/picklescan")
}

/// A pickle (protocol 2) that calls `builtins.exec(code)`.
pub fn exec_pickle(code: &str) -> Vec<u8> {
    modelward_pickle::assemble::Assembler::new()
        .proto(2)
        .global("builtins", "exec")
        .binunicode(code)
        .tuple1()
        .reduce()
        .stop()
        .finish()
}

/// Writes `bytes` to a fresh file in `dir`.
pub fn write_sample(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}
