//! Repository scans against the fake Hub in `support/`: listing with pagination, resolve with
//! a redirect to a CDN, tokens, gated and missing repositories, rate limits and server errors.

mod support;

use modelward_diagnostics::{FileReport, Verdict};
use modelward_policy::Policy;
use modelward_remote::{RemoteError, RemoteOptions, RemoteTarget, scan_remote, scan_remote_with};
use modelward_scanner::{ScanLimits, Scanner};
use std::time::{Duration, Instant};
use support::{Content, GOOD_TOKEN, Repo, Server, TestFile};

fn scanner() -> Scanner {
    Scanner::new(Policy::builtin(), ScanLimits::default())
}

/// The fixture repository: a malicious checkpoint and a clean one (LFS, behind the CDN), a
/// 4 MiB clean safetensors file (LFS), a `config.json` with `auto_map`, an empty file.
fn model_files() -> Vec<TestFile> {
    vec![
        TestFile::new(
            "malicious_checkpoint.pt",
            Content::bytes(support::read_fixture("demo/malicious_checkpoint.pt")),
            true,
        ),
        TestFile::new("model.safetensors", support::safetensors(1 << 20), true),
        TestFile::new("config.json", support::config_json(), false),
        TestFile::new(
            "sub/clean_checkpoint.pt",
            Content::bytes(support::read_fixture("demo/clean_checkpoint.pt")),
            true,
        ),
        TestFile::new("sub/deeper/empty.txt", Content::bytes(Vec::new()), false),
    ]
}

fn by_path<'a>(reports: &'a [FileReport], suffix: &str) -> &'a FileReport {
    reports
        .iter()
        .find(|r| r.path.ends_with(suffix))
        .unwrap_or_else(|| {
            panic!(
                "no report for {suffix}: {:?}",
                reports.iter().map(|r| &r.path).collect::<Vec<_>>()
            )
        })
}

fn target(server: &Server, s: &str) -> RemoteTarget {
    RemoteTarget::parse_with_endpoint(s, &server.hub).unwrap()
}

#[test]
fn scans_a_repository_reading_little() {
    let server = Server::builder()
        .repo(Repo::new("models", "acme/tiny", model_files()))
        .page_size(2)
        .start();
    let mut opts = server.options();
    opts.token = Some(GOOD_TOKEN.into());
    let scan = scan_remote_with(&scanner(), &target(&server, "hf://acme/tiny"), &opts, &|_| {}).unwrap();
    let files = &scan.files;
    for f in files {
        println!(
            "{:<50} {:<10} {:>9} of {:>9} bytes  {}",
            f.path,
            f.verdict.as_str(),
            f.bytes_read,
            f.size,
            f.format
        );
    }
    let paths: Vec<&str> = files.iter().map(|f| f.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "hf://acme/tiny@main/config.json",
            "hf://acme/tiny@main/malicious_checkpoint.pt",
            "hf://acme/tiny@main/model.safetensors",
            "hf://acme/tiny@main/sub/clean_checkpoint.pt",
            "hf://acme/tiny@main/sub/deeper/empty.txt",
        ]
    );

    let evil = by_path(files, "malicious_checkpoint.pt");
    assert_eq!(evil.verdict, Verdict::Malicious, "{evil:#?}");
    assert_eq!(evil.size, 2326);
    assert!(
        evil.findings.iter().any(|f| f.rule.starts_with("PKL1")),
        "{:#?}",
        evil.findings
    );

    let clean = by_path(files, "clean_checkpoint.pt");
    assert_eq!(clean.verdict, Verdict::Clean, "{clean:#?}");

    let st = by_path(files, "model.safetensors");
    assert_eq!(
        (st.format.as_str(), st.verdict),
        ("safetensors", Verdict::Clean),
        "{st:#?}"
    );
    assert_eq!(st.size, (4 << 20) + 8 + st_header_len());
    assert!(
        st.bytes_read > 0 && st.bytes_read <= 160 << 10,
        "{} bytes of a 4 MiB file",
        st.bytes_read
    );

    // auto_map: loading it with trust_remote_code runs the repository's Python.
    let config = by_path(files, "config.json");
    assert!(config.error.is_none(), "{config:#?}");
    assert_eq!(config.verdict, Verdict::Suspicious, "{config:#?}");
    assert!(
        config.findings.iter().any(|f| f.message.contains("auto_map")),
        "{config:#?}"
    );
    assert_eq!(config.bytes_read, config.size);

    let empty = by_path(files, "empty.txt");
    assert_eq!((empty.size, empty.bytes_read), (0, 0));
    assert!(empty.error.is_none());

    let log = server.log();
    // Pagination: 5 files + 2 folders at 2 per page is 4 pages.
    let listings: Vec<_> = log.iter().filter(|l| l.target.starts_with("/api/")).collect();
    assert_eq!(listings.len(), 4, "{listings:#?}");
    assert!(listings.iter().skip(1).all(|l| l.target.contains("cursor=")));
    // The token goes to the Hub and never to the CDN; Range survives the redirect.
    assert!(
        log.iter()
            .filter(|l| l.listener == "hub")
            .all(|l| l.auth.as_deref() == Some(&*format!("Bearer {GOOD_TOKEN}")))
    );
    let cdn: Vec<_> = log.iter().filter(|l| l.listener == "cdn").collect();
    assert!(!cdn.is_empty());
    assert!(
        cdn.iter()
            .all(|l| l.auth.is_none() && l.range.is_some() && l.status == 206),
        "{cdn:#?}"
    );
    assert!(
        log.iter()
            .filter(|l| l.target.contains("/resolve/"))
            .all(|l| l.range.is_some())
    );
    // The empty file cost no request.
    assert!(!log.iter().any(|l| l.target.contains("empty.txt")));
    // The redirect target is reused: one resolve per LFS file.
    for name in [
        "malicious_checkpoint.pt",
        "model.safetensors",
        "clean_checkpoint.pt",
    ] {
        let resolves = log
            .iter()
            .filter(|l| l.listener == "hub" && l.target.ends_with(name))
            .count();
        assert_eq!(resolves, 1, "{name}");
    }
    let sum: u64 = files.iter().map(|f| f.bytes_read).sum();
    assert!(scan.transferred > sum, "the listing counts too");
    assert_eq!(scan.requests as usize, log.len());
    println!(
        "{} requests, {} bytes transferred",
        scan.requests, scan.transferred
    );
}

fn st_header_len() -> u64 {
    let c = support::safetensors(1 << 20);
    c.len() - (4 << 20) - 8
}

#[test]
fn single_files_folders_and_web_urls() {
    let server = Server::builder()
        .repo(Repo::new("models", "acme/tiny", model_files()))
        .start();
    let opts = server.options();
    let s = scanner();

    // /blob/ and /resolve/ web URLs of the endpoint: one file, length learnt from the answer.
    for view in ["blob", "resolve"] {
        let t = target(
            &server,
            &format!("{}/acme/tiny/{view}/main/malicious_checkpoint.pt", server.hub),
        );
        assert!(matches!(t, RemoteTarget::HubFile { .. }));
        let r = scan_remote(&s, &t, &opts).unwrap();
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].path, "hf://acme/tiny@main/malicious_checkpoint.pt");
        assert_eq!(r[0].verdict, Verdict::Malicious);
        assert_eq!(r[0].size, 2326);
    }

    // A folder: only what is below it.
    let r = scan_remote(&s, &target(&server, "hf://acme/tiny@main/sub"), &opts).unwrap();
    let paths: Vec<&str> = r.iter().map(|f| f.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "hf://acme/tiny@main/sub/clean_checkpoint.pt",
            "hf://acme/tiny@main/sub/deeper/empty.txt"
        ]
    );

    // A file through hf://: the folder listing fails, its parent's listing finds it.
    let r = scan_remote(
        &s,
        &target(&server, "hf://acme/tiny/sub/clean_checkpoint.pt"),
        &opts,
    )
    .unwrap();
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].verdict, Verdict::Clean);
    assert_eq!(r[0].size, 2226);

    // /tree/REV web URL.
    let r = scan_remote(
        &s,
        &target(&server, &format!("{}/acme/tiny/tree/main", server.hub)),
        &opts,
    )
    .unwrap();
    assert_eq!(r.len(), 5);

    // Nothing at that path.
    let e = scan_remote(&s, &target(&server, "hf://acme/tiny/nope.bin"), &opts).unwrap_err();
    assert!(matches!(e, RemoteError::NotFound { .. }), "{e}");
}

#[test]
fn datasets_spaces_and_revisions() {
    let mut ds = Repo::new(
        "datasets",
        "acme/data",
        vec![TestFile::new(
            "train/part-0.pkl",
            Content::bytes(support::read_fixture("demo/custom_class.pkl")),
            true,
        )],
    );
    ds.revisions.push("refs/pr/2".into());
    let space = Repo::new(
        "spaces",
        "acme/app",
        vec![TestFile::new(
            "model.pt",
            Content::bytes(support::read_fixture("demo/malicious_checkpoint.pt")),
            false,
        )],
    );
    let server = Server::builder().repo(ds).repo(space).start();
    let opts = server.options();
    let s = scanner();

    let r = scan_remote(&s, &target(&server, "hf://datasets/acme/data@refs/pr/2"), &opts).unwrap();
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].path, "hf://datasets/acme/data@refs/pr/2/train/part-0.pkl");
    assert_ne!(r[0].verdict, Verdict::Clean, "{:#?}", r[0]);
    assert!(
        server
            .log()
            .iter()
            .any(|l| l.target.contains("/api/datasets/acme/data/tree/refs%2Fpr%2F2"))
    );
    assert!(server.log().iter().any(|l| {
        l.target
            .contains("/datasets/acme/data/resolve/refs%2Fpr%2F2/train/part-0.pkl")
    }));

    let r = scan_remote(&s, &target(&server, "hf://spaces/acme/app"), &opts).unwrap();
    assert_eq!(r[0].path, "hf://spaces/acme/app@main/model.pt");
    assert_eq!(r[0].verdict, Verdict::Malicious);

    let e = scan_remote(&s, &target(&server, "hf://datasets/acme/data@nope"), &opts).unwrap_err();
    assert!(
        matches!(&e, RemoteError::NotFound { what, .. } if what == "revision"),
        "{e}"
    );
}

#[test]
fn gated_and_missing_repositories() {
    let mut gated = Repo::new("models", "acme/gated", model_files());
    gated.gated = true;
    let server = Server::builder().repo(gated).start();
    let s = scanner();
    let t = target(&server, "hf://acme/gated");

    let mut opts = server.options();
    let e = scan_remote(&s, &t, &opts).unwrap_err();
    println!("{e}");
    assert_eq!(e.status(), Some(401));
    assert!(e.is_access());
    assert!(e.to_string().contains("HF_TOKEN"), "{e}");
    assert!(e.to_string().contains("gated"), "{e}");

    opts.token = Some("hf_wrong".into());
    let e = scan_remote(&s, &t, &opts).unwrap_err();
    println!("{e}");
    assert_eq!(e.status(), Some(403));
    assert!(e.to_string().contains("gated"), "{e}");

    opts.token = Some(GOOD_TOKEN.into());
    let r = scan_remote(&s, &t, &opts).unwrap();
    assert_eq!(r.len(), 5);

    let e = scan_remote(&s, &target(&server, "hf://acme/missing"), &opts).unwrap_err();
    println!("{e}");
    assert!(
        matches!(&e, RemoteError::NotFound { status: 404, what, .. } if what == "repository"),
        "{e}"
    );

    // A single file of a gated repository: the report says why it could not be fetched.
    let mut opts = server.options();
    opts.token = None;
    let t = target(
        &server,
        &format!("{}/acme/gated/resolve/main/config.json", server.hub),
    );
    let r = scan_remote(&s, &t, &opts).unwrap();
    assert_eq!(r[0].verdict, Verdict::Error);
    assert!(
        r[0].error.as_deref().unwrap().contains("HF_TOKEN"),
        "{:?}",
        r[0].error
    );
    assert!(r[0].findings.iter().any(|f| f.rule == "MWD001"));
}

#[test]
fn rate_limits_are_retried_after_the_servers_delay() {
    let mut repo = Repo::new("models", "acme/busy", model_files());
    repo.rate_limit_once = true;
    let server = Server::builder().repo(repo).start();
    let s = scanner();
    let t = target(&server, "hf://acme/busy");

    let started = Instant::now();
    let r = scan_remote(&s, &t, &server.options()).unwrap();
    let took = started.elapsed();
    assert_eq!(r.len(), 5);
    assert!(
        took >= Duration::from_secs(1),
        "Retry-After: 1 was not honoured ({took:?})"
    );
    let statuses: Vec<u16> = server
        .log()
        .iter()
        .filter(|l| l.target.starts_with("/api/"))
        .map(|l| l.status)
        .collect();
    assert_eq!(statuses, [429, 200]);

    // Bounded: one attempt only gives up at once.
    let mut repo = Repo::new("models", "acme/busy", model_files());
    repo.rate_limit_once = true;
    let server = Server::builder().repo(repo).start();
    let mut opts = server.options();
    opts.max_attempts = 1;
    let e = scan_remote(&s, &t_for(&server, "hf://acme/busy"), &opts).unwrap_err();
    assert!(matches!(e, RemoteError::RateLimited { attempts: 1, .. }), "{e}");
}

fn t_for(server: &Server, s: &str) -> RemoteTarget {
    target(server, s)
}

#[test]
fn server_errors_are_retried_then_reported_per_file() {
    let mut flaky = Repo::new("models", "acme/flaky", model_files());
    flaky.flaky = 2;
    let mut broken = Repo::new("models", "acme/broken", model_files());
    broken.broken = true;
    let server = Server::builder().repo(flaky).repo(broken).start();
    let s = scanner();
    let opts = server.options();

    let r = scan_remote(&s, &target(&server, "hf://acme/flaky"), &opts).unwrap();
    assert_eq!(by_path(&r, "malicious_checkpoint.pt").verdict, Verdict::Malicious);
    assert!(r.iter().all(|f| f.error.is_none()), "{r:#?}");
    assert!(server.log().iter().filter(|l| l.status == 503).count() >= 8);

    // Always 500: every non-empty file is an error with a finding; the scan itself succeeds.
    let r = scan_remote(&s, &target(&server, "hf://acme/broken"), &opts).unwrap();
    for f in &r {
        if f.size == 0 {
            continue;
        }
        assert_eq!(f.verdict, Verdict::Error, "{f:#?}");
        let e = f.error.as_deref().unwrap();
        assert!(
            e.contains("HTTP 500") && e.contains(&format!("{} attempts", opts.max_attempts)),
            "{e}"
        );
        assert!(f.findings.iter().any(|x| x.rule == "MWD001"));
    }
}

#[test]
fn a_file_that_fails_half_way_is_not_called_clean() {
    // Not LFS, so every range request goes through `resolve`; the second one fails for good.
    let mut repo = Repo::new(
        "models",
        "acme/halfway",
        vec![TestFile::new(
            "model.bin",
            support::torch_zip(Some(8 << 20)),
            false,
        )],
    );
    repo.fail_after = Some(1);
    let server = Server::builder().repo(repo).start();
    let r = scan_remote(
        &scanner(),
        &target(&server, "hf://acme/halfway"),
        &server.options(),
    )
    .unwrap();
    let f = &r[0];
    println!("{f:#?}");
    assert_eq!(f.verdict, Verdict::Error);
    assert!(f.error.as_deref().unwrap().contains("HTTP 500"), "{:?}", f.error);
    assert!(
        f.findings
            .iter()
            .any(|x| x.rule == "MWD001" && x.message.contains("could not be read completely"))
    );
}

#[test]
fn offline_mode_refuses_the_hub() {
    let opts = RemoteOptions {
        offline: true,
        ..RemoteOptions::default()
    };
    let t = RemoteTarget::parse_with_endpoint("hf://acme/tiny", "http://127.0.0.1:9").unwrap();
    let e = scan_remote(&scanner(), &t, &opts).unwrap_err();
    assert!(matches!(e, RemoteError::Offline { .. }));
    assert!(e.to_string().contains("HF_HUB_OFFLINE"));
}

#[test]
fn the_hubs_lfs_sha256_is_recorded_and_checked_when_a_file_is_read_whole() {
    use sha2::{Digest, Sha256};
    let hex = |b: &[u8]| -> String { Sha256::digest(b).iter().map(|x| format!("{x:02x}")).collect() };
    let clean = support::read_fixture("demo/clean_checkpoint.pt");
    let evil = support::read_fixture("demo/malicious_checkpoint.pt");
    let files = vec![
        // The listing's sha256 is the file's: recorded, checked, no finding.
        TestFile::new("clean.pt", Content::bytes(clean.clone()), true).with_oid(&hex(&clean)),
        // The listing says one thing, the CDN serves another.
        TestFile::new("swapped.pt", Content::bytes(evil.clone()), true).with_oid(&hex(&clean)),
        // Large, read only in part: the Hub's sha256 is recorded, nothing is claimed of the bytes.
        TestFile::new("model.safetensors", support::safetensors(1 << 20), true).with_oid(&"ab".repeat(32)),
    ];
    let server = Server::builder()
        .repo(Repo::new("models", "acme/lfs", files))
        .start();
    let scan = scan_remote_with(
        &scanner(),
        &target(&server, "hf://acme/lfs"),
        &server.options(),
        &|_| {},
    )
    .unwrap();
    let ok = by_path(&scan.files, "clean.pt");
    assert_eq!(ok.hub_sha256.as_deref(), Some(hex(&clean).as_str()));
    assert_eq!(ok.sha256.as_deref(), Some(hex(&clean).as_str()));
    assert!(
        ok.findings.iter().all(|f| f.rule != "PRV004"),
        "{:?}",
        ok.findings
    );
    let bad = by_path(&scan.files, "swapped.pt");
    assert_eq!(bad.sha256.as_deref(), Some(hex(&evil).as_str()));
    let prv = bad.findings.iter().find(|f| f.rule == "PRV004").expect("PRV004");
    assert!(prv.message.contains(&hex(&clean)), "{}", prv.message);
    let big = by_path(&scan.files, "model.safetensors");
    assert_eq!(big.hub_sha256.as_deref(), Some("ab".repeat(32).as_str()));
    assert_eq!(big.sha256, None, "read {} of {} bytes", big.bytes_read, big.size);
    assert!(big.findings.iter().all(|f| f.rule != "PRV004"));
}

#[test]
fn a_deep_scan_of_a_remote_file_fetches_only_the_sampled_ranges() {
    // 64 MiB of float32 whose first bytes are an ELF header (the EvilModel layout).
    let floats: u64 = 16 << 20;
    let bytes = floats * 4;
    let mut header =
        format!(r#"{{"weight":{{"dtype":"F32","shape":[{floats}],"data_offsets":[0,{bytes}]}}}}"#)
            .into_bytes();
    while header.len() % 8 != 0 {
        header.push(b' ');
    }
    let mut head = (header.len() as u64).to_le_bytes().to_vec();
    head.extend_from_slice(&header);
    let elf = b"\x7fELF\x02\x01\x01\0\0\0\0\0\0\0\0\0\x02\0\x3e\0\x01\0\0\0".to_vec();
    let content = support::Content::virtual_file(vec![
        support::Segment::Bytes(head),
        support::Segment::Bytes(elf.clone()),
        support::Segment::Zeros(bytes - elf.len() as u64),
    ]);
    let server = Server::builder()
        .repo(Repo::new(
            "models",
            "acme/evil",
            vec![TestFile::new("model.safetensors", content, true)],
        ))
        .start();
    let deep = Scanner::new(
        Policy::builtin(),
        ScanLimits {
            deep: Some(modelward_formats::tensors::deep::DeepLimits::default()),
            ..ScanLimits::default()
        },
    );
    let scan = scan_remote_with(
        &deep,
        &target(&server, "hf://acme/evil"),
        &server.options(),
        &|_| {},
    )
    .unwrap();
    let f = by_path(&scan.files, "model.safetensors");
    assert!(
        f.findings
            .iter()
            .any(|x| x.rule == "TEN201" && x.message.contains("ELF")),
        "{:?}",
        f.findings
    );
    // Four 1 MiB slices of the one 64 MiB tensor, and the header: never the whole file.
    eprintln!("deep: {} bytes transferred of {}", f.bytes_read, f.size);
    assert!(
        f.bytes_read < 8 << 20,
        "{} bytes transferred of {}",
        f.bytes_read,
        f.size
    );
    assert!(f.bytes_read >= 4 << 20, "{}", f.bytes_read);
    // Without --deep the tensor is not fetched at all.
    let shallow = scan_remote_with(
        &scanner(),
        &target(&server, "hf://acme/evil"),
        &server.options(),
        &|_| {},
    )
    .unwrap();
    let s = by_path(&shallow.files, "model.safetensors");
    assert_eq!(s.verdict, Verdict::Clean, "{:?}", s.findings);
    assert!(s.bytes_read < 1 << 20, "{}", s.bytes_read);
}
