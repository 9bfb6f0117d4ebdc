//! Judging imported names (`catalog/globals.toml`): dangerous, safe or unknown, most specific
//! entry first.

use serde::Deserialize;

/// How an entry covers names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Match {
    /// Only this name.
    Exact,
    /// This name and everything under it (deny entries and aliases only: an allow entry is
    /// always one exact reviewed name).
    Prefix,
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
    /// Argument positions the function calls (a trampoline: `_rebuild_from_type_v2(func, ...)`
    /// calls `func`).
    #[serde(default, rename = "calls-args")]
    calls_args: Vec<usize>,
    /// Argument positions whose class the function instantiates (`copyreg.__newobj__(cls)`).
    #[serde(default, rename = "constructs-args")]
    constructs_args: Vec<usize>,
    /// Argument positions called when the *result* is called (`functools.partial(f)`).
    #[serde(default, rename = "defers-args")]
    defers_args: Vec<usize>,
    reason: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAlias {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    names: Vec<String>,
    /// What the name is.
    is: String,
    #[serde(default = "default_match")]
    r#match: Match,
    reason: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawReexport {
    leaves: Vec<String>,
    /// Module the leaf names come from (`types` for `CodeType`).
    from: String,
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
    #[serde(default, rename = "runtime-namespace")]
    runtime_namespace: Vec<RawEntry>,
    #[serde(default)]
    alias: Vec<RawAlias>,
    #[serde(default)]
    reexport: Vec<RawReexport>,
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
    /// Argument positions a listed function calls (see `calls-args` in the catalog).
    pub calls_args: Vec<usize>,
    /// Argument positions whose class a listed function instantiates.
    pub constructs_args: Vec<usize>,
    /// Argument positions called when the result is called.
    pub defers_args: Vec<usize>,
}

impl Entry {
    /// A plain entry (configuration allow entries).
    pub fn plain(
        name: String,
        matching: Match,
        rule: Option<String>,
        reason: String,
        source: String,
    ) -> Entry {
        Entry {
            name,
            matching,
            rule,
            reason,
            source,
            calls_args: Vec::new(),
            constructs_args: Vec::new(),
            defers_args: Vec::new(),
        }
    }
}

/// A private implementation path and the public name it is (`numpy._core.memmap.memmap` is
/// `numpy.memmap`), or a module prefix that is another (`_functools` is `functools`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alias {
    /// The path as written.
    pub name: String,
    /// What it is.
    pub is: String,
    /// Exact name or module prefix.
    pub matching: Match,
    /// Why.
    pub reason: String,
}

/// How a name was resolved to the path it was judged on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    /// The name itself.
    Itself,
    /// The tail of a protocol-4 attribute walk.
    Attributes,
    /// A private implementation path of a public name (catalog `[[alias]]`).
    Alias,
    /// A library module's re-export of a standard-library object (catalog `[[reexport]]`).
    Reexport,
}

impl Via {
    /// Words for messages (empty for the name itself).
    pub fn describe(self) -> &'static str {
        match self {
            Via::Itself => "",
            Via::Attributes => "through attributes",
            Via::Alias => "its public name",
            Via::Reexport => "a re-export of the standard-library object of that name",
        }
    }
}

/// A name, the path it was judged on, and how that path was reached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved<'a> {
    /// The judgement.
    pub judgement: Judgement<'a>,
    /// The dotted path judged.
    pub path: String,
    /// How `path` was reached from the name.
    pub via: Via,
}

impl Entry {
    fn covers(&self, q: &str) -> bool {
        let under =
            q.len() > self.name.len() && q.starts_with(&self.name) && q.as_bytes()[self.name.len()] == b'.';
        match self.matching {
            Match::Exact => q == self.name,
            Match::Prefix => q == self.name || under,
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
    runtime_namespaces: Vec<Entry>,
    aliases: Vec<Alias>,
    /// Leaf name -> the standard-library object it names (`CodeType` -> `types.CodeType`).
    reexports: Vec<(String, String)>,
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
                calls_args: r.calls_args.clone(),
                constructs_args: r.constructs_args.clone(),
                defers_args: r.defers_args.clone(),
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
        let safe = expand(raw.safe, "built-in")?;
        // Allow entries are exact reviewed names: a pattern admits whatever a package re-exports.
        if let Some(e) = safe.iter().find(|e| e.matching != Match::Exact) {
            return Err(crate::PolicyError::Catalog(format!(
                "safe entry {} is a pattern; allow entries must be exact names",
                e.name
            )));
        }
        if let Some(e) = dangerous
            .iter()
            .chain(&safe)
            .find(|e| !e.calls_args.is_empty() && e.rule.is_some())
        {
            return Err(crate::PolicyError::Catalog(format!(
                "dangerous entry {} carries argument roles; only allow entries do",
                e.name
            )));
        }
        let mut aliases = Vec::new();
        for a in raw.alias {
            if a.reason.trim().is_empty() {
                return Err(crate::PolicyError::Catalog(format!(
                    "alias {:?} has no reason",
                    a.name
                )));
            }
            for name in a.name.into_iter().chain(a.names) {
                aliases.push(Alias {
                    name,
                    is: a.is.clone(),
                    matching: a.r#match,
                    reason: a.reason.clone(),
                });
            }
        }
        let mut reexports = Vec::new();
        for r in raw.reexport {
            if r.reason.trim().is_empty() {
                return Err(crate::PolicyError::Catalog(format!(
                    "re-export list for {} has no reason",
                    r.from
                )));
            }
            for leaf in r.leaves {
                reexports.push((leaf.clone(), format!("{}.{leaf}", r.from)));
            }
        }
        Ok(GlobalPolicy {
            dangerous,
            safe,
            ecosystems: expand(raw.ecosystem, "built-in")?
                .into_iter()
                .map(|e| e.name)
                .collect(),
            runtime_namespaces: expand(raw.runtime_namespace, "built-in")?,
            aliases,
            reexports,
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

    /// Every alias.
    pub fn aliases(&self) -> &[Alias] {
        &self.aliases
    }

    /// The safe entry of exactly this name, if any (argument roles of trampolines).
    pub fn safe_entry(&self, qualified: &str) -> Option<&Entry> {
        self.safe.iter().find(|e| e.name == qualified)
    }

    /// The public names a private path is (catalog aliases), applied once.
    fn alias_targets(&self, q: &str) -> Vec<String> {
        let mut out = Vec::new();
        for a in &self.aliases {
            match a.matching {
                Match::Exact if a.name == q => out.push(a.is.clone()),
                Match::Prefix
                    if q == a.name
                        || (q.starts_with(a.name.as_str())
                            && q.as_bytes().get(a.name.len()) == Some(&b'.')) =>
                {
                    out.push(format!("{}{}", a.is, &q[a.name.len()..]));
                }
                _ => {}
            }
        }
        out
    }

    /// Judges one fully qualified dotted name (`module.attr`). The most specific covering entry
    /// wins; on equal length a dangerous entry beats a safe one.
    pub fn judge(&self, qualified: &str) -> Judgement<'_> {
        if let Some(e) = self.runtime_namespaces.iter().find(|e| {
            qualified.starts_with(e.name.as_str()) && qualified.as_bytes().get(e.name.len()) == Some(&b'.')
        }) {
            return Judgement::Safe(e);
        }
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
        let r = self.resolve(module, name);
        (r.judgement, r.path)
    }

    /// The one judging function for an imported name (scan, explain and config targets all use
    /// it). A name is judged by what it is, wherever it is imported from:
    /// 1. the tails of an attribute walk (`pathlib.os.system` is `os.system`);
    /// 2. the public name of a private implementation path (`[[alias]]`);
    /// 3. for a name no allow entry names exactly, the standard-library object a library module
    ///    re-exports under the same leaf name (`[[reexport]]`: `datasets...CodeType`).
    ///
    /// A dangerous judgement on any of these wins; otherwise the name's own judgement stands.
    pub fn resolve(&self, module: &str, name: &str) -> Resolved<'_> {
        let full = format!("{module}.{name}");
        // An absurdly long attribute walk is judged whole (and reported as a walk); checking every
        // tail of it would be quadratic in its length.
        if name.contains('.') && name.split('.').count() <= MAX_WALK_PARTS {
            // The real target of an attribute walk is its tail: judge that first.
            let parts: Vec<&str> = full.split('.').collect();
            for i in 1..parts.len().saturating_sub(1) {
                let tail = parts[i..].join(".");
                if let j @ Judgement::Dangerous(_) = self.judge(&tail) {
                    return Resolved {
                        judgement: j,
                        path: tail,
                        via: Via::Attributes,
                    };
                }
                for target in self.alias_targets(&tail) {
                    if let j @ Judgement::Dangerous(_) = self.judge(&target) {
                        return Resolved {
                            judgement: j,
                            path: target,
                            via: Via::Alias,
                        };
                    }
                }
            }
        }
        for target in self.alias_targets(&full) {
            if let j @ Judgement::Dangerous(_) = self.judge(&target) {
                return Resolved {
                    judgement: j,
                    path: target,
                    via: Via::Alias,
                };
            }
        }
        let own = self.judge(&full);
        if matches!(own, Judgement::Unknown { .. }) {
            let leaf = full.rsplit('.').next().unwrap_or(&full);
            if let Some((_, target)) = self.reexports.iter().find(|(l, t)| l == leaf && *t != full)
                && let j @ Judgement::Dangerous(_) = self.judge(target)
            {
                return Resolved {
                    judgement: j,
                    path: target.clone(),
                    via: Via::Reexport,
                };
            }
        }
        if matches!(own, Judgement::Unknown { .. }) {
            // An unlisted private path of a safe public name is that name.
            for target in self.alias_targets(&full) {
                if let j @ Judgement::Safe(_) = self.judge(&target) {
                    return Resolved {
                        judgement: j,
                        path: target,
                        via: Via::Alias,
                    };
                }
            }
        }
        Resolved {
            judgement: own,
            path: full,
            via: Via::Itself,
        }
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
