//! TensorFlow protobufs: SavedModel (`saved_model.pb`: ops, functions), bare GraphDefs and
//! `keras_metadata.pb`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use modelward_graphs::tensorflow;

fuzz_target!(|data: &[u8]| {
    let _ = tensorflow::looks_like_saved_model(data);
    let _ = tensorflow::check_saved_model(data);
    let _ = tensorflow::check_graph_def(data);
    let _ = tensorflow::check_keras_metadata(data);
});
