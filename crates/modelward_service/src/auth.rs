//! API tokens: `ro:TOKEN` may read (scans, repositories, the web page, metrics), `admin:TOKEN`
//! may also submit scans. Given as a comma-separated list (`--api-tokens`,
//! `MODELWARD_API_TOKENS`), e.g. `admin:s3cret,ro:dashboard-token`. Clients send
//! `Authorization: Bearer TOKEN`; browsers may use Basic authentication with the token as the
//! password (any user name), which the web page asks for. Compared in constant time.

use subtle::ConstantTimeEq;

/// What a token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    /// GET endpoints.
    ReadOnly,
    /// Everything.
    Admin,
}

/// The configured tokens.
#[derive(Debug, Clone, Default)]
pub struct Tokens {
    tokens: Vec<(Role, Vec<u8>)>,
}

/// A token list that does not parse.
#[derive(Debug, thiserror::Error)]
#[error("API tokens: {0} (expected a comma-separated list of ro:TOKEN or admin:TOKEN)")]
pub struct TokenError(String);

/// Shortest token accepted: a guessable token is worse than none (it hides the risk).
const MIN_TOKEN_LEN: usize = 16;

impl Tokens {
    /// Parses `ro:TOKEN,admin:TOKEN,...` (whitespace around entries ignored).
    pub fn parse(list: &str) -> Result<Tokens, TokenError> {
        let mut tokens = Vec::new();
        for entry in list.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let (role, token) = entry.split_once(':').ok_or_else(|| {
                TokenError(format!(
                    "an entry has no role prefix ({} characters)",
                    entry.len()
                ))
            })?;
            let role = match role {
                "ro" => Role::ReadOnly,
                "admin" => Role::Admin,
                other => return Err(TokenError(format!("unknown role {other:?}"))),
            };
            if token.len() < MIN_TOKEN_LEN {
                return Err(TokenError(format!(
                    "a {} token is shorter than {MIN_TOKEN_LEN} characters",
                    if role == Role::Admin { "admin" } else { "ro" }
                )));
            }
            tokens.push((role, token.as_bytes().to_vec()));
        }
        Ok(Tokens { tokens })
    }

    /// No token configured: the service is open (and only allowed on loopback).
    pub fn is_empty(&self) -> bool {
        self.tokens.is_empty()
    }

    /// The role of the credentials in an `Authorization` header value, if any.
    pub fn role(&self, authorization: Option<&[u8]>) -> Option<Role> {
        if self.is_empty() {
            return Some(Role::Admin);
        }
        let presented = presented_token(authorization?)?;
        // Every configured token is compared, so the time does not say which one matched.
        let mut best = None;
        for (role, t) in &self.tokens {
            if bool::from(t.as_slice().ct_eq(presented.as_slice())) {
                best = best.max(Some(*role));
            }
        }
        best
    }
}

/// The token out of `Bearer TOKEN` or `Basic base64(user:TOKEN)`.
fn presented_token(header: &[u8]) -> Option<Vec<u8>> {
    let header = std::str::from_utf8(header).ok()?.trim();
    let (scheme, rest) = header.split_once(' ')?;
    if scheme.eq_ignore_ascii_case("bearer") {
        return Some(rest.trim().as_bytes().to_vec());
    }
    if scheme.eq_ignore_ascii_case("basic") {
        use base64::Engine;
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(rest.trim())
            .ok()?;
        let colon = decoded.iter().position(|b| *b == b':')?;
        return Some(decoded[colon + 1..].to_vec());
    }
    None
}

/// Constant-time equality of a presented secret and the configured one.
pub fn secret_matches(configured: &[u8], presented: &[u8]) -> bool {
    bool::from(configured.ct_eq(presented))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_and_syntax() {
        let t = Tokens::parse("admin:aaaaaaaaaaaaaaaa, ro:bbbbbbbbbbbbbbbb").unwrap();
        assert_eq!(t.role(Some(b"Bearer aaaaaaaaaaaaaaaa")), Some(Role::Admin));
        assert_eq!(t.role(Some(b"Bearer bbbbbbbbbbbbbbbb")), Some(Role::ReadOnly));
        assert_eq!(t.role(Some(b"Bearer bbbbbbbbbbbbbbbc")), None);
        assert_eq!(t.role(None), None);
        // Basic, any user: "x:bbbbbbbbbbbbbbbb"
        assert_eq!(
            t.role(Some(b"Basic eDpiYmJiYmJiYmJiYmJiYmJi")),
            Some(Role::ReadOnly)
        );
        assert!(Tokens::parse("aaaaaaaaaaaaaaaa").is_err());
        assert!(Tokens::parse("root:aaaaaaaaaaaaaaaa").is_err());
        assert!(Tokens::parse("admin:short").is_err());
        assert!(Tokens::parse("").unwrap().is_empty());
        assert_eq!(Tokens::default().role(None), Some(Role::Admin));
    }
}
