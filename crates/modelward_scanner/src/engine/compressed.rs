//! Single-stream compression (gzip, bzip2, xz, lzma, zstd, lz4, zlib) and joblib's `ZF`
//! files: the decompressed stream is scanned by content, bounded in size and ratio.

use super::{Engine, Hint, read_head};
use modelward_diagnostics::{Fact, Location};
use modelward_formats::io::{BombKind, BoundState, Bounded, Tally};
use modelward_formats::{Format, compress, joblib};
use std::io::{Cursor, Read};
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

pub(super) fn decompress(
    cx: &mut Engine<'_>,
    format: Format,
    r: &mut dyn Read,
    loc: &Location,
    depth: u32,
    hint: Hint,
) {
    let limits = cx.limits();
    let consumed = Arc::new(AtomicU64::new(0));
    let state = Arc::new(BoundState::default());
    let tally = Tally::new(r, consumed.clone());
    match compress::decoder(format, tally) {
        Ok(dec) => {
            let mut bounded = Bounded::new(
                dec,
                limits.max_decompressed,
                limits.max_ratio,
                consumed,
                state.clone(),
            );
            cx.stream(
                &mut bounded,
                loc,
                depth + 1,
                Hint {
                    storage: false,
                    ..hint
                },
            );
        }
        Err(e) => cx.unreadable(loc, format!("{format} stream: {e}")),
    }
    if let Some(kind) = state.bomb() {
        let what = match kind {
            BombKind::Size => format!("more than {} bytes", limits.max_decompressed),
            BombKind::Ratio => format!("more than {}x its compressed size", limits.max_ratio),
        };
        cx.fact(
            Fact::new(
                "ARC201",
                format!("the {format} stream decompresses to {what}; scanning stopped there"),
            ),
            loc,
        );
    }
}

/// joblib <= 0.9 `ZF`: a short header, then a zlib stream.
pub(super) fn joblib_zfile(cx: &mut Engine<'_>, r: &mut dyn Read, loc: &Location, depth: u32, hint: Hint) {
    let head = match read_head(r, 32) {
        Ok(h) => h,
        Err(e) => return cx.unreadable(loc, e),
    };
    let rest = head[joblib::zfile_payload_start(&head)..].to_vec();
    let mut chained = Cursor::new(rest).chain(r);
    decompress(cx, Format::Zlib, &mut chained, loc, depth, hint);
}
