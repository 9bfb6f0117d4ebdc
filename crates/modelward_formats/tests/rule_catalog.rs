//! Every SFT/GGF/TPL/HFR rule code the safetensors, GGUF, template and Hugging Face modules emit
//! is in the catalog, and every catalog rule of those families is emitted somewhere.

use std::collections::BTreeSet;

const SOURCES: &[&str] = &[
    include_str!("../src/safetensors.rs"),
    include_str!("../src/gguf.rs"),
    include_str!("../src/template.rs"),
    include_str!("../src/hf.rs"),
];
const FAMILIES: &[&str] = &["SFT", "GGF", "TPL", "HFR"];

fn emitted() -> BTreeSet<String> {
    let mut codes = BTreeSet::new();
    for src in SOURCES {
        for (i, _) in src.match_indices('"') {
            let Some(code) = src.get(i + 1..i + 7) else {
                continue;
            };
            if src[i + 7..].starts_with('"')
                && FAMILIES.contains(&&code[..3])
                && code[3..].bytes().all(|b| b.is_ascii_digit())
            {
                codes.insert(code.to_owned());
            }
        }
    }
    codes
}

#[test]
fn emitted_codes_and_catalog_agree() {
    let catalog = modelward_policy::Catalog::builtin();
    let listed: BTreeSet<String> = catalog
        .rules()
        .iter()
        .map(|r| r.code.clone())
        .filter(|c| FAMILIES.contains(&&c[..3]))
        .collect();
    let emitted = emitted();
    assert!(emitted.len() >= 30, "{emitted:?}");
    let missing: Vec<_> = emitted.difference(&listed).collect();
    let unused: Vec<_> = listed.difference(&emitted).collect();
    assert!(missing.is_empty(), "emitted but not in the catalog: {missing:?}");
    assert!(unused.is_empty(), "in the catalog but never emitted: {unused:?}");
}
