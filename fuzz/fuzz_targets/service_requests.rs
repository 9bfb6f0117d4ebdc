//! The scan service's network-facing parsers: the Hugging Face webhook payload and the
//! `POST /v1/scans` JSON body (`{"source": ...}`, which also runs the remote target parser),
//! and the API token header parser. Each must answer Ok or Err, never panic, whatever arrives.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = modelward_service::webhook::parse(data);
    let _ = modelward_service::api::parse_source_request(data);
    if let Ok(tokens) = modelward_service::auth::Tokens::parse("admin:0123456789abcdef,ro:fedcba9876543210") {
        let _ = tokens.role(Some(data));
    }
    if let Ok(s) = std::str::from_utf8(data) {
        let _ = modelward_service::auth::Tokens::parse(s);
    }
});
