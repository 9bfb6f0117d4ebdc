//! Text by content: a JSON document (Hugging Face configs: remote code, chat templates, Hydra
//! targets), Python source (what `trust_remote_code` runs), or other text (YAML Python tags,
//! Hydra targets, Jinja templates).

use super::Engine;
use modelward_diagnostics::{Fact, Location};
use modelward_formats::{Format, hf, template};
use modelward_policy::Judgement;
use std::io::Read;

/// Largest text document analysed.
pub(super) const MAX_TEXT: usize = 64 << 20;

/// Python source: a few lines that only Python writes.
fn looks_like_python(text: &str) -> bool {
    let hits = text
        .lines()
        .take(400)
        .map(str::trim_start)
        .filter(|l| {
            l.starts_with("import ")
                || (l.starts_with("from ") && l.contains(" import "))
                || l.starts_with("def ")
                || l.starts_with("class ") && l.ends_with(':')
        })
        .count();
    // Markdown with Python code blocks is documentation, not a module.
    (hits >= 2 && !text.contains("```")) || text.starts_with("#!/usr/bin/env python")
}

pub(super) fn scan(cx: &mut Engine<'_>, r: &mut dyn Read, loc: &Location) -> Format {
    let mut data = Vec::new();
    if let Err(e) = r.take(MAX_TEXT as u64 + 1).read_to_end(&mut data) {
        cx.unreadable(loc, e);
        return Format::Text;
    }
    if data.len() > MAX_TEXT {
        data.truncate(MAX_TEXT);
        cx.fact(
            Fact::new(
                "MWD002",
                format!("only the first {} MiB of this text were checked", MAX_TEXT >> 20),
            ),
            loc,
        );
    }
    let text = String::from_utf8_lossy(&data);
    let trimmed = text.trim_start();
    let jinja_start = ["{%", "{{", "{#"].iter().any(|t| trimmed.starts_with(t));
    let (kind, report) = if (trimmed.starts_with('{') || trimmed.starts_with('[')) && !jinja_start {
        (Format::Json, hf::check_json_capped(&text, cx.cap()))
    } else if looks_like_python(&text) {
        (
            Format::Python,
            hf::HfReport {
                facts: hf::check_python_source_capped(&text, cx.cap()),
                targets: Vec::new(),
            },
        )
    } else {
        let mut report = hf::check_yaml_text_capped(&text, cx.cap());
        let templated = text.contains("{%") || (text.contains("{{") && text.contains("}}"));
        if templated {
            report.facts.extend(template::analyse_capped(&text, cx.cap()));
        }
        // A config that names targets to instantiate is model-related even when every target
        // is safe (plain text without findings is skipped, see `FileReport::finish`).
        let kind = if templated {
            Format::Jinja
        } else if !report.targets.is_empty() {
            Format::YamlConfig
        } else {
            Format::Text
        };
        (kind, report)
    };
    cx.facts(report.facts, loc);
    for (target, offset) in report.targets {
        config_target(cx, &target, offset, loc);
    }
    kind
}

/// A Hydra `_target_` (or similar) that a config loader instantiates: judged like a pickle
/// global.
fn config_target(cx: &mut Engine<'_>, target: &str, offset: u64, loc: &Location) {
    let name = target.replace(':', ".");
    let (module, attr) = name.rsplit_once('.').unwrap_or((name.as_str(), ""));
    let fact = match cx.policy().globals().judge_path(module, attr).0 {
        Judgement::Dangerous(e) => Some(
            Fact::new("CFG101", format!("the config instantiates {target}"))
                .why(e.reason.clone())
                .evidence(format!("_target_: {target}")),
        ),
        Judgement::Unknown { .. } => Some(
            Fact::new(
                "CFG102",
                format!("the config instantiates {target}, which is on no reviewed list"),
            )
            .evidence(format!("_target_: {target}")),
        ),
        Judgement::Safe(_) => None,
    };
    if let Some(f) = fact {
        cx.fact(f.at(offset), loc);
    }
}
