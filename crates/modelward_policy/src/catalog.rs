//! The rule catalog (`catalog/rules.toml`), embedded and validated.

use serde::Deserialize;

pub use modelward_diagnostics::Rule;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RulesFile {
    rule: Vec<Rule>,
}

/// All rules, in catalog order.
#[derive(Debug, Clone)]
pub struct Catalog {
    rules: Vec<Rule>,
}

/// The embedded catalog text.
pub const RULES_TOML: &str = include_str!("../catalog/rules.toml");

impl Catalog {
    /// Parses and validates a catalog.
    pub fn parse(text: &str) -> Result<Catalog, crate::PolicyError> {
        let file: RulesFile = toml::from_str(text).map_err(|e| crate::PolicyError::Catalog(e.to_string()))?;
        let mut seen = std::collections::HashSet::new();
        for r in &file.rule {
            let family_ok = r.code.len() == 6
                && r.code[..3].chars().all(|c| c.is_ascii_uppercase())
                && r.code[3..].chars().all(|c| c.is_ascii_digit());
            if !family_ok {
                return Err(crate::PolicyError::Catalog(format!("bad rule code {:?}", r.code)));
            }
            if !seen.insert(r.code.clone()) {
                return Err(crate::PolicyError::Catalog(format!(
                    "duplicate rule code {}",
                    r.code
                )));
            }
            if r.name.is_empty() || r.summary.is_empty() || r.why.trim().is_empty() {
                return Err(crate::PolicyError::Catalog(format!(
                    "rule {} lacks name, summary or why",
                    r.code
                )));
            }
        }
        Ok(Catalog { rules: file.rule })
    }

    /// The built-in catalog.
    pub fn builtin() -> Catalog {
        // Validated by a unit test; a broken catalog never ships.
        Catalog::parse(RULES_TOML).unwrap_or_else(|e| panic!("built-in rule catalog is invalid: {e}"))
    }

    /// A rule by code.
    pub fn get(&self, code: &str) -> Option<&Rule> {
        self.rules.iter().find(|r| r.code == code)
    }

    /// Every rule.
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }
}
