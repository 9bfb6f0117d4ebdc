//! The modelward policy: the rule catalog, the lists of safe and dangerous globals, user
//! configuration, and the analysis that turns what parsers saw ([`Fact`]s, pickle traces) into
//! [`Finding`]s with severities.
//!
//! Policy is data: `catalog/rules.toml` and `catalog/globals.toml` are embedded, validated by
//! tests, and carry a reason for every entry.
#![forbid(unsafe_code)]

pub mod catalog;
pub mod chains;
pub mod config;
pub mod globals;
pub mod pickle;

pub use catalog::{Catalog, Rule};
pub use chains::Chains;
pub use config::{AllowGlobal, Config};
pub use globals::{Alias, Entry, GlobalPolicy, Judgement, Match, Resolved, Via};
pub use pickle::PickleContext;

use modelward_diagnostics::{Fact, Finding, Location, Severity};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};

/// Errors in the catalog or in user configuration.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PolicyError {
    /// The embedded catalog is broken (caught by tests before release).
    #[error("rule catalog: {0}")]
    Catalog(String),
    /// A configuration file is wrong.
    #[error("{path}{}: {message}", line.map(|l| format!(":{l}")).unwrap_or_default())]
    Config {
        /// The file.
        path: String,
        /// The line, when known.
        line: Option<usize>,
        /// What is wrong.
        message: String,
    },
    /// A rule code in configuration that the catalog does not have.
    #[error("{path}: unknown rule code or prefix {code:?}")]
    UnknownRule {
        /// The file.
        path: String,
        /// The code.
        code: String,
    },
}

/// Rule codes that dangerous-global entries may name (facts carry `&'static str` codes).
const GLOBAL_RULES: [&str; 7] = [
    "PKL101", "PKL102", "PKL103", "PKL104", "PKL105", "PKL106", "PKL107",
];

pub(crate) fn intern_rule(code: &str) -> &'static str {
    GLOBAL_RULES
        .iter()
        .copied()
        .find(|c| *c == code)
        .unwrap_or("PKL101")
}

/// Rule codes chain entries may name.
const CHAIN_RULES: [&str; 3] = ["CHN101", "CHN102", "CHN103"];

pub(crate) fn intern_chain(code: &str) -> &'static str {
    CHAIN_RULES
        .iter()
        .copied()
        .find(|c| *c == code)
        .unwrap_or("CHN101")
}

fn chains() -> &'static Chains {
    static C: std::sync::OnceLock<Chains> = std::sync::OnceLock::new();
    C.get_or_init(Chains::builtin)
}

/// The compiled policy: shared by every scanning thread.
#[derive(Debug)]
pub struct Policy {
    catalog: Catalog,
    globals: GlobalPolicy,
    select: Vec<String>,
    ignore: Vec<String>,
    overrides: BTreeMap<String, Severity>,
    /// Hits per user allow entry (index into `user_allows`).
    allow_hits: Vec<AtomicU64>,
    user_allows: Vec<AllowGlobal>,
}

impl Policy {
    /// The built-in policy.
    pub fn builtin() -> Policy {
        Policy {
            catalog: Catalog::builtin(),
            globals: GlobalPolicy::builtin(),
            select: Vec::new(),
            ignore: Vec::new(),
            overrides: BTreeMap::new(),
            allow_hits: Vec::new(),
            user_allows: Vec::new(),
        }
    }

    /// The built-in policy with a user configuration applied.
    pub fn with_config(cfg: &Config) -> Result<Policy, PolicyError> {
        let mut p = Policy::builtin();
        let path = cfg
            .source
            .as_ref()
            .map(|s| s.display().to_string())
            .unwrap_or_else(|| "configuration".into());
        for code in cfg
            .select
            .iter()
            .chain(&cfg.ignore)
            .chain(cfg.severity_overrides.keys())
        {
            if !p
                .catalog
                .rules()
                .iter()
                .any(|r| r.code.starts_with(code.as_str()))
            {
                return Err(PolicyError::UnknownRule {
                    path: path.clone(),
                    code: code.clone(),
                });
            }
        }
        p.select = cfg.select.clone();
        p.ignore = cfg.ignore.clone();
        p.overrides = cfg.severity_overrides.clone();
        for a in &cfg.allow_globals {
            p.globals.allow(Entry::plain(
                a.name.clone(),
                a.r#match,
                None,
                a.reason.clone(),
                path.clone(),
            ));
            p.allow_hits.push(AtomicU64::new(0));
            p.user_allows.push(a.clone());
        }
        Ok(p)
    }

    /// A version of this policy for caches of verdicts: a hash (FNV-1a, 64 bits) of the built-in
    /// catalog and globals lists as embedded and of the user configuration applied, so a catalog
    /// edit or a different configuration gives another value. Stable across runs and builds of
    /// the same sources; not a security hash.
    pub fn fingerprint(&self) -> String {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        let mut feed = |bytes: &[u8]| {
            for b in bytes.iter().chain(&[0xff]) {
                h ^= u64::from(*b);
                h = h.wrapping_mul(0x0000_0100_0000_01b3);
            }
        };
        feed(catalog::RULES_TOML.as_bytes());
        feed(globals::GLOBALS_TOML.as_bytes());
        feed(format!("{:?}{:?}{:?}", self.select, self.ignore, self.overrides).as_bytes());
        for a in &self.user_allows {
            feed(format!("{a:?}").as_bytes());
        }
        format!("{h:016x}")
    }

    /// The rule catalog.
    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    /// The global-name lists.
    pub fn globals(&self) -> &GlobalPolicy {
        &self.globals
    }

    /// The one judging function for an imported name, used by `scan` (through
    /// [`Policy::pickle_facts`]), `explain` and config targets alike.
    pub fn judge_global(&self, module: &str, name: &str) -> Resolved<'_> {
        self.globals.resolve(module, name)
    }

    /// Whether findings of this rule are reported.
    pub fn enabled(&self, code: &str) -> bool {
        let selected = self.select.is_empty() || self.select.iter().any(|s| code.starts_with(s.as_str()));
        selected && !self.ignore.iter().any(|s| code.starts_with(s.as_str()))
    }

    /// A finding for a fact at a location, or `None` when the rule is not enabled.
    pub fn finding(&self, fact: Fact, base: &Location) -> Option<Finding> {
        if !self.enabled(fact.rule) {
            return None;
        }
        let rule = self.catalog.get(fact.rule);
        let severity = self
            .overrides
            .get(fact.rule)
            .copied()
            .or(fact.severity)
            .or(rule.map(|r| r.severity))
            .unwrap_or(Severity::Medium);
        Some(Finding {
            rule: fact.rule.to_owned(),
            name: rule.map(|r| r.name.clone()).unwrap_or_default(),
            severity,
            confidence: fact
                .confidence
                .or(rule.map(|r| r.confidence))
                .unwrap_or(modelward_diagnostics::Confidence::Medium),
            message: fact.message,
            location: base.at(fact.offset),
            evidence: fact.evidence,
            why: fact
                .why
                .or_else(|| rule.map(|r| r.summary.clone()))
                .unwrap_or_default(),
            source: modelward_diagnostics::Source::Static,
        })
    }

    /// Adds the chain findings (`catalog/chains.toml`) of one file's findings: steps that
    /// together form remote code execution are reported as the chain, naming its steps.
    pub fn add_chain_findings(&self, findings: &mut Vec<Finding>) {
        let chains = chains();
        let mut extra = Vec::new();
        for (chain, hits) in chains.evaluate(findings) {
            let steps: Vec<String> = hits
                .iter()
                .map(|(step, f)| format!("{step}: {} {} ({})", f.rule, f.message, f.location))
                .collect();
            let Some(first) = hits.first() else { continue };
            let fact = Fact::new(
                crate::intern_chain(&chain.code),
                format!("{} steps form a chain: {}", hits.len(), steps.join("; ")),
            )
            .why(chain.reason.clone());
            let base = Location::file(first.1.location.path.clone());
            if let Some(f) = self.finding(fact, &base) {
                extra.push(f);
            }
        }
        findings.extend(extra);
    }

    fn note_allow_hit(&self, entry: &Entry) {
        if entry.source == "built-in" {
            return;
        }
        if let Some(i) = self.user_allows.iter().position(|a| a.name == entry.name)
            && let Some(h) = self.allow_hits.get(i)
        {
            h.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// User allow entries that matched nothing so far.
    pub fn unused_allows(&self) -> Vec<&AllowGlobal> {
        self.user_allows
            .iter()
            .zip(&self.allow_hits)
            .filter(|(_, h)| h.load(Ordering::Relaxed) == 0)
            .map(|(a, _)| a)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_builtin_catalog_and_lists_are_valid_and_consistent() {
        let p = Policy::builtin();
        for e in p.globals().dangerous() {
            let code = e.rule.as_deref().unwrap_or_default();
            assert!(
                GLOBAL_RULES.contains(&code),
                "{} names rule {code} that facts cannot carry",
                e.name
            );
            assert!(
                p.catalog().get(code).is_some(),
                "{} names unknown rule {code}",
                e.name
            );
        }
        assert!(p.catalog().rules().len() >= 30);
        for c in Chains::builtin().chains() {
            assert!(CHAIN_RULES.contains(&c.code.as_str()), "{}", c.code);
            assert!(
                p.catalog().get(&c.code).is_some(),
                "chain rule {} not in rules.toml",
                c.code
            );
        }
    }

    fn judge(q: &str) -> String {
        let p = Policy::builtin();
        let (module, name) = q.split_once(':').unwrap_or((q, ""));
        match p.globals().judge_path(module, name).0 {
            Judgement::Dangerous(e) => format!("dangerous {}", e.rule.clone().unwrap_or_default()),
            Judgement::Safe(_) => "safe".into(),
            Judgement::Unknown { ecosystem: Some(e) } => format!("unknown in {e}"),
            Judgement::Unknown { ecosystem: None } => "unknown".into(),
        }
    }

    #[test]
    fn submodules_aliases_and_tails_of_denied_modules_are_dangerous() {
        assert_eq!(judge("os:system"), "dangerous PKL102");
        assert_eq!(judge("posix:system"), "dangerous PKL102");
        assert_eq!(
            judge("asyncio.unix_events:_UnixSubprocessTransport._start"),
            "dangerous PKL102"
        );
        assert_eq!(judge("_operator:attrgetter"), "dangerous PKL103");
        assert_eq!(judge("pathlib:os.system"), "dangerous PKL102");
        assert_eq!(judge("builtins:eval.__call__"), "dangerous PKL101");
        assert_eq!(judge("torch.serialization:load"), "dangerous PKL104");
        assert_eq!(judge("torch.storage:_load_from_bytes"), "dangerous PKL104");
    }

    #[test]
    fn the_most_specific_entry_wins() {
        assert_eq!(judge("pathlib:PosixPath"), "safe");
        assert_eq!(judge("pathlib:Path.write_text"), "dangerous PKL105");
        assert_eq!(judge("collections:OrderedDict"), "safe");
        assert_eq!(judge("torch._utils:_rebuild_tensor_v2"), "safe");
        assert_eq!(judge("torch.nn.modules.linear:Linear"), "safe");
        assert_eq!(judge("torch.nn.modules.linear:helper_fn"), "unknown in torch");
        assert_eq!(judge("sklearn.linear_model._base:LinearRegression"), "safe");
        assert_eq!(judge("mylib.models:CustomNet"), "unknown");
    }

    #[test]
    fn user_allow_entries_make_names_safe_but_never_dangerous_ones() {
        let cfg = Config {
            allow_globals: vec![
                AllowGlobal {
                    name: "mylib.models.CustomNet".into(),
                    r#match: Match::Exact,
                    reason: "ours".into(),
                },
                AllowGlobal {
                    name: "mylib.unused".into(),
                    r#match: Match::Exact,
                    reason: "stale".into(),
                },
            ],
            ..Config::default()
        };
        let p = Policy::with_config(&cfg).unwrap();
        assert!(matches!(
            p.globals().judge("mylib.models.CustomNet"),
            Judgement::Safe(_)
        ));
        assert!(matches!(p.globals().judge("os.system"), Judgement::Dangerous(_)));
    }

    #[test]
    fn config_errors_name_file_and_line() {
        let text = "fail-on = \"high\"\nselect = [\"PKL\"]\nbogus = 1\n";
        let err = Config::parse(text, std::path::Path::new("modelward.toml"), false).unwrap_err();
        let msg = err.to_string();
        assert!(msg.starts_with("modelward.toml:3:"), "{msg}");
        let text = "[[allow-globals]]\nname = \"x.Y\"\nreason = \"\"\n";
        let err = Config::parse(text, std::path::Path::new("modelward.toml"), false).unwrap_err();
        assert!(err.to_string().contains("needs a reason"), "{err}");
    }

    #[test]
    fn select_ignore_and_overrides_apply() {
        let cfg = Config {
            ignore: vec!["PKL5".into()],
            severity_overrides: [("PKL202".to_owned(), Severity::Low)].into_iter().collect(),
            ..Config::default()
        };
        let p = Policy::with_config(&cfg).unwrap();
        let loc = Location::file("f");
        assert!(p.finding(Fact::new("PKL501", "x"), &loc).is_none());
        assert_eq!(
            p.finding(Fact::new("PKL202", "x"), &loc).unwrap().severity,
            Severity::Low
        );
        assert_eq!(
            p.finding(Fact::new("PKL101", "x"), &loc).unwrap().severity,
            Severity::Critical
        );
        let bad = Config {
            select: vec!["XYZ".into()],
            ..Config::default()
        };
        assert!(Policy::with_config(&bad).is_err());
    }
}
