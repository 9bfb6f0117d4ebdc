//! `modelward scan`.

use crate::args::{OutputFormat, ScanArgs};
use anyhow::{Context, Result};
use modelward_diagnostics::{FileReport, ScanReport, Severity, Verdict};
use modelward_policy::{Config, Policy};
use modelward_remote::{RemoteOptions, RemoteTarget};
use modelward_report::text::TextOptions;
use modelward_scanner::{ScanLimits, Scanner};
use std::io::{BufWriter, IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

/// The demo files shipped in the repository, scanned when no path is given.
fn demo_dir() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../demo"))
}

fn load_config(args: &ScanArgs, paths: &[PathBuf]) -> Result<Option<Config>> {
    if args.no_config {
        return Ok(None);
    }
    if let Some(p) = &args.config {
        return Ok(Some(Config::load(p)?.with_context(|| {
            format!("{} has no [tool.modelward] table", p.display())
        })?));
    }
    // Searched upwards from the first local path, or the current folder.
    let start = paths.first().cloned().unwrap_or_else(|| PathBuf::from("."));
    Ok(Config::discover(&start)?)
}

/// The scan budgets of a configuration's `[limits]` (the defaults for what it leaves out).
pub fn limits_from(cfg: Option<&Config>) -> ScanLimits {
    let mut l = ScanLimits::default();
    if let Some(c) = cfg {
        let c = &c.limits;
        if let Some(v) = c.max_file_size {
            l.max_file_size = v;
        }
        if let Some(v) = c.max_depth {
            l.max_depth = v;
        }
        if let Some(v) = c.max_members {
            l.max_members = v;
        }
        if let Some(v) = c.max_decompressed {
            l.max_decompressed = v;
        }
        if let Some(v) = c.max_ratio {
            l.max_ratio = v;
        }
        if let Some(v) = c.max_pickle_ops {
            l.pickle.max_ops = v;
        }
        if let Some(v) = c.max_findings_per_rule {
            l.max_findings_per_rule = v;
        }
    }
    l
}

/// Runs a scan and returns the exit code: 0 nothing reached the threshold, 1 something did, 2
/// the tool could not do its job (unreadable path).
pub fn run(args: ScanArgs) -> Result<ExitCode> {
    // Remote sources are told apart from local paths by their scheme.
    let (remote, local): (Vec<String>, Vec<PathBuf>) = {
        let mut remote = Vec::new();
        let mut local = Vec::new();
        for p in &args.paths {
            match p.to_str() {
                Some(s) if RemoteTarget::is_remote(s) => remote.push(s.to_owned()),
                _ => local.push(p.clone()),
            }
        }
        (remote, local)
    };
    let paths = if args.paths.is_empty() && !args.hf_cache {
        let demo = demo_dir();
        anyhow::ensure!(
            demo.is_dir(),
            "no path given, and the demo folder {} is not there",
            demo.display()
        );
        let demo = demo.canonicalize().unwrap_or(demo);
        eprintln!("No path given: scanning the demo files in {}", demo.display());
        vec![demo]
    } else {
        local
    };
    let mut config = load_config(&args, &paths)?;
    // Command-line selection overrides the file's.
    if !args.select.is_empty() || !args.ignore.is_empty() {
        let c = config.get_or_insert_with(Config::default);
        if !args.select.is_empty() {
            c.select = args.select.clone();
        }
        c.ignore.extend(args.ignore.iter().cloned());
    }
    let policy = match &config {
        Some(c) => Policy::with_config(c)?,
        None => Policy::builtin(),
    };
    let fail_on = match args.fail_on {
        Some(f) => f.severity(),
        None => Some(config.as_ref().and_then(|c| c.fail_on).unwrap_or(Severity::High)),
    };
    if let Some(jobs) = args.jobs {
        rayon::ThreadPoolBuilder::new()
            .num_threads(jobs.max(1))
            .build_global()
            .ok();
    }
    let scanner = Scanner::new(policy, limits_from(config.as_ref()));
    let show_progress = !args.no_progress && std::io::stderr().is_terminal();
    let bar = show_progress.then(|| {
        let b = indicatif::ProgressBar::new_spinner();
        b.set_style(
            indicatif::ProgressStyle::with_template("{spinner} {pos} files scanned {msg}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
        );
        b.enable_steady_tick(std::time::Duration::from_millis(120));
        b
    });
    let progress = |f: &FileReport| {
        if let Some(b) = &bar {
            b.inc(1);
            b.set_message(f.path.clone());
        }
    };
    let started = std::time::Instant::now();
    let (mut targets, errors) = modelward_scanner::walk::expand(&paths);
    // Files inside the Hugging Face cache are reported under the names people know.
    for t in &mut targets {
        if let Some(name) = modelward_remote::cache_display_name(&t.path) {
            t.display = name;
        }
    }
    if args.hf_cache {
        let cached = modelward_remote::resolve_hf_cache(None);
        if cached.is_empty() {
            eprintln!(
                "note: no Hugging Face cache found (HF_HUB_CACHE, HF_HOME/hub, ~/.cache/huggingface/hub)"
            );
        }
        targets.extend(cached.into_iter().map(|c| modelward_scanner::Target {
            path: c.blob,
            display: c.display,
        }));
    }
    let mut files = scanner.scan_targets(&targets, progress);
    files.extend(
        errors
            .into_iter()
            .map(|(p, e)| modelward_scanner::error_report(p, e)),
    );
    let (mut transferred, mut requests) = (0, 0);
    if !remote.is_empty() {
        let opts = RemoteOptions::from_env();
        for source in &remote {
            let scanned = RemoteTarget::parse(source)
                .and_then(|t| modelward_remote::scan_remote_with(&scanner, &t, &opts, &progress));
            match scanned {
                Ok(r) => {
                    transferred += r.transferred;
                    requests += r.requests;
                    files.extend(r.files);
                }
                Err(e) => files.push(modelward_scanner::error_report(source.clone(), e.to_string())),
            }
        }
    }
    let mut report = ScanReport::new(
        env!("CARGO_PKG_VERSION"),
        files,
        started.elapsed().as_millis() as u64,
    );
    report.summary.bytes_transferred = transferred;
    report.summary.requests = requests;
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    // Allow entries that matched nothing are worth a note.
    if let Some(c) = &config {
        let unused = scanner.policy().unused_allows();
        if !unused.is_empty() {
            let src = c
                .source
                .as_ref()
                .map(|s| s.display().to_string())
                .unwrap_or_default();
            for a in unused {
                eprintln!(
                    "note: [MWD003] allow-globals entry {:?} in {src} matched nothing in this scan",
                    a.name
                );
            }
        }
    }
    report
        .files
        .iter_mut()
        .for_each(|f| f.findings.retain(|x| scanner.policy().enabled(&x.rule)));
    // Buffered either way: the reports are written in many small pieces (a JSON report of a
    // large directory was 10,000 write calls unbuffered).
    let mut out: Box<dyn Write> = match &args.output {
        Some(p) => Box::new(BufWriter::new(
            std::fs::File::create(p).with_context(|| format!("cannot write {}", p.display()))?,
        )),
        None => Box::new(BufWriter::new(std::io::stdout().lock())),
    };
    match args.format {
        OutputFormat::Json => modelward_report::json::write(&report, &mut out)?,
        OutputFormat::Sarif => modelward_report::sarif::write(&report, scanner.policy().catalog(), &mut out)?,
        OutputFormat::Github => modelward_report::github::write(&report, &mut out)?,
        OutputFormat::Text => {
            let color = args.output.is_none()
                && std::io::stdout().is_terminal()
                && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
            modelward_report::text::write(
                &report,
                &mut out,
                TextOptions {
                    color,
                    verbose: args.verbose,
                },
            )?;
        }
    }
    out.flush()?;
    let errored = report.files.iter().any(|f| f.verdict == Verdict::Error);
    let failed = fail_on.is_some_and(|t| report.max_severity().is_some_and(|s| s >= t));
    Ok(if errored {
        ExitCode::from(2)
    } else if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}
