//! skops `schema.json` (issue 14): the node walk and the member-path check every archive uses.
#![no_main]

use libfuzzer_sys::fuzz_target;
use modelward_formats::{member_path, skops};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let _ = skops::looks_like_schema(&text);
    let _ = skops::refs(&text);
    let _ = member_path::check(&text, &member_path::MemberKind::File);
    let _ = member_path::check(&text, &member_path::MemberKind::Symlink(text.to_string()));
});
