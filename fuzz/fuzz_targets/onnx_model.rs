//! ONNX: the protobuf model (size-estimated before decoding), custom domains, Python ops,
//! external-data locations, tensor sizes and loops.
#![no_main]

use libfuzzer_sys::fuzz_target;
use modelward_graphs::onnx;

fuzz_target!(|data: &[u8]| {
    let _ = onnx::looks_like_onnx(data, data.len() as u64);
    let _ = onnx::external_data_locations(data);
    for known in [false, true] {
        let _ = onnx::check_model(data, known);
    }
});
