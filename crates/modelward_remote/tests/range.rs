//! `RangeReader` and plain URLs against the local server: range semantics, the block cache,
//! redirects, servers that ignore `Range`, empty files.

mod support;

use modelward_diagnostics::Verdict;
use modelward_policy::Policy;
use modelward_remote::{Client, RangeReader, RemoteTarget, scan_remote};
use modelward_scanner::{ScanLimits, Scanner};
use std::io::{Read, Seek, SeekFrom};
use support::{Content, Server};

fn scanner() -> Scanner {
    Scanner::new(Policy::builtin(), ScanLimits::default())
}

/// 300 KiB of a pattern that tells positions apart.
fn pattern(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i % 251) as u8 ^ (i / 251 % 256) as u8).collect()
}

#[test]
fn the_test_server_speaks_http_ranges() {
    let data = pattern(1000);
    let server = Server::builder()
        .plain("p.bin", Content::bytes(data.clone()), false)
        .start();
    let agent = ureq::Agent::new_with_defaults();
    let url = format!("{}/plain/p.bin", server.hub);
    let get = |range: Option<&str>| {
        let mut req = agent.get(&url);
        if let Some(r) = range {
            req = req.header("Range", r);
        }
        match req.call() {
            Ok(mut r) => (
                r.status().as_u16(),
                r.headers()
                    .get("content-range")
                    .map(|v| v.to_str().unwrap().to_owned()),
                r.body_mut().read_to_vec().unwrap(),
            ),
            Err(ureq::Error::StatusCode(s)) => (s, None, Vec::new()),
            Err(e) => panic!("{e}"),
        }
    };
    assert_eq!(get(None), (200, None, data.clone()));
    assert_eq!(
        get(Some("bytes=10-19")),
        (206, Some("bytes 10-19/1000".into()), data[10..20].to_vec())
    );
    assert_eq!(
        get(Some("bytes=990-")),
        (206, Some("bytes 990-999/1000".into()), data[990..].to_vec())
    );
    assert_eq!(
        get(Some("bytes=-5")),
        (206, Some("bytes 995-999/1000".into()), data[995..].to_vec())
    );
    assert_eq!(get(Some("bytes=-5000")).2, data);
    assert_eq!(get(Some("bytes=900-5000")).2, data[900..].to_vec());
    assert_eq!(get(Some("bytes=1000-")).0, 416);
}

#[test]
fn range_reader_reads_exactly_with_a_small_cache() {
    let data = pattern(300 << 10);
    let server = Server::builder()
        .plain("p.bin", Content::bytes(data.clone()), false)
        .start();
    let mut opts = server.options();
    opts.block_size = 16 << 10;
    opts.cache_blocks = 2;
    let client = Client::new(&opts);
    let url = format!("{}/plain/p.bin", server.hub);
    let mut r = RangeReader::open(&client, &url, None, &opts).unwrap();
    // The first request asks for the last block and learns the length.
    assert_eq!(r.len(), data.len() as u64);
    assert_eq!(r.requests(), 1);
    assert_eq!(r.bytes_transferred(), 66 << 10);
    assert_eq!(server.log()[0].range.as_deref(), Some("bytes=-67584"));

    // The tail is cached.
    let mut buf = [0u8; 22];
    r.seek(SeekFrom::End(-22)).unwrap();
    r.read_exact(&mut buf).unwrap();
    assert_eq!(buf, data[data.len() - 22..]);
    assert_eq!(r.requests(), 1);

    // Reads across block boundaries, anywhere.
    for (at, n) in [
        (0usize, 100usize),
        (16380, 10),
        (100_000, 40_000),
        (5, 5),
        (299_000, 8_000),
    ] {
        r.seek(SeekFrom::Start(at as u64)).unwrap();
        let mut got = Vec::new();
        (&mut r).take(n as u64).read_to_end(&mut got).unwrap();
        let end = (at + n).min(data.len());
        assert_eq!(got, data[at..end], "at {at}");
    }
    // Past the end: nothing, no request.
    let before = r.requests();
    r.seek(SeekFrom::Start(1 << 30)).unwrap();
    assert_eq!(r.read(&mut buf).unwrap(), 0);
    assert_eq!(r.requests(), before);
    assert!(r.seek(SeekFrom::Current(-(2i64 << 30))).is_err());

    // A whole sequential read fetches growing ranges: far fewer requests than blocks.
    let mut r = RangeReader::open(&client, &url, Some(data.len() as u64), &opts).unwrap();
    let mut all = Vec::new();
    r.read_to_end(&mut all).unwrap();
    assert_eq!(all, data);
    assert!(r.requests() <= 6, "{} requests", r.requests());
    assert!(r.failure().is_none());
}

#[test]
fn plain_urls_redirects_and_tokens() {
    let ckpt = support::read_fixture("demo/malicious_checkpoint.pt");
    let server = Server::builder()
        .plain("m.pt", Content::bytes(ckpt.clone()), false)
        .start();
    let mut opts = server.options();
    opts.endpoint = "https://huggingface.co".into();
    opts.token = Some("hf_secret".into());
    let s = scanner();

    // /moved/ answers 302 to the CDN origin: Range survives, the token does not follow.
    let url = format!("{}/moved/m.pt?sig=abc", server.hub);
    let t = RemoteTarget::parse_with_endpoint(&url, "https://huggingface.co").unwrap();
    assert_eq!(t, RemoteTarget::Url(url.clone()));
    let r = scan_remote(&s, &t, &opts).unwrap();
    assert_eq!(
        r[0].path,
        format!("{}/moved/m.pt", server.hub),
        "the query is not shown"
    );
    assert_eq!(r[0].verdict, Verdict::Malicious);
    assert_eq!(r[0].size, ckpt.len() as u64);
    let log = server.log();
    assert_eq!(log[0].status, 302);
    assert!(log[1].listener == "cdn" && log[1].status == 206 && log[1].range.is_some());
    // Not the endpoint's origin: no token at all, not even to the first host.
    assert!(log.iter().all(|l| l.auth.is_none()), "{log:#?}");

    // On the endpoint's origin the token is sent, and still dropped at the CDN.
    server.clear_log();
    opts.endpoint = server.hub.clone();
    scan_remote(&s, &t, &opts).unwrap();
    let log = server.log();
    assert_eq!(log[0].auth.as_deref(), Some("Bearer hf_secret"));
    assert!(
        log.iter()
            .filter(|l| l.listener == "cdn")
            .all(|l| l.auth.is_none())
    );

    // 404.
    let t = RemoteTarget::Url(format!("{}/plain/missing.pt", server.hub));
    let r = scan_remote(&s, &t, &opts).unwrap();
    assert_eq!(r[0].verdict, Verdict::Error);
    assert!(r[0].error.as_deref().unwrap().contains("404"), "{:?}", r[0].error);
}

#[test]
fn servers_that_ignore_range() {
    let ckpt = support::read_fixture("demo/malicious_checkpoint.pt");
    let server = Server::builder()
        .plain("small.pt", Content::bytes(ckpt.clone()), true)
        .plain(
            "big.pt",
            Content::virtual_file(vec![support::Segment::Zeros(200 << 20)]),
            true,
        )
        .start();
    let s = scanner();
    let opts = server.options();

    // Small enough: downloaded whole, once, and scanned.
    let client = Client::new(&opts);
    let url = format!("{}/plain/small.pt", server.hub);
    let mut r = RangeReader::open(&client, &url, None, &opts).unwrap();
    assert!(r.downloaded_whole());
    assert_eq!(r.len(), ckpt.len() as u64);
    let mut all = Vec::new();
    r.read_to_end(&mut all).unwrap();
    assert_eq!(all, ckpt);
    assert_eq!(r.requests(), 1);
    let rep = scan_remote(&s, &RemoteTarget::Url(url), &opts).unwrap();
    assert_eq!(rep[0].verdict, Verdict::Malicious);
    assert_eq!(rep[0].bytes_read, ckpt.len() as u64);

    // Too large: refused with a clear error, the body not read.
    let rep = scan_remote(
        &s,
        &RemoteTarget::Url(format!("{}/plain/big.pt", server.hub)),
        &opts,
    )
    .unwrap();
    let e = rep[0].error.as_deref().unwrap();
    println!("{e}");
    assert!(
        e.contains("ignores HTTP range requests") && e.contains("209715200 bytes"),
        "{e}"
    );
    assert_eq!(rep[0].verdict, Verdict::Error);
    assert!(rep[0].bytes_read < 1 << 20, "{}", rep[0].bytes_read);
    assert!(rep[0].findings.iter().any(|f| f.rule == "MWD001"));
}

#[test]
fn empty_files() {
    let server = Server::builder()
        .plain("empty", Content::bytes(Vec::new()), false)
        .start();
    let opts = server.options();
    let client = Client::new(&opts);
    let url = format!("{}/plain/empty", server.hub);
    // Length unknown: the suffix range gets 416 `bytes */0`.
    let r = RangeReader::open(&client, &url, None, &opts).unwrap();
    assert_eq!((r.len(), r.requests()), (0, 1));
    // Known empty: no request at all.
    let r = RangeReader::open(&client, &url, Some(0), &opts).unwrap();
    assert_eq!((r.len(), r.requests()), (0, 0));
    let rep = scan_remote(&scanner(), &RemoteTarget::Url(url), &opts).unwrap();
    assert!(rep[0].error.is_none(), "{:#?}", rep[0]);
    assert_eq!(rep[0].size, 0);
}
