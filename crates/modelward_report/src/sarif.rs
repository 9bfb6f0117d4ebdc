//! `--format sarif`: SARIF 2.1.0 as GitHub code scanning accepts it.
//!
//! Every rule of the catalog is listed (so rule help shows in the code-scanning UI); each
//! finding is a result at its file, with the archive members and byte offset as a logical
//! location and in the properties, and a partial fingerprint that is stable across runs.

use modelward_diagnostics::{Rule, ScanReport, Severity};
use serde_json::{Value, json};
use std::io::{self, Write};

fn level(s: Severity) -> &'static str {
    match s {
        Severity::Critical | Severity::High => "error",
        Severity::Medium => "warning",
        Severity::Low | Severity::Info => "note",
    }
}

fn security_severity(s: Severity) -> &'static str {
    match s {
        Severity::Critical => "9.5",
        Severity::High => "8.0",
        Severity::Medium => "5.5",
        Severity::Low => "3.0",
        Severity::Info => "1.0",
    }
}

/// FNV-1a, 64 bits: a fingerprint that does not depend on the Rust version or the platform.
fn fnv(parts: &[&str]) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for p in parts {
        for b in p.bytes().chain([0u8]) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    format!("{h:016x}")
}

/// A relative path as a URI reference (forward slashes, percent-encoding for the few characters
/// that need it).
fn uri(path: &str) -> String {
    let p = path.replace('\\', "/");
    let p = p.strip_prefix("./").unwrap_or(&p);
    p.chars()
        .map(|c| match c {
            ' ' => "%20".to_owned(),
            '#' => "%23".to_owned(),
            '?' => "%3F".to_owned(),
            '%' => "%25".to_owned(),
            c => c.to_string(),
        })
        .collect()
}

/// The SARIF document.
/// `catalog` is every rule of the catalog (`Policy::catalog().rules()`), passed as data so
/// that rendering stays a pure function of what it is given.
pub fn document(report: &ScanReport, catalog: &[Rule]) -> Value {
    let rules: Vec<Value> = catalog
        .iter()
        .map(|r| {
            json!({
                "id": r.code,
                "name": r.name,
                "shortDescription": { "text": r.summary },
                "fullDescription": { "text": r.why.trim() },
                "help": {
                    "text": format!("{}\n\n{}", r.summary, r.why.trim()),
                    "markdown": format!("**{}** ({})\n\n{}\n\nRun `modelward rule {}` for details.", r.summary, r.severity, r.why.trim(), r.code),
                },
                "defaultConfiguration": { "level": level(r.severity) },
                "properties": {
                    "tags": ["security", "machine-learning", "supply-chain"],
                    "precision": match r.confidence {
                        modelward_diagnostics::Confidence::High => "high",
                        modelward_diagnostics::Confidence::Medium => "medium",
                        modelward_diagnostics::Confidence::Low => "low",
                    },
                    "security-severity": security_severity(r.severity),
                },
            })
        })
        .collect();
    let index = |code: &str| catalog.iter().position(|r| r.code == code);
    let mut results = Vec::new();
    for f in &report.files {
        for x in &f.findings {
            let chain = std::iter::once(x.location.path.as_str())
                .chain(x.location.members.iter().map(String::as_str))
                .collect::<Vec<_>>()
                .join("!");
            let offset = x.location.offset.map(|o| o.to_string()).unwrap_or_default();
            let mut text = x.message.clone();
            if !x.location.members.is_empty() {
                text.push_str(&format!(" (in {})", x.location.members.join(" › ")));
            }
            if let Some(ev) = &x.evidence {
                text.push_str(&format!(": {ev}"));
            }
            let mut result = json!({
                "ruleId": x.rule,
                "level": level(x.severity),
                "message": { "text": text },
                "locations": [{
                    "physicalLocation": {
                        "artifactLocation": { "uri": uri(&x.location.path) },
                        "region": { "startLine": 1 },
                    },
                    "logicalLocations": [{
                        "fullyQualifiedName": if offset.is_empty() { chain.clone() } else { format!("{chain}@{offset}") },
                        "kind": "member",
                    }],
                }],
                "partialFingerprints": {
                    "modelwardFinding/v1": fnv(&[&x.rule, &x.location.path, &x.location.members.join("!"), &offset, &x.message]),
                },
                "properties": {
                    "severity": x.severity.as_str(),
                    "confidence": format!("{:?}", x.confidence).to_lowercase(),
                    "members": x.location.members,
                    "why": x.why,
                },
            });
            if let Some(i) = index(&x.rule) {
                result["ruleIndex"] = json!(i);
            }
            if let Some(o) = x.location.offset {
                result["properties"]["offset"] = json!(o);
            }
            if let Some(ev) = &x.evidence {
                result["properties"]["evidence"] = json!(ev);
            }
            // As in JSON: absent means static (read from the bytes).
            if x.source == modelward_diagnostics::Source::Dynamic {
                result["properties"]["source"] = json!(x.source.as_str());
            }
            results.push(result);
        }
    }
    // Files that could not be read and paths that could not be scanned: the run did not do
    // all of its job, and each says why.
    let notifications: Vec<Value> = report
        .files
        .iter()
        .filter_map(|f| f.error.as_ref().map(|e| (f.path.as_str(), e.as_str())))
        .chain(
            report
                .errors
                .iter()
                .map(|e| (e.source.as_str(), e.error.as_str())),
        )
        .map(|(path, error)| {
            json!({
                "level": "error",
                "message": { "text": format!("{path}: {error}") },
                "locations": [{ "physicalLocation": { "artifactLocation": { "uri": path } } }],
            })
        })
        .collect();
    let mut invocation = json!({ "executionSuccessful": notifications.is_empty() });
    if !notifications.is_empty() {
        invocation["toolExecutionNotifications"] = json!(notifications);
    }
    json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": {
                "driver": {
                    "name": "modelward",
                    "semanticVersion": report.tool.version,
                    "informationUri": "https://github.com/modelward/modelward",
                    "rules": rules,
                }
            },
            "invocations": [invocation],
            "results": results,
        }]
    })
}

/// Writes the SARIF document.
pub fn write(report: &ScanReport, catalog: &[Rule], out: &mut dyn Write) -> io::Result<()> {
    serde_json::to_writer_pretty(&mut *out, &document(report, catalog)).map_err(crate::io_error)?;
    writeln!(out)
}
