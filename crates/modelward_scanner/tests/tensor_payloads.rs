//! Payloads hidden in tensor data (tests/fixtures/tensors/, from
//! tests/fixtures/generate/gen_tensor_payloads.py): layout findings always, the TEN2xx ones only
//! with `--deep` (`ScanLimits::deep`), and the clean twins clean either way.

mod common;

use modelward_diagnostics::{FileReport, Verdict};
use modelward_formats::tensors::deep::DeepLimits;
use modelward_scanner::{Input, ScanLimits, Scanner};
use std::path::Path;

fn scan(name: &str, deep: Option<DeepLimits>) -> FileReport {
    let path = common::repo().join("tests/fixtures/tensors").join(name);
    let limits = ScanLimits {
        deep,
        ..ScanLimits::default()
    };
    Scanner::new(modelward_policy::Policy::builtin(), limits).scan(Input::path(Path::new(&path)))
}

fn deep(name: &str) -> FileReport {
    scan(name, Some(DeepLimits::default()))
}

fn shallow(name: &str) -> FileReport {
    scan(name, None)
}

const CLEAN: [&str; 4] = [
    "clean_f32.safetensors",
    "clean_f16.safetensors",
    "clean_bf16.safetensors",
    "clean_checkpoint.pt",
];

#[test]
fn clean_twins_are_clean_with_and_without_deep() {
    for name in CLEAN {
        for r in [shallow(name), deep(name)] {
            assert_eq!(r.verdict, Verdict::Clean, "{name}: {:?}", r.findings);
            assert!(r.findings.is_empty(), "{name}: {:?}", r.findings);
        }
    }
}

#[test]
fn low_bit_payloads_in_every_float_type_and_width_are_found_with_deep_only() {
    let mut names: Vec<String> = Vec::new();
    for ty in ["f32", "f16", "bf16"] {
        for bits in [1, 2, 8] {
            names.push(format!("bad_TEN202_{ty}_low{bits}.safetensors"));
        }
    }
    names.push("bad_TEN202_storage_low8.pt".into());
    for name in &names {
        let r = deep(name);
        assert!(
            common::rules(&r).contains(&"TEN202".to_owned()),
            "{name}: {:?}",
            r.findings
        );
        assert_eq!(r.verdict, Verdict::Suspicious, "{name}: {:?}", r.findings);
        let f = r.findings.iter().find(|f| f.rule == "TEN202").unwrap();
        let evidence = f.evidence.as_deref().unwrap_or_default();
        assert!(evidence.contains("assembled bytes"), "{evidence}");
        // Without --deep no tensor byte is read.
        let s = shallow(name);
        assert_eq!(s.verdict, Verdict::Clean, "{name}: {:?}", s.findings);
    }
}

#[test]
fn an_executable_stored_as_a_tensor_is_found_with_its_offset() {
    for (name, member) in [
        ("bad_TEN201_elf_in_tensor.safetensors", None),
        (
            "bad_TEN201_elf_in_storage.pt",
            Some("bad_TEN201_elf_in_storage/data/0"),
        ),
    ] {
        let r = deep(name);
        assert_eq!(r.verdict, Verdict::Malicious, "{name}: {:?}", r.findings);
        let f = r
            .findings
            .iter()
            .find(|f| f.rule == "TEN201")
            .unwrap_or_else(|| panic!("{name}: {:?}", r.findings));
        assert!(f.message.contains("ELF"), "{}", f.message);
        let evidence = f.evidence.as_deref().unwrap_or_default();
        assert!(evidence.starts_with("7f 45 4c 46"), "hex preview: {evidence}");
        assert_eq!(f.location.members.last().map(String::as_str), member);
        // 8192 bytes into the weight: in the member, or in the file after the 8 + 152 header
        // bytes and the 4096 of layer.bias that precede it.
        let at = f.location.offset.unwrap();
        assert_eq!(
            at,
            if member.is_some() {
                8192
            } else {
                8 + 152 + 4096 + 8192
            }
        );
        assert!(f.message.contains("8192 bytes into"), "{}", f.message);
        assert_eq!(shallow(name).verdict, Verdict::Clean);
    }
}

#[test]
fn torch_layout_anomalies_are_found_without_deep() {
    let r = shallow("bad_TEN101_unreferenced_zip.pt");
    assert_eq!(common::rules(&r), ["TEN101"], "{:?}", r.findings);
    assert_eq!(
        r.findings[0].location.members,
        ["bad_TEN101_unreferenced_zip/data/2"]
    );
    let r = shallow("bad_TEN102_appended_bytes.pt");
    assert_eq!(common::rules(&r), ["TEN102"], "{:?}", r.findings);
    assert!(
        r.findings[0].message.contains("1024 × FloatStorage"),
        "{}",
        r.findings[0].message
    );
    // With --deep the bytes themselves are looked at too: the zip and the script are named.
    let r = deep("bad_TEN101_unreferenced_zip.pt");
    assert!(
        r.findings
            .iter()
            .any(|f| f.rule == "TEN201" && f.message.contains("zip")),
        "{:?}",
        r.findings
    );
}

#[test]
fn the_deep_budget_bounds_what_is_read_and_says_so() {
    let tight = DeepLimits {
        per_file: 16 << 10,
        per_tensor: 32 << 10,
    };
    let r = scan("clean_checkpoint.pt", Some(tight));
    let full = deep("clean_checkpoint.pt");
    assert!(
        r.bytes_read < full.bytes_read,
        "{} < {}",
        r.bytes_read,
        full.bytes_read
    );
    assert!(r.bytes_read <= shallow("clean_checkpoint.pt").bytes_read + (16 << 10));
    assert!(
        common::rules(&r).contains(&"TEN205".to_owned()),
        "{:?}",
        r.findings
    );
    assert_eq!(r.verdict, Verdict::Clean);
}

#[path = "../../../tests/support/real_sets.rs"]
mod real_sets;

#[test]
fn deep_reports_nothing_above_low_on_the_real_files() {
    let dirs: Vec<_> = [real_sets::shared(), real_sets::extra()]
        .into_iter()
        .flatten()
        .collect();
    if dirs.is_empty() {
        return;
    }
    let limits = ScanLimits {
        deep: Some(DeepLimits::default()),
        ..ScanLimits::default()
    };
    let scanner = Scanner::new(modelward_policy::Policy::builtin(), limits);
    let report = scanner.scan_paths(&dirs, |_| {});
    let mut loud = Vec::new();
    let mut low = 0;
    for f in &report.files {
        for x in f.findings.iter().filter(|x| x.rule.starts_with("TEN")) {
            if x.severity > modelward_diagnostics::Severity::Low {
                loud.push(format!("{}: {} {}", f.path, x.rule, x.message));
            } else {
                low += 1;
            }
        }
    }
    eprintln!(
        "--deep on {} real files: {low} low TEN findings, {} above low",
        report.files.len(),
        loud.len()
    );
    assert!(report.files.len() > 300, "{} files", report.files.len());
    assert!(loud.is_empty(), "{loud:#?}");
}
