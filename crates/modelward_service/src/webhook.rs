//! The Hugging Face Hub's webhook payload (docs: "Webhooks" in the Hub documentation): the
//! Hub POSTs JSON with `event.scope` / `event.action`, the `repo` (`type`, `name`,
//! `headSha`) and, for content updates, `updatedRefs`; the secret configured on the Hub comes
//! verbatim in `X-Webhook-Secret` (no HMAC). Only `repo.content` events (a new commit, branch
//! or tag) and repository creation ask for a scan; everything else is acknowledged and ignored.

use serde::Deserialize;

/// Largest webhook body accepted (the Hub's payloads are a few kilobytes).
pub const MAX_WEBHOOK_BODY: usize = 256 << 10;

#[derive(Deserialize)]
struct Payload {
    event: Event,
    repo: Repo,
    #[serde(default, rename = "updatedRefs")]
    updated_refs: Vec<UpdatedRef>,
}

#[derive(Deserialize)]
struct Event {
    action: String,
    scope: String,
}

#[derive(Deserialize)]
struct Repo {
    #[serde(rename = "type")]
    kind: String,
    name: String,
    #[serde(default, rename = "headSha")]
    head_sha: Option<String>,
}

#[derive(Deserialize)]
struct UpdatedRef {
    #[serde(default, rename = "newSha")]
    new_sha: Option<String>,
}

/// What a webhook delivery asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WebhookAction {
    /// Scan this revision.
    Scan {
        /// `model`, `dataset` or `space`.
        kind: String,
        /// `owner/name`.
        name: String,
        /// The commit sha.
        revision: String,
    },
    /// Not a content change (discussions, config, deletions): nothing to do.
    Ignore(String),
}

/// Why a payload was refused (400).
#[derive(Debug, thiserror::Error)]
#[error("webhook payload: {0}")]
pub struct PayloadError(pub String);

/// Parses a delivery. Never panics; bounded by the body limit applied before it.
pub fn parse(body: &[u8]) -> Result<WebhookAction, PayloadError> {
    if body.len() > MAX_WEBHOOK_BODY {
        return Err(PayloadError("too large".into()));
    }
    let p: Payload = serde_json::from_slice(body).map_err(|e| PayloadError(e.to_string()))?;
    let wanted = (p.event.scope == "repo.content" && p.event.action == "update")
        || (p.event.scope == "repo" && p.event.action == "create");
    if !wanted {
        return Ok(WebhookAction::Ignore(format!(
            "{} {}",
            p.event.scope, p.event.action
        )));
    }
    let kind = match p.repo.kind.as_str() {
        "model" | "dataset" | "space" => p.repo.kind,
        other => return Err(PayloadError(format!("unknown repository type {other:?}"))),
    };
    if !valid_repo_name(&p.repo.name) {
        return Err(PayloadError("repository name is not owner/name".into()));
    }
    // The head of the repository after the update; else the newest updated ref.
    let revision = p
        .repo
        .head_sha
        .or_else(|| p.updated_refs.into_iter().rev().find_map(|r| r.new_sha))
        .ok_or_else(|| PayloadError("no headSha and no updatedRefs[].newSha".into()))?;
    if !valid_sha(&revision) {
        return Err(PayloadError("the revision is not a commit sha".into()));
    }
    Ok(WebhookAction::Scan {
        kind,
        name: p.repo.name,
        revision: revision.to_ascii_lowercase(),
    })
}

/// `owner/name` with the Hub's characters (letters, digits, `-`, `_`, `.`), at most 96 each.
pub fn valid_repo_name(name: &str) -> bool {
    let ok = |s: &str| {
        !s.is_empty()
            && s.len() <= 96
            && s != "."
            && s != ".."
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
    };
    matches!(name.split_once('/'), Some((o, n)) if ok(o) && ok(n))
}

fn valid_sha(s: &str) -> bool {
    (7..=64).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_update_and_others() {
        let body = br#"{"event":{"action":"update","scope":"repo.content"},
            "repo":{"type":"model","name":"acme/bert","id":"x","private":false,"headSha":"ABCDEF1234567"},
            "updatedRefs":[{"ref":"refs/heads/main","oldSha":"1","newSha":"abcdef1234567"}],
            "webhook":{"id":"w","version":3}}"#;
        assert_eq!(
            parse(body).unwrap(),
            WebhookAction::Scan {
                kind: "model".into(),
                name: "acme/bert".into(),
                revision: "abcdef1234567".into()
            }
        );
        let discussion =
            br#"{"event":{"action":"create","scope":"discussion"},"repo":{"type":"model","name":"a/b"}}"#;
        assert!(matches!(parse(discussion).unwrap(), WebhookAction::Ignore(_)));
        let bad = br#"{"event":{"action":"update","scope":"repo.content"},"repo":{"type":"model","name":"../x","headSha":"abcdef1"}}"#;
        assert!(parse(bad).is_err());
        assert!(parse(b"\xff").is_err());
    }
}
