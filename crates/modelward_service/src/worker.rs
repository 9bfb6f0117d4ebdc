//! Workers of the embedded queue: each leases one job at a time, scans it on the blocking pool
//! (so at most `workers` scans run at once), renews its lease while it runs, and records the
//! result only if it still holds the lease. A reaper takes expired leases back.

use crate::AppState;
use crate::job::{FORMAT_VERSION, JobResult, JobSource, Outcome};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// Runs `n` workers and the reaper until `stop` turns true; running scans then get
/// `grace` to finish, after which their leases are released (queued again, not counted).
pub async fn run(state: Arc<AppState>, n: usize, mut stop: watch::Receiver<bool>, grace: Duration) {
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..n.max(1) {
        let owner = format!("{}-{i}", state.instance);
        tasks.spawn(worker(state.clone(), owner, stop.clone(), grace));
    }
    tasks.spawn(reaper(state.clone(), stop.clone()));
    stopped(&mut stop).await;
    while tasks.join_next().await.is_some() {}
}

async fn reaper(state: Arc<AppState>, mut stop: watch::Receiver<bool>) {
    let every = (state.config.lease / 2).max(Duration::from_millis(200));
    loop {
        let queue = state.queue.clone();
        let max = state.config.max_attempts;
        if let Ok(Ok(e)) = tokio::task::spawn_blocking(move || queue.expire(max)).await {
            for _ in &e.failed {
                state.metrics.job_done("failed", 0.0);
            }
            let expired = e.requeued + e.failed.len() as u64;
            if expired > 0 {
                state.metrics.retried(expired);
                state.wake.notify_waiters();
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = stopped(&mut stop) => return,
        }
    }
}

async fn worker(state: Arc<AppState>, owner: String, mut stop: watch::Receiver<bool>, grace: Duration) {
    let lease_ms = state.config.lease.as_millis() as i64;
    loop {
        if *stop.borrow_and_update() {
            return;
        }
        let queue = state.queue.clone();
        let o = owner.clone();
        let leased = tokio::task::spawn_blocking(move || queue.lease(&o, lease_ms)).await;
        let lease = match leased {
            Ok(Ok(Some(l))) => l,
            Ok(Ok(None)) | Ok(Err(_)) | Err(_) => {
                tokio::select! {
                    _ = state.wake.notified() => {}
                    _ = tokio::time::sleep(Duration::from_millis(500)) => {}
                    _ = stopped(&mut stop) => return,
                }
                continue;
            }
        };
        let started = Instant::now();
        let id = lease.spec.id.clone();
        let spec = lease.spec.clone();
        let st = state.clone();
        let mut scan = tokio::task::spawn_blocking(move || {
            crate::scan::run_job(
                &st.scanner,
                st.store.as_ref(),
                &st.config.data.join("blobs"),
                &st.config.remote,
                &spec,
            )
        });
        let renewal = || {
            let (q, i, o) = (state.queue.clone(), id.clone(), owner.clone());
            // A lost lease means another worker has the job now: stop caring about it.
            async move {
                !matches!(
                    tokio::task::spawn_blocking(move || q.renew(&i, &o, lease_ms)).await,
                    Ok(Ok(false))
                )
            }
        };
        let outcome = match supervise(&mut scan, state.config.lease / 3, renewal, &mut stop, grace).await {
            Supervised::Finished(outcome) => outcome,
            Supervised::Lost => None,
            Supervised::ShutDown => {
                let (q, i, o) = (state.queue.clone(), id.clone(), owner.clone());
                let _ = tokio::task::spawn_blocking(move || q.release(&i, &o)).await;
                return;
            }
        };
        let Some((report, stats)) = outcome else { continue };
        let verdict = crate::scan::overall_verdict(&report);
        let result = JobResult {
            format: FORMAT_VERSION,
            id: id.clone(),
            attempt: Some(lease.attempt),
            elapsed_ms: None,
            outcome: Outcome::Done {
                verdict: verdict.to_owned(),
                report: crate::scan::report_json(&report),
            },
        };
        let elapsed = started.elapsed();
        let (q, o) = (state.queue.clone(), owner.clone());
        let recorded =
            tokio::task::spawn_blocking(move || q.complete(&result, &o, elapsed.as_millis() as i64)).await;
        if let Ok(Ok(true)) = recorded {
            state.metrics.job_done(verdict, elapsed.as_secs_f64());
            state
                .metrics
                .scanned(stats.bytes_read, stats.scanned, stats.cache_hits);
            if let JobSource::Upload { sha256, .. } = &lease.spec.source {
                let (store, blobs, sha) = (
                    state.store.clone(),
                    state.config.data.join("blobs"),
                    sha256.clone(),
                );
                let _ = tokio::task::spawn_blocking(move || {
                    if let Ok(false) = store.blob_in_use(&sha) {
                        let _ = std::fs::remove_file(blobs.join(&sha));
                    }
                })
                .await;
            }
        }
    }
}

/// Resolves once `stop` is true (or its sender is gone).
/// Resolves once `stop` says so (or its sender is gone).
pub(crate) async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await.map(|_| ());
}

/// How a supervised scan ended.
pub(crate) enum Supervised<T> {
    /// The scan returned (`None`: its task panicked or was cancelled).
    Finished(Option<T>),
    /// The keep-alive said the job is no longer ours (another worker has it now).
    Lost,
    /// Shutdown was asked for and the grace period ran out before the scan finished.
    ShutDown,
}

/// Waits for `scan` while keeping its job ours: `keepalive` runs every `every` (a lease
/// renewal, a JetStream in-progress ack) and answers whether the job is still ours. Once `stop`
/// fires, the scan gets `grace` to finish. One loop for the embedded queue and the NATS worker.
pub(crate) async fn supervise<T, F, Fut>(
    scan: &mut tokio::task::JoinHandle<T>,
    every: Duration,
    mut keepalive: F,
    stop: &mut watch::Receiver<bool>,
    grace: Duration,
) -> Supervised<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let mut tick = tokio::time::interval(every.max(Duration::from_millis(100)));
    tick.tick().await;
    let mut deadline: Option<tokio::time::Instant> = None;
    loop {
        let until_deadline = async {
            match deadline {
                Some(d) => tokio::time::sleep_until(d).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            r = &mut *scan => return Supervised::Finished(r.ok()),
            _ = tick.tick() => {
                if !keepalive().await {
                    return Supervised::Lost;
                }
            }
            _ = stopped(stop), if deadline.is_none() => {
                deadline = Some(tokio::time::Instant::now() + grace);
            }
            _ = until_deadline => return Supervised::ShutDown,
        }
    }
}
