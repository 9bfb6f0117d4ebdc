//! Renderers for scan reports. Each is a pure function of a [`ScanReport`] and a writer.
//!
//! - [`text`]: for people; readable without colour, colour only when asked.
//! - [`json`]: the versioned document described in `docs/json-output.md`.
//! - [`sarif`]: SARIF 2.1.0 for GitHub code scanning and other SARIF consumers.
//! - [`github`]: GitHub Actions annotations.
//! - [`cyclonedx`]: a CycloneDX 1.7 / 1.6 JSON ML-BOM.
#![forbid(unsafe_code)]

pub mod cyclonedx;
pub mod github;
pub mod json;
pub mod sarif;
pub mod text;
pub mod time;

/// Human-readable byte counts: `1.2 MB`.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KB", "MB", "GB", "TB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1000.0 && u < UNITS.len() - 1 {
        v /= 1000.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

/// A serde_json error as an I/O error, keeping the I/O kind (a closed pipe stays `BrokenPipe`).
pub(crate) fn io_error(e: serde_json::Error) -> std::io::Error {
    match e.io_error_kind() {
        Some(kind) => std::io::Error::new(kind, e),
        None => std::io::Error::other(e),
    }
}
