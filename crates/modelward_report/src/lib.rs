//! Renderers for scan reports. Each is a pure function of a [`ScanReport`] and a writer.
//!
//! - [`text`]: for people; readable without colour, colour only when asked.
//! - [`json`]: the versioned document described in `docs/json-output.md`.
#![forbid(unsafe_code)]

pub mod json;
pub mod text;

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
