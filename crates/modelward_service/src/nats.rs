//! The NATS JetStream queue (issue 16): `modelward serve --nats URL` hands jobs to a
//! work-queue stream instead of its embedded workers; `modelward worker --nats URL` (any
//! number, on any machine) pulls them, scans with the same [`crate::scan::run_job`], and
//! publishes results, which the service consumes into its store. The HTTP API is the same.
//!
//! - `MODELWARD_JOBS` (subject `modelward.jobs`, work-queue retention, file storage): one
//!   [`JobSpec`] per message, deduplicated by job id (`Nats-Msg-Id`). The durable pull
//!   consumer `workers` acks explicitly; a delivery not acked within the ack wait (renewed by
//!   in-progress acks while the scan runs) is redelivered, with backoff, at most
//!   `max_attempts` times; one more delivery turns the job into a `failed` result.
//! - `MODELWARD_RESULTS` (subject `modelward.results`): one [`JobResult`] per message, read by
//!   the durable consumer `service`. A result is recorded only if its job is unfinished, so a
//!   job scanned twice (a worker killed after publishing, before acking) finishes once.
//! - Key-value bucket `modelward_verdicts`: the verdict cache by content, shared by workers.
//!
//! The service's database stays the record (and the revision dedup): a job is committed there
//! before `202`, then a dispatcher publishes it and marks it published once JetStream
//! confirmed; unconfirmed jobs are published again (same message id) after a restart or an
//! outage of the NATS server, so nothing accepted is lost.

use crate::job::{FORMAT_VERSION, JobResult, JobSource, Outcome, parse_job_message, parse_result_message};
use crate::store::{CacheKey, StoreError, VerdictCache};
use crate::worker::{Supervised, stopped, supervise};
use crate::{AppState, ServiceError};
use async_nats::jetstream::{
    self, AckKind, consumer::PullConsumer, context::Publish, kv, stream::RetentionPolicy, stream::StorageType,
};
use futures_util::StreamExt;
use modelward_diagnostics::FileReport;
use modelward_remote::RemoteOptions;
use modelward_scanner::Scanner;
use sha2::Digest;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// The jobs stream.
pub const JOBS_STREAM: &str = "MODELWARD_JOBS";
/// Its subject.
pub const JOBS_SUBJECT: &str = "modelward.jobs";
/// The results stream.
pub const RESULTS_STREAM: &str = "MODELWARD_RESULTS";
/// Its subject.
pub const RESULTS_SUBJECT: &str = "modelward.results";
/// The workers' durable consumer of the jobs stream.
pub const WORKERS_CONSUMER: &str = "workers";
/// The service's durable consumer of the results stream.
pub const SERVICE_CONSUMER: &str = "service";
/// The verdict cache bucket.
pub const CACHE_BUCKET: &str = "modelward_verdicts";
/// A job published twice within this window (a dispatcher restarted before marking it
/// published) is stored once.
const DUPLICATE_WINDOW: Duration = Duration::from_secs(600);

/// How to reach NATS and how deliveries are retried. The first process to start creates the
/// streams, consumers and bucket; later ones use them as they are.
#[derive(Debug, Clone)]
pub struct NatsConfig {
    /// `nats://HOST:PORT`.
    pub url: String,
    /// A delivery not acknowledged (or marked in progress) within this is redelivered.
    pub ack_wait: Duration,
    /// Deliveries a job may have scanned; one more reports it failed.
    pub max_attempts: u32,
}

fn queue_err(what: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Queue(format!("{what}: {e}"))
}

/// The connection and what it uses.
pub struct Nats {
    /// JetStream.
    pub js: jetstream::Context,
    /// The verdict cache bucket.
    pub cache: kv::Store,
    config: NatsConfig,
}

impl Nats {
    /// Connects (waiting for the server if it is not up yet; reconnecting forever after) and
    /// makes sure the streams and the bucket exist.
    pub async fn connect(config: NatsConfig) -> Result<Nats, StoreError> {
        let client = async_nats::ConnectOptions::new()
            .name("modelward")
            .retry_on_initial_connect()
            .max_reconnects(None)
            .connection_timeout(Duration::from_secs(5))
            .connect(config.url.as_str())
            .await
            .map_err(|e| queue_err("cannot connect to NATS", e))?;
        let js = jetstream::new(client);
        let started = Instant::now();
        let mut said = Instant::now();
        // The first calls fail while the initial connection is still being made.
        loop {
            match Self::ensure(&js).await {
                Ok(cache) => return Ok(Nats { js, cache, config }),
                Err(e) if started.elapsed() > Duration::from_secs(60) => return Err(e),
                Err(e) => {
                    if said.elapsed() > Duration::from_secs(5) {
                        eprintln!("modelward: waiting for NATS JetStream at {}: {e}", config.url);
                        said = Instant::now();
                    }
                    tokio::time::sleep(Duration::from_millis(250)).await
                }
            }
        }
    }

    async fn ensure(js: &jetstream::Context) -> Result<kv::Store, StoreError> {
        for (name, subject) in [(JOBS_STREAM, JOBS_SUBJECT), (RESULTS_STREAM, RESULTS_SUBJECT)] {
            js.get_or_create_stream(jetstream::stream::Config {
                name: name.into(),
                subjects: vec![subject.into()],
                retention: RetentionPolicy::WorkQueue,
                storage: StorageType::File,
                duplicate_window: DUPLICATE_WINDOW,
                max_message_size: crate::job::MAX_MESSAGE_BYTES as i32,
                ..Default::default()
            })
            .await
            .map_err(|e| queue_err("cannot create the JetStream streams", e))?;
        }
        // The bucket's stream as `create_key_value` would make it: that call first asks for
        // the account info, whose 2.9 answer async-nats 0.42 cannot parse.
        js.get_or_create_stream(jetstream::stream::Config {
            name: format!("KV_{CACHE_BUCKET}"),
            description: Some("modelward verdicts by content, engine and policy".into()),
            subjects: vec![format!("$KV.{CACHE_BUCKET}.>")],
            max_messages_per_subject: 1,
            max_message_size: crate::job::MAX_MESSAGE_BYTES as i32,
            storage: StorageType::File,
            allow_rollup: true,
            deny_delete: true,
            allow_direct: true,
            discard: jetstream::stream::DiscardPolicy::New,
            ..Default::default()
        })
        .await
        .map_err(|e| queue_err("cannot create the verdict cache bucket", e))?;
        js.get_key_value(CACHE_BUCKET)
            .await
            .map_err(|e| queue_err("cannot open the verdict cache bucket", e))
    }

    /// A durable pull consumer: explicit acks, the ack wait, bounded deliveries with backoff.
    async fn consumer(&self, stream: &str, name: &str, deliveries: i64) -> Result<PullConsumer, StoreError> {
        let stream = self
            .js
            .get_stream(stream)
            .await
            .map_err(|e| queue_err("no JetStream stream", e))?;
        let wait = self.config.ack_wait;
        // Redelivery n waits wait * 2^(n-1); the server needs fewer steps than deliveries.
        let backoff: Vec<Duration> = (0..(deliveries - 1).clamp(1, 4) as u32)
            .map(|i| wait * 2u32.pow(i))
            .collect();
        stream
            .get_or_create_consumer(
                name,
                jetstream::consumer::pull::Config {
                    durable_name: Some(name.into()),
                    ack_policy: jetstream::consumer::AckPolicy::Explicit,
                    ack_wait: wait,
                    max_deliver: deliveries,
                    backoff,
                    max_ack_pending: 10_000,
                    ..Default::default()
                },
            )
            .await
            .map_err(|e| queue_err("cannot create the JetStream consumer", e))
    }

    /// Publishes `body` on `subject` under `id` and waits for JetStream to confirm it stored it.
    async fn publish(&self, subject: &'static str, id: &str, body: Vec<u8>) -> Result<(), StoreError> {
        let ack = self
            .js
            .send_publish(subject, Publish::build().payload(body.into()).message_id(id))
            .await
            .map_err(|e| queue_err("publish", e))?;
        ack.await.map_err(|e| queue_err("publish not confirmed", e))?;
        Ok(())
    }
}

/// The verdict cache in the JetStream bucket. Called from scans on tokio's blocking pool.
pub struct KvCache {
    kv: kv::Store,
    rt: tokio::runtime::Handle,
}

impl KvCache {
    /// The bucket's key for a cache key: hex sha256 of content, engine and policy (bucket keys
    /// allow few characters; the hash keeps every part exact).
    pub fn key(k: &CacheKey) -> String {
        let mut h = sha2::Sha256::new();
        for part in [&k.content, &k.engine, &k.policy] {
            h.update((part.len() as u64).to_le_bytes());
            h.update(part.as_bytes());
        }
        let hex: String = h.finalize().iter().map(|b| format!("{b:02x}")).collect();
        format!("v1.{hex}")
    }
}

impl VerdictCache for KvCache {
    fn cached_file(&self, key: &CacheKey) -> Result<Option<FileReport>, StoreError> {
        let k = Self::key(key);
        let got = self
            .rt
            .block_on(async { tokio::time::timeout(Duration::from_secs(5), self.kv.get(k)).await })
            .map_err(|e| queue_err("cache lookup", e))?
            .map_err(|e| queue_err("cache lookup", e))?;
        match got {
            None => Ok(None),
            Some(bytes) if bytes.len() <= crate::job::MAX_MESSAGE_BYTES => {
                Ok(Some(serde_json::from_slice(&bytes)?))
            }
            Some(_) => Ok(None),
        }
    }

    fn cache_file(&self, key: &CacheKey, report: &FileReport) -> Result<(), StoreError> {
        let k = Self::key(key);
        let doc = serde_json::to_vec(report)?;
        if doc.len() > crate::job::MAX_MESSAGE_BYTES {
            return Ok(()); // too large to share; judged again where needed
        }
        self.rt
            .block_on(async {
                tokio::time::timeout(Duration::from_secs(5), self.kv.put(k, doc.into())).await
            })
            .map_err(|e| queue_err("cache store", e))?
            .map_err(|e| queue_err("cache store", e))?;
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// The service side: publish accepted jobs, record results.

/// Runs the dispatcher and the result consumer until `stop`.
pub async fn run_service(
    state: Arc<AppState>,
    config: NatsConfig,
    stop: watch::Receiver<bool>,
) -> Result<(), ServiceError> {
    let nats = Arc::new(Nats::connect(config).await?);
    let results = nats.consumer(RESULTS_STREAM, SERVICE_CONSUMER, 1_000_000).await?;
    let mut tasks = tokio::task::JoinSet::new();
    tasks.spawn(dispatch(state.clone(), nats.clone(), stop.clone()));
    tasks.spawn(record_results(state, results, stop));
    while tasks.join_next().await.is_some() {}
    Ok(())
}

async fn dispatch(state: Arc<AppState>, nats: Arc<Nats>, mut stop: watch::Receiver<bool>) {
    const BATCH: u32 = 256;
    loop {
        if *stop.borrow_and_update() {
            return;
        }
        let queue = state.queue.clone();
        let specs = crate::blocking(move || queue.unpublished(BATCH))
            .await
            .unwrap_or_default();
        let mut failed = false;
        for spec in &specs {
            let body = match serde_json::to_vec(spec) {
                Ok(b) => b,
                Err(_) => continue,
            };
            match nats.publish(JOBS_SUBJECT, &spec.id, body).await {
                Ok(()) => {
                    let (queue, id) = (state.queue.clone(), spec.id.clone());
                    let _ = crate::blocking(move || queue.mark_published(&id)).await;
                }
                Err(e) => {
                    eprintln!(
                        "modelward serve: cannot hand job {} to NATS (will retry): {e}",
                        spec.id
                    );
                    failed = true;
                    break;
                }
            }
        }
        if specs.len() as u32 == BATCH && !failed {
            continue;
        }
        let pause = if failed {
            Duration::from_secs(1)
        } else {
            Duration::from_secs(2)
        };
        tokio::select! {
            _ = state.wake.notified(), if !failed => {}
            _ = tokio::time::sleep(pause) => {}
            _ = stopped(&mut stop) => return,
        }
    }
}

async fn record_results(state: Arc<AppState>, consumer: PullConsumer, mut stop: watch::Receiver<bool>) {
    loop {
        if *stop.borrow_and_update() {
            return;
        }
        let batch = tokio::select! {
            b = consumer.batch().max_messages(64).expires(Duration::from_secs(2)).messages() => b,
            _ = stopped(&mut stop) => return,
        };
        let Ok(mut batch) = batch else {
            tokio::time::sleep(Duration::from_millis(500)).await;
            continue;
        };
        while let Some(Ok(msg)) = batch.next().await {
            let result = match parse_result_message(&msg.payload) {
                Ok(r) => r,
                Err(e) => {
                    eprintln!("modelward serve: dropping a result message: {e}");
                    let _ = msg.ack_with(AckKind::Term).await;
                    continue;
                }
            };
            let (store, queue, r) = (state.store.clone(), state.queue.clone(), result.clone());
            let elapsed = result.elapsed_ms.unwrap_or(0) as i64;
            let recorded = crate::blocking(move || {
                let fresh = queue.finish(&r, elapsed)?;
                let spec = store.job(&r.id)?.map(|j| j.spec);
                Ok((fresh, spec))
            })
            .await;
            match recorded {
                Ok((fresh, spec)) => {
                    if fresh {
                        let verdict = match &result.outcome {
                            Outcome::Done { verdict, .. } => verdict.as_str(),
                            Outcome::Failed { .. } => "failed",
                        };
                        state.metrics.job_done(verdict, elapsed as f64 / 1000.0);
                        if let Some(JobSource::Upload { sha256, .. }) = spec.map(|s| s.source) {
                            let (store, blobs) = (state.store.clone(), state.config.data.join("blobs"));
                            let _ = tokio::task::spawn_blocking(move || {
                                if let Ok(false) = store.blob_in_use(&sha256) {
                                    let _ = std::fs::remove_file(blobs.join(&sha256));
                                }
                            })
                            .await;
                        }
                    }
                    let _ = msg.double_ack().await;
                }
                // The database could not take it now: let JetStream deliver it again.
                Err(_) => {
                    let _ = msg.ack_with(AckKind::Nak(Some(Duration::from_secs(1)))).await;
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The worker side: `modelward worker --nats URL`.

/// How a worker runs.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// The queue.
    pub nats: NatsConfig,
    /// The service's data folder, for uploads (`blobs/SHA256`); shared storage when the worker
    /// runs on another machine. Remote sources need nothing.
    pub data: PathBuf,
    /// Scans at once.
    pub concurrency: usize,
    /// How remote sources are fetched (`HF_ENDPOINT`, `HF_TOKEN`, ...).
    pub remote: RemoteOptions,
    /// On SIGTERM, how long running scans may take to finish (then they are handed back).
    pub shutdown_grace: Duration,
}

struct WorkerState {
    nats: Nats,
    consumer: PullConsumer,
    cache: KvCache,
    scanner: Scanner,
    config: WorkerConfig,
}

/// Pulls and scans jobs until SIGTERM or Ctrl-C.
pub async fn run_worker(config: WorkerConfig) -> Result<(), ServiceError> {
    let nats = Nats::connect(config.nats.clone()).await?;
    let deliveries = i64::from(config.nats.max_attempts.max(1)) + 1;
    let consumer = nats.consumer(JOBS_STREAM, WORKERS_CONSUMER, deliveries).await?;
    let cache = KvCache {
        kv: nats.cache.clone(),
        rt: tokio::runtime::Handle::current(),
    };
    let n = config.concurrency.max(1);
    let state = Arc::new(WorkerState {
        nats,
        consumer,
        cache,
        scanner: Scanner::new(
            modelward_policy::Policy::builtin(),
            modelward_scanner::ScanLimits::default(),
        ),
        config,
    });
    eprintln!(
        "modelward worker: pulling from {} on {} ({n} at once)",
        JOBS_STREAM, state.config.nats.url
    );
    let (stop_tx, stop_rx) = watch::channel(false);
    tokio::spawn(async move {
        crate::shutdown_signal().await;
        let _ = stop_tx.send(true);
    });
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..n {
        tasks.spawn(work(state.clone(), stop_rx.clone()));
    }
    while tasks.join_next().await.is_some() {}
    Ok(())
}

async fn work(state: Arc<WorkerState>, mut stop: watch::Receiver<bool>) {
    let cfg = &state.config;
    loop {
        if *stop.borrow_and_update() {
            return;
        }
        let batch = tokio::select! {
            b = state.consumer.batch().max_messages(1).expires(Duration::from_secs(2)).messages() => b,
            _ = stopped(&mut stop) => return,
        };
        let msg = match batch {
            Ok(mut b) => match b.next().await {
                Some(Ok(m)) => m,
                Some(Err(_)) | None => continue,
            },
            Err(_) => {
                tokio::time::sleep(Duration::from_millis(500)).await;
                continue;
            }
        };
        let delivered = msg.info().map_or(1, |i| i.delivered.max(1) as u32);
        let spec = match parse_job_message(&msg.payload) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("modelward worker: dropping a job message: {e}");
                let _ = msg.ack_with(AckKind::Term).await;
                continue;
            }
        };
        let max = cfg.nats.max_attempts.max(1);
        if delivered > max {
            let result = JobResult {
                format: FORMAT_VERSION,
                id: spec.id.clone(),
                attempt: Some(max),
                elapsed_ms: None,
                outcome: Outcome::Failed {
                    reason: format!(
                        "the scan did not finish in {max} attempts: each time its worker stopped \
                         (crashed, killed or hung) before the ack wait expired"
                    ),
                },
            };
            if publish_result(&state, &result).await {
                let _ = msg.double_ack().await;
            }
            continue;
        }
        eprintln!(
            "modelward worker: scanning job {} (delivery {delivered})",
            spec.id
        );
        let started = Instant::now();
        let st = state.clone();
        let job = spec.clone();
        let mut scan = tokio::task::spawn_blocking(move || {
            crate::scan::run_job(
                &st.scanner,
                &st.cache,
                &st.config.data.join("blobs"),
                &st.config.remote,
                &job,
            )
        });
        // In-progress acks keep the delivery ours while the scan runs.
        let progress = || async {
            let _ = msg.ack_with(AckKind::Progress).await;
            true
        };
        let outcome = match supervise(
            &mut scan,
            cfg.nats.ack_wait / 3,
            progress,
            &mut stop,
            cfg.shutdown_grace,
        )
        .await
        {
            Supervised::Finished(outcome) => outcome,
            Supervised::Lost => None,
            Supervised::ShutDown => {
                // Shutting down: hand the job back now rather than after the ack wait.
                let _ = msg.ack_with(AckKind::Nak(None)).await;
                return;
            }
        };
        let Some((report, _stats)) = outcome else {
            let _ = msg.ack_with(AckKind::Nak(None)).await;
            continue;
        };
        let result = JobResult {
            format: FORMAT_VERSION,
            id: spec.id.clone(),
            attempt: Some(delivered),
            elapsed_ms: Some(started.elapsed().as_millis() as u64),
            outcome: Outcome::Done {
                verdict: crate::scan::overall_verdict(&report).to_owned(),
                report: crate::scan::report_json(&report),
            },
        };
        // The result is stored before the job is acked: a crash in between scans the job
        // again, and the service records the first result only.
        if publish_result(&state, &result).await {
            let _ = msg.double_ack().await;
        } else {
            let _ = msg.ack_with(AckKind::Nak(None)).await;
        }
    }
}

/// Publishes a result, retrying through a NATS outage for up to a minute.
async fn publish_result(state: &WorkerState, result: &JobResult) -> bool {
    let Ok(body) = serde_json::to_vec(result) else {
        return false;
    };
    let started = Instant::now();
    loop {
        match state
            .nats
            .publish(RESULTS_SUBJECT, &result.id, body.clone())
            .await
        {
            Ok(()) => return true,
            Err(e) if started.elapsed() > Duration::from_secs(60) => {
                eprintln!(
                    "modelward worker: cannot publish the result of job {}: {e}",
                    result.id
                );
                return false;
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(500)).await,
        }
    }
}
