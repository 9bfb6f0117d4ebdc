//! `modelward explain FILE` / `FILE!member`: the disassembly of a pickle (as `pickletools.dis`
//! prints it) and a pseudo-Python program of what loading it would do, with the lines that
//! import or call something dangerous or unknown marked.

use crate::args::ExplainArgs;
use anyhow::{Context, Result, bail};
use modelward_diagnostics::Location;
use modelward_formats::{Format, compress, npy, sniff, zip};
use modelward_pickle::{Limits, NoInline, disasm, pseudocode, scan_stream};
use modelward_policy::{Judgement, PickleContext, Policy};
use std::io::{BufWriter, Read, Write};
use std::process::ExitCode;

/// Largest content explained.
const MAX_CONTENT: u64 = 256 << 20;

fn read_target(target: &str) -> Result<Vec<u8>> {
    let (file, member) = match target.split_once('!') {
        Some((f, m)) => (f, Some(m)),
        None => (target, None),
    };
    let mut f = std::fs::File::open(file).with_context(|| format!("cannot open {file}"))?;
    let len = f.metadata()?.len();
    let Some(member) = member else {
        let mut data = Vec::new();
        f.take(MAX_CONTENT).read_to_end(&mut data)?;
        return Ok(data);
    };
    let listing = zip::list(&mut f, len, zip::ZipLimits::default())
        .with_context(|| format!("{file} is not a zip archive"))?;
    let Some(entry) = listing
        .entries
        .iter()
        .find(|e| e.name == member || e.display_name() == member)
    else {
        let names: Vec<&str> = listing.entries.iter().map(|e| e.name.as_str()).take(20).collect();
        bail!("{file} has no member {member:?}; members: {}", names.join(", "));
    };
    let raw = zip::raw_member(&mut f, entry, len).context("member data lies outside the file")?;
    let Some(dec) = compress::zip_method(entry.method, raw) else {
        bail!("unsupported compression method {}", entry.method);
    };
    let mut data = Vec::new();
    dec?.take(MAX_CONTENT).read_to_end(&mut data)?;
    Ok(data)
}

/// Runs the command.
pub fn run(args: &ExplainArgs) -> Result<ExitCode> {
    let mut out = BufWriter::new(std::io::stdout().lock());
    explain_to(&args.target, &mut out)?;
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

/// Writes the explanation of `target` (`FILE` or `FILE!member`) to `out`: what the command
/// prints, for the Python API's `modelward.explain`.
pub fn explain_to(target: &str, out: &mut dyn Write) -> Result<()> {
    let args = ExplainArgs {
        target: target.to_owned(),
    };
    let data = read_target(&args.target)?;
    let start = match sniff(&data) {
        Format::Pickle => 0,
        Format::Npy => match npy::parse(&data) {
            Ok(h) if h.has_object => h.data_offset as usize,
            Ok(_) => bail!("{} is a numeric .npy array: it holds no pickle", args.target),
            Err(f) => bail!("{}: {}", args.target, f.message),
        },
        Format::Zip => bail!(
            "{} is a zip archive: name a member, e.g. {}!archive/data.pkl",
            args.target,
            args.target
        ),
        other => bail!(
            "{} is {} content, not a pickle; `modelward scan` opens containers",
            args.target,
            other.name()
        ),
    };
    let pickle = &data[start.min(data.len())..];
    let policy = Policy::builtin();
    writeln!(
        out,
        "# Disassembly of {} (offsets relative to the pickle{})",
        args.target,
        if start > 0 {
            format!(", which starts at byte {start}")
        } else {
            String::new()
        }
    )?;
    for line in disasm::disassemble(pickle).iter().take(5000) {
        writeln!(out, "{line}")?;
    }
    let scan = scan_stream(
        pickle,
        0,
        Some(pickle.len() as u64),
        &Limits::default(),
        &mut NoInline,
    );
    let torch = args.target.contains('!');
    for (i, trace) in scan.pickles.iter().enumerate() {
        writeln!(
            out,
            "\n# What loading pickle {} (bytes {}..{}) would do",
            i + 1,
            trace.start,
            trace.end
        )?;
        for line in pseudocode::pseudocode(trace) {
            let mark = match &line.subject {
                Some(q) => {
                    let (module, name) = q.split_once('.').unwrap_or((q, ""));
                    match policy.globals().judge_path(module, name).0 {
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
        let loc = Location::file(&args.target);
        let findings: Vec<_> = policy
            .pickle_facts(trace, PickleContext { torch })
            .into_iter()
            .filter_map(|f| policy.finding(f, &loc))
            .collect();
        if !findings.is_empty() {
            writeln!(out, "\n# Findings")?;
            for f in findings {
                writeln!(out, "#   {} {} {}: {}", f.severity, f.rule, f.location, f.message)?;
            }
        }
    }
    if let Some((at, n)) = scan.trailing {
        writeln!(
            out,
            "\n# {n} bytes after the last pickle (from byte {at}) are not a pickle"
        )?;
    }
    Ok(())
}
