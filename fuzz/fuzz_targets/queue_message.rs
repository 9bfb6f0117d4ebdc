//! The NATS queue's message parsers: a job document as a worker pulls it and a result document
//! as the service consumes it (`modelward_service::job::parse_job_message` /
//! `parse_result_message`). Anyone who can publish on the subjects can send these bytes; each
//! must answer Ok or Err, never panic, and an accepted upload's sha256 is never a path.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(spec) = modelward_service::job::parse_job_message(data) {
        if let modelward_service::job::JobSource::Upload { sha256, .. } = &spec.source {
            assert!(sha256.len() == 64 && sha256.bytes().all(|b| b.is_ascii_hexdigit()));
        }
        // What a worker accepts, the dispatcher would publish unchanged.
        let again = serde_json::to_vec(&spec).unwrap();
        assert_eq!(modelward_service::job::parse_job_message(&again).unwrap(), spec);
    }
    let _ = modelward_service::job::parse_result_message(data);
});
