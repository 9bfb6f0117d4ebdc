//! Keras: the `config.json` walk (Lambdas, foreign modules, gadget layers, TorchModuleWrapper
//! payloads) on the input as text, and the HDF5 reader on the input as a `.h5` file.
#![no_main]

use libfuzzer_sys::fuzz_target;
use modelward_graphs::keras;
use std::io::Cursor;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let _ = keras::check_config(&text);
    let _ = keras::torch_module_payloads(&text);
    let _ = keras::looks_like_hdf5(data);
    let _ = keras::check_h5(&mut Cursor::new(data), data.len() as u64);
});
