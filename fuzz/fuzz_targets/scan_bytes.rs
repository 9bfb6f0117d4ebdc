//! The whole engine, as the CLI runs it on one file: sniff, open containers and compression at
//! every level, analyse pickles, apply the policy, build the report.
//!
//! `Scanner::scan` catches panics per file (a panic becomes an MWD002 finding), but
//! libfuzzer-sys installs a panic hook that aborts the process first, so a panic anywhere in
//! the engine is still a crash here.
#![no_main]

use libfuzzer_sys::fuzz_target;
use modelward_policy::Policy;
use modelward_scanner::{Input, ScanLimits, Scanner};
use std::sync::OnceLock;
use std::time::Duration;

static SCANNER: OnceLock<Scanner> = OnceLock::new();

fn scanner() -> &'static Scanner {
    SCANNER.get_or_init(|| {
        // Defaults, with the budgets that scale with time or decompressed size cut down so one
        // input cannot take long: a hang must show up as libFuzzer's -timeout, not as a
        // legitimately slow 4 GiB decompression.
        let mut limits = ScanLimits::default();
        limits.max_time = Duration::from_secs(2);
        limits.max_decompressed = 16 << 20;
        limits.max_spool = 8 << 20;
        Scanner::new(Policy::builtin(), limits)
    })
}

fuzz_target!(|data: &[u8]| {
    let report = scanner().scan(Input::bytes("fuzz", data));
    // A panic caught inside the engine is a bug all the same (the hook above normally aborts
    // before this point; this catches a build where it did not).
    // (The message is checked, not a Debug rendering of every finding: formatting them took
    // half of each execution.)
    for f in &report.findings {
        assert!(
            !f.message.starts_with("internal error while scanning"),
            "caught panic: {f:?}"
        );
    }
});
