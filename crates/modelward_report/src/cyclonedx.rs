//! `--format cyclonedx`: a CycloneDX JSON ML-BOM (1.7 by default, 1.6 for older consumers) of
//! what was scanned.
//!
//! - `metadata.component`: what the scan was about (the folder or repository given), the parent.
//! - `components`: one per file, `machine-learning-model` for model formats and `file` for the
//!   rest, with its sha256 (when the report has one: hashed by modelward, or the Hub's LFS
//!   sha256), size, format, verdict and source as properties.
//! - `dependencies`: the parent depends on every file.
//! - `vulnerabilities`: one per finding, the rule code as id, the severity as a rating, the
//!   file as the affected component, location and evidence as properties.

use modelward_diagnostics::{FileReport, Rule, ScanReport, Severity};
use serde_json::{Value, json};
use std::io::{self, Write};

/// The CycloneDX specification version written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpecVersion {
    /// 1.6.
    V1_6,
    /// 1.7 (the default).
    V1_7,
}

impl SpecVersion {
    /// `1.6` or `1.7`.
    pub fn as_str(self) -> &'static str {
        match self {
            SpecVersion::V1_6 => "1.6",
            SpecVersion::V1_7 => "1.7",
        }
    }
}

/// What the BOM needs besides the report.
#[derive(Debug, Clone)]
pub struct BomOptions {
    /// Specification version.
    pub spec: SpecVersion,
    /// `urn:uuid:…`, unique per BOM.
    pub serial_number: String,
    /// RFC 3339 time the BOM was made.
    pub timestamp: String,
    /// Name of what was scanned (the folder or repository); the parent component.
    pub subject: String,
}

/// Formats whose files are models (weights, graphs, serialized estimators); everything else
/// is a plain `file` component.
const MODEL_FORMATS: &[&str] = &[
    "pickle",
    "pytorch-zip",
    "pytorch-legacy",
    "torchscript",
    "joblib",
    "joblib-zfile",
    "npy",
    "npz",
    "safetensors",
    "gguf",
    "keras",
    "hdf5",
    "onnx",
    "tensorflow",
    "tensorflow-savedmodel",
    "tflite",
    "tensor-data",
];

fn is_model(format: &str) -> bool {
    MODEL_FORMATS.contains(&format) || format.starts_with("tensorflow") || format.starts_with("keras")
}

fn severity(s: Severity) -> &'static str {
    match s {
        Severity::Critical => "critical",
        Severity::High => "high",
        Severity::Medium => "medium",
        Severity::Low => "low",
        Severity::Info => "info",
    }
}

fn file_ref(f: &FileReport) -> String {
    format!("file:{}", f.path)
}

fn prop(name: &str, value: impl ToString) -> Value {
    json!({ "name": name, "value": value.to_string() })
}

fn component(f: &FileReport) -> Value {
    let mut c = json!({
        "type": if is_model(&f.format) { "machine-learning-model" } else { "file" },
        "bom-ref": file_ref(f),
        "name": f.path,
    });
    let sha = f.sha256.as_ref().or(f.hub_sha256.as_ref());
    if let Some(h) = sha {
        c["hashes"] = json!([{ "alg": "SHA-256", "content": h }]);
    }
    let mut props = vec![
        prop("modelward:format", &f.format),
        prop("modelward:size", f.size),
        prop("modelward:verdict", f.verdict.as_str()),
        prop("modelward:source", &f.path),
    ];
    if let Some(h) = &f.hub_sha256 {
        props.push(prop("modelward:hub-lfs-sha256", h));
    }
    if let Some(e) = &f.error {
        props.push(prop("modelward:error", e));
    }
    c["properties"] = Value::Array(props);
    c
}

/// The BOM document.
pub fn document(report: &ScanReport, catalog: &[Rule], opts: &BomOptions) -> Value {
    let any_model = report.files.iter().any(|f| is_model(&f.format));
    let parent = json!({
        "type": if any_model { "machine-learning-model" } else { "file" },
        "bom-ref": "scan-subject",
        "name": opts.subject,
    });
    let components: Vec<Value> = report.files.iter().map(component).collect();
    let mut vulns = Vec::new();
    for f in &report.files {
        for (i, x) in f.findings.iter().enumerate() {
            let mut props = vec![prop(
                "modelward:confidence",
                format!("{:?}", x.confidence).to_lowercase(),
            )];
            if !x.location.members.is_empty() {
                props.push(prop("modelward:members", x.location.members.join("!")));
            }
            if let Some(o) = x.location.offset {
                props.push(prop("modelward:offset", o));
            }
            if let Some(e) = &x.evidence {
                props.push(prop("modelward:evidence", e));
            }
            let mut v = json!({
                "bom-ref": format!("finding:{}:{i}", f.path),
                "id": x.rule,
                "source": { "name": "modelward" },
                "ratings": [{
                    "source": { "name": "modelward" },
                    "severity": severity(x.severity),
                    "method": "other",
                }],
                "description": x.message,
                "detail": x.why.trim(),
                "affects": [{ "ref": file_ref(f) }],
                "properties": props,
            });
            if let Some(rule) = catalog.iter().find(|r| r.code == x.rule) {
                v["recommendation"] = Value::String(format!(
                    "{} ({}); `modelward rule {}` explains it.",
                    rule.summary, rule.name, rule.code
                ));
            }
            vulns.push(v);
        }
    }
    let mut doc = json!({
        "$schema": format!("http://cyclonedx.org/schema/bom-{}.schema.json", opts.spec.as_str()),
        "bomFormat": "CycloneDX",
        "specVersion": opts.spec.as_str(),
        "serialNumber": opts.serial_number,
        "version": 1,
        "metadata": {
            "timestamp": opts.timestamp,
            "tools": {
                "components": [{
                    "type": "application",
                    "name": report.tool.name,
                    "version": report.tool.version,
                }]
            },
            "component": parent,
            "properties": [
                prop("modelward:files", report.summary.files),
                prop("modelward:malicious", report.summary.malicious),
                prop("modelward:suspicious", report.summary.suspicious),
                prop("modelward:clean", report.summary.clean),
                prop("modelward:skipped", report.summary.skipped),
                prop("modelward:errors", report.summary.errors),
            ],
        },
        "components": components,
        "dependencies": [{
            "ref": "scan-subject",
            "dependsOn": report.files.iter().map(file_ref).collect::<Vec<_>>(),
        }],
    });
    if !vulns.is_empty() {
        doc["vulnerabilities"] = Value::Array(vulns);
    }
    doc
}

/// Writes the BOM as pretty JSON.
pub fn write(
    report: &ScanReport,
    catalog: &[Rule],
    opts: &BomOptions,
    out: &mut dyn Write,
) -> io::Result<()> {
    serde_json::to_writer_pretty(&mut *out, &document(report, catalog, opts)).map_err(crate::io_error)?;
    out.write_all(b"\n")
}

/// A random version-4 UUID as `urn:uuid:…` (std's per-process random hash keys, mixed with the
/// time; a serial number needs uniqueness, not secrecy).
pub fn random_serial_number() -> String {
    use std::hash::{BuildHasher, Hasher};
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let half = |salt: u64| {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u128(t);
        h.write_u64(salt);
        h.write_u32(std::process::id());
        h.finish()
    };
    let (a, b) = (half(1), half(2));
    let mut bytes = [0u8; 16];
    bytes[..8].copy_from_slice(&a.to_be_bytes());
    bytes[8..].copy_from_slice(&b.to_be_bytes());
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let h: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "urn:uuid:{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// The current time, RFC 3339 UTC.
pub fn now_rfc3339() -> String {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    format!("{}Z", crate::time::utc(t).replacen(' ', "T", 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serial_numbers_are_v4_uuids_and_differ() {
        let a = random_serial_number();
        let b = random_serial_number();
        assert_ne!(a, b);
        assert_eq!(a.len(), "urn:uuid:".len() + 36);
        assert_eq!(&a[9 + 14..9 + 15], "4");
    }

    #[test]
    fn timestamps_are_rfc3339() {
        let t = now_rfc3339();
        assert_eq!(t.len(), 20);
        assert!(t.starts_with("20") && t.ends_with('Z'));
    }
}
