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

/// Writes one file's block (nothing for a clean or skipped file unless verbose).
pub fn write_file(f: &FileReport, out: &mut dyn Write, opts: TextOptions) -> io::Result<()> {
    write_file_block(f, out, opts, false)
}

/// One file's block; `always` lists it even when it is clean or skipped (a file the user named).
fn write_file_block(f: &FileReport, out: &mut dyn Write, opts: TextOptions, always: bool) -> io::Result<()> {
    let p = Paint(opts.color);
    let quiet = matches!(f.verdict, Verdict::Clean | Verdict::Skipped) && f.findings.is_empty();
    if quiet && !opts.verbose && !always {
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
    write_named(report, out, opts, &|_| false)
}

/// Writes the whole report, listing every file for which `named` is true (the files a user
/// named one by one get their verdict; a directory's clean files stay quiet unless verbose).
pub fn write_named(
    report: &ScanReport,
    out: &mut dyn Write,
    opts: TextOptions,
    named: &dyn Fn(&FileReport) -> bool,
) -> io::Result<()> {
    for f in &report.files {
        write_file_block(f, out, opts, named(f))?;
    }
    let p = Paint(opts.color);
    for e in &report.errors {
        writeln!(out, "{} {}: {}", p.wrap("1;35", "error:"), e.source, e.error)?;
    }
    if !report.errors.is_empty() {
        writeln!(out)?;
    }
    write_summary(report, out, opts)
}

/// `1 file`, `2 files`.
fn count(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
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
    // What was judged first; what was not (skipped, unreadable, not found) after, only when
    // there is some.
    let mut counts = format!(
        "{} judged: {} malicious, {} suspicious, {} clean",
        count(s.judged(), "model file", "model files"),
        s.malicious,
        s.suspicious,
        s.clean
    );
    if s.skipped > 0 {
        counts.push_str(&format!(
            "; {} skipped (nothing model-related)",
            count(s.skipped, "other file", "other files")
        ));
    }
    if s.errors > 0 {
        counts.push_str(&format!(
            "; {} (error)",
            count(s.errors, "file unreadable", "files unreadable")
        ));
    }
    if !report.errors.is_empty() {
        counts.push_str(&format!(
            "; {} (error)",
            count(
                report.errors.len() as u64,
                "path not scanned",
                "paths not scanned"
            )
        ));
    }
    writeln!(
        out,
        "{} {} · {} · read {} of {} in {} ms",
        p.wrap("1", "Summary:"),
        counts,
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
