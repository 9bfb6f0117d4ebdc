//! `modelward explain FILE` / `FILE!member`: the disassembly of a pickle (as `pickletools.dis`
//! prints it) and a pseudo-Python program of what loading it would do, with the lines that
//! import or call something dangerous or unknown marked.

use crate::args::ExplainArgs;
use anyhow::{Result, bail};
use modelward_diagnostics::Finding;
use modelward_pickle::{disasm, pseudocode};
use modelward_policy::{Judgement, Policy};
use modelward_scanner::{Input, PickleStream, ScanLimits, Scanner};
use std::io::{BufWriter, Write};
use std::path::Path;
use std::process::ExitCode;

/// The stream `FILE` alone means: the only one, or the only `data.pkl` (a PyTorch checkpoint).
fn default_choice(streams: &[PickleStream]) -> Option<usize> {
    if streams.len() == 1 {
        return Some(0);
    }
    let data_pkl: Vec<usize> = streams
        .iter()
        .enumerate()
        .filter(|(_, s)| {
            s.members
                .last()
                .is_some_and(|m| m == "data.pkl" || m.ends_with("/data.pkl"))
        })
        .map(|(i, _)| i)
        .collect();
    (data_pkl.len() == 1).then(|| data_pkl[0])
}

/// Runs the command. The pickles are found, and judged, by the scanner: what is explained
/// here is what `scan` reported.
pub fn run(args: &ExplainArgs) -> Result<ExitCode> {
    let mut out = BufWriter::new(std::io::stdout().lock());
    explain_to(&args.target, &mut out)?;
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

/// Writes the explanation of `target` (`FILE` or `FILE!member`) to `out`: what the command
/// prints, for the Python API's `modelward.explain` too.
pub fn explain_to(target: &str, out: &mut dyn Write) -> Result<()> {
    let (file, member) = match target.split_once('!') {
        Some((f, m)) => (f, Some(m)),
        None => (target, None),
    };
    let scanner = Scanner::new(Policy::builtin(), ScanLimits::default());
    let (report, streams) = scanner.find_pickles(Input::Path {
        path: Path::new(file),
        display: file.to_owned(),
    });
    if let Some(e) = &report.error {
        bail!("cannot open {file}: {e}");
    }
    let names: Vec<String> = streams.iter().map(|s| s.name(file)).collect();
    let chosen: Vec<&PickleStream> = match member {
        Some(m) => {
            let hit: Vec<&PickleStream> = streams.iter().filter(|s| s.members.join("!") == m).collect();
            if hit.is_empty() {
                if names.is_empty() {
                    bail!("{file} holds no pickle (it is {} content)", report.format);
                }
                bail!("{file} has no pickle at {m:?}; its pickles: {}", names.join(", "));
            }
            hit
        }
        None => match default_choice(&streams) {
            Some(i) => vec![&streams[i]],
            None if streams.is_empty() => {
                if report.format == "npy" {
                    bail!("{target} is a numeric .npy array: it holds no pickle");
                }
                bail!(
                    "{target} is {} content and holds no pickle; `modelward scan` judges it",
                    report.format
                );
            }
            None => streams.iter().collect(),
        },
    };
    let policy = scanner.policy();
    if chosen.len() > 1 {
        writeln!(
            out,
            "# {file} holds {} pickle streams; all are explained below (name one as FILE!member):",
            chosen.len()
        )?;
        for s in &chosen {
            writeln!(out, "#   {}", s.name(file))?;
        }
        writeln!(out)?;
    }
    for (i, stream) in chosen.iter().enumerate() {
        if i > 0 {
            writeln!(out)?;
        }
        explain(out, policy, &stream.name(file), stream)?;
    }
    Ok(())
}

/// The disassembly and pseudo-Python of one stream, each pickle followed by the findings the
/// scan reported inside it.
fn explain(out: &mut dyn Write, policy: &Policy, label: &str, stream: &PickleStream) -> Result<()> {
    let start = stream.start;
    let pickle = &stream.data[..];
    writeln!(
        out,
        "# Disassembly of {} (offsets relative to the pickle{})",
        label,
        if start > 0 {
            format!(", which starts at byte {start}")
        } else {
            String::new()
        }
    )?;
    for line in disasm::disassemble(pickle).iter().take(5000) {
        writeln!(out, "{line}")?;
    }
    let inside = |f: &&Finding, t: &modelward_pickle::Trace| {
        f.location
            .offset
            .is_some_and(|o| o >= t.start && o < t.end.max(t.start + 1))
    };
    for (i, trace) in stream.pickles.iter().enumerate() {
        writeln!(
            out,
            "\n# What loading pickle {} (bytes {}..{}) would do",
            i + 1,
            trace.start,
            trace.end
        )?;
        // The module/name split as find_class saw it: judging `numpy._core.memmap.memmap` split
        // at its first dot would be a different name from the one `scan` judges.
        let split: std::collections::HashMap<String, (String, String)> = trace
            .events
            .iter()
            .filter_map(|ev| match ev {
                modelward_pickle::machine::Event::Import { global, .. } => match trace.arena.get(*global) {
                    Some(modelward_pickle::Node::Global(g)) => {
                        Some((g.qualified(), (g.module.clone(), g.name.clone())))
                    }
                    _ => None,
                },
                _ => None,
            })
            .collect();
        for line in pseudocode::pseudocode(trace) {
            let mark = match &line.subject {
                Some(q) => {
                    let (module, name) = split
                        .get(q)
                        .map(|(m, n)| (m.as_str(), n.as_str()))
                        .unwrap_or_else(|| q.rsplit_once('.').unwrap_or((q, "")));
                    match policy.judge_global(module, name).judgement {
                        Judgement::Dangerous(e) => {
                            format!("  !! dangerous ({})", e.rule.as_deref().unwrap_or(""))
                        }
                        Judgement::Unknown { .. } => "  ?? not on the reviewed list".to_owned(),
                        Judgement::Safe(_) => String::new(),
                    }
                }
                None if line.text.starts_with("_v") && line.text.contains(" = _v") => {
                    "  !! calls a computed value (PKL204)".to_owned()
                }
                None => String::new(),
            };
            writeln!(out, "{:<70}  # @{}{mark}", line.text, line.offset)?;
        }
        let findings: Vec<&Finding> = stream.findings.iter().filter(|f| inside(f, trace)).collect();
        if !findings.is_empty() {
            writeln!(out, "\n# Findings")?;
            for f in findings {
                writeln!(out, "#   {} {} {}: {}", f.severity, f.rule, f.location, f.message)?;
            }
        }
    }
    // What the scan found at this stream but outside any one pickle (trailing data, the
    // legacy header, a per-rule summary).
    let rest: Vec<&Finding> = stream
        .findings
        .iter()
        .filter(|f| !stream.pickles.iter().any(|t| inside(f, t)))
        .collect();
    if !rest.is_empty() {
        writeln!(out, "\n# Findings about the stream as a whole")?;
        for f in rest {
            writeln!(out, "#   {} {} {}: {}", f.severity, f.rule, f.location, f.message)?;
        }
    }
    Ok(())
}
