//! Jinja chat templates: minijinja's lexer and parser (never rendering), the AST walk for
//! Python internals, and the token search used when the template does not parse.
#![no_main]

use libfuzzer_sys::fuzz_target;
use modelward_formats::template;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    for f in template::analyse(&text) {
        assert!(
            f.offset.is_none_or(|o| o as usize <= text.len()),
            "fact offset past the template: {f:?}"
        );
    }
    let _ = template::is_internal_name(&text);
});
