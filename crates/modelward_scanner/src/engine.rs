//! The recursion at the heart of a scan: sniff content, open it the way its real loader would,
//! descend into members, analyse pickles, and turn every fact into a finding at its location.

use crate::limits::ScanLimits;
use crate::nested;
use modelward_diagnostics::{Fact, Finding, Location};
use modelward_formats::io::{BoundState, Bounded, ReadSeek, Tally, Window};
use modelward_formats::joblib::JoblibHook;
use modelward_formats::torch::{self, Legacy, TorchLayout};
use modelward_formats::zip::{self, CrcReader, ZipLimits};
use modelward_formats::{
    Format, SNIFF_LEN, archive, compress, gguf, hf, npy, safetensors, sniff_len, template,
};
use modelward_graphs::{keras, onnx, tensorflow};
use modelward_pickle::machine::Event;
use modelward_pickle::stream::MAX_PICKLES_PER_STREAM;
use modelward_pickle::{
    End, Node, ReadSource, Reader, SeekSource, Source, Trace, Value, looks_like_pickle, run_one,
};
use modelward_policy::{PickleContext, Policy};
use std::collections::HashMap;
use std::io::{self, Cursor, Read, Seek, SeekFrom};
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Instant;

/// What the container says about the content being scanned.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Hint {
    /// Inside a PyTorch container.
    torch: bool,
    /// A raw tensor storage: PyTorch never unpickles it; only its first bytes are checked.
    storage: bool,
    /// How many pickles this content is nested in (constants inside pickles).
    nested: u32,
    /// How pickles and raw data alternate in the content.
    layout: Layout,
    /// The content is already in memory (no need to slurp it).
    in_memory: bool,
}

/// Largest protobuf model (ONNX, SavedModel) decoded; protobuf has no random access.
const MAX_PROTOBUF: u64 = 256 << 20;

/// Largest text document analysed.
const MAX_TEXT: usize = 64 << 20;

/// Python source: a few lines that only Python writes.
fn looks_like_python(text: &str) -> bool {
    let hits = text
        .lines()
        .take(400)
        .map(str::trim_start)
        .filter(|l| {
            l.starts_with("import ")
                || (l.starts_with("from ") && l.contains(" import "))
                || l.starts_with("def ")
                || l.starts_with("class ") && l.ends_with(':')
        })
        .count();
    // Markdown with Python code blocks is documentation, not a module.
    (hits >= 2 && !text.contains("```")) || text.starts_with("#!/usr/bin/env python")
}

/// Content up to this size is read once into memory instead of being re-read piecewise.
const SMALL: u64 = 256 * 1024;

fn flate2_crc(data: &[u8]) -> u32 {
    let mut c = CrcReader::new(data);
    let _ = io::copy(&mut c, &mut io::sink());
    c.crc32()
}

/// How pickles and raw data alternate in a stream.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) enum Layout {
    /// Pickles back to back; anything else after them is trailing data.
    #[default]
    Pickles,
    /// The `storages` member of PyTorch's tar format: a count, then per storage a pickle
    /// `(key, location, storage_type)` followed by an 8-byte element count and the raw bytes.
    TorchTarStorages,
    /// The `tensors` member: a count, then per tensor a pickle `(key, storage_id, type)`
    /// followed by ndim, a reserved int, sizes, strides and a storage offset.
    TorchTarTensors,
}

/// Member names of PyTorch's oldest (tar) checkpoint format.
fn torch_tar_layout(name: &str) -> Option<Layout> {
    match name {
        "sys_info" | "pickle" => Some(Layout::Pickles),
        "storages" => Some(Layout::TorchTarStorages),
        "tensors" => Some(Layout::TorchTarTensors),
        _ => None,
    }
}

/// Element size of a legacy storage type.
fn storage_element_size(name: &str) -> Option<u64> {
    let short = name.rsplit('.').next()?;
    Some(match short {
        "DoubleStorage" | "LongStorage" | "ComplexFloatStorage" => 8,
        "FloatStorage" | "IntStorage" | "QInt32Storage" => 4,
        "HalfStorage" | "BFloat16Storage" | "ShortStorage" => 2,
        "CharStorage" | "ByteStorage" | "BoolStorage" | "QUInt8Storage" | "QInt8Storage" => 1,
        "ComplexDoubleStorage" => 16,
        _ => return None,
    })
}

pub(crate) struct Engine<'a> {
    policy: &'a Policy,
    limits: &'a ScanLimits,
    pub findings: Vec<Finding>,
    members: u64,
    members_reported: bool,
    deadline: Instant,
    timed_out: bool,
}

fn read_head(r: &mut dyn Read, n: usize) -> io::Result<Vec<u8>> {
    let mut head = Vec::with_capacity(n);
    r.take(n as u64).read_to_end(&mut head)?;
    Ok(head)
}

fn read_at(r: &mut dyn ReadSeek, at: u64, n: usize) -> io::Result<Vec<u8>> {
    r.seek(SeekFrom::Start(at))?;
    read_head(r, n)
}

impl<'a> Engine<'a> {
    pub fn new(policy: &'a Policy, limits: &'a ScanLimits) -> Engine<'a> {
        Engine {
            policy,
            limits,
            findings: Vec::new(),
            members: 0,
            members_reported: false,
            deadline: Instant::now() + limits.max_time,
            timed_out: false,
        }
    }

    /// The findings, at most [`ScanLimits::max_findings_per_rule`] per rule (the most severe
    /// kept, in scan order otherwise); the rest of a rule become one finding that counts them,
    /// with their highest severity, so the verdict is unchanged.
    pub fn into_findings(self) -> Vec<Finding> {
        let max = self.limits.max_findings_per_rule.max(1);
        // Per rule, in order of first appearance.
        let mut by_rule: Vec<Vec<Finding>> = Vec::new();
        let mut index: HashMap<String, usize> = HashMap::new();
        for f in self.findings {
            let i = *index.entry(f.rule.clone()).or_insert_with(|| {
                by_rule.push(Vec::new());
                by_rule.len() - 1
            });
            by_rule[i].push(f);
        }
        let mut kept = Vec::new();
        for mut group in by_rule {
            if group.len() > max {
                // Stable: scan order among equally severe findings.
                group.sort_by_key(|f| std::cmp::Reverse(f.severity));
                let rest = group.split_off(max);
                let count = rest.len();
                // The first of the rest is the most severe of them: it becomes the summary.
                if let Some(mut summary) = rest.into_iter().next() {
                    summary.message = format!(
                        "{count} more {} findings in this file are not listed (at most {max} per rule are)",
                        summary.rule
                    );
                    summary.location = Location::file(summary.location.path.clone());
                    summary.evidence = None;
                    group.push(summary);
                }
            }
            kept.extend(group);
        }
        kept
    }

    pub fn fact(&mut self, fact: Fact, loc: &Location) {
        if let Some(f) = self.policy.finding(fact, loc) {
            self.findings.push(f);
        }
    }

    fn over_time(&mut self, loc: &Location) -> bool {
        if !self.timed_out && Instant::now() > self.deadline {
            self.timed_out = true;
            let secs = self.limits.max_time.as_secs();
            self.fact(
                Fact::new(
                    "MWD002",
                    format!("the {secs} s time budget ran out; the rest of the file was not scanned"),
                ),
                loc,
            );
        }
        self.timed_out
    }

    fn too_deep(&mut self, depth: u32, loc: &Location) -> bool {
        if depth > self.limits.max_depth {
            self.fact(
                Fact::new(
                    "ARC202",
                    format!(
                        "containers nest deeper than {} levels; this one was not opened",
                        self.limits.max_depth
                    ),
                ),
                loc,
            );
            return true;
        }
        false
    }

    fn unreadable(&mut self, loc: &Location, what: impl std::fmt::Display) {
        self.fact(Fact::new("ARC107", format!("could not be read: {what}")), loc);
    }

    /// Scans seekable content occupying `[0, len)` of `r`. Returns the format name.
    pub fn seekable(
        &mut self,
        r: &mut dyn ReadSeek,
        len: u64,
        loc: &Location,
        depth: u32,
        hint: Hint,
    ) -> String {
        if self.too_deep(depth, loc) || self.over_time(loc) {
            return "unknown".into();
        }
        if !hint.in_memory && !hint.storage && len <= SMALL {
            let mut data = Vec::with_capacity(len as usize);
            if let Err(e) = r
                .seek(SeekFrom::Start(0))
                .and_then(|_| r.take(len).read_to_end(&mut data))
            {
                self.unreadable(loc, e);
                return "unknown".into();
            }
            let n = data.len() as u64;
            return self.seekable(
                &mut Cursor::new(data),
                n,
                loc,
                depth,
                Hint {
                    in_memory: true,
                    ..hint
                },
            );
        }
        let want = if hint.storage {
            self.limits.storage_head
        } else {
            SNIFF_LEN
        };
        let head = match read_at(r, 0, want.min(usize::try_from(len).unwrap_or(usize::MAX))) {
            Ok(h) => h,
            Err(e) => {
                self.unreadable(loc, e);
                return "unknown".into();
            }
        };
        let format = sniff_len(&head, Some(len));
        if hint.storage && format != Format::Pickle && !matches!(format, Format::Zip | Format::SevenZip) {
            return "tensor-data".into();
        }
        match format {
            Format::Zip => self.zip(r, len, loc, depth),
            Format::Safetensors => {
                let report = safetensors::check(r, len);
                for f in report.facts {
                    self.fact(f, loc);
                }
                "safetensors".into()
            }
            Format::Gguf => {
                self.gguf(r, len, loc);
                "gguf".into()
            }
            Format::Text => {
                if let Err(e) = r.seek(SeekFrom::Start(0)) {
                    self.unreadable(loc, e);
                    return "text".into();
                }
                self.text(r, loc)
            }
            Format::Pickle => {
                if let Err(e) = r.seek(SeekFrom::Start(0)) {
                    self.unreadable(loc, e);
                    return "pickle".into();
                }
                let name = self.pickle(SeekSource::new(&mut *r, 0, len), Some(len), loc, depth, hint);
                self.polyglot(r, len, loc, depth);
                name
            }
            Format::Npy => self.npy_seekable(r, len, &head, loc, depth, hint),
            Format::SevenZip => self.sevenz(r, loc, depth),
            Format::Unknown => {
                if let Some(name) = self.graph(r, len, &head, loc) {
                    return name;
                }
                // A zip with something before it (self-extractor) is still a zip to zip readers.
                if zip::has_end_record(r, len).unwrap_or(false) {
                    self.zip(r, len, loc, depth)
                } else {
                    "unknown".into()
                }
            }
            _ => {
                if let Err(e) = r.seek(SeekFrom::Start(0)) {
                    self.unreadable(loc, e);
                    return format.name().into();
                }
                let mut w = Window::new(r, 0, len);
                self.stream_known(format, &mut w, loc, depth, hint);
                format.name().into()
            }
        }
    }

    /// Scans forward-only content (a decompressed stream, a tar member).
    pub fn stream(&mut self, r: &mut dyn Read, loc: &Location, depth: u32, hint: Hint) -> String {
        if self.too_deep(depth, loc) || self.over_time(loc) {
            return "unknown".into();
        }
        let want = if hint.storage {
            self.limits.storage_head
        } else {
            SNIFF_LEN
        };
        let head = match read_head(r, want) {
            Ok(h) => h,
            Err(e) => {
                self.unreadable(loc, e);
                return "unknown".into();
            }
        };
        let format = sniff_len(&head, None);
        if hint.storage && format != Format::Pickle && !matches!(format, Format::Zip | Format::SevenZip) {
            return "tensor-data".into();
        }
        let mut chained = Cursor::new(head).chain(r);
        match format {
            Format::Unknown => "unknown".into(),
            Format::Text => self.text(&mut chained, loc),
            Format::Safetensors | Format::Gguf => self.spool(&mut chained, loc, depth),
            Format::Pickle => self.pickle(ReadSource(&mut chained), None, loc, depth, hint),
            Format::Zip | Format::SevenZip => self.spool(&mut chained, loc, depth),
            _ => {
                self.stream_known(format, &mut chained, loc, depth, hint);
                format.name().into()
            }
        }
    }

    /// Formats that read forward only: tar, compression wrappers, joblib's ZF, npy.
    fn stream_known(&mut self, format: Format, r: &mut dyn Read, loc: &Location, depth: u32, hint: Hint) {
        match format {
            Format::Tar => {
                let result = archive::tar_entries(r, |m, er| {
                    if self.member_budget(loc) || self.over_time(loc) {
                        return archive::Next::Stop;
                    }
                    // issue 14: one member-path check for every archive type (modelward_formats::member_path).
                    for f in m.path_facts.clone() {
                        self.fact(f, loc);
                    }
                    if !m.content {
                        return archive::Next::Continue;
                    }
                    let member_hint = match torch_tar_layout(&m.name) {
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
                    self.stream(er, &loc.member(&m.name), depth + 1, member_hint);
                    archive::Next::Continue
                });
                if let Err(e) = result {
                    self.fact(
                        Fact::new("ARC108", format!("the tar archive is damaged: {e}")),
                        loc,
                    );
                }
            }
            Format::JoblibZfile => {
                // `ZF`, the payload length as Python's hex() (with an `L` under Python 2),
                // space-padded, then a zlib stream.
                let head = match read_head(r, 32) {
                    Ok(h) => h,
                    Err(e) => return self.unreadable(loc, e),
                };
                let mut at = 2usize.min(head.len());
                if head.get(at..at + 2) == Some(b"0x") {
                    at += 2;
                }
                while head.get(at).is_some_and(u8::is_ascii_hexdigit) {
                    at += 1;
                }
                if head.get(at) == Some(&b'L') {
                    at += 1;
                }
                while head.get(at) == Some(&b' ') {
                    at += 1;
                }
                let rest = head.get(at..).unwrap_or_default().to_vec();
                let mut chained = Cursor::new(rest).chain(r);
                self.decompress(Format::Zlib, &mut chained, loc, depth, hint);
            }
            Format::Npy => self.npy_stream(r, loc, depth, hint),
            f if f.is_compression() => self.decompress(f, r, loc, depth, hint),
            _ => {}
        }
    }

    fn decompress(&mut self, format: Format, r: &mut dyn Read, loc: &Location, depth: u32, hint: Hint) {
        let consumed = Arc::new(AtomicU64::new(0));
        let state = Arc::new(BoundState::default());
        let tally = Tally::new(r, consumed.clone());
        match compress::decoder(format, tally) {
            Ok(dec) => {
                let mut bounded = Bounded::new(
                    dec,
                    self.limits.max_decompressed,
                    self.limits.max_ratio,
                    consumed,
                    state.clone(),
                );
                self.stream(
                    &mut bounded,
                    loc,
                    depth + 1,
                    Hint {
                        storage: false,
                        ..hint
                    },
                );
            }
            Err(e) => self.unreadable(loc, format!("{format} stream: {e}")),
        }
        if let Some(kind) = state.bomb() {
            let what = match kind {
                modelward_formats::io::BombKind::Size => {
                    format!("more than {} bytes", self.limits.max_decompressed)
                }
                modelward_formats::io::BombKind::Ratio => {
                    format!("more than {}x its compressed size", self.limits.max_ratio)
                }
            };
            self.fact(
                Fact::new(
                    "ARC201",
                    format!("the {format} stream decompresses to {what}; scanning stopped there"),
                ),
                loc,
            );
        }
    }

    fn spool(&mut self, r: &mut dyn Read, loc: &Location, depth: u32) -> String {
        let mut file = tempfile::SpooledTempFile::new(8 << 20);
        let copied = match io::copy(&mut r.take(self.limits.max_spool + 1), &mut file) {
            Ok(n) => n,
            Err(e) => {
                self.unreadable(loc, e);
                return "unknown".into();
            }
        };
        if copied > self.limits.max_spool {
            self.fact(
                Fact::new(
                    "MWD002",
                    format!(
                        "an archive inside a stream is larger than {} bytes and was not opened",
                        self.limits.max_spool
                    ),
                ),
                loc,
            );
            return "unknown".into();
        }
        if file.seek(SeekFrom::Start(0)).is_err() {
            return "unknown".into();
        }
        self.seekable(&mut file, copied, loc, depth, Hint::default())
    }

    fn member_budget(&mut self, loc: &Location) -> bool {
        self.members += 1;
        if self.members > self.limits.max_members {
            if !self.members_reported {
                self.members_reported = true;
                self.fact(
                    Fact::new(
                        "ARC203",
                        format!(
                            "more than {} archive members; the rest were not scanned",
                            self.limits.max_members
                        ),
                    ),
                    loc,
                );
            }
            return true;
        }
        false
    }

    fn zip(&mut self, r: &mut dyn ReadSeek, len: u64, loc: &Location, depth: u32) -> String {
        let zl = ZipLimits {
            max_members: self.limits.max_members,
            ..ZipLimits::default()
        };
        let listing = match zip::list(r, len, zl) {
            Ok(l) => l,
            Err(e) => {
                self.fact(Fact::new("ARC108", format!("the zip cannot be listed: {e}")), loc);
                return "zip".into();
            }
        };
        for f in listing.facts.clone() {
            self.fact(f, loc);
        }
        if listing.prefix > 0 {
            let mut w = Window::new(r, 0, listing.prefix);
            self.seekable(
                &mut w,
                listing.prefix,
                &loc.member("<data before the zip>"),
                depth + 1,
                Hint::default(),
            );
        }
        let layout = TorchLayout::of(&listing.entries);
        let names: Vec<&str> = listing.entries.iter().map(|e| e.name.as_str()).collect();
        if keras::looks_like_keras_zip(&names)
            && let Some(cfg) = listing.entries.iter().find(|e| e.name == "config.json")
        {
            let mut text = Vec::new();
            let read = zip::raw_member(r, cfg, len)
                .and_then(|raw| compress::zip_method(cfg.method, raw))
                .map(|dec| dec.and_then(|mut d| d.by_ref().take(MAX_TEXT as u64).read_to_end(&mut text)));
            match read {
                Some(Ok(_)) => {
                    self.keras_config(&String::from_utf8_lossy(&text), &loc.member("config.json"), depth)
                }
                Some(Err(e)) => self.unreadable(&loc.member("config.json"), e),
                None => self.unreadable(&loc.member("config.json"), "unsupported compression"),
            }
        }
        // issue 14: skops (a zip holding a schema.json whose content is skops' node tree).
        if let Some(schema) = listing.entries.iter().find(|e| e.name == "schema.json") {
            let mut text = Vec::new();
            let read = zip::raw_member(r, schema, len)
                .and_then(|raw| compress::zip_method(schema.method, raw))
                .map(|dec| dec.and_then(|mut d| d.by_ref().take(MAX_TEXT as u64).read_to_end(&mut text)));
            if let Some(Ok(_)) = read {
                for f in crate::skops_scan::facts(self.policy, &String::from_utf8_lossy(&text)) {
                    self.fact(f, &loc.member("schema.json"));
                }
            }
        }
        let mut code_files = Vec::new();
        let mut member_formats = Vec::new();
        for e in &listing.entries {
            if e.is_dir() {
                continue;
            }
            if self.member_budget(loc) || self.over_time(loc) {
                break;
            }
            let mloc = loc.member(e.display_name());
            // issue 14: one member-path check for every archive type (modelward_formats::member_path).
            for f in modelward_formats::member_path::check(&e.name, &e.member_kind()) {
                self.fact(f, loc);
            }
            let hint = Hint {
                torch: layout.is_torch(),
                storage: layout.is_storage(&e.name),
                ..Hint::default()
            };
            if layout.is_code(&e.name) {
                code_files.push(e.name.clone());
                self.torchscript_code(r, e, len, &mloc);
                continue;
            }
            let Some(mut raw) = zip::raw_member(r, e, len) else {
                self.fact(
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
                        self.unreadable(&mloc, err);
                        continue;
                    }
                    let crc = flate2_crc(&data);
                    if e.flags & 1 == 0 && crc != e.crc32 {
                        self.fact(Fact::new("ARC101", format!("{:?}: stored CRC-32 {:08x}, data has {:08x}; scanned anyway, as PyTorch loads it", e.name, e.crc32, crc)), &mloc);
                    }
                    let n = data.len() as u64;
                    let f = self.seekable(
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
                let f = self.seekable(&mut raw, size, &mloc, depth + 1, hint);
                // PyTorch never checks CRCs; a mismatch means the member was edited after writing.
                if !hint.storage && size <= 16 << 20 && e.flags & 1 == 0 {
                    let _ = raw.seek(SeekFrom::Start(0));
                    let mut crc = CrcReader::new(&mut raw);
                    if io::copy(&mut crc, &mut io::sink()).is_ok() && crc.crc32() != e.crc32 {
                        self.fact(Fact::new("ARC101", format!("{:?}: stored CRC-32 {:08x}, data has {:08x}; scanned anyway, as PyTorch loads it", e.name, e.crc32, crc.crc32())), &mloc);
                    }
                }
                member_formats.push(f);
                continue;
            }
            match compress::zip_method(e.method, raw) {
                None => self.unreadable(
                    &mloc,
                    format!(
                        "compression method {} ({})",
                        e.method,
                        compress::zip_method_name(e.method)
                    ),
                ),
                Some(Err(err)) => self.unreadable(&mloc, err),
                Some(Ok(dec)) => {
                    let consumed = Arc::new(AtomicU64::new(e.compressed_size.max(1)));
                    let state = Arc::new(BoundState::default());
                    let bounded = Bounded::new(
                        dec,
                        self.limits.max_decompressed,
                        self.limits.max_ratio,
                        consumed,
                        state.clone(),
                    );
                    let mut crc = CrcReader::new(bounded);
                    let f = self.stream(&mut crc, &mloc, depth + 1, hint);
                    member_formats.push(f);
                    if !hint.storage {
                        let _ = io::copy(&mut crc, &mut io::sink());
                        if crc.done && state.bomb().is_none() && e.flags & 1 == 0 && crc.crc32() != e.crc32 {
                            self.fact(Fact::new("ARC101", format!("{:?}: stored CRC-32 {:08x}, data has {:08x}; scanned anyway, as PyTorch loads it", e.name, e.crc32, crc.crc32())), &mloc);
                        }
                    }
                    if state.bomb().is_some() {
                        self.fact(
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
        if !code_files.is_empty() {
            let shown: Vec<&str> = code_files.iter().take(5).map(String::as_str).collect();
            let more = if code_files.len() > 5 {
                format!(" and {} more", code_files.len() - 5)
            } else {
                String::new()
            };
            self.fact(
                Fact::new("TRC102", format!("TorchScript archive with {} code file(s) that torch.jit.load compiles and runs: {}{more}", code_files.len(), shown.join(", "))),
                loc,
            );
        }
        if keras::looks_like_keras_zip(
            &listing
                .entries
                .iter()
                .map(|e| e.name.as_str())
                .collect::<Vec<_>>(),
        ) {
            "keras".into()
        } else if layout.torchscript {
            "torchscript".into()
        } else if layout.is_torch() {
            "pytorch-zip".into()
        } else if !member_formats.is_empty() && member_formats.iter().all(|f| f == "npy") {
            "npz".into()
        } else {
            "zip".into()
        }
    }

    fn torchscript_code(&mut self, r: &mut dyn ReadSeek, e: &zip::ZipEntry, len: u64, loc: &Location) {
        let Some(raw) = zip::raw_member(r, e, len) else {
            return;
        };
        let Some(Ok(mut dec)) = compress::zip_method(e.method, raw) else {
            self.unreadable(loc, "unsupported compression");
            return;
        };
        let mut text = Vec::new();
        if let Err(err) = dec
            .by_ref()
            .take(self.limits.max_code_file)
            .read_to_end(&mut text)
        {
            self.unreadable(loc, err);
            return;
        }
        let source = String::from_utf8_lossy(&text);
        for (needle, why) in torch::torchscript_hits(&source) {
            let offset = source.find(&needle).unwrap_or(0) as u64;
            let line = source[..offset as usize].matches('\n').count() + 1;
            let text_line = source.lines().nth(line - 1).unwrap_or_default().trim();
            self.fact(
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

    fn sevenz(&mut self, r: &mut dyn ReadSeek, loc: &Location, depth: u32) -> String {
        if r.seek(SeekFrom::Start(0)).is_err() {
            return "7z".into();
        }
        let result = archive::sevenz_entries(&mut *r, |m, er| {
            if self.member_budget(loc) || self.over_time(loc) {
                return archive::Next::Stop;
            }
            // issue 14: one member-path check for every archive type (modelward_formats::member_path).
            for f in m.path_facts.clone() {
                self.fact(f, loc);
            }
            let consumed = Arc::new(AtomicU64::new(m.size.max(1) / self.limits.max_ratio.max(1) + 1));
            let state = Arc::new(BoundState::default());
            let mut bounded = Bounded::new(
                er,
                self.limits.max_decompressed,
                u64::MAX,
                consumed,
                state.clone(),
            );
            self.stream(&mut bounded, &loc.member(&m.name), depth + 1, Hint::default());
            let _ = io::copy(&mut bounded, &mut io::sink());
            archive::Next::Continue
        });
        if let Err(e) = result {
            self.fact(
                Fact::new("ARC108", format!("the 7z archive could not be fully read: {e}")),
                loc,
            );
        }
        "7z".into()
    }

    fn npy_seekable(
        &mut self,
        r: &mut dyn ReadSeek,
        len: u64,
        head: &[u8],
        loc: &Location,
        depth: u32,
        hint: Hint,
    ) -> String {
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
                self.fact(f, loc);
                return "npy".into();
            }
        };
        if h.has_object {
            let start = h.data_offset.min(len);
            if r.seek(SeekFrom::Start(start)).is_ok() {
                self.pickle(
                    SeekSource::new(&mut *r, start, len),
                    Some(len - start),
                    loc,
                    depth,
                    hint,
                );
            }
        } else if let (Some(n), Some(size)) = (h.count, h.itemsize) {
            let expected = n
                .checked_mul(u128::from(size))
                .map(|b| b + u128::from(h.data_offset));
            if expected != Some(u128::from(len)) {
                self.fact(
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
        "npy".into()
    }

    fn npy_stream(&mut self, r: &mut dyn Read, loc: &Location, depth: u32, hint: Hint) {
        let mut pre = match read_head(r, 12) {
            Ok(p) => p,
            Err(e) => return self.unreadable(loc, e),
        };
        let Some((_, _, hlen, prelen)) = npy::preamble_len(&pre) else {
            return self.fact(Fact::new("NPY101", "unknown .npy format version").at(6), loc);
        };
        if hlen > npy::MAX_HEADER {
            return self.fact(
                Fact::new("NPY101", format!("the .npy header claims {hlen} bytes")).at(8),
                loc,
            );
        }
        let need = (prelen + hlen) as usize;
        if pre.len() < need {
            match read_head(r, need - pre.len()) {
                Ok(more) => pre.extend(more),
                Err(e) => return self.unreadable(loc, e),
            }
        }
        // The first read may have taken bytes past the header (version 1 preamble is 10 bytes).
        let rest = pre.split_off(need.min(pre.len()));
        match npy::parse(&pre) {
            Ok(h) if h.has_object => {
                let mut chained = Cursor::new(rest).chain(r);
                self.pickle(ReadSource(&mut chained), None, &loc.at(None), depth, hint);
                let _ = h;
            }
            Ok(_) => {}
            Err(f) => self.fact(f, loc),
        }
    }

    /// Model-graph formats recognised by content: HDF5 (Keras `.h5`), ONNX, TensorFlow
    /// SavedModel and `keras_metadata.pb` protobufs.
    fn graph(&mut self, r: &mut dyn ReadSeek, len: u64, head: &[u8], loc: &Location) -> Option<String> {
        if keras::looks_like_hdf5(head) {
            for f in keras::check_h5(r, len) {
                self.fact(f, loc);
            }
            return Some("hdf5".into());
        }
        // A SavedModel is the more specific shape (ONNX's check accepts most protobufs).
        let saved = tensorflow::looks_like_saved_model(head);
        let onnx = !saved && onnx::looks_like_onnx(head, len);
        let keras_meta = !onnx && !saved && head.windows(12).any(|w| w == b"\"class_name\"");
        if !(onnx || saved || keras_meta) {
            return None;
        }
        if len > MAX_PROTOBUF {
            self.fact(
                Fact::new(
                    "MWD002",
                    format!(
                        "a {len}-byte protobuf model is over the {} MiB decode budget; it was not decoded",
                        MAX_PROTOBUF >> 20
                    ),
                ),
                loc,
            );
            return Some(if onnx { "onnx" } else { "protobuf" }.into());
        }
        let mut data = Vec::with_capacity(len as usize);
        if let Err(e) = r
            .seek(SeekFrom::Start(0))
            .and_then(|_| r.take(len).read_to_end(&mut data))
        {
            self.unreadable(loc, e);
            return Some("unknown".into());
        }
        let (name, facts) = if onnx {
            ("onnx", {
                // issue 14: external data through a symlink or outside the folder (on disk only).
                let on_disk = loc.members.is_empty() && std::path::Path::new(&loc.path).is_file();
                let mut facts = onnx::check_model(&data, true);
                if on_disk {
                    let locations = onnx::external_data_locations(&data);
                    facts.extend(onnx::check_external_files(
                        std::path::Path::new(&loc.path),
                        &locations,
                    ));
                }
                facts
            })
        } else if saved {
            ("tensorflow-savedmodel", tensorflow::check_saved_model(&data))
        } else {
            ("keras-metadata", tensorflow::check_keras_metadata(&data))
        };
        if keras_meta && facts.is_empty() {
            return None;
        }
        for f in facts {
            self.fact(f, loc);
        }
        Some(name.into())
    }

    /// A Keras v3 archive's `config.json`: the whole config walked for Lambdas, foreign modules
    /// and gadget layers; `TorchModuleWrapper` payloads go to the pickle engine.
    fn keras_config(&mut self, text: &str, loc: &Location, depth: u32) {
        for f in keras::check_config(text) {
            self.fact(f, loc);
        }
        for (i, payload) in keras::torch_module_payloads(text).into_iter().enumerate() {
            let ploc = loc.member(format!("TorchModuleWrapper payload {}", i + 1));
            let n = payload.len() as u64;
            self.seekable(&mut Cursor::new(payload), n, &ploc, depth + 1, Hint::default());
        }
    }

    fn gguf(&mut self, r: &mut dyn ReadSeek, len: u64, loc: &Location) {
        let report = gguf::check(r, len);
        for f in report.facts {
            self.fact(f, loc);
        }
        for (key, text, offset) in report.chat_templates {
            for mut f in template::analyse(&text) {
                f.offset = Some(offset + f.offset.unwrap_or(0));
                f.message = format!("{} (in {key})", f.message);
                self.fact(f, loc);
            }
        }
    }

    /// Text by content: a JSON document (Hugging Face configs: remote code, chat templates, Hydra
    /// targets), Python source (what `trust_remote_code` runs), or other text (YAML Python tags,
    /// Hydra targets, Jinja templates).
    fn text(&mut self, r: &mut dyn Read, loc: &Location) -> String {
        let mut data = Vec::new();
        if let Err(e) = r.take(MAX_TEXT as u64 + 1).read_to_end(&mut data) {
            self.unreadable(loc, e);
            return "text".into();
        }
        if data.len() > MAX_TEXT {
            data.truncate(MAX_TEXT);
            self.fact(
                Fact::new(
                    "MWD002",
                    format!("only the first {} MiB of this text were checked", MAX_TEXT >> 20),
                ),
                loc,
            );
        }
        let text = String::from_utf8_lossy(&data);
        let trimmed = text.trim_start();
        let jinja_start = ["{%", "{{", "{#"].iter().any(|t| trimmed.starts_with(t));
        let (kind, report) = if (trimmed.starts_with('{') || trimmed.starts_with('[')) && !jinja_start {
            ("json", hf::check_json(&text))
        } else if looks_like_python(&text) {
            (
                "python",
                hf::HfReport {
                    facts: hf::check_python_source(&text),
                    targets: Vec::new(),
                },
            )
        } else {
            let mut report = hf::check_yaml_text(&text);
            let templated = text.contains("{%") || (text.contains("{{") && text.contains("}}"));
            if templated {
                report.facts.extend(template::analyse(&text));
            }
            // A config that names targets to instantiate is model-related even when every
            // target is safe (plain `text` without findings is skipped, see `FileReport::finish`).
            let kind = if templated {
                "jinja"
            } else if !report.targets.is_empty() {
                "yaml-config"
            } else {
                modelward_diagnostics::PLAIN_TEXT
            };
            (kind, report)
        };
        for f in report.facts {
            self.fact(f, loc);
        }
        for (target, offset) in report.targets {
            self.config_target(&target, offset, loc);
        }
        kind.into()
    }

    /// A Hydra `_target_` (or similar) that a config loader instantiates: judged like a pickle
    /// global.
    fn config_target(&mut self, target: &str, offset: u64, loc: &Location) {
        let name = target.replace(':', ".");
        let (module, attr) = name.rsplit_once('.').unwrap_or((name.as_str(), ""));
        let fact = match self.policy.globals().judge_path(module, attr).0 {
            modelward_policy::Judgement::Dangerous(e) => Some(
                Fact::new("CFG101", format!("the config instantiates {target}"))
                    .why(e.reason.clone())
                    .evidence(format!("_target_: {target}")),
            ),
            modelward_policy::Judgement::Unknown { .. } => Some(
                Fact::new(
                    "CFG102",
                    format!("the config instantiates {target}, which is on no reviewed list"),
                )
                .evidence(format!("_target_: {target}")),
            ),
            modelward_policy::Judgement::Safe(_) => None,
        };
        if let Some(f) = fact {
            self.fact(f.at(offset), loc);
        }
    }

    /// If a zip end record closes content that starts as something else, both parts are loaded
    /// by different readers: scan the zip part too.
    fn polyglot(&mut self, r: &mut dyn ReadSeek, len: u64, loc: &Location, depth: u32) {
        if len > 22 && zip::has_end_record(r, len).unwrap_or(false) {
            self.zip(r, len, loc, depth);
        }
    }

    /// Analyses every pickle in a stream (several back to back; PyTorch's legacy five; joblib's
    /// inline arrays), then the pickles hidden in their constants.
    fn pickle<S: Source>(
        &mut self,
        src: S,
        len: Option<u64>,
        loc: &Location,
        depth: u32,
        hint: Hint,
    ) -> String {
        let mut reader = Reader::new(src, 0, len, self.limits.pickle.max_inline);
        let mut hook = JoblibHook::default();
        let mut traces: Vec<Trace> = Vec::new();
        let mut trailing = None;
        let mut legacy = Legacy::No;
        let mut expected: Option<u64> = None;
        loop {
            let t = run_one(&mut reader, &self.limits.pickle, &mut hook, 0);
            let stopped = t.end_reason == End::Stop;
            if hint.layout != Layout::Pickles && stopped {
                // Step over the raw record that follows each pickle of PyTorch's tar members.
                match expected {
                    None => {
                        expected = Some(match t.result {
                            Some(Value::Int(n)) if n >= 0 => n as u64,
                            _ => 0,
                        })
                    }
                    Some(_) => {
                        let raw =
                            match hint.layout {
                                Layout::TorchTarStorages => {
                                    let elsize = t
                                        .result
                                        .and_then(|v| t.arena.items(v).get(2).copied())
                                        .and_then(|v| t.arena.as_global(v))
                                        .and_then(|g| storage_element_size(&g.name));
                                    let numel = reader.peek(8).ok().filter(|b| b.len() == 8).map(|b| {
                                        u64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]])
                                    });
                                    match (elsize, numel) {
                                        (Some(s), Some(n)) => n.checked_mul(s).and_then(|b| b.checked_add(8)),
                                        _ => None,
                                    }
                                }
                                _ => reader.peek(4).ok().filter(|b| b.len() == 4).map(|b| {
                                    u64::from(u32::from_le_bytes([b[0], b[1], b[2], b[3]])) * 16 + 16
                                }),
                            };
                        match raw {
                            Some(n) if reader.advance(n).unwrap_or(0) == n => {}
                            _ => {
                                traces.push(t);
                                self.fact(
                                    Fact::new(
                                        "PKL501",
                                        "a PyTorch tar record does not have the size its header gives",
                                    )
                                    .at(reader.position()),
                                    loc,
                                );
                                break;
                            }
                        }
                    }
                }
                let done = expected.is_some_and(|n| traces.len() as u64 >= n);
                traces.push(t);
                if done || reader.at_end().unwrap_or(true) {
                    break;
                }
                continue;
            }
            traces.push(t);
            if traces.len() == 2 {
                legacy = torch::legacy(&traces[0], traces.get(1));
            }
            if legacy != Legacy::No && traces.len() == 5 {
                // What follows is raw tensor storage, read by size and never unpickled.
                break;
            }
            if !stopped || reader.at_end().unwrap_or(true) || self.over_time(loc) {
                break;
            }
            let more = reader.peek(SNIFF_LEN).map(looks_like_pickle).unwrap_or(false);
            if !more || traces.len() >= MAX_PICKLES_PER_STREAM {
                let at = reader.position();
                trailing = Some((at, reader.drain().unwrap_or(0)));
                break;
            }
        }
        let ctx = PickleContext {
            torch: hint.torch || legacy != Legacy::No,
        };
        let mark = self.findings.len();
        if legacy == Legacy::BadMagic {
            self.fact(
                Fact::new(
                    "TRC101",
                    "legacy PyTorch file whose first pickle is not the literal magic number",
                )
                .at(traces[0].start)
                .evidence(
                    traces[0]
                        .result
                        .map(|v| modelward_pickle::render(&traces[0].arena, v))
                        .unwrap_or_default(),
                ),
                loc,
            );
        }
        for t in &traces {
            for f in self.policy.pickle_facts(t, ctx) {
                self.fact(f, loc);
            }
            self.nested(t, loc, depth, hint);
        }
        for f in std::mem::take(&mut hook.facts) {
            self.fact(f, loc);
        }
        if let Some((at, n)) = trailing
            && n > 0
        {
            self.fact(
                Fact::new(
                    "PKL502",
                    format!("{n} bytes follow the last pickle and are not a pickle"),
                )
                .at(at),
                loc,
            );
        }
        // A tensor storage that merely starts like a pickle is noise unless it is a well-formed one.
        if hint.storage
            && !traces
                .iter()
                .all(|t| t.end_reason == End::Stop && !t.events.is_empty())
        {
            self.findings.truncate(mark);
            return "tensor-data".into();
        }
        if legacy != Legacy::No {
            "pytorch-legacy".into()
        } else if hook.arrays > 0 {
            "joblib".into()
        } else {
            "pickle".into()
        }
    }

    fn nested(&mut self, t: &Trace, loc: &Location, depth: u32, hint: Hint) {
        if hint.nested >= self.limits.pickle.max_nested_depth {
            return;
        }
        for c in nested::candidates(&t.arena, self.limits.max_nested) {
            let fed = t.events.iter().any(|e| match e {
                Event::Call { call, .. } => match t.arena.get(*call) {
                    Some(Node::Call(call)) => t.arena.items(call.args).contains(&Value::Node(c.node)),
                    _ => false,
                },
                _ => false,
            });
            let well_formed = {
                let mut probe = Reader::new(
                    &c.data[..],
                    0,
                    Some(c.data.len() as u64),
                    self.limits.pickle.max_inline,
                );
                run_one(
                    &mut probe,
                    &self.limits.pickle,
                    &mut modelward_pickle::NoInline,
                    0,
                )
                .end_reason
                    == End::Stop
            };
            if !(fed || well_formed) {
                continue;
            }
            let name = format!("{} constant @{}", c.encoding, c.offset);
            let nloc = loc.member(name);
            self.fact(
                Fact::new(
                    "PKL401",
                    format!(
                        "a {} constant of {} bytes is a pickle{}",
                        c.encoding,
                        c.data.len(),
                        if fed { " passed to a call" } else { "" }
                    ),
                )
                .at(c.offset),
                loc,
            );
            let data: &[u8] = &c.data;
            self.pickle(
                data,
                Some(data.len() as u64),
                &nloc,
                depth,
                Hint {
                    nested: hint.nested + 1,
                    ..Hint::default()
                },
            );
        }
    }
}
