//! `scan --deep` over arbitrary tensor bytes: the sampler, signatures, the low-bit test and the
//! value checks, for every float type, under a small budget (reads stay inside the budget and
//! the facts' offsets inside the data).
#![no_main]

use libfuzzer_sys::fuzz_target;
use modelward_formats::tensors::Float;
use modelward_formats::tensors::deep::{DeepLimits, Region, check_region};
use std::io::Cursor;

fuzz_target!(|data: &[u8]| {
    let limits = DeepLimits {
        per_file: 1 << 20,
        per_tensor: 64 << 10,
    };
    for dtype in [None, Some(Float::F32), Some(Float::F16), Some(Float::BF16), Some(Float::F64)] {
        let region = Region {
            name: "fuzz",
            dtype,
            begin: 0,
            end: data.len() as u64,
        };
        let mut spent = 0;
        for f in check_region(&mut Cursor::new(data), &region, &limits, &mut spent) {
            assert!(f.offset.is_none_or(|o| o <= data.len() as u64), "{f:?}");
        }
        assert!(spent <= limits.per_file && spent <= data.len() as u64);
    }
});
