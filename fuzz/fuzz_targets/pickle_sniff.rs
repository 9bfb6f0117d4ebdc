//! The pickle sniffer, on every prefix length it is likely to be given.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = modelward_pickle::looks_like_pickle(data);
    // Callers pass heads of different sizes; none of them may panic.
    for n in [0usize, 1, 2, 3, 8, 64, 4096] {
        let _ = modelward_pickle::looks_like_pickle(&data[..n.min(data.len())]);
    }
});
