//! `modelward scan`.

use crate::args::{OutputFormat, ScanArgs};
use anyhow::{Context, Result};
use modelward_diagnostics::{FileReport, ScanReport, Severity, SourceError, Verdict};
use modelward_policy::{Config, Policy};
use modelward_remote::{RemoteOptions, RemoteTarget};
use modelward_report::text::TextOptions;
use modelward_scanner::{ScanLimits, Scanner};
use std::collections::HashSet;
use std::io::{BufWriter, IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Mutex;

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
    let mut limits = limits_from(config.as_ref());
    if args.deep {
        limits.deep = Some(modelward_formats::tensors::deep::DeepLimits::default());
    }
    let scanner = Scanner::new(policy, limits);
    let started = std::time::Instant::now();
    let (mut targets, walk_errors) = modelward_scanner::walk::expand(&paths);
    // A path that does not exist (or cannot be walked) is an error of the command, not a file.
    let mut source_errors: Vec<SourceError> = walk_errors
        .into_iter()
        .map(|(source, error)| SourceError { source, error })
        .collect();
    // Files named one by one get a line each in the text report, clean or not.
    let mut named: HashSet<String> = targets
        .iter()
        .filter(|t| paths.contains(&t.path))
        .map(|t| t.display.clone())
        .collect();
    // Files inside the Hugging Face cache are reported under the names people know.
    for t in &mut targets {
        if let Some(name) = modelward_remote::cache_display_name(&t.path) {
            if named.remove(&t.display) {
                named.insert(name.clone());
            }
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
    let progress = Progress::new(
        !args.no_progress && std::io::stderr().is_terminal(),
        remote.is_empty().then_some(targets.len() as u64),
    );
    let mut files = scanner.scan_many(&targets, |f| progress.file_done(f));
    if let Some(when) = args.detonate {
        crate::commands::detonate::detonate_scanned(&scanner, &targets, &mut files, when)?;
    }
    let (mut transferred, mut requests) = (0, 0);
    if !remote.is_empty() {
        let opts = RemoteOptions::from_env();
        for source in &remote {
            let scanned = RemoteTarget::parse(source).and_then(|t| {
                modelward_remote::scan_remote_with(&scanner, &t, &opts, &|f| progress.file_done(f))
            });
            match scanned {
                Ok(r) => {
                    transferred += r.transferred;
                    requests += r.requests;
                    // A URL of one file is a file the user named.
                    if let [one] = r.files.as_slice() {
                        named.insert(one.path.clone());
                    }
                    files.extend(r.files);
                }
                Err(e) => source_errors.push(SourceError {
                    source: source.clone(),
                    error: e.to_string(),
                }),
            }
        }
    }
    progress.finish();
    // Provenance facts of the folders given (model.sig present and consistent, invalid, absent).
    if !args.paths.is_empty() {
        crate::commands::provenance::add_scan_facts(&paths, &mut files, scanner.policy());
    }
    let mut report = ScanReport::new(
        env!("CARGO_PKG_VERSION"),
        files,
        started.elapsed().as_millis() as u64,
    );
    report.errors = source_errors;
    report.summary.bytes_transferred = transferred;
    report.summary.requests = requests;
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
    let text_on_terminal =
        args.format == OutputFormat::Text && args.output.is_none() && std::io::stdout().is_terminal();
    // Everything that kept a file from being judged goes to stderr too, one line each, so that
    // a report written to a file or a pipe never hides it; not when the text report is on the
    // same terminal already.
    if !text_on_terminal {
        for line in error_lines(&report) {
            eprintln!("{line}");
        }
    }
    let exit = exit_status(&report, fail_on);
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
        OutputFormat::Sarif => {
            modelward_report::sarif::write(&report, scanner.policy().catalog().rules(), &mut out)?
        }
        OutputFormat::Github => modelward_report::github::write(&report, &mut out)?,
        OutputFormat::Cyclonedx => {
            crate::commands::provenance::write_bom(&mut report, &args, scanner.policy(), &mut out)?
        }
        OutputFormat::Text => {
            let color = text_on_terminal && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
            modelward_report::text::write_named(
                &report,
                &mut out,
                TextOptions {
                    color,
                    verbose: args.verbose,
                },
                &|f| named.contains(&f.path),
            )?;
            writeln!(out, "{}", exit.reason)?;
        }
    }
    out.flush()?;
    Ok(ExitCode::from(exit.code))
}

/// `error: PATH: cause; fix` for every file that could not be read and every path or source
/// that could not be scanned.
fn error_lines(report: &ScanReport) -> Vec<String> {
    let files = report.files.iter().filter_map(|f| {
        f.error
            .as_ref()
            .map(|e| format!("error: {}: {e}; nothing in it was judged", f.path))
    });
    let sources = report
        .errors
        .iter()
        .map(|e| format!("error: {}: {}", e.source, e.error));
    files.chain(sources).collect()
}

/// The exit code and the line that says why.
struct Exit {
    code: u8,
    reason: String,
}

/// 0 nothing reached the threshold, 1 something did, 2 the tool could not do its job (a path
/// that does not exist, an unreadable file, a repository it may not read).
fn exit_status(report: &ScanReport, fail_on: Option<Severity>) -> Exit {
    let plural = |n: usize, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
    let mut why = Vec::new();
    let unreadable = report
        .files
        .iter()
        .filter(|f| f.verdict == Verdict::Error)
        .count();
    if unreadable > 0 {
        why.push(plural(unreadable, "file unreadable", "files unreadable"));
    }
    if !report.errors.is_empty() {
        why.push(plural(
            report.errors.len(),
            "path not scanned",
            "paths not scanned",
        ));
    }
    let errored = !why.is_empty();
    // The files at or above the threshold, by verdict.
    let failing: Vec<&FileReport> = match fail_on {
        Some(t) => report
            .files
            .iter()
            .filter(|f| f.severity.is_some_and(|s| s >= t))
            .collect(),
        None => Vec::new(),
    };
    for v in [Verdict::Malicious, Verdict::Suspicious, Verdict::Clean] {
        let n = failing.iter().filter(|f| f.verdict == v).count();
        if n > 0 {
            why.push(match v {
                Verdict::Clean => plural(n, "clean file with findings", "clean files with findings"),
                _ => format!("{n} {v}"),
            });
        }
    }
    let threshold = match fail_on {
        Some(t) => format!("--fail-on {t}"),
        None => "--fail-on never".to_owned(),
    };
    let code = if errored {
        2
    } else if !failing.is_empty() {
        1
    } else {
        0
    };
    let reason = if why.is_empty() {
        format!("No finding reaches {threshold}: exit 0")
    } else if code == 1 {
        format!("{}: exit 1 ({threshold})", why.join(", "))
    } else {
        format!("{}: exit 2", why.join(", "))
    };
    Exit { code, reason }
}

/// The progress line on stderr (files done, bytes read, the file last finished), drawn only
/// when stderr is a terminal: never in a pipe, a log or the report.
struct Progress {
    bar: Option<indicatif::ProgressBar>,
    /// Bytes read so far; locked while the line is updated so that it never counts backwards.
    bytes: Mutex<u64>,
}

impl Progress {
    fn new(show: bool, total: Option<u64>) -> Progress {
        let bar = show.then(|| {
            let (bar, template) = match total {
                Some(n) => (
                    indicatif::ProgressBar::new(n),
                    "{spinner} {pos}/{len} files · {wide_msg}",
                ),
                None => (
                    indicatif::ProgressBar::new_spinner(),
                    "{spinner} {pos} files · {wide_msg}",
                ),
            };
            bar.set_draw_target(indicatif::ProgressDrawTarget::stderr());
            bar.set_style(
                indicatif::ProgressStyle::with_template(template)
                    .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
            );
            bar.enable_steady_tick(std::time::Duration::from_millis(120));
            bar
        });
        Progress {
            bar,
            bytes: Mutex::new(0),
        }
    }

    fn file_done(&self, f: &FileReport) {
        if let Some(b) = &self.bar {
            let mut read = self.bytes.lock().unwrap_or_else(|e| e.into_inner());
            *read += f.bytes_read;
            b.inc(1);
            b.set_message(format!(
                "{} read · {}",
                modelward_report::human_bytes(*read),
                f.path
            ));
        }
    }

    fn finish(&self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }
}
