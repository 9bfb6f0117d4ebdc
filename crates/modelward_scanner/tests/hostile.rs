//! Hostile input: mutated and truncated fixtures, bombs and huge archives. The scanner must
//! never panic (a caught panic shows up as an "internal error" finding), never hang and never
//! call a damaged malicious file clean.

mod common;

use common::{Member, fixture, scan, zip};
use modelward_diagnostics::{FileReport, Verdict};
use proptest::prelude::*;

fn assert_sane(r: &FileReport) {
    assert!(
        !r.findings.iter().any(|f| f.message.contains("internal error")),
        "panic inside the scanner: {:?}",
        r.findings
    );
}

const SEEDS: &[&str] = &[
    "torch/state_dict_zip.pt",
    "torch/state_dict_legacy.pt",
    "torch/torchscript_tinynet.pt",
    "joblib/arrays_uncompressed.joblib",
    "joblib/object_array.joblib",
    "joblib/arrays_zlib.joblib.z",
    "numpy/object_strings.npy",
    "numpy/object_member.npz",
    "pickle/benign_dict_p0.pkl",
    "pickle/os_system_p4.pkl",
    "archives/bundle.tar.gz",
    "torch/nullifai_checkpoint.7z",
    "zip/local_header_only.pt",
];

#[test]
fn every_truncation_of_malicious_files_is_handled_and_payloads_before_the_cut_are_found() {
    for name in [
        "pickle/os_system_p2.pkl",
        "pickle/os_system_p0.pkl",
        "torch/malicious_zip.pt",
    ] {
        let data = fixture(name);
        for cut in 0..data.len() {
            let r = scan(&data[..cut]);
            assert_sane(&r);
            assert_ne!(r.verdict, Verdict::Error, "{name} cut at {cut}");
        }
    }
    // Once the import and call are complete, a plain pickle cut anywhere later is still malicious.
    let data = fixture("pickle/os_system_p2.pkl");
    let call_end = data.iter().rposition(|&b| b == b'R').expect("REDUCE") + 1;
    for cut in call_end..data.len() {
        assert_eq!(scan(&data[..cut]).verdict, Verdict::Malicious, "cut at {cut}");
    }
}

#[test]
fn a_zip_with_ten_thousand_members_is_bounded() {
    let names: Vec<String> = (0..10_000).map(|i| format!("m/{i}.txt")).collect();
    let members: Vec<Member<'_>> = names.iter().map(|n| Member::stored(n, b"hello")).collect();
    let z = zip(&members);
    let r = scan(&z);
    assert_sane(&r);
    assert_eq!(r.verdict, Verdict::Clean, "{:?}", common::rules(&r));
    let z = zip(&(0..10_001)
        .map(|_| Member::stored("same.txt", b"x"))
        .collect::<Vec<_>>());
    let r = scan(&z);
    assert!(
        common::rules(&r).contains(&"ARC203".to_owned()),
        "{:?}",
        common::rules(&r)
    );
}

/// A pickle whose single operand is `n` zero bytes (the scanner must read through it to STOP).
fn zero_pickle(n: usize) -> Vec<u8> {
    let mut p = vec![0x80, 4, 0x8e];
    p.extend_from_slice(&(n as u64).to_le_bytes());
    p.resize(p.len() + n, 0);
    p.push(b'.');
    p
}

fn small_budget() -> modelward_scanner::ScanLimits {
    modelward_scanner::ScanLimits {
        max_decompressed: 8 << 20,
        ..Default::default()
    }
}

#[test]
fn gzip_and_zip_bombs_stop_at_the_budget() {
    let gz = common::gzip(&zero_pickle(64 << 20));
    assert!(gz.len() < 200_000);
    let r = common::scan_with(small_budget(), &gz);
    assert_sane(&r);
    assert!(
        common::rules(&r).contains(&"ARC201".to_owned()),
        "{:?}",
        common::rules(&r)
    );
    assert_ne!(r.verdict, Verdict::Clean);

    let mut e = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut e, &zero_pickle(64 << 20)).expect("deflate");
    let deflated = e.finish().expect("deflate");
    let z = zip(&[Member {
        name: "archive/data.pkl",
        data: &deflated,
        method: 8,
        flags: 0,
    }]);
    let r = common::scan_with(small_budget(), &z);
    assert_sane(&r);
    assert!(
        common::rules(&r).contains(&"ARC201".to_owned()),
        "{:?}",
        common::rules(&r)
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn mutated_fixtures_never_break_the_scanner(seed in 0..SEEDS.len(), flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..16), cut in any::<usize>()) {
        let mut data = fixture(SEEDS[seed]);
        for (at, byte) in flips {
            let n = data.len();
            data[at % n] = byte;
        }
        let len = data.len();
        data.truncate(len - cut % (len / 4 + 1));
        let r = scan(&data);
        assert_sane(&r);
    }
}

/// A zip of 250 members, each a pickle calling `os.system`: the report lists 100 of that rule
/// and one more finding counting the other 150, still critical; raising the limit lists all.
#[test]
fn findings_per_rule_are_capped_and_counted() {
    let pickle = b"cos\nsystem\n(S'id'\ntR.".to_vec();
    let names: Vec<String> = (0..250).map(|i| format!("m{i}.pkl")).collect();
    let members: Vec<Member<'_>> = names.iter().map(|n| Member::stored(n, &pickle)).collect();
    let data = zip(&members);

    let all = common::scan_with(
        modelward_scanner::ScanLimits {
            max_findings_per_rule: 1000,
            ..Default::default()
        },
        &data,
    );
    let rule = all.findings[0].rule.clone();
    let of_rule = |r: &FileReport| r.findings.iter().filter(|f| f.rule == rule).count();
    assert_eq!(of_rule(&all), 250, "{rule}");

    let capped = scan(&data);
    assert_sane(&capped);
    assert_eq!(capped.verdict, all.verdict);
    assert_eq!(capped.severity, all.severity);
    assert_eq!(of_rule(&capped), 101);
    let summary: Vec<_> = capped
        .findings
        .iter()
        .filter(|f| f.message.starts_with("150 more "))
        .collect();
    assert_eq!(summary.len(), 1, "{:?}", capped.findings.last());
    assert_eq!(summary[0].rule, rule);
    assert_eq!(Some(summary[0].severity), all.severity);
    assert!(summary[0].location.members.is_empty());
}
