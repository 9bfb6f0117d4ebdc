//! ONNX models: custom-op domains, Python ops, external data that leaves the model's folder.

use super::Engine;
use modelward_diagnostics::Location;
use modelward_formats::Format;
use modelward_formats::io::ReadSeek;
use modelward_graphs::onnx;

/// The graph only, tensor payloads seeked over; a file that does not walk cleanly is read
/// whole and decoded as before (same findings, same offsets).
pub(super) fn scan(cx: &mut Engine<'_>, r: &mut dyn ReadSeek, len: u64, loc: &Location) -> Format {
    if let Some(facts) = onnx::check_model_seekable(r, len, true, cx.cap()) {
        cx.facts(facts, loc);
        return Format::Onnx;
    }
    match cx.protobuf(r, len, loc, Format::Onnx) {
        Ok(data) => {
            cx.facts(onnx::check_model_capped(&data, true, cx.cap()), loc);
            Format::Onnx
        }
        Err(f) => f,
    }
}
