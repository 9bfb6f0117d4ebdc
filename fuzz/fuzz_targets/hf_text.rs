//! Hugging Face repository text: our offset-keeping JSON reader (plain and Python flavours),
//! the config checks (`auto_map`, remote code, chat templates, Hydra targets), YAML tags and
//! the `trust_remote_code` Python source checks.
#![no_main]

use libfuzzer_sys::fuzz_target;
use modelward_formats::{hf, json};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    for python in [false, true] {
        let options = json::Options {
            max_depth: 128,
            python,
            max_values: 100_000,
        };
        let _ = json::parse(&text, options);
    }
    let _ = hf::check_json(&text);
    let _ = hf::check_yaml_text(&text);
    let _ = hf::check_python_source(&text);
});
