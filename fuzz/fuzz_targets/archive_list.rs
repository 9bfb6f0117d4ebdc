//! tar and 7z through their crates, as the engine drives them: every member visited and read
//! (up to 1 MiB each, 16 MiB per input). A panic inside either crate is a crash here even though
//! the engine would catch it and report the file.
#![no_main]

use libfuzzer_sys::fuzz_target;
use modelward_formats::archive::{self, Next};
use std::io::{Cursor, Read};

fn visit(total: &mut u64) -> impl FnMut(&archive::Member, &mut dyn Read) -> Next + '_ {
    move |_, r| {
        let mut sink = Vec::new();
        let n = r.take(1 << 20).read_to_end(&mut sink).unwrap_or(0) as u64;
        *total += n;
        if *total > 16 << 20 {
            Next::Stop
        } else {
            Next::Continue
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let mut total = 0;
    let _ = archive::tar_entries(Cursor::new(data), visit(&mut total));
    let mut total = 0;
    let _ = archive::sevenz_entries(Cursor::new(data), visit(&mut total));
});
