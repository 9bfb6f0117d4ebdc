//! The web page: recent scans with a filter by verdict, and a page per scan with every
//! finding. Server-rendered with maud, which escapes every interpolated value (file names,
//! messages and rendered constructs come from scanned files: attacker-controlled). No script.

use crate::api::{ApiError, require};
use crate::auth::Role;
use crate::store::JobRecord;
use crate::{AppState, blocking};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use maud::{DOCTYPE, Markup, html};
use serde::Deserialize;
use serde_json::Value;
use std::sync::Arc;

const CSS: &str = r#"
:root{--fg:#1f2328;--muted:#656d76;--line:#d8dee4;--bg:#f6f8fa;--card:#fff;--accent:#0b5cad}
*{box-sizing:border-box}
body{margin:0;font:15px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif;color:var(--fg);background:var(--bg)}
header{background:#14213d;color:#fff;padding:14px 32px;display:flex;align-items:baseline;gap:16px}
header a{color:#fff;text-decoration:none;font-weight:650;font-size:18px;letter-spacing:.2px}
header span{color:#b9c3d6;font-size:13px}
main{max-width:1180px;margin:24px auto;padding:0 24px}
h1{font-size:22px;margin:0 0 16px}
h2{font-size:17px;margin:28px 0 10px}
.card{background:var(--card);border:1px solid var(--line);border-radius:10px;padding:4px 0;overflow:hidden}
table{width:100%;border-collapse:collapse}
th,td{text-align:left;padding:9px 14px;border-bottom:1px solid var(--line);vertical-align:top}
th{font-size:12px;text-transform:uppercase;letter-spacing:.5px;color:var(--muted);font-weight:600;background:#fbfcfd}
tr:last-child td{border-bottom:0}
td a{color:var(--accent);text-decoration:none;word-break:break-all}
td a:hover{text-decoration:underline}
.filters{display:flex;gap:8px;flex-wrap:wrap;margin:0 0 16px}
.filters a{padding:4px 12px;border:1px solid var(--line);border-radius:999px;background:#fff;color:var(--fg);text-decoration:none;font-size:13px}
.filters a.on{background:#14213d;color:#fff;border-color:#14213d}
.badge{display:inline-block;padding:1px 9px;border-radius:999px;font-size:12px;font-weight:650;white-space:nowrap}
.malicious,.critical{background:#ffe3e3;color:#a40e26}
.high{background:#ffe8d6;color:#9a3412}
.suspicious,.medium{background:#fff4c2;color:#7a5200}
.clean{background:#dcfce7;color:#166534}
.low,.info,.skipped{background:#eef1f4;color:#4b5563}
.error,.failed{background:#f3e8ff;color:#6b21a8}
.queued,.running{background:#e0ecff;color:#1e429f}
.muted{color:var(--muted);font-size:13px}
code,pre{font:13px/1.45 ui-monospace,SFMono-Regular,Menlo,Consolas,monospace}
pre{margin:6px 0 0;padding:8px 10px;background:#f6f8fa;border:1px solid var(--line);border-radius:6px;white-space:pre-wrap;word-break:break-all;max-height:14em;overflow:auto}
.meta{display:grid;grid-template-columns:max-content 1fr;gap:4px 18px;margin:0 0 8px;padding:14px 18px}
.meta dt{color:var(--muted)}.meta dd{margin:0;word-break:break-all}
.file{margin:18px 0}
.file h3{font-size:15px;margin:0;padding:12px 14px;border-bottom:1px solid var(--line);display:flex;gap:10px;align-items:center;flex-wrap:wrap;word-break:break-all}
.why{color:var(--muted);font-size:13px;margin-top:4px}
.empty{padding:18px;color:var(--muted)}
"#;

fn page(title: &str, body: Markup) -> Response {
    let doc = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · modelward" }
                style { (maud::PreEscaped(CSS)) }
            }
            body {
                header { a href="/" { "modelward" } span { "scan service · static analysis, nothing executed" } }
                main { (body) }
            }
        }
    };
    let mut r = axum::response::Html(doc.into_string()).into_response();
    let h = r.headers_mut();
    // No script runs on these pages, inline or fetched; nothing may frame them.
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'unsafe-inline'; img-src 'self'; frame-ancestors 'none'",
        ),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    r
}

/// Browsers get a Basic prompt (the token as password) instead of a JSON 401.
/// The page a request without a read token gets instead (boxed: a `Response` is large).
fn web_auth(state: &AppState, headers: &HeaderMap) -> Result<(), Box<Response>> {
    require(state, headers, Role::ReadOnly).map_err(|e| {
        let mut r = e.into_response();
        if r.status() == StatusCode::UNAUTHORIZED {
            r.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"modelward (API token as password)\""),
            );
        }
        Box::new(r)
    })
}

/// `?verdict=` of the list.
#[derive(Debug, Deserialize)]
pub struct ListQuery {
    verdict: Option<String>,
}

const FILTERS: [&str; 7] = [
    "malicious",
    "suspicious",
    "clean",
    "error",
    "skipped",
    "failed",
    "all",
];

fn badge(v: &str) -> Markup {
    html! { span class={ "badge " (css_class(v)) } { (v) } }
}

/// Only known class names reach the `class` attribute.
fn css_class(v: &str) -> &'static str {
    for c in [
        "malicious",
        "suspicious",
        "clean",
        "skipped",
        "error",
        "failed",
        "queued",
        "running",
        "critical",
        "high",
        "medium",
        "low",
        "info",
    ] {
        if v == c {
            return c;
        }
    }
    "info"
}

/// `GET /`.
pub async fn index(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Query(q): Query<ListQuery>,
) -> Response {
    if let Err(r) = web_auth(&state, &headers) {
        return *r;
    }
    let filter = q.verdict.filter(|v| FILTERS[..6].contains(&v.as_str()));
    let store = state.store.clone();
    let f = filter.clone();
    let jobs = match blocking(move || store.recent(f.as_deref(), 200)).await {
        Ok(j) => j,
        Err(e) => return e.into_response(),
    };
    let current = filter.as_deref().unwrap_or("all");
    page(
        "Recent scans",
        html! {
            h1 { "Recent scans" }
            nav class="filters" {
                @for f in FILTERS {
                    a class=[(f == current).then_some("on")] href={ "/" @if f != "all" { "?verdict=" (f) } } { (f) }
                }
            }
            div class="card" {
                @if jobs.is_empty() {
                    div class="empty" { "No scans yet. " code { "curl --data-binary @model.pt http://HOST/v1/scans?name=model.pt" } }
                } @else {
                    table {
                        thead { tr { th { "Verdict" } th { "Source" } th { "Status" } th { "Submitted (UTC)" } th { "Scan time" } } }
                        tbody {
                            @for j in &jobs { (row(j)) }
                        }
                    }
                }
            }
        },
    )
}

fn row(j: &JobRecord) -> Markup {
    html! {
        tr {
            td { @match &j.verdict { Some(v) => (badge(v)), None => span class="muted" { "—" } } }
            td { a href={ "/scans/" (j.spec.id) } { (j.name()) } }
            td { (badge(j.status.as_str())) @if j.attempts > 1 { " " span class="muted" { "(" (j.attempts) " attempts)" } } }
            td class="muted" { (utc(j.spec.created_at)) }
            td class="muted" { @if let Some(ms) = j.elapsed_ms { (ms) " ms" } }
        }
    }
}

/// `GET /scans/{id}`.
pub async fn detail(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    if let Err(r) = web_auth(&state, &headers) {
        return *r;
    }
    let store = state.store.clone();
    let job = match blocking(move || store.job(&id)).await {
        Ok(Some(j)) => j,
        Ok(None) => return ApiError(StatusCode::NOT_FOUND, "no such scan".into()).into_response(),
        Err(e) => return e.into_response(),
    };
    let report: Value = job
        .report
        .as_deref()
        .and_then(|r| serde_json::from_str(r).ok())
        .unwrap_or(Value::Null);
    let files = report["files"].as_array().cloned().unwrap_or_default();
    let name = job.name();
    page(
        &name,
        html! {
            h1 { "Scan of " (name) }
            div class="card" {
                dl class="meta" {
                    dt { "Verdict" } dd { @match &job.verdict { Some(v) => (badge(v)), None => (badge(job.status.as_str())) } }
                    dt { "Status" } dd { (job.status.as_str()) " · " (job.attempts) " attempt(s)" }
                    dt { "Job id" } dd { code { (job.spec.id) } }
                    dt { "Submitted" } dd { (utc(job.spec.created_at)) " UTC" }
                    @if let Some(r) = &job.spec.repo { dt { "Repository" } dd { (r.kind) " " (r.name) " @ " code { (r.revision) } } }
                    @if let Some(reason) = &job.reason { dt { "Reason" } dd { (reason) } }
                    @if let Some(s) = report.get("summary") {
                        dt { "Files" } dd { (s["files"]) " · " (s["bytes_read"]) " of " (s["bytes_total"]) " bytes read" }
                    }
                    dt { "JSON" } dd { a href={ "/v1/scans/" (job.spec.id) } { "/v1/scans/" (job.spec.id) } }
                }
            }
            @for f in &files { (file_card(f)) }
        },
    )
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

fn file_card(f: &Value) -> Markup {
    let findings = f["findings"].as_array().cloned().unwrap_or_default();
    html! {
        section class="card file" {
            h3 {
                (badge(&text(&f["verdict"])))
                span { (text(&f["path"])) }
                span class="muted" { (text(&f["format"])) " · " (text(&f["size"])) " bytes, " (text(&f["bytes_read"])) " read" }
            }
            @if let Some(e) = f["error"].as_str() { div class="empty" { "Error: " (e) } }
            @if findings.is_empty() {
                div class="empty" { "No findings." }
            } @else {
                table {
                    thead { tr { th { "Severity" } th { "Rule" } th { "Location" } th { "Finding" } } }
                    tbody {
                        @for x in &findings {
                            tr {
                                td { (badge(&text(&x["severity"]))) br; span class="muted" { (text(&x["confidence"])) " confidence" } }
                                td { code { (text(&x["rule"])) } br; span class="muted" { (text(&x["name"])) } }
                                td { (location(&x["location"])) }
                                td {
                                    div { (text(&x["message"])) }
                                    @if let Some(ev) = x["evidence"].as_str() { pre { (ev) } }
                                    div class="why" { "Why: " (text(&x["why"])) }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn location(l: &Value) -> Markup {
    let mut s = text(&l["path"]);
    for m in l["members"].as_array().into_iter().flatten() {
        s.push('!');
        s.push_str(&text(m));
    }
    html! {
        code { (s) }
        @if let Some(o) = l["offset"].as_u64() { br; span class="muted" { "offset " (o) } }
    }
}

/// `YYYY-MM-DD HH:MM:SS` of a Unix time (seconds), UTC.
fn utc(secs: i64) -> String {
    modelward_report::time::utc(secs)
}

#[cfg(test)]
mod tests {
    #[test]
    fn hostile_names_are_escaped() {
        let f = serde_json::json!({"path": "<script>alert(1)</script>", "verdict": "x\" onload=\"y", "findings": [
            {"severity": "critical", "rule": "PKL102", "message": "<img src=x onerror=alert(1)>", "evidence": "</pre><b>",
             "location": {"path": "a&b", "members": ["<m>"]}}]});
        let out = super::file_card(&f).into_string();
        assert!(!out.contains("<script>") && !out.contains("<img") && !out.contains("</pre><b>"));
        assert!(out.contains("&lt;script&gt;") && out.contains("a&amp;b!&lt;m&gt;"));
        assert!(!out.contains("onload=\"y"));
    }
}
