//! Model-graph formats that carry code or paths: Keras (`.keras`, `.h5`), TensorFlow SavedModel
//! and ONNX.
//!
//! Every reader here takes bytes and returns [`modelward_diagnostics::Fact`]s with the rule codes
//! `KRS1xx` (Keras), `TFM1xx` (TensorFlow), `ONX1xx` (ONNX) and `MWD002` (part of the input not
//! scanned because of a budget). Nothing is executed, nothing is loaded by its real library.
//!
//! - [`marshal`]: a tolerant reader of CPython `marshal` code objects (Keras Lambda bytecode).
//! - [`keras`]: Keras configs (`config.json`, HDF5 `model_config`), the `.keras` zip layout.
//! - [`tensorflow`]: `saved_model.pb` ops and functions, `keras_metadata.pb`.
//! - [`onnx`]: node domains, subgraphs, local functions, external data, tensor sizes.
#![forbid(unsafe_code)]

pub mod proto;
mod wire;

pub mod keras;
pub mod marshal;
pub mod onnx;
pub mod tensorflow;
