//! Every file of picklescan's test data gets the verdict its expected.json gives.

mod common;

use modelward_diagnostics::Verdict;

#[test]
fn every_picklescan_sample_gets_its_expected_verdict() {
    let root = common::shared().join("corpus/picklescan");
    let expected: Vec<serde_json::Value> =
        serde_json::from_slice(&std::fs::read(root.join("expected.json")).expect("expected.json"))
            .expect("json");
    assert_eq!(expected.len(), 109);
    let mut wrong = Vec::new();
    for e in &expected {
        let rel = e["path"].as_str().expect("path");
        let report = common::scan_file(&root.join(rel));
        let ok = match e["expected"].as_str() {
            Some("malicious") => report.verdict == Verdict::Malicious,
            // Benign: never malicious, never an error. (A benign file may be suspicious, e.g. the
            // encrypted zip whose members cannot be read.)
            _ => !matches!(report.verdict, Verdict::Malicious | Verdict::Error),
        };
        if !ok {
            wrong.push(format!(
                "{rel}: expected {}, got {} {:?}",
                e["expected"],
                report.verdict,
                common::rules(&report)
            ));
        }
    }
    assert!(
        wrong.is_empty(),
        "{} wrong verdicts:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
}

#[test]
fn malformed_malicious_samples_report_both_the_payload_and_the_break() {
    let root = common::shared().join("corpus/picklescan/tests/data");
    for name in ["broken_model.pkl", "malicious-invalid-bytes.pkl"] {
        let r = common::scan_file(&root.join(name));
        let rules = common::rules(&r);
        assert!(rules.iter().any(|c| c.starts_with("PKL10")), "{name}: {rules:?}");
        assert!(
            rules.iter().any(|c| c == "PKL501" || c == "PKL502"),
            "{name}: {rules:?}"
        );
    }
}
