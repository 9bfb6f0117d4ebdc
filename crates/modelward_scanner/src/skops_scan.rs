//! skops archives (issue 14): every name `schema.json` makes skops resolve is judged by the same
//! global-name policy as a pickle global. skops' own trusted defaults (builtins containers,
//! numpy arrays and ufuncs, scikit-learn estimators) are exact entries of that policy.

use modelward_diagnostics::Fact;
use modelward_formats::skops;
use modelward_policy::{Judgement, Policy};

/// Facts about one skops `schema.json` (offsets are into it).
pub(crate) fn facts(policy: &Policy, text: &str) -> Vec<Fact> {
    if !skops::looks_like_schema(text) {
        return Vec::new();
    }
    let refs = match skops::refs(text) {
        Ok(r) => r,
        Err(e) => {
            return vec![Fact::new(
                "MWD002",
                format!("the skops schema could not be read: {e}"),
            )];
        }
    };
    let mut out = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for r in refs {
        if !seen.insert((r.module.clone(), r.name.clone(), r.loader.clone())) {
            continue;
        }
        let q = format!("{}.{}", r.module, r.name);
        let resolved = policy.judge_global(&r.module, &r.name);
        let evidence = format!(
            "{{\"__module__\": {:?}, \"__class__\": {:?}, \"__loader__\": {:?}}}",
            r.module, r.name, r.loader
        );
        match resolved.judgement {
            Judgement::Dangerous(e) => {
                let via = if resolved.path != q {
                    format!(" ({}: {})", resolved.path, resolved.via.describe())
                } else {
                    String::new()
                };
                out.push(
                    Fact::new("SKP101", format!("skops {} {q}{via} ({})", r.role(), r.loader))
                        .at(r.offset)
                        .evidence(evidence)
                        .why(e.reason.clone()),
                );
            }
            Judgement::Unknown { .. } => out.push(
                Fact::new(
                    "SKP102",
                    format!(
                        "skops {} {q} ({}), a type on no reviewed list (skops calls it untrusted)",
                        r.role(),
                        r.loader
                    ),
                )
                .at(r.offset)
                .evidence(evidence),
            ),
            Judgement::Safe(_) => {}
        }
    }
    out
}
