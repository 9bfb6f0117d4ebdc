//! numpy `.npy`: the header is checked against the data; an object array is a pickle.

use super::{Engine, Hint, read_at, read_head};
use modelward_diagnostics::{Fact, Location};
use modelward_formats::io::ReadSeek;
use modelward_formats::tensors::Float;
use modelward_formats::tensors::deep::Region;
use modelward_formats::{Format, npy};
use modelward_pickle::{ReadSource, SeekSource};
use std::io::{Cursor, Read, SeekFrom};

pub(super) fn seekable(
    cx: &mut Engine<'_>,
    r: &mut dyn ReadSeek,
    len: u64,
    head: &[u8],
    loc: &Location,
    depth: u32,
    hint: Hint,
) -> Format {
    let mut head = head.to_vec();
    if let Some((_, _, hlen, pre)) = npy::preamble_len(&head) {
        let need = (pre + hlen).min(npy::MAX_HEADER + 12).min(len);
        if (head.len() as u64) < need {
            head = read_at(r, 0, need as usize).unwrap_or(head);
        }
    }
    let h = match npy::parse(&head) {
        Ok(h) => h,
        Err(f) => {
            cx.fact(f, loc);
            return Format::Npy;
        }
    };
    if h.has_object {
        let start = h.data_offset.min(len);
        if r.seek(SeekFrom::Start(start)).is_ok() {
            let since = cx.found_count();
            super::pickle::scan(
                cx,
                SeekSource::new(&mut *r, start, len),
                Some(len - start),
                loc,
                depth,
                hint,
            );
            cx.fill_found(since, start, |start, end| {
                read_at(r, start, usize::try_from(end).unwrap_or(0)).unwrap_or_default()
            });
        }
    } else if let (Some(n), Some(size)) = (h.count, h.itemsize) {
        let expected = n
            .checked_mul(u128::from(size))
            .map(|b| b + u128::from(h.data_offset));
        if cx.limits().deep.is_some() {
            let data_end = expected.map_or(len, |e| u64::try_from(e).unwrap_or(u64::MAX).min(len));
            let begin = h.data_offset.min(len);
            let mut regions = vec![Region {
                name: "<array data>",
                dtype: Float::from_numpy(&h.descr),
                begin,
                end: data_end.max(begin),
            }];
            if data_end < len {
                regions.push(Region {
                    name: "<bytes after the array>",
                    dtype: None,
                    begin: data_end.max(begin),
                    end: len,
                });
            }
            super::deep::sample(cx, r, &regions, loc);
        }
        if expected != Some(u128::from(len)) {
            cx.fact(
                Fact::new(
                    "NPY101",
                    format!(
                        "the header describes {} data bytes but the file holds {}",
                        n * u128::from(size),
                        len.saturating_sub(h.data_offset)
                    ),
                )
                .at(h.data_offset),
                loc,
            );
        }
    }
    Format::Npy
}

pub(super) fn stream(cx: &mut Engine<'_>, r: &mut dyn Read, loc: &Location, depth: u32, hint: Hint) {
    let mut pre = match read_head(r, 12) {
        Ok(p) => p,
        Err(e) => return cx.unreadable(loc, e),
    };
    let Some((_, _, hlen, prelen)) = npy::preamble_len(&pre) else {
        return cx.fact(Fact::new("NPY101", "unknown .npy format version").at(6), loc);
    };
    if hlen > npy::MAX_HEADER {
        return cx.fact(
            Fact::new("NPY101", format!("the .npy header claims {hlen} bytes")).at(8),
            loc,
        );
    }
    let need = (prelen + hlen) as usize;
    if pre.len() < need {
        match read_head(r, need - pre.len()) {
            Ok(more) => pre.extend(more),
            Err(e) => return cx.unreadable(loc, e),
        }
    }
    // The first read may have taken bytes past the header (version 1 preamble is 10 bytes).
    let rest = pre.split_off(need.min(pre.len()));
    match npy::parse(&pre) {
        Ok(h) if h.has_object => {
            let mut chained = Cursor::new(rest).chain(r);
            let since = cx.found_count();
            let mut tee = super::tee(&mut chained);
            super::pickle::scan(cx, ReadSource(&mut tee), None, &loc.at(None), depth, hint);
            let copy = tee.copy;
            cx.fill_found(since, need as u64, |_, end| {
                copy[..copy.len().min(end as usize)].to_vec()
            });
        }
        Ok(_) => {}
        Err(f) => cx.fact(f, loc),
    }
}
