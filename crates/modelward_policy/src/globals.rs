//! Judging imported names (`catalog/globals.toml`): dangerous, safe or unknown, most specific
//! entry first.

use serde::Deserialize;

/// How an entry covers names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Match {
    /// Only this name.
    Exact,
    /// This name and everything under it.
    Prefix,
    /// Class-like names (upper-case last part, no dunder) under it.
    PrefixClasses,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEntry {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    names: Vec<String>,
    #[serde(default = "default_match")]
    r#match: Match,
    #[serde(default)]
    rule: Option<String>,
    reason: String,
}

fn default_match() -> Match {
    Match::Exact
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    dangerous: Vec<RawEntry>,
    #[serde(default)]
    safe: Vec<RawEntry>,
    #[serde(default)]
    ecosystem: Vec<RawEntry>,
}

/// One name pattern with its reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The dotted name.
    pub name: String,
    /// How it matches.
    pub matching: Match,
    /// Rule code (dangerous entries).
    pub rule: Option<String>,
    /// Why it is listed.
    pub reason: String,
    /// Where it came from (`built-in` or a configuration file).
    pub source: String,
}

impl Entry {
    fn covers(&self, q: &str) -> bool {
        let under =
            q.len() > self.name.len() && q.starts_with(&self.name) && q.as_bytes()[self.name.len()] == b'.';
        match self.matching {
            Match::Exact => q == self.name,
            Match::Prefix => q == self.name || under,
            Match::PrefixClasses => {
                under && {
                    let rest = &q[self.name.len() + 1..];
                    let last = rest.rsplit('.').next().unwrap_or(rest);
                    !rest.split('.').any(|p| p.starts_with("__"))
                        && last.chars().next().is_some_and(|c| c.is_ascii_uppercase())
                }
            }
        }
    }
}

/// What the policy says about a name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Judgement<'a> {
    /// Listed as dangerous.
    Dangerous(&'a Entry),
    /// Listed as safe.
    Safe(&'a Entry),
    /// On no list; `ecosystem` is the known ML library it belongs to, if any.
    Unknown {
        /// The matching ecosystem root.
        ecosystem: Option<&'a str>,
    },
}

/// The lists.
#[derive(Debug, Clone, Default)]
pub struct GlobalPolicy {
    dangerous: Vec<Entry>,
    safe: Vec<Entry>,
    ecosystems: Vec<String>,
}

/// Longest attribute walk whose every tail is judged.
const MAX_WALK_PARTS: usize = 64;

/// The embedded lists.
pub const GLOBALS_TOML: &str = include_str!("../catalog/globals.toml");

fn expand(raw: Vec<RawEntry>, source: &str) -> Result<Vec<Entry>, crate::PolicyError> {
    let mut out = Vec::new();
    for r in raw {
        if r.reason.trim().is_empty() {
            return Err(crate::PolicyError::Catalog(format!(
                "entry {:?} has no reason",
                r.name.or(r.names.first().cloned())
            )));
        }
        let names: Vec<String> = r.name.into_iter().chain(r.names).collect();
        if names.is_empty() {
            return Err(crate::PolicyError::Catalog("entry with no name".into()));
        }
        for name in names {
            out.push(Entry {
                name,
                matching: r.r#match,
                rule: r.rule.clone(),
                reason: r.reason.clone(),
                source: source.to_owned(),
            });
        }
    }
    Ok(out)
}

impl GlobalPolicy {
    /// Parses the lists.
    pub fn parse(text: &str) -> Result<GlobalPolicy, crate::PolicyError> {
        let raw: RawFile = toml::from_str(text).map_err(|e| crate::PolicyError::Catalog(e.to_string()))?;
        let dangerous = expand(raw.dangerous, "built-in")?;
        if let Some(e) = dangerous.iter().find(|e| e.rule.is_none()) {
            return Err(crate::PolicyError::Catalog(format!(
                "dangerous entry {} names no rule",
                e.name
            )));
        }
        Ok(GlobalPolicy {
            dangerous,
            safe: expand(raw.safe, "built-in")?,
            ecosystems: expand(raw.ecosystem, "built-in")?
                .into_iter()
                .map(|e| e.name)
                .collect(),
        })
    }

    /// The built-in lists.
    pub fn builtin() -> GlobalPolicy {
        GlobalPolicy::parse(GLOBALS_TOML).unwrap_or_else(|e| panic!("built-in globals list is invalid: {e}"))
    }

    /// Adds a safe entry (from configuration).
    pub fn allow(&mut self, entry: Entry) {
        self.safe.push(entry);
    }

    /// Every dangerous entry.
    pub fn dangerous(&self) -> &[Entry] {
        &self.dangerous
    }

    /// Every safe entry.
    pub fn safe(&self) -> &[Entry] {
        &self.safe
    }

    /// Judges one fully qualified dotted name (`module.attr`). The most specific covering entry
    /// wins; on equal length a dangerous entry beats a safe one.
    pub fn judge(&self, qualified: &str) -> Judgement<'_> {
        let best_d = self
            .dangerous
            .iter()
            .filter(|e| e.covers(qualified))
            .max_by_key(|e| e.name.len());
        let best_s = self
            .safe
            .iter()
            .filter(|e| e.covers(qualified))
            .max_by_key(|e| e.name.len());
        match (best_d, best_s) {
            (Some(d), Some(s)) if s.name.len() > d.name.len() => Judgement::Safe(s),
            (Some(d), _) => Judgement::Dangerous(d),
            (None, Some(s)) => Judgement::Safe(s),
            (None, None) => Judgement::Unknown {
                ecosystem: self
                    .ecosystems
                    .iter()
                    .find(|r| {
                        qualified == r.as_str()
                            || (qualified.starts_with(r.as_str())
                                && qualified.as_bytes().get(r.len()) == Some(&b'.'))
                    })
                    .map(String::as_str),
            },
        }
    }

    /// Judges a name the way `find_class` resolves it: the whole dotted path, then every tail of
    /// it (a protocol-4 name can walk through a module attribute: `pathlib.os.system`). Returns
    /// the worst judgement and the path it was made on.
    pub fn judge_path(&self, module: &str, name: &str) -> (Judgement<'_>, String) {
        let full = format!("{module}.{name}");
        // An absurdly long attribute walk is judged whole (and reported as a walk); checking every
        // tail of it would be quadratic in its length.
        if name.contains('.') && name.split('.').count() <= MAX_WALK_PARTS {
            // The real target of an attribute walk is its tail: judge that first.
            let parts: Vec<&str> = full.split('.').collect();
            for i in 1..parts.len().saturating_sub(1) {
                let tail = parts[i..].join(".");
                if let j @ Judgement::Dangerous(_) = self.judge(&tail) {
                    return (j, tail);
                }
            }
        }
        (self.judge(&full), full)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_very_long_attribute_walk_is_judged_in_linear_time() {
        let p = GlobalPolicy::builtin();
        let start = std::time::Instant::now();
        let name = format!("{}b", "a.".repeat(16_000));
        let _ = p.judge_path("collections", &name);
        // Generous bound: the quadratic version took seconds; this takes milliseconds.
        assert!(start.elapsed().as_secs() < 2);
        assert!(matches!(
            p.judge_path("pathlib", "os.system").0,
            Judgement::Dangerous(_)
        ));
    }
}
