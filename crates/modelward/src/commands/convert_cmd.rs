//! `modelward convert INPUT [-o OUTPUT]`: a PyTorch checkpoint (zip or legacy format) or a
//! numpy `.npy`/`.npz` to safetensors, without running Python. Refused, with the findings,
//! when the input's pickle does anything but build tensors and plain containers.
//!
//! Exit codes: `0` converted; `1` refused (the findings say why); `2` anything else failed
//! (unsupported or malformed input, I/O, a verification mismatch).

use anyhow::Result;
use modelward_convert::{ConvertError, Options, Plan, Report, default_output};
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

/// `modelward convert`.
#[derive(Debug, clap::Args)]
pub struct ConvertArgs {
    /// A PyTorch checkpoint (`torch.save`, zip or legacy format) or a numpy `.npy` / `.npz`.
    pub input: PathBuf,
    /// The safetensors file to write [default: INPUT with the extension `.safetensors`].
    #[arg(short, long)]
    pub output: Option<PathBuf>,
    /// Re-read the output and compare every tensor with the source, byte for byte.
    #[arg(long)]
    pub verify: bool,
    /// Replace OUTPUT when it exists.
    #[arg(long)]
    pub force: bool,
    /// Name of a tensor saved on its own (`torch.save(tensor)`, a `.npy`) [default: the input's
    /// file stem].
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,
    /// Judge the input and show the tensors it would write; write nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// List every tensor.
    #[arg(short, long)]
    pub verbose: bool,
}

fn size(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KB", "MB", "GB", "TB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1000.0 && u + 1 < UNITS.len() {
        v /= 1000.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

fn print_tensors(
    out: &mut impl Write,
    plan_tensors: &[modelward_convert::TensorInfo],
) -> std::io::Result<()> {
    for t in plan_tensors {
        let mut how = Vec::new();
        if t.strided {
            how.push("strided view");
        }
        if t.swapped {
            how.push("byte-swapped");
        }
        writeln!(
            out,
            "  {:<40} {:<8} {:?}  from {} @{}{}",
            t.name,
            t.dtype.safetensors(),
            t.shape,
            t.source,
            t.source_offset,
            if how.is_empty() {
                String::new()
            } else {
                format!(" ({})", how.join(", "))
            }
        )?;
    }
    Ok(())
}

fn print_details(
    out: &mut impl Write,
    metadata: &std::collections::BTreeMap<String, String>,
    dropped: &[modelward_convert::Dropped],
    notes: &[String],
) -> std::io::Result<()> {
    if !metadata.is_empty() {
        let keys: Vec<&str> = metadata.keys().map(String::as_str).collect();
        writeln!(out, "  __metadata__: {}", keys.join(", "))?;
    }
    if !dropped.is_empty() {
        writeln!(
            out,
            "  dropped {} value(s) that are neither tensors nor strings:",
            dropped.len()
        )?;
        for d in dropped {
            writeln!(out, "    {}: {}", d.name, d.what)?;
        }
    }
    for n in notes {
        writeln!(out, "  note: {n}")?;
    }
    Ok(())
}

fn print_report(out: &mut impl Write, r: &Report, verbose: bool) -> std::io::Result<()> {
    writeln!(
        out,
        "converted {} ({}) -> {}: {} tensor(s), {} of data",
        r.input.display(),
        r.format,
        r.output.display(),
        r.tensors.len(),
        size(r.data_bytes)
    )?;
    if verbose {
        print_tensors(out, &r.tensors)?;
    }
    print_details(out, &r.metadata, &r.dropped, &r.notes)?;
    if let Some(v) = &r.verified {
        writeln!(
            out,
            "  verified: {} tensor(s), {} equal to the source",
            v.tensors,
            size(v.bytes)
        )?;
        for m in &v.crc_mismatches {
            writeln!(out, "  warning: {m}")?;
        }
    }
    Ok(())
}

/// Runs the command.
pub fn run(args: &ConvertArgs) -> Result<ExitCode> {
    let opts = Options {
        root_name: args.name.clone(),
        verify: args.verify,
        overwrite: args.force,
    };
    let output = args.output.clone().unwrap_or_else(|| default_output(&args.input));
    let mut out = std::io::stdout().lock();
    let result = Plan::open(&args.input, &opts).and_then(|plan| {
        if args.dry_run {
            writeln!(
                out,
                "{} ({}) would convert to {} tensor(s), {} of data:",
                args.input.display(),
                plan.format(),
                plan.tensors().len(),
                size(plan.data_len())
            )
            .and_then(|()| print_tensors(&mut out, &plan.tensors()))
            .and_then(|()| print_details(&mut out, plan.metadata(), plan.dropped(), plan.notes()))
            .map_err(|e| ConvertError::Io {
                path: "stdout".into(),
                source: e,
            })?;
            return Ok(None);
        }
        plan.write(&output, &opts).map(Some)
    });
    match result {
        Ok(Some(report)) => {
            print_report(&mut out, &report, args.verbose)?;
            Ok(ExitCode::SUCCESS)
        }
        Ok(None) => Ok(ExitCode::SUCCESS),
        Err(ConvertError::Refused {
            path,
            findings,
            reasons,
        }) => {
            writeln!(
                out,
                "refused to convert {path}: it does more than build tensors and plain containers"
            )?;
            for f in &findings {
                writeln!(
                    out,
                    "  {} {} {}  {}\n      {}",
                    f.severity, f.rule, f.name, f.location, f.message
                )?;
                if let Some(e) = &f.evidence {
                    writeln!(out, "      │ {e}")?;
                }
            }
            for r in &reasons {
                writeln!(out, "  not convertible: {r}")?;
            }
            writeln!(
                out,
                "nothing was written. Run `modelward explain` on the pickle to see everything it does."
            )?;
            Ok(ExitCode::from(1))
        }
        Err(e) => Err(e.into()),
    }
}
