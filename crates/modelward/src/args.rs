//! Command-line definitions (clap). Only definitions: behaviour lives in `commands/`.

use clap::{Parser, Subcommand, ValueEnum};
use modelward_diagnostics::Severity;
use std::path::PathBuf;

/// Tells you whether a machine-learning model file is safe to load, before you load it.
/// It never executes anything it scans.
#[derive(Debug, Parser)]
#[command(name = "modelward", version, about, long_about = None, propagate_version = true)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Scan files and directories (with no path: the demo files shipped with modelward).
    Scan(ScanArgs),
    /// Show what loading a pickle would do: disassembly and pseudo-Python (FILE or FILE!member).
    Explain(ExplainArgs),
    /// Convert a PyTorch checkpoint (zip or legacy) or numpy .npy/.npz to safetensors without
    /// running Python; refused when its pickle does more than build tensors.
    Convert(crate::commands::convert_cmd::ConvertArgs),
    /// Load files with their real loader inside a bubblewrap sandbox and report what they try
    /// to do, merged with the static verdict (which it can only raise). See docs/sandbox.md.
    Detonate(crate::commands::detonate::DetonateArgs),
    /// Write the digest manifest of a model folder (OpenSSF model signing's in-toto statement),
    /// or compare a folder with one (`--check`).
    Manifest(crate::commands::provenance::ManifestArgs),
    /// Verify an OpenSSF model-signing signature (key, certificate or Sigstore) and every file
    /// digest it lists against the folder. Offline.
    Verify(crate::commands::provenance::VerifyArgs),
    /// Run the scan service: HTTP API, Hugging Face webhook, web page (docs/service.md).
    Serve(crate::commands::serve::ServeArgs),
    /// Scan jobs of `serve --nats` pulled from NATS JetStream; run any number, anywhere.
    Worker(crate::commands::serve::WorkerArgs),
    /// List every rule.
    Rules,
    /// Print one rule's documentation.
    Rule {
        /// Rule code, e.g. PKL101.
        code: String,
    },
}

/// Output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    /// For people.
    Text,
    /// The versioned JSON document (docs/json-output.md).
    Json,
    /// SARIF 2.1.0 (GitHub code scanning).
    Sarif,
    /// GitHub Actions workflow annotations.
    Github,
    /// CycloneDX JSON ML-BOM (files as components, findings as vulnerabilities).
    Cyclonedx,
}

/// CycloneDX versions accepted by `--cyclonedx-version`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CycloneDxVersion {
    /// CycloneDX 1.7.
    #[value(name = "1.7")]
    V1_7,
    /// CycloneDX 1.6, for older consumers.
    #[value(name = "1.6")]
    V1_6,
}

/// Severities accepted by `--fail-on`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FailOn {
    /// Any finding at all.
    Info,
    /// Low and above.
    Low,
    /// Medium and above (suspicious files fail too).
    Medium,
    /// High and above (malicious files fail).
    High,
    /// Critical only.
    Critical,
    /// Never fail on findings.
    Never,
}

impl FailOn {
    /// The threshold, `None` for never.
    pub fn severity(self) -> Option<Severity> {
        match self {
            FailOn::Info => Some(Severity::Info),
            FailOn::Low => Some(Severity::Low),
            FailOn::Medium => Some(Severity::Medium),
            FailOn::High => Some(Severity::High),
            FailOn::Critical => Some(Severity::Critical),
            FailOn::Never => None,
        }
    }
}

/// `modelward scan`.
#[derive(Debug, clap::Args)]
pub struct ScanArgs {
    /// Files and directories, Hugging Face repositories (`hf://owner/name[@rev]`,
    /// `hf://datasets/…`, `hf://spaces/…`, `https://huggingface.co/owner/name`) and `https://` file
    /// URLs. Formats are recognised by content, never by name.
    pub paths: Vec<PathBuf>,
    /// Also scan the local Hugging Face cache (`HF_HUB_CACHE`, `HF_HOME/hub` or
    /// `~/.cache/huggingface/hub`), reporting files under their repository names.
    #[arg(long)]
    pub hf_cache: bool,
    /// Output format.
    #[arg(long, short = 'f', value_enum, default_value_t = OutputFormat::Text)]
    pub format: OutputFormat,
    /// Exit 1 when a finding reaches this severity [default: high, or the configuration's].
    #[arg(long, value_enum)]
    pub fail_on: Option<FailOn>,
    /// Report only these rule codes or prefixes (comma-separated; overrides the configuration).
    #[arg(long, value_delimiter = ',')]
    pub select: Vec<String>,
    /// Never report these rule codes or prefixes (comma-separated; added to the configuration's).
    #[arg(long, value_delimiter = ',')]
    pub ignore: Vec<String>,
    /// Configuration file (default: modelward.toml or [tool.modelward] in pyproject.toml, searched
    /// upwards from the first path).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Ignore configuration files.
    #[arg(long, conflicts_with = "config")]
    pub no_config: bool,
    /// Threads (default: one per core).
    #[arg(long, short = 'j')]
    pub jobs: Option<usize>,
    /// List clean and skipped files too (text output).
    #[arg(long, short = 'v')]
    pub verbose: bool,
    /// Write the report to a file instead of standard output.
    #[arg(long, short = 'o')]
    pub output: Option<PathBuf>,
    /// Never show a progress bar.
    #[arg(long)]
    pub no_progress: bool,
    /// Also read tensor data, sampled under a budget (256 MiB per file, 4 MiB per tensor), for
    /// payloads hidden in weights: embedded executables and archives, low-bit steganography,
    /// crafted values (TEN2xx; docs/anomaly.md). Remote files fetch only the sampled ranges.
    #[arg(long)]
    pub deep: bool,
    /// Also load files in the sandbox (docs/sandbox.md): those whose static verdict is
    /// suspicious or worse, or every file. Only adds findings; never lowers a verdict.
    #[arg(long, value_enum)]
    pub detonate: Option<crate::commands::detonate::When>,
    /// CycloneDX specification version of `--format cyclonedx`.
    #[arg(long, value_enum, default_value = "1.7")]
    pub cyclonedx_version: CycloneDxVersion,
}

/// `modelward explain`.
#[derive(Debug, clap::Args)]
pub struct ExplainArgs {
    /// A pickle file, or `ARCHIVE!member` for a member of a zip (e.g. `model.pt!archive/data.pkl`).
    pub target: String,
}
