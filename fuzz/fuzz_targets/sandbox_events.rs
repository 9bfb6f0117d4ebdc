//! The sandbox's event channel: whatever a sample writes there (it runs in the same process as
//! the recorder) is read with bounded memory and becomes a bounded number of findings.
#![no_main]

use libfuzzer_sys::fuzz_target;
use modelward_sandbox::events::{EventLimits, collect};
use modelward_sandbox::{Detonation, Loader, Outcome};

const LIMITS: EventLimits = EventLimits {
    max_events: 64,
    max_line: 1024,
    max_bytes: 16 << 10,
};

fuzz_target!(|data: &[u8]| {
    let c = collect(data, LIMITS);
    assert!(c.events.len() <= LIMITS.max_events);
    let d = Detonation {
        loader: Loader::Pickle,
        events: c.events,
        dropped_events: c.dropped,
        outcome: Outcome::Finished,
        elapsed: std::time::Duration::ZERO,
        stderr: String::new(),
    };
    static POLICY: std::sync::OnceLock<modelward_policy::Policy> = std::sync::OnceLock::new();
    let findings = d.findings(POLICY.get_or_init(modelward_policy::Policy::builtin), "fuzz");
    assert!(findings.len() <= LIMITS.max_events + 2);
    let _ = d.behaviour();
});
