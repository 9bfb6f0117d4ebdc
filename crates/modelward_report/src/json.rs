//! `--format json`: the [`ScanReport`] document, pretty-printed.

use modelward_diagnostics::ScanReport;
use std::io::{self, Write};

/// Writes the report as JSON followed by a newline.
pub fn write(report: &ScanReport, out: &mut dyn Write) -> io::Result<()> {
    serde_json::to_writer_pretty(&mut *out, report).map_err(crate::io_error)?;
    writeln!(out)
}
