//! The Python-literal parser used for `.npy` header dicts, on arbitrary text.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Some(lit) = modelward_formats::pylit::parse(&text) {
        let _ = lit.get("descr");
        let _ = lit.get("shape");
        let _ = format!("{lit:?}");
    }
});
