//! CPython marshal data (Keras Lambda bytecode): the tolerant code-object reader for 3.7-3.13.
#![no_main]

use libfuzzer_sys::fuzz_target;
use modelward_graphs::marshal;

fuzz_target!(|data: &[u8]| {
    let _ = marshal::summarize(data);
});
