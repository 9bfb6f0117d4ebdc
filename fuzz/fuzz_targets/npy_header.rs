//! numpy `.npy` headers: preamble, header length, the dict literal, dtype and shape.
#![no_main]

use libfuzzer_sys::fuzz_target;
use modelward_formats::npy;

fuzz_target!(|data: &[u8]| {
    let _ = npy::preamble_len(data);
    let _ = npy::itemsize(&String::from_utf8_lossy(data));
    match npy::parse(data) {
        Ok(h) => {
            assert!(
                h.data_offset <= data.len() as u64,
                "data offset past the header bytes given"
            );
            let _ = npy::itemsize(&h.descr);
        }
        Err(f) => {
            let _ = format!("{f:?}");
        }
    }
});
