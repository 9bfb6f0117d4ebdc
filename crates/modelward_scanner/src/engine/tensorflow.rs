//! TensorFlow: SavedModel protobufs (ops that touch files, run code or the network) and
//! Keras `keras_metadata.pb` (the Keras config inside).

use super::Engine;
use modelward_diagnostics::Location;
use modelward_formats::Format;
use modelward_formats::io::ReadSeek;
use modelward_graphs::tensorflow;

pub(super) fn saved_model(cx: &mut Engine<'_>, r: &mut dyn ReadSeek, len: u64, loc: &Location) -> Format {
    match cx.protobuf(r, len, loc, Format::Protobuf) {
        Ok(data) => {
            cx.facts(tensorflow::check_saved_model_capped(&data, cx.cap()), loc);
            Format::SavedModel
        }
        Err(f) => f,
    }
}

/// `None` when the protobuf holds nothing a Keras config check reports: then it is not taken
/// for a Keras metadata file (the sniff only saw `"class_name"` somewhere).
pub(super) fn keras_metadata(
    cx: &mut Engine<'_>,
    r: &mut dyn ReadSeek,
    len: u64,
    loc: &Location,
) -> Option<Format> {
    match cx.protobuf(r, len, loc, Format::Protobuf) {
        Ok(data) => {
            let facts = tensorflow::check_keras_metadata_capped(&data, cx.cap());
            if facts.is_empty() {
                return None;
            }
            cx.facts(facts, loc);
            Some(Format::KerasMetadata)
        }
        Err(f) => Some(f),
    }
}
