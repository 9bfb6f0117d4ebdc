//! A 1 GiB PyTorch zip checkpoint, served by the local fake Hub from real header and
//! directory bytes around a generated zero region (never held in memory or on disk), scanned
//! with well under 1 MB transferred.

mod support;

use modelward_diagnostics::Verdict;
use modelward_policy::Policy;
use modelward_remote::{RemoteTarget, scan_remote_with};
use modelward_scanner::{ScanLimits, Scanner};
use std::time::Instant;
use support::{Repo, Server, TestFile};

const GIB: u64 = 1 << 30;

#[test]
fn the_small_twin_is_a_clean_checkpoint() {
    // The same layout with the real 24-byte data/0, scanned from memory: the re-packing itself
    // is clean, so the remote verdict below is about the big file only.
    let small = support::torch_zip(None).to_vec();
    let s = Scanner::new(Policy::builtin(), ScanLimits::default());
    let r = s.scan(modelward_scanner::Input::bytes("small.pt", &small));
    assert_eq!(r.verdict, Verdict::Clean, "{r:#?}");
    assert_eq!(r.format, "pytorch-zip", "{r:#?}");
}

#[test]
fn gigabyte_checkpoint_over_range_requests() {
    let big = support::torch_zip(Some(GIB));
    assert!(big.len() > GIB);
    let size = big.len();
    let server = Server::builder()
        .repo(Repo::new(
            "models",
            "acme/big",
            vec![TestFile::new("pytorch_model.bin", big, true)],
        ))
        .start();
    let s = Scanner::new(Policy::builtin(), ScanLimits::default());
    let t = RemoteTarget::parse_with_endpoint("hf://acme/big", &server.hub).unwrap();

    let started = Instant::now();
    let scan = scan_remote_with(&s, &t, &server.options(), &|_| {}).unwrap();
    let took = started.elapsed();
    let r = &scan.files[0];
    println!(
        "{}: {} bytes, verdict {}, {} bytes transferred for the file ({} with the listing) in {} requests, {:.1} ms",
        r.path,
        r.size,
        r.verdict,
        r.bytes_read,
        scan.transferred,
        scan.requests,
        took.as_secs_f64() * 1000.0
    );
    assert_eq!(r.path, "hf://acme/big@main/pytorch_model.bin");
    assert_eq!(r.size, size);
    assert_eq!(r.format, "pytorch-zip", "{r:#?}");
    assert_eq!(r.verdict, Verdict::Clean, "{r:#?}");
    assert!(r.error.is_none());
    assert!(r.bytes_read < 1_000_000, "{} bytes transferred", r.bytes_read);
    assert!(scan.transferred < 1_000_000);
    for l in server.log() {
        println!(
            "  {:<3} {:<4} {:<28} {}",
            l.listener,
            l.status,
            l.range.as_deref().unwrap_or("-"),
            l.target
        );
    }
}

#[test]
fn an_expired_cdn_url_is_resolved_again() {
    let mut repo = Repo::new(
        "models",
        "acme/signed",
        vec![TestFile::new(
            "pytorch_model.bin",
            support::torch_zip(Some(64 << 20)),
            true,
        )],
    );
    repo.single_use_cdn = true;
    let server = Server::builder().repo(repo).start();
    let s = Scanner::new(Policy::builtin(), ScanLimits::default());
    let t = RemoteTarget::parse_with_endpoint("hf://acme/signed", &server.hub).unwrap();
    let scan = scan_remote_with(&s, &t, &server.options(), &|_| {}).unwrap();
    let r = &scan.files[0];
    assert_eq!(r.verdict, Verdict::Clean, "{r:#?}");
    assert!(r.error.is_none());
    let log = server.log();
    let statuses: Vec<(&str, u16)> = log.iter().skip(1).map(|l| (l.listener, l.status)).collect();
    // tail: resolve + CDN; head: stale CDN URL refused, resolved again, new URL.
    assert_eq!(
        statuses,
        [
            ("hub", 302),
            ("cdn", 206),
            ("cdn", 403),
            ("hub", 302),
            ("cdn", 206)
        ]
    );
}
