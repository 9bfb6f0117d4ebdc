//! Format knowledge for the containers that carry ML models: recognising them by content and
//! reading only what can hold code.
//!
//! - [`sniff`]: formats by their bytes, never by their names.
//! - [`zip`]: a tolerant reader that follows the central directory like PyTorch, keeps
//!   duplicates and hidden local entries, and reports every anomaly.
//! - [`torch`], [`npy`], [`joblib`]: the layouts of PyTorch, numpy and joblib files.
//! - [`compress`]: decompressors; [`io`]: windows, counters and bounded readers.
//! - [`safetensors`], [`gguf`]: header validation (GGUF also yields its chat templates).
//! - [`template`]: Jinja chat templates as an AST (SSTI gadgets); [`hf`]: Hugging Face repo
//!   files (`auto_map` remote code, configs, YAML tags, Hydra targets); [`json`]: a JSON reader
//!   that keeps offsets and duplicate keys.
//!
//! Parsers here emit [`modelward_diagnostics::Fact`]s; they do not judge severity or print.
#![forbid(unsafe_code)]

pub mod archive;
pub mod compress;
pub mod gguf;
pub mod graph_sniff;
pub mod hf;
pub mod io;
pub mod joblib;
pub mod json;
pub mod member_path;
pub mod npy;
pub mod pylit;
pub mod safetensors;
pub mod skops;
pub mod sniff;
pub mod template;
pub mod tensors;
pub mod torch;
pub mod zip;

pub use sniff::{Format, SNIFF_LEN, sniff, sniff_len};
