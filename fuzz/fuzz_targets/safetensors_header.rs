//! safetensors: the 8-byte header length, the JSON header (duplicate keys, dtypes, shapes,
//! offsets that overlap, leave gaps or run past the file) and `__metadata__`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use modelward_formats::safetensors;
use std::io::Cursor;

fuzz_target!(|data: &[u8]| {
    let len = data.len() as u64;
    let _ = safetensors::looks_like(data, len);
    let r = safetensors::check(&mut Cursor::new(data), len);
    for f in &r.facts {
        let _ = f.message.len();
    }
});
