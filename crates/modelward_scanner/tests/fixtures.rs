//! The committed fixtures (tests/fixtures/expected.json): verdicts and the names a scan must
//! report, for files made by the real writers.

mod common;

#[test]
fn every_fixture_gets_its_verdict_and_names() {
    let root = common::repo().join("tests/fixtures");
    let expected: Vec<serde_json::Value> =
        serde_json::from_slice(&std::fs::read(root.join("expected.json")).expect("expected.json"))
            .expect("json");
    assert!(expected.len() >= 70, "only {} fixtures listed", expected.len());
    let mut wrong = Vec::new();
    for e in &expected {
        let rel = e["path"].as_str().expect("path");
        let report = common::scan_file(&root.join(rel));
        let want = e["verdict"].as_str().expect("verdict");
        if report.verdict.as_str() != want {
            wrong.push(format!(
                "{rel}: expected {want}, got {} {:?}",
                report.verdict,
                common::rules(&report)
            ));
            continue;
        }
        let text: String = report
            .findings
            .iter()
            .map(|f| format!("{} {} ", f.message, f.evidence.clone().unwrap_or_default()))
            .collect();
        for rule in e
            .get("must_rule")
            .and_then(|r| r.as_array())
            .into_iter()
            .flatten()
        {
            let rule = rule.as_str().expect("rule");
            if !report.findings.iter().any(|f| f.rule == rule) {
                wrong.push(format!("{rel}: rule {rule} not reported"));
            }
        }
        for name in e["must_find"].as_array().expect("must_find") {
            let name = name.as_str().expect("name");
            if !text.contains(name) {
                wrong.push(format!("{rel}: {name} not reported"));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "{} problems:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
}

#[test]
fn a_large_torch_zip_checkpoint_is_read_without_its_tensor_data() {
    // archive/data.pkl references one 48 MiB storage, archive/data/0.
    let pickle =
        std::fs::read(common::repo().join("tests/fixtures/torch/state_dict_zip.pt")).expect("fixture");
    let listing = modelward_formats::zip::list(
        &mut std::io::Cursor::new(&pickle),
        pickle.len() as u64,
        Default::default(),
    )
    .expect("zip");
    let pkl = listing
        .entries
        .iter()
        .find(|e| e.name.ends_with("data.pkl"))
        .expect("data.pkl");
    let start = pkl.data_offset.expect("data") as usize;
    let mut data_pkl = pickle[start..start + pkl.compressed_size as usize].to_vec();
    let tensor = vec![0u8; 48 << 20];
    // Storage 0 becomes 48 MiB of float32: its element count, BININT1 6, a BININT of 12 Mi (a
    // size that disagrees with the storage is TEN102).
    let numel = b"cpuq\x06K\x06t";
    let at = data_pkl
        .windows(numel.len())
        .position(|w| w == numel)
        .expect("storage 0's numel")
        + 5;
    let big: Vec<u8> = std::iter::once(b'J')
        .chain(((48u32 << 20) / 4).to_le_bytes())
        .collect();
    data_pkl.splice(at..at + 2, big);
    let zip = common::zip(&[
        common::Member::stored("archive/data.pkl", &data_pkl),
        common::Member::stored("archive/data/0", &tensor),
        common::Member::stored("archive/version", b"3\n"),
    ]);
    let dir = std::env::temp_dir().join(format!("modelward-big-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("tmp");
    let path = dir.join("big.pt");
    std::fs::write(&path, &zip).expect("write");
    let r = common::scan_file(&path);
    std::fs::remove_dir_all(&dir).ok();
    assert_eq!(r.format, "pytorch-zip");
    assert_eq!(
        r.verdict,
        modelward_diagnostics::Verdict::Clean,
        "{:?}",
        common::rules(&r)
    );
    assert!(
        r.bytes_read < 16 * 1024,
        "read {} of {} bytes",
        r.bytes_read,
        r.size
    );
}

#[test]
fn locations_chain_through_nested_containers() {
    let path = common::repo().join("tests/fixtures/archives/bundle.tar.gz");
    let r = common::scan_file(&path);
    let f = r
        .findings
        .iter()
        .find(|f| f.rule.starts_with("PKL10"))
        .expect("payload found");
    assert!(f.location.members.len() >= 2, "{}", f.location);
    assert!(f.location.to_string().contains("data.pkl"), "{}", f.location);
}

#[test]
fn a_base64_pickle_inside_a_string_constant_is_scanned_at_its_own_location() {
    use base64::Engine as _;
    use modelward_pickle::assemble::Assembler as A;
    let inner = A::new().proto(2).call1("posix", "system", "id").stop().finish();
    let encoded = base64::engine::general_purpose::STANDARD.encode(&inner);
    let outer = A::new()
        .proto(4)
        .empty_dict()
        .short_binunicode("blob")
        .binunicode(&encoded)
        .setitem()
        .stop()
        .finish();
    let r = common::scan(&outer);
    assert_eq!(
        r.verdict,
        modelward_diagnostics::Verdict::Malicious,
        "{:?}",
        common::rules(&r)
    );
    let hit = r
        .findings
        .iter()
        .find(|f| f.rule == "PKL102")
        .expect("inner payload");
    assert_eq!(hit.location.members.len(), 1, "{}", hit.location);
    assert!(
        hit.location.members[0].starts_with("base64 constant @"),
        "{}",
        hit.location
    );
    assert!(common::rules(&r).contains(&"PKL401".to_owned()));
}
