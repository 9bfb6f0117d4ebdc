//! `--format text`: one block per file that has something to say, then a summary line.

use crate::human_bytes;
use modelward_diagnostics::{FileReport, ScanReport, Severity, Verdict};
use std::io::{self, Write};

/// Options for text output.
#[derive(Debug, Clone, Copy, Default)]
pub struct TextOptions {
    /// ANSI colour.
    pub color: bool,
    /// Also list clean and skipped files.
    pub verbose: bool,
}

struct Paint(bool);

impl Paint {
    fn wrap(&self, code: &str, s: &str) -> String {
        if self.0 {
            format!("\x1b[{code}m{s}\x1b[0m")
        } else {
            s.to_owned()
        }
    }
    fn severity(&self, s: Severity) -> String {
        let code = match s {
            Severity::Critical => "1;31",
            Severity::High => "31",
            Severity::Medium => "33",
            Severity::Low => "36",
            Severity::Info => "2",
        };
        self.wrap(code, &format!("{:<8}", s.as_str()))
    }
    fn verdict(&self, v: Verdict) -> String {
        let code = match v {
            Verdict::Malicious => "1;31",
            Verdict::Suspicious => "1;33",
            Verdict::Clean => "32",
            Verdict::Skipped => "2",
            Verdict::Error => "1;35",
        };
        self.wrap(code, &v.as_str().to_uppercase())
    }
}

/// Writes one file's block.
pub fn write_file(f: &FileReport, out: &mut dyn Write, opts: TextOptions) -> io::Result<()> {
    let p = Paint(opts.color);
    let quiet = matches!(f.verdict, Verdict::Clean | Verdict::Skipped) && f.findings.is_empty();
    if quiet && !opts.verbose {
        return Ok(());
    }
    writeln!(
        out,
        "{}  {}  [{}]  read {} of {}",
        p.wrap("1", &f.path),
        p.verdict(f.verdict),
        f.format,
        human_bytes(f.bytes_read),
        human_bytes(f.size)
    )?;
    if let Some(e) = &f.error {
        writeln!(out, "    error: {e}")?;
    }
    for finding in &f.findings {
        // Findings from the sandbox are marked: they come from running the file, not reading it.
        let dynamic = if finding.source == modelward_diagnostics::Source::Dynamic {
            " [dynamic]"
        } else {
            ""
        };
        writeln!(
            out,
            "  {} {} {}  {}{dynamic}",
            p.severity(finding.severity),
            finding.rule,
            p.wrap("2", &finding.name),
            finding.location
        )?;
        writeln!(out, "      {}", finding.message)?;
        if let Some(ev) = &finding.evidence {
            writeln!(out, "      {} {}", p.wrap("2", "│"), ev)?;
        }
        if !finding.why.is_empty() {
            writeln!(out, "      {}", p.wrap("2", &format!("why: {}", finding.why)))?;
        }
    }
    writeln!(out)
}

/// Writes the whole report.
pub fn write(report: &ScanReport, out: &mut dyn Write, opts: TextOptions) -> io::Result<()> {
    for f in &report.files {
        write_file(f, out, opts)?;
    }
    write_summary(report, out, opts)
}

/// The closing summary line.
pub fn write_summary(report: &ScanReport, out: &mut dyn Write, opts: TextOptions) -> io::Result<()> {
    let p = Paint(opts.color);
    let s = &report.summary;
    let findings: Vec<String> = Severity::ALL
        .iter()
        .rev()
        .filter_map(|sev| {
            s.findings
                .get(sev.as_str())
                .filter(|n| **n > 0)
                .map(|n| format!("{n} {sev}"))
        })
        .collect();
    let findings = if findings.is_empty() {
        "no findings".to_owned()
    } else {
        findings.join(", ")
    };
    writeln!(
        out,
        "{} {} file(s) scanned: {} malicious, {} suspicious, {} clean, {} skipped, {} errors · {} · read {} of {} in {} ms",
        p.wrap("1", "Summary:"),
        s.files,
        s.malicious,
        s.suspicious,
        s.clean,
        s.skipped,
        s.errors,
        findings,
        human_bytes(s.bytes_read),
        human_bytes(s.bytes_total),
        s.elapsed_ms
    )?;
    if s.requests > 0 {
        writeln!(
            out,
            "Remote: {} transferred in {} HTTP request(s)",
            human_bytes(s.bytes_transferred),
            s.requests
        )?;
    }
    Ok(())
}
