//! GGUF: header, metadata table (every string and array, every length checked against the
//! file), tensor infos and the data offset; then each chat template found through the Jinja
//! analysis, as the engine does.
#![no_main]

use libfuzzer_sys::fuzz_target;
use modelward_formats::{gguf, template};
use std::io::Cursor;

fuzz_target!(|data: &[u8]| {
    let len = data.len() as u64;
    let _ = gguf::looks_like(data);
    let r = gguf::check(&mut Cursor::new(data), len);
    for (_, text, at) in &r.chat_templates {
        assert!(
            *at <= len,
            "template offset {at} past the end of a {len}-byte input"
        );
        let _ = template::analyse(text);
    }
    for f in &r.facts {
        assert!(
            f.offset.is_none_or(|o| o <= len),
            "fact offset past the end: {f:?}"
        );
    }
});
