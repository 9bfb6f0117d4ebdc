//! `--format github`: GitHub Actions workflow commands, one annotation per finding.

use modelward_diagnostics::{ScanReport, Severity};
use std::io::{self, Write};

/// Workflow commands need `%`, `\r`, `\n` (and in properties `:` and `,`) escaped.
fn escape(s: &str, property: bool) -> String {
    let mut out = s.replace('%', "%25").replace('\r', "%0D").replace('\n', "%0A");
    if property {
        out = out.replace(':', "%3A").replace(',', "%2C");
    }
    out
}

/// Writes one `::error`/`::warning`/`::notice` line per finding.
pub fn write(report: &ScanReport, out: &mut dyn Write) -> io::Result<()> {
    for f in &report.files {
        for x in &f.findings {
            let kind = match x.severity {
                Severity::Critical | Severity::High => "error",
                Severity::Medium => "warning",
                Severity::Low | Severity::Info => "notice",
            };
            let mut msg = format!("{} ({})", x.message, x.location);
            if let Some(ev) = &x.evidence {
                msg.push_str(&format!(": {ev}"));
            }
            writeln!(
                out,
                "::{kind} file={},title={}::{}",
                escape(&x.location.path, true),
                escape(&format!("modelward {} {}", x.rule, x.name), true),
                escape(&msg, false)
            )?;
        }
        if let Some(e) = &f.error {
            writeln!(
                out,
                "::error file={},title=modelward: file not scanned::{}",
                escape(&f.path, true),
                escape(e, false)
            )?;
        }
    }
    for e in &report.errors {
        writeln!(
            out,
            "::error title=modelward: path not scanned::{}",
            escape(&format!("{}: {}", e.source, e.error), false)
        )?;
    }
    Ok(())
}
