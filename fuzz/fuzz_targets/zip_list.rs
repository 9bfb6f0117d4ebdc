//! The tolerant zip reader: list the archive (end record, central directory, local headers, gap
//! sweep), then open every member's stored bytes and read them through its decompressor,
//! bounded to 1 MiB per member (and 16 MiB per input so a directory of a thousand entries
//! pointing at one deflate bomb cannot turn one input into minutes).
#![no_main]

use libfuzzer_sys::fuzz_target;
use modelward_formats::compress::{zip_method, zip_method_name};
use modelward_formats::torch::TorchLayout;
use modelward_formats::zip::{self, CrcReader, ZipLimits};
use std::io::{self, Cursor, Read};

const PER_MEMBER: u64 = 1 << 20;
const PER_INPUT: u64 = 16 << 20;

fuzz_target!(|data: &[u8]| {
    let len = data.len() as u64;
    let mut cur = Cursor::new(data);
    let _ = zip::has_end_record(&mut cur, len);
    let Ok(listing) = zip::list(&mut cur, len, ZipLimits::default()) else {
        return;
    };
    for f in &listing.facts {
        let _ = format!("{f:?}");
    }
    let layout = TorchLayout::of(&listing.entries);
    let mut budget = PER_INPUT;
    for e in &listing.entries {
        let _ = e.display_name();
        let _ = e.is_dir();
        let _ = zip_method_name(e.method);
        let _ = layout.is_storage(&e.name);
        let _ = layout.is_code(&e.name);
        if budget == 0 {
            continue;
        }
        let Some(raw) = zip::raw_member(&mut cur, e, len) else {
            continue;
        };
        assert!(raw.len() <= len, "member window larger than the input");
        let Some(Ok(dec)) = zip_method(e.method, raw) else {
            continue;
        };
        let mut r = CrcReader::new(dec.take(PER_MEMBER.min(budget)));
        let n = io::copy(&mut r, &mut io::sink()).unwrap_or(0);
        let _ = r.crc32();
        budget = budget.saturating_sub(n.max(1));
    }
});
