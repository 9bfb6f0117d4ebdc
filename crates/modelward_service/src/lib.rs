//! `modelward serve`: the scan service a model hub runs on every upload.
//!
//! - [`api`]: the HTTP API under `/v1` (uploads streamed to disk, remote sources, scan status
//!   and reports, repository verdicts, the Hugging Face webhook), `/healthz`, `/metrics`.
//! - [`web`]: the server-rendered web page.
//! - [`store`]: the [`store::Store`] and [`store::JobQueue`] traits and their embedded SQLite
//!   implementation; [`postgres_store`]: the same on PostgreSQL (`--database postgres://…`); [`job`]: the job and result documents both queues carry.
//! - [`worker`]: bounded workers with leases; [`scan`]: the one call into the engine, with the
//!   verdict cache by content.
//! - [`nats`]: the NATS JetStream queue (jobs, results, the verdict cache bucket) and the
//!   `modelward worker` loop that scans what it pulls.
//! - [`auth`], [`webhook`], [`metrics`]: tokens, the Hub's payload, Prometheus text.
//!
//! Nothing scanned is executed; everything a client sends is bounded (body sizes, header
//! sizes, in-flight requests, queue length, request time).
#![forbid(unsafe_code)]

pub mod api;
pub mod auth;
pub mod job;
pub mod metrics;
pub mod nats;
pub mod postgres_store;
pub mod scan;
pub mod store;
pub mod web;
pub mod webhook;
pub mod worker;

use axum::Router;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use modelward_remote::RemoteOptions;
use modelward_scanner::Scanner;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// Total bytes of request headers accepted (431 beyond).
pub const MAX_HEADER_BYTES: usize = 16 << 10;

/// How the service runs.
#[derive(Debug, Clone)]
pub struct ServiceConfig {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// Folder of the database and the uploads.
    pub data: PathBuf,
    /// API tokens; empty: open, and then only on loopback.
    pub tokens: auth::Tokens,
    /// The Hub webhook's shared secret; `None`: the webhook is refused.
    pub webhook_secret: Option<String>,
    /// Scans at once.
    pub workers: usize,
    /// Jobs waiting at most; beyond, 429.
    pub max_queue: u64,
    /// Largest upload, bytes; beyond, 413.
    pub max_upload: u64,
    /// A job's lease; renewed by a live worker every third of it.
    pub lease: Duration,
    /// Leases a job may take before it is failed.
    pub max_attempts: u32,
    /// On SIGTERM, how long running scans may take to finish.
    pub shutdown_grace: Duration,
    /// Longest request (uploads included).
    pub request_timeout: Duration,
    /// Requests handled at once; beyond, they wait.
    pub max_in_flight: usize,
    /// How remote sources are fetched (`HF_ENDPOINT`, `HF_TOKEN`, ...).
    pub remote: RemoteOptions,
    /// Hand jobs to NATS JetStream (`modelward worker` scans them) instead of the embedded
    /// workers; `lease` is then the ack wait and `max_attempts` the deliveries scanned.
    pub nats: Option<String>,
    /// `postgres://…`: records in PostgreSQL (several service nodes) instead of the embedded
    /// SQLite file under `data`.
    pub database: Option<String>,
}

impl ServiceConfig {
    /// Defaults for `listen` and `data`, remote options from the environment.
    pub fn new(listen: SocketAddr, data: PathBuf) -> ServiceConfig {
        ServiceConfig {
            listen,
            data,
            tokens: auth::Tokens::default(),
            webhook_secret: None,
            workers: std::thread::available_parallelism().map_or(2, |n| n.get()),
            max_queue: 10_000,
            max_upload: 8 << 30,
            lease: Duration::from_secs(60),
            max_attempts: 3,
            shutdown_grace: Duration::from_secs(30),
            request_timeout: Duration::from_secs(600),
            max_in_flight: 512,
            remote: RemoteOptions::from_env(),
            nats: None,
            database: None,
        }
    }
}

/// Why the service could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// Refused configuration.
    #[error("{0}")]
    Config(String),
    /// The database.
    #[error(transparent)]
    Store(#[from] store::StoreError),
    /// Files, sockets.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The error.
        source: std::io::Error,
    },
}

/// What the handlers and workers share.
pub struct AppState {
    /// Configuration.
    pub config: ServiceConfig,
    /// Records.
    pub store: Arc<dyn store::Store>,
    /// Jobs.
    pub queue: Arc<dyn store::JobQueue>,
    /// The engine.
    pub scanner: Scanner,
    /// Counters.
    pub metrics: metrics::Metrics,
    /// Wakes an idle worker when a job is queued.
    pub wake: tokio::sync::Notify,
    /// This process's lease owner prefix.
    pub instance: String,
}

/// Runs a store call on the blocking pool.
pub async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, store::StoreError> + Send + 'static,
) -> Result<T, api::ApiError> {
    match tokio::task::spawn_blocking(f).await {
        Ok(r) => r.map_err(api::ApiError::from),
        Err(e) => Err(api::ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())),
    }
}

/// The routes, with the limits every request passes through.
pub fn router(state: Arc<AppState>) -> Router {
    let timeout = state.config.request_timeout;
    let in_flight = state.config.max_in_flight;
    Router::new()
        .route("/", get(web::index))
        .route("/scans/{id}", get(web::detail))
        .route("/v1/scans", post(api::submit))
        .route("/v1/scans/{id}", get(api::get_scan))
        .route("/v1/repos/{owner}/{name}", get(api::get_repo))
        .route("/v1/webhooks/huggingface", post(api::webhook))
        .route("/healthz", get(api::healthz))
        .route("/metrics", get(api::metrics))
        .fallback(|| async { api::ApiError(StatusCode::NOT_FOUND, "no such endpoint".into()) })
        .layer(axum::middleware::from_fn(limit_headers))
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            timeout,
        ))
        .layer(tower::limit::ConcurrencyLimitLayer::new(in_flight))
        .with_state(state)
}

/// 431 for requests whose headers are larger than [`MAX_HEADER_BYTES`] in all (hyper already
/// caps the buffer it reads them into).
async fn limit_headers(
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let total: usize = req
        .headers()
        .iter()
        .map(|(k, v)| k.as_str().len() + v.len() + 4)
        .sum::<usize>()
        + req.uri().to_string().len();
    if total > MAX_HEADER_BYTES {
        return api::ApiError(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            format!("request headers are limited to {MAX_HEADER_BYTES} bytes"),
        )
        .into_response();
    }
    next.run(req).await
}

/// Opens the data folder and the database, binds, serves until SIGTERM or Ctrl-C, then
/// drains: no new requests, running scans get the grace period, unfinished leases go back.
pub async fn serve(config: ServiceConfig) -> Result<(), ServiceError> {
    if config.tokens.is_empty() && !config.listen.ip().is_loopback() {
        return Err(ServiceError::Config(format!(
            "refusing to listen on {} without API tokens: set MODELWARD_API_TOKENS (e.g. admin:TOKEN,ro:TOKEN) \
             or listen on a loopback address",
            config.listen
        )));
    }
    for sub in ["blobs", "tmp"] {
        let dir = config.data.join(sub);
        std::fs::create_dir_all(&dir).map_err(|source| ServiceError::Io {
            what: format!("cannot create {}", dir.display()),
            source,
        })?;
    }
    // Partial uploads of a previous run were never accepted. With a shared database the
    // folder may be shared by several nodes: only what is older than any request may last
    // is someone's leftover.
    let shared = config.database.is_some();
    if let Ok(rd) = std::fs::read_dir(config.data.join("tmp")) {
        for e in rd.flatten() {
            let stale = !shared
                || e.metadata()
                    .and_then(|m| m.modified())
                    .ok()
                    .and_then(|t| t.elapsed().ok())
                    .is_some_and(|age| age > config.request_timeout);
            if stale {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }
    let (store, queue): (Arc<dyn store::Store>, Arc<dyn store::JobQueue>) = match &config.database {
        Some(url) => {
            let url = url.clone();
            // The synchronous client runs its own runtime: connect off the async threads.
            let db = tokio::task::spawn_blocking(move || postgres_store::PgDb::connect(&url))
                .await
                .map_err(|e| ServiceError::Config(format!("cannot connect to PostgreSQL: {e}")))??;
            let db = Arc::new(db);
            (db.clone(), db)
        }
        None => {
            let db = Arc::new(store::SqliteDb::open(&config.data.join("modelward.sqlite3"))?);
            (db.clone(), db)
        }
    };
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|source| ServiceError::Io {
            what: format!("cannot listen on {}", config.listen),
            source,
        })?;
    let local = listener.local_addr().map_err(|source| ServiceError::Io {
        what: "no local address".into(),
        source,
    })?;
    let workers = config.workers.max(1);
    let grace = config.shutdown_grace;
    let nats = config.nats.clone().map(|url| nats::NatsConfig {
        url,
        ack_wait: config.lease,
        max_attempts: config.max_attempts,
    });
    let state = Arc::new(AppState {
        scanner: Scanner::new(
            modelward_policy::Policy::builtin(),
            modelward_scanner::ScanLimits::default(),
        ),
        store,
        queue,
        metrics: metrics::Metrics::default(),
        wake: tokio::sync::Notify::new(),
        instance: job::new_id(),
        config,
    });
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let workers_done = match nats {
        None => {
            eprintln!("modelward serve: listening on http://{local} ({workers} workers)");
            tokio::spawn(worker::run(state.clone(), workers, stop_rx.clone(), grace))
        }
        Some(n) => {
            eprintln!(
                "modelward serve: listening on http://{local} (jobs to NATS JetStream at {})",
                n.url
            );
            let (st, stop) = (state.clone(), stop_rx.clone());
            tokio::spawn(async move {
                if let Err(e) = nats::run_service(st, n, stop).await {
                    eprintln!("modelward serve: the NATS queue stopped: {e}");
                }
            })
        }
    };
    let mut http_stop = stop_rx.clone();
    let app = router(state);
    let server = axum::serve(listener, app).with_graceful_shutdown(async move {
        let _ = http_stop.wait_for(|s| *s).await;
    });
    let signal = async move {
        shutdown_signal().await;
        eprintln!(
            "modelward serve: stopping (running scans get {}s)",
            grace.as_secs()
        );
        let _ = stop_tx.send(true);
    };
    tokio::spawn(signal);
    let served = server.await;
    let _ = tokio::time::timeout(grace + Duration::from_secs(5), workers_done).await;
    served.map_err(|source| ServiceError::Io {
        what: "serving".into(),
        source,
    })
}

pub(crate) async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
}
