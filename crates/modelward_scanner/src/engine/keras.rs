//! Keras: HDF5 `.h5` models (the config in their attributes) and the `config.json` of a
//! Keras v3 archive (walked whole for Lambdas, foreign modules and gadget layers;
//! `TorchModuleWrapper` payloads go back to the engine as PyTorch files).

use super::{Engine, Hint};
use modelward_diagnostics::Location;
use modelward_formats::Format;
use modelward_formats::io::ReadSeek;
use modelward_graphs::keras;
use std::io::Cursor;

pub(super) fn hdf5(cx: &mut Engine<'_>, r: &mut dyn ReadSeek, len: u64, loc: &Location) -> Format {
    cx.facts(keras::check_h5_capped(r, len, cx.cap()), loc);
    Format::Hdf5
}

pub(super) fn config(cx: &mut Engine<'_>, text: &str, loc: &Location, depth: u32) {
    cx.facts(keras::check_config_capped(text, cx.cap()), loc);
    for (i, payload) in keras::torch_module_payloads(text).into_iter().enumerate() {
        let ploc = loc.member(format!("TorchModuleWrapper payload {}", i + 1));
        let n = payload.len() as u64;
        cx.seekable(&mut Cursor::new(payload), n, &ploc, depth + 1, Hint::default());
    }
}
