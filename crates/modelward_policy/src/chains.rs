//! Evidence adds up (`catalog/chains.toml`): findings that together form remote code execution
//! are reported as the chain, at the chain rule's severity, naming the findings that form it.

use modelward_diagnostics::{Finding, Severity};
use serde::Deserialize;

/// The embedded chain catalog.
pub const CHAINS_TOML: &str = include_str!("../catalog/chains.toml");

/// One step of a chain.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Step {
    /// Its name (chains refer to it).
    pub name: String,
    /// Rule codes a matching finding has (any; empty = any rule).
    #[serde(default)]
    pub rules: Vec<String>,
    /// Text a matching finding's message or evidence contains (any; empty = anything).
    #[serde(default)]
    pub contains: Vec<String>,
    /// Text a matching finding's message must also contain (all of them).
    #[serde(default)]
    pub requires: Vec<String>,
    /// Why it is a step.
    pub reason: String,
}

/// A chain: steps that together are worse than any of them.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Chain {
    /// The rule it reports under.
    pub code: String,
    /// Step names, in the order they happen.
    pub steps: Vec<String>,
    /// Why the steps together are that bad.
    pub reason: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ChainsFile {
    step: Vec<Step>,
    chain: Vec<Chain>,
}

/// The chains and their steps.
#[derive(Debug, Clone)]
pub struct Chains {
    steps: Vec<Step>,
    chains: Vec<Chain>,
}

impl Chains {
    /// Parses and validates a chain catalog.
    pub fn parse(text: &str) -> Result<Chains, crate::PolicyError> {
        let f: ChainsFile = toml::from_str(text).map_err(|e| crate::PolicyError::Catalog(e.to_string()))?;
        for c in &f.chain {
            if c.steps.len() < 2 || c.reason.trim().is_empty() {
                return Err(crate::PolicyError::Catalog(format!(
                    "chain {} needs two steps and a reason",
                    c.code
                )));
            }
            if let Some(s) = c.steps.iter().find(|s| !f.step.iter().any(|t| &t.name == *s)) {
                return Err(crate::PolicyError::Catalog(format!(
                    "chain {} names unknown step {s}",
                    c.code
                )));
            }
        }
        Ok(Chains {
            steps: f.step,
            chains: f.chain,
        })
    }

    /// The built-in chains.
    pub fn builtin() -> Chains {
        Chains::parse(CHAINS_TOML).unwrap_or_else(|e| panic!("built-in chain catalog is invalid: {e}"))
    }

    /// Every chain.
    pub fn chains(&self) -> &[Chain] {
        &self.chains
    }

    fn matches(step: &Step, f: &Finding) -> bool {
        if f.severity == Severity::Info || f.rule.starts_with("CHN") {
            return false;
        }
        if !step.rules.is_empty() && !step.rules.contains(&f.rule) {
            return false;
        }
        if !step.requires.iter().all(|r| f.message.contains(r.as_str())) {
            return false;
        }
        if step.contains.is_empty() {
            return true;
        }
        let text = format!("{} {}", f.message, f.evidence.as_deref().unwrap_or("")).to_lowercase();
        step.contains.iter().any(|c| text.contains(&c.to_lowercase()))
    }

    /// For each chain whose every step a finding matches: (chain, the finding matched per step).
    pub fn evaluate<'f>(&self, findings: &'f [Finding]) -> Vec<(&Chain, Vec<(&str, &'f Finding)>)> {
        let mut out = Vec::new();
        for c in &self.chains {
            let mut hits = Vec::new();
            for name in &c.steps {
                let Some(step) = self.steps.iter().find(|s| &s.name == name) else {
                    break;
                };
                match findings.iter().find(|f| Self::matches(step, f)) {
                    Some(f) => hits.push((step.name.as_str(), f)),
                    None => break,
                }
            }
            if hits.len() == c.steps.len() {
                out.push((c, hits));
            }
        }
        out
    }
}
