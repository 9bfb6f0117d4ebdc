//! ONNX models: custom-op domains, Python ops, external data that leaves the model's folder.

use super::Engine;
use modelward_diagnostics::Location;
use modelward_formats::Format;
use modelward_formats::io::ReadSeek;
use modelward_graphs::onnx;

pub(super) fn scan(cx: &mut Engine<'_>, r: &mut dyn ReadSeek, len: u64, loc: &Location) -> Format {
    match cx.protobuf(r, len, loc, Format::Onnx) {
        Ok(data) => {
            cx.facts(onnx::check_model_capped(&data, true, cx.cap()), loc);
            Format::Onnx
        }
        Err(f) => f,
    }
}
