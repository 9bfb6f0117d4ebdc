//! ONNX models: custom-op domains, Python ops, external data that leaves the model's folder.

use super::Engine;
use modelward_diagnostics::Location;
use modelward_formats::Format;
use modelward_formats::io::ReadSeek;
use modelward_graphs::onnx;
use std::path::Path;

/// The graph only, tensor payloads seeked over; a file that does not walk cleanly is read
/// whole and decoded as before (same findings, same offsets). A model on disk also has its
/// external-data files checked: a symlink or a path out of the folder (issue 14).
pub(super) fn scan(cx: &mut Engine<'_>, r: &mut dyn ReadSeek, len: u64, loc: &Location) -> Format {
    let (facts, locations) = match onnx::check_model_seekable(r, len, true, cx.cap()) {
        Some(c) => (c.facts, c.external_locations),
        None => match cx.protobuf(r, len, loc, Format::Onnx) {
            Ok(data) => (
                onnx::check_model_capped(&data, true, cx.cap()),
                onnx::external_data_locations(&data),
            ),
            Err(f) => return f,
        },
    };
    cx.facts(facts, loc);
    let path = Path::new(&loc.path);
    if loc.members.is_empty() && !locations.is_empty() && path.is_file() {
        cx.facts(onnx::check_external_files(path, &locations), loc);
    }
    Format::Onnx
}
