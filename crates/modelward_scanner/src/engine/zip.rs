//! Zip archives, as PyTorch, numpy, Keras and zip readers open them: every member scanned by
//! content; PyTorch's layout tells raw storages (only their head is checked) and TorchScript
//! code files apart; a Keras `config.json` is walked whole.

use super::{Engine, Hint, SMALL, keras};
use modelward_diagnostics::{Fact, Location};
use modelward_formats::io::{BoundState, Bounded, ReadSeek, Window};
use modelward_formats::torch::{self, TorchLayout};
use modelward_formats::zip::{self, CrcReader, ZipEntry, ZipLimits};
use modelward_formats::{Format, compress};
use modelward_graphs::keras as graph_keras;
use std::io::{self, Cursor, Read, Seek, SeekFrom};
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

/// Largest stored member whose CRC is checked after it was scanned piecewise.
const MAX_CRC_CHECK: u64 = 16 << 20;

fn crc_of(data: &[u8]) -> u32 {
    let mut c = CrcReader::new(data);
    let _ = io::copy(&mut c, &mut io::sink());
    c.crc32()
}

/// The one place the CRC finding is written. PyTorch never checks CRCs; a mismatch means the
/// member was edited after it was written.
fn crc_mismatch(cx: &mut Engine<'_>, e: &ZipEntry, crc: u32, mloc: &Location) {
    if e.flags & 1 == 0 && crc != e.crc32 {
        cx.fact(
            Fact::new(
                "ARC101",
                format!(
                    "{:?}: stored CRC-32 {:08x}, data has {crc:08x}; scanned anyway, as PyTorch loads it",
                    e.name, e.crc32
                ),
            ),
            mloc,
        );
    }
}

/// A small text member read whole (up to the text limit): a Keras `config.json`, a skops
/// `schema.json`. `None` when its data lies outside the file or its compression is unsupported.
fn member_text(r: &mut dyn ReadSeek, e: &ZipEntry, len: u64) -> Option<io::Result<Vec<u8>>> {
    let raw = zip::raw_member(r, e, len)?;
    let dec = compress::zip_method(e.method, raw)?;
    Some(dec.and_then(|mut d| {
        let mut text = Vec::new();
        d.by_ref()
            .take(super::text::MAX_TEXT as u64)
            .read_to_end(&mut text)
            .map(|_| text)
    }))
}

pub(super) fn scan(
    cx: &mut Engine<'_>,
    r: &mut dyn ReadSeek,
    len: u64,
    loc: &Location,
    depth: u32,
) -> Format {
    let zl = ZipLimits {
        max_members: cx.limits().max_members,
        ..ZipLimits::default()
    };
    let listing = match zip::list(r, len, zl) {
        Ok(l) => l,
        Err(e) => {
            cx.fact(Fact::new("ARC108", format!("the zip cannot be listed: {e}")), loc);
            return Format::Zip;
        }
    };
    cx.facts(listing.facts.clone(), loc);
    if listing.prefix > 0 {
        let mut w = Window::new(r, 0, listing.prefix);
        cx.seekable(
            &mut w,
            listing.prefix,
            &loc.member("<data before the zip>"),
            depth + 1,
            Hint::default(),
        );
    }
    let layout = TorchLayout::of(&listing.entries);
    let names: Vec<&str> = listing.entries.iter().map(|e| e.name.as_str()).collect();
    let is_keras = graph_keras::looks_like_keras_zip(&names);
    if is_keras && let Some(cfg) = listing.entries.iter().find(|e| e.name == "config.json") {
        match member_text(r, cfg, len) {
            Some(Ok(text)) => keras::config(
                cx,
                &String::from_utf8_lossy(&text),
                &loc.member("config.json"),
                depth,
            ),
            Some(Err(e)) => cx.unreadable(&loc.member("config.json"), e),
            None => cx.unreadable(&loc.member("config.json"), "unsupported compression"),
        }
    }
    // skops: a zip holding a schema.json whose content is skops' node tree.
    if let Some(schema) = listing.entries.iter().find(|e| e.name == "schema.json")
        && let Some(Ok(text)) = member_text(r, schema, len)
    {
        let facts = crate::skops_scan::facts(cx.policy(), &String::from_utf8_lossy(&text));
        cx.facts(facts, &loc.member("schema.json"));
    }
    let mut code_files = Vec::new();
    let mut member_formats = Vec::new();
    for e in &listing.entries {
        if e.is_dir() {
            continue;
        }
        if cx.member_budget(loc) || cx.over_time(loc) {
            break;
        }
        let mloc = loc.member(e.display_name());
        // One member-path check for every archive type.
        cx.facts(
            modelward_formats::member_path::check(&e.name, &e.member_kind()),
            loc,
        );
        let hint = Hint {
            torch: layout.is_torch(),
            storage: layout.is_storage(&e.name),
            ..Hint::default()
        };
        if layout.is_code(&e.name) {
            code_files.push(e.name.clone());
            torchscript_code(cx, r, e, len, &mloc);
            continue;
        }
        let Some(mut raw) = zip::raw_member(r, e, len) else {
            cx.fact(
                Fact::new("ARC108", format!("{:?}: its data lies outside the file", e.name)),
                loc,
            );
            continue;
        };
        if e.method == 0 {
            let size = raw.len();
            if !hint.storage && size <= SMALL {
                // Small members are read once: CRC and scan from memory.
                let mut data = Vec::with_capacity(size as usize);
                if let Err(err) = raw.read_to_end(&mut data) {
                    cx.unreadable(&mloc, err);
                    continue;
                }
                crc_mismatch(cx, e, crc_of(&data), &mloc);
                let n = data.len() as u64;
                let f = cx.seekable(
                    &mut Cursor::new(data),
                    n,
                    &mloc,
                    depth + 1,
                    Hint {
                        in_memory: true,
                        ..hint
                    },
                );
                member_formats.push(f);
                continue;
            }
            let f = cx.seekable(&mut raw, size, &mloc, depth + 1, hint);
            if !hint.storage && size <= MAX_CRC_CHECK && e.flags & 1 == 0 {
                let _ = raw.seek(SeekFrom::Start(0));
                let mut crc = CrcReader::new(&mut raw);
                if io::copy(&mut crc, &mut io::sink()).is_ok() {
                    let sum = crc.crc32();
                    crc_mismatch(cx, e, sum, &mloc);
                }
            }
            member_formats.push(f);
            continue;
        }
        match compress::zip_method(e.method, raw) {
            None => cx.unreadable(
                &mloc,
                format!(
                    "compression method {} ({})",
                    e.method,
                    compress::zip_method_name(e.method)
                ),
            ),
            Some(Err(err)) => cx.unreadable(&mloc, err),
            Some(Ok(dec)) => {
                let consumed = Arc::new(AtomicU64::new(e.compressed_size.max(1)));
                let state = Arc::new(BoundState::default());
                let bounded = Bounded::new(
                    dec,
                    cx.limits().max_decompressed,
                    cx.limits().max_ratio,
                    consumed,
                    state.clone(),
                );
                let mut crc = CrcReader::new(bounded);
                let f = cx.stream(&mut crc, &mloc, depth + 1, hint);
                member_formats.push(f);
                if !hint.storage {
                    let _ = io::copy(&mut crc, &mut io::sink());
                    if crc.done && state.bomb().is_none() {
                        let sum = crc.crc32();
                        crc_mismatch(cx, e, sum, &mloc);
                    }
                }
                if state.bomb().is_some() {
                    cx.fact(
                        Fact::new(
                            "ARC201",
                            format!(
                                "{:?} decompresses past the budget; scanning stopped there",
                                e.name
                            ),
                        ),
                        &mloc,
                    );
                }
            }
        }
    }
    if layout.is_torch() {
        super::deep::torch_storages(cx, r, loc, &layout, &listing.entries);
    }
    if !code_files.is_empty() {
        let shown: Vec<&str> = code_files.iter().take(5).map(String::as_str).collect();
        let more = if code_files.len() > 5 {
            format!(" and {} more", code_files.len() - 5)
        } else {
            String::new()
        };
        cx.fact(
            Fact::new(
                "TRC102",
                format!(
                    "TorchScript archive with {} code file(s) that torch.jit.load compiles and runs: {}{more}",
                    code_files.len(),
                    shown.join(", ")
                ),
            ),
            loc,
        );
    }
    if is_keras {
        Format::Keras
    } else if layout.torchscript {
        Format::TorchScript
    } else if layout.is_torch() {
        Format::PytorchZip
    } else if !member_formats.is_empty() && member_formats.iter().all(|f| *f == Format::Npy) {
        Format::Npz
    } else {
        Format::Zip
    }
}

fn torchscript_code(cx: &mut Engine<'_>, r: &mut dyn ReadSeek, e: &ZipEntry, len: u64, loc: &Location) {
    let Some(raw) = zip::raw_member(r, e, len) else {
        return;
    };
    let Some(Ok(mut dec)) = compress::zip_method(e.method, raw) else {
        cx.unreadable(loc, "unsupported compression");
        return;
    };
    let mut text = Vec::new();
    if let Err(err) = dec
        .by_ref()
        .take(cx.limits().max_code_file)
        .read_to_end(&mut text)
    {
        cx.unreadable(loc, err);
        return;
    }
    let source = String::from_utf8_lossy(&text);
    for (needle, why) in torch::torchscript_hits(&source) {
        let offset = source.find(&needle).unwrap_or(0) as u64;
        let line = source[..offset as usize].matches('\n').count() + 1;
        let text_line = source.lines().nth(line - 1).unwrap_or_default().trim();
        cx.fact(
            Fact::new(
                "TRC103",
                format!("TorchScript code uses {needle}: {why} (line {line})"),
            )
            .at(offset)
            .evidence(text_line.chars().take(200).collect::<String>()),
            loc,
        );
    }
}

/// If a zip end record closes content that starts as something else, both parts are loaded
/// by different readers: scan the zip part too.
pub(super) fn polyglot(cx: &mut Engine<'_>, r: &mut dyn ReadSeek, len: u64, loc: &Location, depth: u32) {
    if len > 22 && zip::has_end_record(r, len).unwrap_or(false) {
        scan(cx, r, len, loc, depth);
    }
}
