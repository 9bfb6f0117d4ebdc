//! `modelward detonate FILE…` and `scan --detonate`: the static scan first (through the
//! scanner, as always), then the file loaded by its real loader in the sandbox
//! (`modelward_sandbox`); dynamic findings are added to the file's report and can only raise
//! its verdict.

use crate::args::{FailOn, OutputFormat};
use anyhow::{Context, Result};
use modelward_diagnostics::{FileReport, ScanReport, Severity, Verdict};
use modelward_policy::Policy;
use modelward_report::text::TextOptions;
use modelward_sandbox::{Detonation, Loader, Options, Sandbox};
use modelward_scanner::{ScanLimits, Scanner, Target, ToInput};
use std::io::{BufWriter, IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

/// Which files `scan --detonate` loads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum When {
    /// Files whose static verdict is suspicious or malicious.
    Suspicious,
    /// Every file a loader exists for.
    Always,
}

/// A loader name on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LoaderArg {
    /// pickle.load
    Pickle,
    /// torch.load(weights_only=False)
    Torch,
    /// joblib.load
    Joblib,
    /// numpy.load(allow_pickle=True)
    Numpy,
    /// keras.models.load_model(safe_mode=False)
    Keras,
    /// pandas.read_pickle
    Pandas,
}

impl From<LoaderArg> for Loader {
    fn from(l: LoaderArg) -> Loader {
        match l {
            LoaderArg::Pickle => Loader::Pickle,
            LoaderArg::Torch => Loader::Torch,
            LoaderArg::Joblib => Loader::Joblib,
            LoaderArg::Numpy => Loader::Numpy,
            LoaderArg::Keras => Loader::Keras,
            LoaderArg::Pandas => Loader::Pandas,
        }
    }
}

/// `modelward detonate`.
#[derive(Debug, clap::Args)]
pub struct DetonateArgs {
    /// Model files (directories are walked).
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// The loader to use instead of the one the file's format calls for.
    #[arg(long, value_enum)]
    pub loader: Option<LoaderArg>,
    /// Wall-clock limit per file, in seconds.
    #[arg(long, default_value_t = 30)]
    pub timeout: u64,
    /// Output format.
    #[arg(long, short = 'f', value_enum, default_value_t = OutputFormat::Text)]
    pub format: OutputFormat,
    /// Exit 1 when a finding reaches this severity.
    #[arg(long, value_enum, default_value_t = FailOn::High)]
    pub fail_on: FailOn,
}

/// Loads one scanned file in the sandbox and adds what it did to its report. `Ok(None)` when
/// no loader exists for its format.
fn detonate_one(
    sandbox: &Sandbox,
    policy: &Policy,
    target: &Target,
    report: &mut FileReport,
    loader: Option<Loader>,
    opts: &Options,
) -> Result<Option<Detonation>> {
    let Some(loader) = loader.or_else(|| Loader::for_format(&report.format)) else {
        return Ok(None);
    };
    let d = sandbox
        .detonate(&target.path, loader, opts)
        .with_context(|| format!("detonating {}", target.display))?;
    report.add_dynamic(d.findings(policy, &report.path));
    Ok(Some(d))
}

/// `scan --detonate`: loads the chosen files among those just scanned (`files[i]` is the
/// report of `targets[i]`). The sandbox being unavailable is an error; a file that fails to
/// detonate keeps its static report and is named on stderr.
pub fn detonate_scanned(
    scanner: &Scanner,
    targets: &[Target],
    files: &mut [FileReport],
    when: When,
) -> Result<()> {
    let sandbox = Sandbox::discover()?;
    let opts = Options::default();
    for (t, f) in targets.iter().zip(files.iter_mut()) {
        let wanted = match when {
            When::Always => true,
            When::Suspicious => matches!(f.verdict, Verdict::Suspicious | Verdict::Malicious),
        };
        if !wanted || f.verdict == Verdict::Error {
            continue;
        }
        match detonate_one(&sandbox, scanner.policy(), t, f, None, &opts) {
            Ok(Some(d)) => eprintln!(
                "note: detonated {} with {} in {} ms ({} events)",
                t.display,
                d.loader.as_str(),
                d.elapsed.as_millis(),
                d.events.len()
            ),
            Ok(None) => {}
            Err(e) => eprintln!("warning: {e:#}"),
        }
    }
    Ok(())
}

/// Runs `modelward detonate`: 0 nothing reached the threshold, 1 something did, 2 a file
/// could not be read or detonated.
pub fn run(args: &DetonateArgs) -> Result<ExitCode> {
    let sandbox = Sandbox::discover()?;
    let scanner = Scanner::new(Policy::builtin(), ScanLimits::default());
    let opts = Options {
        timeout: Duration::from_secs(args.timeout.max(1)),
        ..Options::default()
    };
    let started = std::time::Instant::now();
    let (targets, errors) = modelward_scanner::walk::expand(&args.files);
    let mut files = Vec::new();
    let mut behaviour = Vec::new();
    let mut failed = !errors.is_empty();
    for t in &targets {
        let mut report = scanner.scan(t.to_input());
        match detonate_one(
            &sandbox,
            scanner.policy(),
            t,
            &mut report,
            args.loader.map(Loader::from),
            &opts,
        ) {
            Ok(Some(d)) => behaviour.push((t.display.clone(), Some(d))),
            Ok(None) => behaviour.push((t.display.clone(), None)),
            Err(e) => {
                eprintln!("error: {e:#}");
                failed = true;
            }
        }
        files.push(report);
    }
    files.extend(
        errors
            .into_iter()
            .map(|(p, e)| modelward_scanner::error_report(p, e)),
    );
    let report = ScanReport::new(
        env!("CARGO_PKG_VERSION"),
        files,
        started.elapsed().as_millis() as u64,
    );
    let mut out = BufWriter::new(std::io::stdout().lock());
    match args.format {
        OutputFormat::Json => modelward_report::json::write(&report, &mut out)?,
        OutputFormat::Sarif => {
            modelward_report::sarif::write(&report, scanner.policy().catalog().rules(), &mut out)?
        }
        OutputFormat::Github => modelward_report::github::write(&report, &mut out)?,
        // An ML-BOM describes what was scanned; `scan --format cyclonedx` writes it.
        OutputFormat::Cyclonedx => {
            anyhow::bail!(
                "--format cyclonedx is written by `modelward scan`; detonate writes text, json, sarif or github"
            )
        }
        OutputFormat::Text => {
            for (path, d) in &behaviour {
                write_behaviour(&mut out, path, d.as_ref())?;
            }
            let color =
                std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
            modelward_report::text::write(&report, &mut out, TextOptions { color, verbose: true })?;
        }
    }
    out.flush()?;
    let threshold: Option<Severity> = args.fail_on.severity();
    let reached = threshold.is_some_and(|t| report.max_severity().is_some_and(|s| s >= t));
    let errored = failed || report.files.iter().any(|f| f.verdict == Verdict::Error);
    Ok(if errored {
        ExitCode::from(2)
    } else if reached {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// What the load did, one event a line, before the merged report.
fn write_behaviour(out: &mut dyn Write, path: &str, d: Option<&Detonation>) -> std::io::Result<()> {
    let Some(d) = d else {
        return writeln!(out, "{path}: no loader for this format: not detonated\n");
    };
    writeln!(
        out,
        "{path}: loaded with {} in the sandbox, {:?} after {} ms",
        d.loader.as_str(),
        d.outcome,
        d.elapsed.as_millis()
    )?;
    for line in d.behaviour() {
        writeln!(out, "    {line}")?;
    }
    if d.dropped_events > 0 {
        writeln!(out, "    … {} more events dropped", d.dropped_events)?;
    }
    writeln!(out)
}
