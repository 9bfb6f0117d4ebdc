//! The HTTP API under `/v1`, `/healthz` and `/metrics` (the web page is in [`crate::web`]).

use crate::auth::Role;
use crate::job::{FORMAT_VERSION, JobSource, JobSpec, RepoRevision, new_id, now};
use crate::store::{JobRecord, Submitted};
use crate::webhook::{self, WebhookAction};
use crate::{AppState, blocking};
use axum::body::Body;
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use serde::Deserialize;
use serde_json::{Value, json};
use sha2::Digest;
use std::sync::Arc;
use tokio::io::AsyncWriteExt;

/// Largest JSON request body (`{"source": ...}`).
pub const MAX_JSON_BODY: usize = 64 << 10;
/// Longest `source` accepted.
const MAX_SOURCE_LEN: usize = 4096;
/// Longest upload name kept.
const MAX_NAME_LEN: usize = 255;

/// An API error: status and a JSON `{"error": ...}`.
pub struct ApiError(pub StatusCode, pub String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut r = (self.0, axum::Json(json!({ "error": self.1 }))).into_response();
        if self.0 == StatusCode::UNAUTHORIZED {
            r.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"modelward\""),
            );
        }
        r
    }
}

impl From<crate::store::StoreError> for ApiError {
    fn from(e: crate::store::StoreError) -> ApiError {
        ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
    }
}

type ApiResult = Result<Response, ApiError>;

/// Refuses unless the request's credentials carry `need`.
pub fn require(state: &AppState, headers: &HeaderMap, need: Role) -> Result<(), ApiError> {
    match state
        .config
        .tokens
        .role(headers.get(header::AUTHORIZATION).map(|v| v.as_bytes()))
    {
        Some(r) if r >= need => Ok(()),
        Some(_) => Err(ApiError(StatusCode::FORBIDDEN, "this token may only read".into())),
        None => Err(ApiError(
            StatusCode::UNAUTHORIZED,
            "a valid API token is needed".into(),
        )),
    }
}

fn queue_full(state: &AppState) -> ApiError {
    state.metrics.rejected_full();
    ApiError(
        StatusCode::TOO_MANY_REQUESTS,
        format!(
            "the queue holds its maximum of {} jobs; retry later",
            state.config.max_queue
        ),
    )
}

fn with_retry_after(e: ApiError) -> Response {
    let mut r = e.into_response();
    if r.status() == StatusCode::TOO_MANY_REQUESTS {
        r.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
    }
    r
}

/// A request to scan a remote source.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceRequest {
    /// `hf://owner/name[@rev]` or `https://...`.
    pub source: String,
}

/// Parses and checks a `{"source": ...}` body. Never panics (fuzzed).
pub fn parse_source_request(body: &[u8]) -> Result<String, String> {
    if body.len() > MAX_JSON_BODY {
        return Err("body too large".into());
    }
    let r: SourceRequest = serde_json::from_slice(body)
        .map_err(|e| format!("expected {{\"source\": \"hf://...\" | \"https://...\"}}: {e}"))?;
    let s = r.source.trim();
    if s.len() > MAX_SOURCE_LEN {
        return Err("source too long".into());
    }
    if !(s.starts_with("hf://") || s.starts_with("https://") || s.starts_with("http://")) {
        return Err("source must be hf://owner/name[@rev] or an http(s) URL".into());
    }
    modelward_remote::RemoteTarget::parse(s).map_err(|e| e.to_string())?;
    Ok(s.to_owned())
}

/// `POST /v1/scans`: a file body (streamed to disk) or `{"source": ...}` as JSON.
pub async fn submit(
    State(state): State<Arc<AppState>>,
    Query(q): Query<UploadQuery>,
    req: Request,
) -> Response {
    submit_inner(state, q, req).await.unwrap_or_else(with_retry_after)
}

/// `?name=` of an upload.
#[derive(Debug, Deserialize)]
pub struct UploadQuery {
    name: Option<String>,
}

async fn submit_inner(state: Arc<AppState>, q: UploadQuery, req: Request) -> ApiResult {
    require(&state, req.headers(), Role::Admin)?;
    let is_json = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim_start().starts_with("application/json"));
    let source = if is_json {
        let body = axum::body::to_bytes(req.into_body(), MAX_JSON_BODY)
            .await
            .map_err(|_| {
                ApiError(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    format!("JSON bodies are limited to {MAX_JSON_BODY} bytes"),
                )
            })?;
        let source = parse_source_request(&body).map_err(|e| ApiError(StatusCode::BAD_REQUEST, e))?;
        JobSource::Remote { source }
    } else {
        let name = clean_name(q.name.as_deref().unwrap_or("upload"));
        let (sha256, size) = receive_upload(&state, req).await?;
        JobSource::Upload { name, sha256, size }
    };
    let spec = JobSpec {
        format: FORMAT_VERSION,
        id: new_id(),
        source,
        repo: None,
        created_at: now(),
    };
    enqueue(&state, spec).await
}

async fn enqueue(state: &Arc<AppState>, spec: JobSpec) -> ApiResult {
    let id = spec.id.clone();
    let max = state.config.max_queue;
    let queue = state.queue.clone();
    let submitted = blocking(move || queue.submit(&spec, max)).await?;
    match submitted {
        Submitted::Queued => {
            state.wake.notify_one();
            Ok((
                StatusCode::ACCEPTED,
                axum::Json(json!({ "id": id, "status": "queued" })),
            )
                .into_response())
        }
        Submitted::Duplicate(existing) => {
            let store = state.store.clone();
            let e = existing.clone();
            let status = blocking(move || store.job(&e))
                .await?
                .map_or("queued", |j| j.status.as_str());
            Ok((
                StatusCode::OK,
                axum::Json(json!({ "id": existing, "status": status, "duplicate": true })),
            )
                .into_response())
        }
        Submitted::Full => Err(queue_full(state)),
    }
}

/// The upload name shown in reports: printable, at most 255 characters. Never a path on disk.
fn clean_name(s: &str) -> String {
    let s: String = s.chars().filter(|c| !c.is_control()).take(MAX_NAME_LEN).collect();
    if s.trim().is_empty() { "upload".into() } else { s }
}

/// Streams the body to `tmp/`, hashing as it goes, then moves it to `blobs/SHA256`. Never holds
/// more than one chunk in memory; past `max_upload` bytes the file is dropped and 413 answered.
async fn receive_upload(state: &AppState, req: Request) -> Result<(String, u64), ApiError> {
    let max = state.config.max_upload;
    let too_large = || {
        ApiError(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("uploads are limited to {max} bytes"),
        )
    };
    if let Some(len) = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        && len > max
    {
        state.metrics.rejected_too_large();
        return Err(too_large());
    }
    let tmp = state.config.data.join("tmp").join(new_id());
    let internal = |e: std::io::Error| {
        ApiError(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("cannot store the upload: {e}"),
        )
    };
    let mut file = tokio::fs::File::create(&tmp).await.map_err(internal)?;
    let mut hasher = sha2::Sha256::new();
    let mut size = 0u64;
    let mut stream = req.into_body().into_data_stream();
    let outcome: Result<(), ApiError> = async {
        while let Some(chunk) = stream.next().await {
            let chunk =
                chunk.map_err(|e| ApiError(StatusCode::BAD_REQUEST, format!("the upload broke off: {e}")))?;
            size += chunk.len() as u64;
            if size > max {
                state.metrics.rejected_too_large();
                return Err(too_large());
            }
            hasher.update(&chunk);
            file.write_all(&chunk).await.map_err(internal)?;
        }
        file.sync_all().await.map_err(internal)?;
        Ok(())
    }
    .await;
    drop(file);
    if let Err(e) = outcome {
        let _ = tokio::fs::remove_file(&tmp).await;
        return Err(e);
    }
    let sha256: String = hasher.finalize().iter().map(|b| format!("{b:02x}")).collect();
    let blob = state.config.data.join("blobs").join(&sha256);
    tokio::fs::rename(&tmp, &blob).await.map_err(internal)?;
    Ok((sha256, size))
}

/// A job as the API shows it.
pub fn job_json(j: &JobRecord) -> Value {
    let mut v = json!({
        "id": j.spec.id,
        "status": j.status.as_str(),
        "name": j.name(),
        "attempts": j.attempts,
        "created_at": j.spec.created_at,
    });
    if let Some(x) = &j.verdict {
        v["verdict"] = json!(x);
    }
    if let Some(x) = j.finished_at {
        v["finished_at_ms"] = json!(x);
    }
    if let Some(x) = &j.reason {
        v["reason"] = json!(x);
    }
    if let Some(r) = &j.spec.repo {
        v["repo"] = json!({ "type": r.kind, "name": r.name, "revision": r.revision });
    }
    if let Some(doc) = &j.report {
        v["report"] = serde_json::from_str(doc).unwrap_or(Value::Null);
    }
    v
}

/// `GET /v1/scans/{id}`.
pub async fn get_scan(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> ApiResult {
    require(&state, &headers, Role::ReadOnly)?;
    if id.len() > 64 {
        return Err(ApiError(StatusCode::NOT_FOUND, "no such scan".into()));
    }
    let store = state.store.clone();
    match blocking(move || store.job(&id)).await? {
        Some(j) => Ok(axum::Json(job_json(&j)).into_response()),
        None => Err(ApiError(StatusCode::NOT_FOUND, "no such scan".into())),
    }
}

/// `?revision=&type=` of a repository lookup.
#[derive(Debug, Deserialize)]
pub struct RepoQuery {
    revision: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
}

/// `GET /v1/repos/{owner}/{name}?revision=`: the latest scan of the repository (revision).
pub async fn get_repo(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Path((owner, name)): Path<(String, String)>,
    Query(q): Query<RepoQuery>,
) -> ApiResult {
    require(&state, &headers, Role::ReadOnly)?;
    let repo = format!("{owner}/{name}");
    if !webhook::valid_repo_name(&repo) {
        return Err(ApiError(StatusCode::BAD_REQUEST, "not a repository name".into()));
    }
    let kind = q.kind.unwrap_or_else(|| "model".into());
    let revision = q.revision.filter(|r| !r.is_empty() && r.len() <= 256);
    let store = state.store.clone();
    match blocking(move || store.repo_latest(&kind, &repo, revision.as_deref())).await? {
        Some(j) => Ok(axum::Json(job_json(&j)).into_response()),
        None => Err(ApiError(
            StatusCode::NOT_FOUND,
            "no scan of this repository (revision)".into(),
        )),
    }
}

/// `POST /v1/webhooks/huggingface`.
pub async fn webhook(State(state): State<Arc<AppState>>, headers: HeaderMap, body: Body) -> Response {
    webhook_inner(state, headers, body)
        .await
        .unwrap_or_else(with_retry_after)
}

async fn webhook_inner(state: Arc<AppState>, headers: HeaderMap, body: Body) -> ApiResult {
    let Some(secret) = &state.config.webhook_secret else {
        return Err(ApiError(
            StatusCode::UNAUTHORIZED,
            "no webhook secret is configured (--webhook-secret / MODELWARD_WEBHOOK_SECRET)".into(),
        ));
    };
    let presented = headers.get("x-webhook-secret").map_or(&[][..], |v| v.as_bytes());
    if !crate::auth::secret_matches(secret.as_bytes(), presented) {
        return Err(ApiError(StatusCode::UNAUTHORIZED, "wrong webhook secret".into()));
    }
    let body = axum::body::to_bytes(body, webhook::MAX_WEBHOOK_BODY)
        .await
        .map_err(|_| {
            ApiError(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!(
                    "webhook bodies are limited to {} bytes",
                    webhook::MAX_WEBHOOK_BODY
                ),
            )
        })?;
    match webhook::parse(&body).map_err(|e| ApiError(StatusCode::BAD_REQUEST, e.to_string()))? {
        WebhookAction::Ignore(what) => Ok(axum::Json(json!({ "ignored": what })).into_response()),
        WebhookAction::Scan { kind, name, revision } => {
            let prefix = match kind.as_str() {
                "dataset" => "datasets/",
                "space" => "spaces/",
                _ => "",
            };
            let spec = JobSpec {
                format: FORMAT_VERSION,
                id: new_id(),
                source: JobSource::Remote {
                    source: format!("hf://{prefix}{name}@{revision}"),
                },
                repo: Some(RepoRevision { kind, name, revision }),
                created_at: now(),
            };
            enqueue(&state, spec).await
        }
    }
}

/// `GET /healthz`: 200 when the database answers.
pub async fn healthz(State(state): State<Arc<AppState>>) -> Response {
    let queue = state.queue.clone();
    match blocking(move || queue.depth()).await {
        Ok(d) => {
            axum::Json(json!({ "status": "ok", "queued": d.queued, "running": d.running })).into_response()
        }
        Err(e) => (
            StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(json!({ "status": "error", "error": e.1 })),
        )
            .into_response(),
    }
}

/// `GET /metrics`.
pub async fn metrics(State(state): State<Arc<AppState>>, headers: HeaderMap) -> ApiResult {
    require(&state, &headers, Role::ReadOnly)?;
    let queue = state.queue.clone();
    let d = blocking(move || queue.depth()).await?;
    Ok((
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
        state.metrics.render(d.queued, d.running),
    )
        .into_response())
}
