//! `modelward serve`: the scan service (crate `modelward_service`; docs/service.md).

use anyhow::{Context, Result};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

/// `modelward serve`.
#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// Address to listen on (port 0: any free port, printed on stderr).
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Folder for the database (modelward.sqlite3) and uploads.
    #[arg(long, default_value = "modelward-data")]
    pub data: PathBuf,
    /// API tokens, comma-separated `ro:TOKEN` / `admin:TOKEN` (16 characters at least). With
    /// none, the service is open and listens only on loopback.
    #[arg(
        long,
        env = "MODELWARD_API_TOKENS",
        hide_env_values = true,
        value_name = "LIST"
    )]
    pub api_tokens: Option<String>,
    /// The Hugging Face webhook's secret (sent by the Hub in X-Webhook-Secret).
    #[arg(
        long,
        env = "MODELWARD_WEBHOOK_SECRET",
        hide_env_values = true,
        value_name = "SECRET"
    )]
    pub webhook_secret: Option<String>,
    /// Scans running at once [default: number of CPUs].
    #[arg(long)]
    pub workers: Option<usize>,
    /// Jobs waiting at most; beyond, submissions get 429 with Retry-After.
    #[arg(long, default_value_t = 10_000)]
    pub max_queue: u64,
    /// Largest upload in bytes; beyond, 413.
    #[arg(long, default_value_t = 8 << 30)]
    pub max_upload: u64,
    /// Seconds a job's lease lasts (renewed while its scan runs); a crashed scan is retried
    /// after it expires.
    #[arg(long, default_value_t = 60)]
    pub lease_secs: u64,
    /// Leases a job may take before it is failed with the reason.
    #[arg(long, default_value_t = 3)]
    pub max_attempts: u32,
    /// On SIGTERM, seconds running scans get to finish before their leases are released.
    #[arg(long, default_value_t = 30)]
    pub shutdown_grace_secs: u64,
    /// Hand jobs to NATS JetStream at this URL (nats://HOST:PORT) for `modelward worker`
    /// processes instead of scanning them here. `--lease-secs` is then the ack wait and
    /// `--max-attempts` the deliveries a job gets.
    #[arg(long, value_name = "URL")]
    pub nats: Option<String>,
    /// Keep the records in PostgreSQL (postgres://USER@HOST:PORT/DB) instead of the embedded
    /// SQLite file, so several service nodes share them. Uploads stay under --data.
    #[arg(long, env = "MODELWARD_DATABASE", hide_env_values = true, value_name = "URL")]
    pub database: Option<String>,
}

/// `modelward worker`.
#[derive(Debug, clap::Args)]
pub struct WorkerArgs {
    /// NATS server (nats://HOST:PORT) the service publishes jobs to.
    #[arg(long, value_name = "URL")]
    pub nats: String,
    /// The service's data folder (shared storage), for uploaded files (`blobs/SHA256`).
    #[arg(long, default_value = "modelward-data")]
    pub data: PathBuf,
    /// Scans running at once [default: number of CPUs].
    #[arg(long)]
    pub concurrency: Option<usize>,
    /// Ack wait in seconds: a job not acknowledged (or marked in progress) in time is
    /// redelivered. The first process to start sets it on the JetStream consumer.
    #[arg(long, default_value_t = 60)]
    pub lease_secs: u64,
    /// Deliveries a job gets before it is failed with the reason.
    #[arg(long, default_value_t = 3)]
    pub max_attempts: u32,
    /// On SIGTERM, seconds running scans get to finish before they are handed back.
    #[arg(long, default_value_t = 30)]
    pub shutdown_grace_secs: u64,
}

/// Runs a NATS worker until SIGTERM / Ctrl-C.
pub fn worker(args: WorkerArgs) -> Result<ExitCode> {
    let cfg = modelward_service::nats::WorkerConfig {
        nats: modelward_service::nats::NatsConfig {
            url: args.nats,
            ack_wait: Duration::from_secs(args.lease_secs.max(1)),
            max_attempts: args.max_attempts.max(1),
        },
        data: args.data,
        concurrency: args
            .concurrency
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()))
            .max(1),
        remote: modelward_remote::RemoteOptions::from_env(),
        shutdown_grace: Duration::from_secs(args.shutdown_grace_secs),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .max_blocking_threads(64)
        .build()
        .context("cannot start the async runtime")?;
    let done = runtime.block_on(modelward_service::nats::run_worker(cfg));
    runtime.shutdown_timeout(Duration::from_secs(1));
    done?;
    Ok(ExitCode::SUCCESS)
}

/// Runs the service until SIGTERM / Ctrl-C.
pub fn run(args: ServeArgs) -> Result<ExitCode> {
    let mut cfg = modelward_service::ServiceConfig::new(args.listen, args.data);
    if let Some(t) = args.api_tokens.as_deref() {
        cfg.tokens = modelward_service::auth::Tokens::parse(t)?;
    }
    cfg.webhook_secret = args.webhook_secret.filter(|s| !s.is_empty());
    if let Some(w) = args.workers {
        cfg.workers = w.max(1);
    }
    cfg.max_queue = args.max_queue.max(1);
    cfg.max_upload = args.max_upload;
    cfg.lease = Duration::from_secs(args.lease_secs.max(1));
    cfg.max_attempts = args.max_attempts.max(1);
    cfg.shutdown_grace = Duration::from_secs(args.shutdown_grace_secs);
    cfg.nats = args.nats.filter(|s| !s.is_empty());
    cfg.database = args.database.filter(|s| !s.is_empty());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .max_blocking_threads(64)
        .build()
        .context("cannot start the async runtime")?;
    let served = runtime.block_on(modelward_service::serve(cfg));
    // A scan past the grace period is abandoned (its lease was released), not waited for.
    runtime.shutdown_timeout(Duration::from_secs(1));
    served?;
    Ok(ExitCode::SUCCESS)
}
