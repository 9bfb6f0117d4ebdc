//! A format found inside a container is scanned, not only named: a GGUF with a malicious chat
//! template, a Keras `.h5` with a Lambda and an ONNX model whose external data leaves its
//! folder are each malicious alone, and stay malicious alone inside a `.tar.gz`, a plain gzip
//! stream and a 7z archive (built here from the committed fixtures by the real writers).

mod common;

use modelward_diagnostics::Verdict;
use std::io::Cursor;

const CASES: &[(&str, &str)] = &[
    ("gguf/bad_TPL101_ssti_chat_template.gguf", "TPL101"),
    ("keras/bad_KRS102_lambda_os_system.h5", "KRS102"),
    ("onnx/bad_ONX103_external_traversal.onnx", "ONX103"),
];

fn member_name(rel: &str) -> &str {
    rel.rsplit('/').next().unwrap_or(rel)
}

fn tar_gz(name: &str, data: &[u8]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_size(data.len() as u64);
    h.set_mode(0o644);
    h.set_cksum();
    b.append_data(&mut h, name, data).expect("tar member");
    common::gzip(&b.into_inner().expect("tar"))
}

fn sevenz(name: &str, data: &[u8]) -> Vec<u8> {
    let mut w = sevenz_rust2::ArchiveWriter::new(Cursor::new(Vec::new())).expect("7z writer");
    w.push_archive_entry(sevenz_rust2::ArchiveEntry::new_file(name), Some(data))
        .expect("7z member");
    w.finish().expect("7z").into_inner()
}

fn assert_malicious_with(what: &str, data: &[u8], rule: &str) {
    let r = common::scan(data);
    assert_eq!(r.verdict, Verdict::Malicious, "{what}: {r:#?}");
    assert!(
        common::rules(&r).iter().any(|x| x == rule),
        "{what}: {rule} not reported: {:?}",
        common::rules(&r)
    );
}

#[test]
fn each_fixture_is_malicious_alone() {
    for (rel, rule) in CASES {
        assert_malicious_with(rel, &common::fixture(rel), rule);
    }
}

#[test]
fn inside_a_tar_gz_the_format_is_scanned() {
    for (rel, rule) in CASES {
        let data = tar_gz(member_name(rel), &common::fixture(rel));
        assert_malicious_with(&format!("{rel} in x.tar.gz"), &data, rule);
    }
}

#[test]
fn inside_a_plain_gzip_the_format_is_scanned() {
    for (rel, rule) in CASES {
        let data = common::gzip(&common::fixture(rel));
        assert_malicious_with(&format!("{rel}.gz"), &data, rule);
    }
}

#[test]
fn inside_a_7z_the_format_is_scanned() {
    for (rel, rule) in CASES {
        let data = sevenz(member_name(rel), &common::fixture(rel));
        assert!(data.starts_with(b"7z\xbc\xaf\x27\x1c"), "not a 7z archive");
        assert_malicious_with(&format!("{rel} in x.7z"), &data, rule);
    }
}

/// The location of a nested finding names the member it was found in.
#[test]
fn a_nested_finding_names_its_member() {
    let (rel, rule) = CASES[1];
    let r = common::scan(&tar_gz(member_name(rel), &common::fixture(rel)));
    let f = r.findings.iter().find(|f| f.rule == rule).expect("finding");
    assert!(
        f.location.members.iter().any(|m| m == member_name(rel)),
        "{:?}",
        f.location
    );
}
