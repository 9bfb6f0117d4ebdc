//! User configuration: `modelward.toml`, or `[tool.modelward]` in `pyproject.toml`.
//!
//! ```toml
//! fail-on = "high"
//! select = ["PKL", "ARC"]          # rule codes or prefixes; default: all
//! ignore = ["PKL502"]
//! [severity-overrides]
//! PKL202 = "low"
//! [[allow-globals]]
//! name = "mylib.models.CustomNet"
//! reason = "our own model class, reviewed in PR #12"
//! [limits]
//! max-file-size = 10737418240
//! ```

use modelward_diagnostics::Severity;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// A global the team allows, with the reason it is safe.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct AllowGlobal {
    /// Dotted name.
    pub name: String,
    /// `exact` (default) or `prefix` (a team's own package; the built-in allow list is exact only).
    #[serde(default = "exact")]
    pub r#match: crate::globals::Match,
    /// Mandatory: why this is safe.
    pub reason: String,
}

fn exact() -> crate::globals::Match {
    crate::globals::Match::Exact
}

/// Budgets a user may tighten or loosen.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq, Default)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct LimitsConfig {
    /// Largest file scanned (bytes).
    pub max_file_size: Option<u64>,
    /// Deepest container nesting.
    pub max_depth: Option<u32>,
    /// Most members read per archive.
    pub max_members: Option<u64>,
    /// Most bytes decompressed per member.
    pub max_decompressed: Option<u64>,
    /// Largest decompression ratio tolerated.
    pub max_ratio: Option<u64>,
    /// Most pickle instructions per pickle.
    pub max_pickle_ops: Option<u64>,
    /// Findings of one rule listed per file (the rest are counted in one more finding).
    pub max_findings_per_rule: Option<usize>,
}

/// The configuration file's content.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq, Default)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Config {
    /// Lowest severity that makes the exit code 1.
    pub fail_on: Option<Severity>,
    /// Rule codes or prefixes to report (default: all).
    #[serde(default)]
    pub select: Vec<String>,
    /// Rule codes or prefixes never to report.
    #[serde(default)]
    pub ignore: Vec<String>,
    /// Per-rule severity.
    #[serde(default)]
    pub severity_overrides: BTreeMap<String, Severity>,
    /// Extra safe globals.
    #[serde(default)]
    pub allow_globals: Vec<AllowGlobal>,
    /// Budgets.
    #[serde(default)]
    pub limits: LimitsConfig,
    /// Where it was read from.
    #[serde(skip)]
    pub source: Option<PathBuf>,
}

#[derive(Deserialize)]
struct Pyproject {
    tool: Option<PyTool>,
}

#[derive(Deserialize)]
struct PyTool {
    modelward: Option<toml::Value>,
}

impl Config {
    /// Parses configuration text; `pyproject` says whether it is a `pyproject.toml` (then only
    /// `[tool.modelward]` is read). Errors name the file and line.
    pub fn parse(text: &str, path: &Path, pyproject: bool) -> Result<Option<Config>, crate::PolicyError> {
        let err = |e: toml::de::Error| {
            let line = e
                .span()
                .map(|s| text[..s.start.min(text.len())].matches('\n').count() + 1);
            crate::PolicyError::Config {
                path: path.display().to_string(),
                line,
                message: e.message().to_owned(),
            }
        };
        let mut cfg = if pyproject {
            let p: Pyproject = toml::from_str(text).map_err(err)?;
            let Some(v) = p.tool.and_then(|t| t.modelward) else {
                return Ok(None);
            };
            // Re-parse the table from the original text so errors keep their line numbers.
            let table = toml::to_string(&v).unwrap_or_default();
            match toml::from_str::<Config>(&table) {
                Ok(c) => c,
                Err(e) => {
                    let line = text
                        .lines()
                        .position(|l| l.trim() == "[tool.modelward]")
                        .map(|n| n + 1);
                    return Err(crate::PolicyError::Config {
                        path: path.display().to_string(),
                        line,
                        message: format!("in [tool.modelward]: {}", e.message()),
                    });
                }
            }
        } else {
            toml::from_str::<Config>(text).map_err(err)?
        };
        for a in &cfg.allow_globals {
            if a.reason.trim().is_empty() {
                let line = text
                    .lines()
                    .position(|l| l.contains(&format!("\"{}\"", a.name)))
                    .map(|n| n + 1);
                return Err(crate::PolicyError::Config {
                    path: path.display().to_string(),
                    line,
                    message: format!("allow-globals entry {:?} needs a reason", a.name),
                });
            }
        }
        cfg.source = Some(path.to_path_buf());
        Ok(Some(cfg))
    }

    /// Reads a configuration file (`pyproject.toml` by name, anything else as `modelward.toml`).
    pub fn load(path: &Path) -> Result<Option<Config>, crate::PolicyError> {
        let text = std::fs::read_to_string(path).map_err(|e| crate::PolicyError::Config {
            path: path.display().to_string(),
            line: None,
            message: e.to_string(),
        })?;
        let pyproject = path.file_name().is_some_and(|n| n == "pyproject.toml");
        Config::parse(&text, path, pyproject)
    }

    /// Finds the configuration that applies to `start`: `modelward.toml`, then
    /// `pyproject.toml` with a `[tool.modelward]` table, in `start` and each parent.
    pub fn discover(start: &Path) -> Result<Option<Config>, crate::PolicyError> {
        let abs = std::fs::canonicalize(start).unwrap_or_else(|_| start.to_path_buf());
        let mut dir = if abs.is_dir() {
            Some(abs.as_path())
        } else {
            abs.parent()
        };
        while let Some(d) = dir {
            let own = d.join("modelward.toml");
            if own.is_file() {
                return Config::load(&own);
            }
            let py = d.join("pyproject.toml");
            if py.is_file()
                && let Some(c) = Config::load(&py)?
            {
                return Ok(Some(c));
            }
            dir = d.parent();
        }
        Ok(None)
    }
}
