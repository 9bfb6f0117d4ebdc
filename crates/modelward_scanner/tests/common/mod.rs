//! Helpers shared by the scanner's integration tests.
#![allow(dead_code)]

use modelward_diagnostics::FileReport;
use modelward_policy::Policy;
use modelward_scanner::{ScanLimits, Scanner};
use std::path::{Path, PathBuf};

/// The repository root.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("repo root")
}

/// `../shared` beside the repository; fails loudly when it is missing so no test passes unrun.
pub fn shared() -> PathBuf {
    let p = repo().join("../shared");
    assert!(
        p.is_dir(),
        "{} is missing: the reference material must sit beside the project root",
        p.display()
    );
    p
}

pub fn scanner() -> Scanner {
    Scanner::new(Policy::builtin(), ScanLimits::default())
}

pub fn scan(data: &[u8]) -> FileReport {
    scanner().scan(modelward_scanner::Input::bytes("input", data))
}

pub fn scan_with(limits: ScanLimits, data: &[u8]) -> FileReport {
    Scanner::new(Policy::builtin(), limits).scan(modelward_scanner::Input::bytes("input", data))
}

pub fn scan_file(path: &Path) -> FileReport {
    scanner().scan(modelward_scanner::Input::path(path))
}

/// Scans a file, reporting it under `display`.
pub fn scan_file_as(path: &Path, display: &str) -> FileReport {
    scanner().scan(modelward_scanner::Input::Path {
        path,
        display: display.to_owned(),
    })
}

pub fn fixture(rel: &str) -> Vec<u8> {
    let p = repo().join("tests/fixtures").join(rel);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

pub fn rules(r: &FileReport) -> Vec<String> {
    r.findings.iter().map(|f| f.rule.clone()).collect()
}

/// A zip member for [`zip`].
pub struct Member<'a> {
    pub name: &'a str,
    pub data: &'a [u8],
    pub method: u16,
    pub flags: u16,
}

impl<'a> Member<'a> {
    pub fn stored(name: &'a str, data: &'a [u8]) -> Member<'a> {
        Member {
            name,
            data,
            method: 0,
            flags: 0,
        }
    }
}

/// A minimal zip writer (stored data, any method number written as given), for structure tests.
pub fn zip(members: &[Member<'_>]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut central = Vec::new();
    for m in members {
        let mut crc = flate2::Crc::new();
        crc.update(m.data);
        let offset = out.len() as u32;
        let header = |sig: &[u8], central: bool| {
            let mut h = Vec::new();
            h.extend_from_slice(sig);
            if central {
                h.extend_from_slice(&20u16.to_le_bytes());
            }
            h.extend_from_slice(&20u16.to_le_bytes());
            h.extend_from_slice(&m.flags.to_le_bytes());
            h.extend_from_slice(&m.method.to_le_bytes());
            h.extend_from_slice(&[0, 0, 0, 0]);
            h.extend_from_slice(&crc.sum().to_le_bytes());
            h.extend_from_slice(&(m.data.len() as u32).to_le_bytes());
            h.extend_from_slice(&(m.data.len() as u32).to_le_bytes());
            h.extend_from_slice(&(m.name.len() as u16).to_le_bytes());
            h.extend_from_slice(&0u16.to_le_bytes());
            if central {
                // comment length, disk, internal and external attributes
                h.extend_from_slice(&[0; 10]);
                h.extend_from_slice(&offset.to_le_bytes());
            }
            h.extend_from_slice(m.name.as_bytes());
            h
        };
        out.extend(header(b"PK\x03\x04", false));
        out.extend_from_slice(m.data);
        central.extend(header(b"PK\x01\x02", true));
    }
    let cd_offset = out.len() as u32;
    out.extend_from_slice(&central);
    out.extend_from_slice(b"PK\x05\x06\0\0\0\0");
    out.extend_from_slice(&(members.len() as u16).to_le_bytes());
    out.extend_from_slice(&(members.len() as u16).to_le_bytes());
    out.extend_from_slice(&(central.len() as u32).to_le_bytes());
    out.extend_from_slice(&cd_offset.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
    out
}

pub fn gzip(data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    e.write_all(data).expect("gzip");
    e.finish().expect("gzip")
}
