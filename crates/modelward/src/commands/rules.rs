//! `modelward rules` and `modelward rule CODE`: generated from the catalog the scanner uses.

use anyhow::{Result, bail};
use modelward_policy::Policy;
use std::io::Write;
use std::process::ExitCode;

/// Lists every rule.
pub fn list() -> Result<ExitCode> {
    let policy = Policy::builtin();
    let mut out = std::io::stdout().lock();
    writeln!(out, "{:<8} {:<10} {:<28} summary", "code", "severity", "name")?;
    for r in policy.catalog().rules() {
        writeln!(
            out,
            "{:<8} {:<10} {:<28} {}",
            r.code,
            r.severity.as_str(),
            r.name,
            r.summary
        )?;
    }
    Ok(ExitCode::SUCCESS)
}

/// Prints one rule's documentation.
pub fn show(code: &str) -> Result<ExitCode> {
    let policy = Policy::builtin();
    let Some(r) = policy.catalog().get(&code.to_ascii_uppercase()) else {
        bail!("no rule {code:?}; `modelward rules` lists them");
    };
    let mut out = std::io::stdout().lock();
    writeln!(out, "{} {}\n", r.code, r.name)?;
    writeln!(out, "{}\n", r.summary)?;
    writeln!(
        out,
        "Default severity: {}   Confidence: {:?}\n",
        r.severity, r.confidence
    )?;
    writeln!(out, "## Why it matters\n\n{}", r.why.trim())?;
    if let Some(rule_globals) = Some(
        policy
            .globals()
            .dangerous()
            .iter()
            .filter(|e| e.rule.as_deref() == Some(r.code.as_str()))
            .collect::<Vec<_>>(),
    ) && !rule_globals.is_empty()
    {
        writeln!(out, "\n## Names reported under this rule\n")?;
        let mut last_reason = "";
        for e in rule_globals {
            if e.reason != last_reason {
                // A new reason starts a new line, except the first (the heading's blank line
                // is already there).
                if !last_reason.is_empty() {
                    writeln!(out)?;
                }
                writeln!(out, "- {}:", e.reason)?;
                last_reason = &e.reason;
            }
            write!(
                out,
                "  {}{}",
                e.name,
                if matches!(e.matching, modelward_policy::Match::Prefix) {
                    ".*"
                } else {
                    ""
                }
            )?;
        }
        writeln!(out)?;
    }
    Ok(ExitCode::SUCCESS)
}
