//! The little URL handling the crate needs: origins, percent-encoding, redirect locations.
//! (No URL crate: everything here works on `scheme://authority/path?query` strings that the
//! crate itself built or that a user typed, and ureq validates them again before use.)

/// `scheme://host[:port]` of an http(s) URL, lower-cased, default ports dropped.
pub(crate) fn origin(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let scheme = scheme.to_ascii_lowercase();
    if scheme != "http" && scheme != "https" {
        return None;
    }
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let mut authority = rest[..end].to_ascii_lowercase();
    if let Some(at) = authority.rfind('@') {
        authority = authority[at + 1..].to_owned();
    }
    let default = if scheme == "https" { ":443" } else { ":80" };
    if let Some(stripped) = authority.strip_suffix(default) {
        authority = stripped.to_owned();
    }
    if authority.is_empty() {
        return None;
    }
    Some(format!("{scheme}://{authority}"))
}

/// The host of an http(s) URL (no port), lower-cased.
pub(crate) fn host(url: &str) -> Option<String> {
    let o = origin(url)?;
    let authority = o.split_once("://")?.1;
    if let Some(rest) = authority.strip_prefix('[') {
        return rest.split_once(']').map(|(h, _)| format!("[{h}]"));
    }
    Some(authority.split(':').next().unwrap_or(authority).to_owned())
}

/// The path of an http(s) URL (from the first `/` after the authority, without query or
/// fragment), or `/`.
pub(crate) fn path(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let start = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let p = &rest[start..];
    let end = p.find(['?', '#']).unwrap_or(p.len());
    if p[..end].is_empty() { "/" } else { &p[..end] }
}

/// The URL without user info, query or fragment: what may be shown in a report (a query can
/// hold a signature or a token).
pub(crate) fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..end];
    let authority = authority.rfind('@').map_or(authority, |at| &authority[at + 1..]);
    let p = path(url);
    format!("{scheme}://{authority}{p}")
}

/// Resolves a `Location` header against the URL that answered with it.
pub(crate) fn join(base: &str, location: &str) -> Option<String> {
    let location = location.trim();
    if location.is_empty() {
        return None;
    }
    if location.contains("://") {
        return origin(location).map(|_| location.to_owned());
    }
    let o = origin_raw(base)?;
    if let Some(rest) = location.strip_prefix("//") {
        let scheme = base.split_once("://")?.0;
        return Some(format!("{scheme}://{rest}"));
    }
    if location.starts_with('/') {
        return Some(format!("{o}{location}"));
    }
    if location.starts_with('?') {
        return Some(format!("{o}{}{location}", path(base)));
    }
    let p = path(base);
    let dir = &p[..p.rfind('/').map_or(0, |i| i + 1)];
    Some(format!("{o}{dir}{location}"))
}

/// `scheme://authority` exactly as written in the URL.
fn origin_raw(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    Some(format!("{scheme}://{}", &rest[..end]))
}

/// Percent-encodes everything but RFC 3986 unreserved characters (and `/` when `keep_slash`).
pub(crate) fn encode(s: &str, keep_slash: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        let keep =
            b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') || (keep_slash && b == b'/');
        if keep {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Decodes `%XX` escapes; `None` if the result is not UTF-8 or an escape is malformed.
pub(crate) fn decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins() {
        assert_eq!(
            origin("https://HuggingFace.co/a/b").as_deref(),
            Some("https://huggingface.co")
        );
        assert_eq!(
            origin("https://huggingface.co:443/x").as_deref(),
            Some("https://huggingface.co")
        );
        assert_eq!(
            origin("http://127.0.0.1:8080?x").as_deref(),
            Some("http://127.0.0.1:8080")
        );
        assert_eq!(origin("http://user:pw@h:81/").as_deref(), Some("http://h:81"));
        assert_eq!(origin("ftp://h/"), None);
        assert_eq!(host("http://127.0.0.1:8080/x").as_deref(), Some("127.0.0.1"));
        assert_eq!(host("http://[::1]:8080/x").as_deref(), Some("[::1]"));
    }

    #[test]
    fn joins() {
        let base = "https://h.co/a/b/c?q=1";
        assert_eq!(join(base, "https://cdn.x/y").as_deref(), Some("https://cdn.x/y"));
        assert_eq!(join(base, "//cdn.x/y").as_deref(), Some("https://cdn.x/y"));
        assert_eq!(join(base, "/z").as_deref(), Some("https://h.co/z"));
        assert_eq!(join(base, "d").as_deref(), Some("https://h.co/a/b/d"));
        assert_eq!(join(base, "?r=2").as_deref(), Some("https://h.co/a/b/c?r=2"));
        assert_eq!(join(base, ""), None);
    }

    #[test]
    fn paths_and_redaction() {
        assert_eq!(path("https://h.co"), "/");
        assert_eq!(path("https://h.co/a%20b?x#y"), "/a%20b");
        assert_eq!(
            redact("https://u:p@h.co/a/b?X-Amz-Signature=s#f"),
            "https://h.co/a/b"
        );
    }

    #[test]
    fn percent() {
        assert_eq!(encode("refs/pr/1", false), "refs%2Fpr%2F1");
        assert_eq!(encode("a b/ü.bin", true), "a%20b/%C3%BC.bin");
        assert_eq!(decode("refs%2Fpr%2F1").as_deref(), Some("refs/pr/1"));
        assert_eq!(decode("a%20b/%C3%BC.bin").as_deref(), Some("a b/ü.bin"));
        assert_eq!(decode("%zz"), None);
        assert_eq!(decode("%4"), None);
    }
}
