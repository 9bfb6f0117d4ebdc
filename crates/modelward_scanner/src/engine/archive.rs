//! Tar and 7z archives: every member scanned by content, as a stream; the members of
//! PyTorch's oldest (tar) checkpoint format with the layout `modelward_formats::torch` knows.

use super::{Engine, Hint};
use modelward_diagnostics::{Fact, Location};
use modelward_formats::io::{BoundState, Bounded, ReadSeek};
use modelward_formats::{Format, archive, torch};
use std::io::{self, Read, SeekFrom};
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

pub(super) fn tar(cx: &mut Engine<'_>, r: &mut dyn Read, loc: &Location, depth: u32, hint: Hint) {
    let result = archive::tar_entries(r, |m, er| {
        if cx.member_budget(loc) || cx.over_time(loc) {
            return archive::Next::Stop;
        }
        // One member-path check for every archive type (modelward_formats::member_path).
        cx.facts(m.path_facts.clone(), loc);
        if !m.content {
            return archive::Next::Continue;
        }
        let member_hint = match torch::tar_member_layout(&m.name) {
            Some(layout) => Hint {
                torch: true,
                layout,
                nested: hint.nested,
                ..Hint::default()
            },
            None => Hint {
                nested: hint.nested,
                ..Hint::default()
            },
        };
        cx.stream(er, &loc.member(&m.name), depth + 1, member_hint);
        archive::Next::Continue
    });
    if let Err(e) = result {
        cx.fact(
            Fact::new("ARC108", format!("the tar archive is damaged: {e}")),
            loc,
        );
    }
}

pub(super) fn sevenz(cx: &mut Engine<'_>, r: &mut dyn ReadSeek, loc: &Location, depth: u32) -> Format {
    if r.seek(SeekFrom::Start(0)).is_err() {
        return Format::SevenZip;
    }
    let result = archive::sevenz_entries(&mut *r, |m, er| {
        if cx.member_budget(loc) || cx.over_time(loc) {
            return archive::Next::Stop;
        }
        cx.facts(m.path_facts.clone(), loc);
        let limits = cx.limits();
        let consumed = Arc::new(AtomicU64::new(m.size.max(1) / limits.max_ratio.max(1) + 1));
        let state = Arc::new(BoundState::default());
        let mut bounded = Bounded::new(er, limits.max_decompressed, u64::MAX, consumed, state.clone());
        cx.stream(&mut bounded, &loc.member(&m.name), depth + 1, Hint::default());
        let _ = io::copy(&mut bounded, &mut io::sink());
        archive::Next::Continue
    });
    if let Err(e) = result {
        cx.fact(
            Fact::new("ARC108", format!("the 7z archive could not be fully read: {e}")),
            loc,
        );
    }
    Format::SevenZip
}
