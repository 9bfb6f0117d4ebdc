//! The recursion at the heart of a scan: sniff content, hand it to the handler of its format,
//! and turn every fact into a finding at its location.
//!
//! This module is only the dispatcher: [`Engine::seekable`] and [`Engine::stream`] match
//! every [`Format`] exhaustively (no wildcard arm, so a format that sniffing learns to
//! recognise cannot be left unscanned without the compiler saying so) and call one handler
//! module per format family. Every handler gets the same small context, the [`Engine`]:
//! [`Engine::fact`] to report, [`Engine::seekable`] / [`Engine::stream`] to recurse into
//! what it contains, [`Engine::limits`] for its budgets. Format knowledge (layouts, headers)
//! lives in `modelward_formats` and `modelward_graphs`, not here.

mod archive;
mod compressed;
mod deep;
mod keras;
mod npy;
mod onnx;
mod pickle;
mod tensorflow;
mod tensors;
mod text;
mod zip;

use crate::limits::ScanLimits;
use modelward_diagnostics::{Fact, Finding, Location};
use modelward_formats::io::{ReadSeek, Window};
use modelward_formats::torch::StreamLayout;
use modelward_formats::{Format, SNIFF_LEN, sniff_len};
use modelward_pickle::{ReadSource, SeekSource, Trace};
use modelward_policy::Policy;
use std::collections::HashMap;
use std::io::{self, Cursor, Read, Seek, SeekFrom};
use std::time::Instant;

/// What the container says about the content being scanned.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Hint {
    /// Inside a PyTorch container.
    pub torch: bool,
    /// A raw tensor storage: PyTorch never unpickles it; only its first bytes are checked.
    pub storage: bool,
    /// How many pickles this content is nested in (constants inside pickles).
    pub nested: u32,
    /// How pickles and raw data alternate in the content.
    pub layout: StreamLayout,
    /// The content is already in memory (no need to slurp it).
    pub in_memory: bool,
}

/// One rule's findings in a file: its code, the findings, and what collectors counted
/// without keeping (how many, and the most severe).
type RuleGroup = (String, Vec<Finding>, Option<(usize, Finding)>);

/// Content up to this size is read once into memory instead of being re-read piecewise.
const SMALL: u64 = 256 * 1024;

/// A pickle stream met during a scan, kept when the caller asked for them
/// (`Scanner::find_pickles`): what `explain` shows is what `scan` judged.
#[derive(Debug)]
pub(crate) struct Found {
    /// Members from the outermost to the innermost (empty: the input itself).
    pub members: Vec<String>,
    /// Where the stream starts in the innermost content (an `.npy` object array: after its
    /// header).
    pub start: u64,
    /// The stream's bytes, up to the end of its last pickle.
    pub data: Vec<u8>,
    /// Judged in a PyTorch context.
    pub torch: bool,
    /// The pickles, as the engine ran them.
    pub traces: Vec<Trace>,
}

/// Largest pickle stream kept for `find_pickles`.
const MAX_FOUND: u64 = 256 << 20;

/// Copies what passes through it, up to [`MAX_FOUND`] (the bytes of a pickle read from a
/// stream).
struct Tee<R> {
    inner: R,
    copy: Vec<u8>,
}

impl<R: Read> Read for Tee<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        let room = (MAX_FOUND as usize).saturating_sub(self.copy.len());
        self.copy.extend_from_slice(&buf[..n.min(room)]);
        Ok(n)
    }
}

fn tee(r: &mut dyn Read) -> Tee<&mut dyn Read> {
    Tee {
        inner: r,
        copy: Vec::new(),
    }
}

/// The context every handler receives.
pub(crate) struct Engine<'a> {
    policy: &'a Policy,
    limits: &'a ScanLimits,
    findings: Vec<Finding>,
    /// Per rule: findings a parser's collector did not keep, and the most severe of them.
    dropped: Vec<(usize, Finding)>,
    members: u64,
    members_reported: bool,
    /// Pickle streams kept for the caller, when asked for.
    found: Option<Vec<Found>>,
    deadline: Instant,
    timed_out: bool,
    /// Tensor bytes read by `--deep` in this file (against `DeepLimits::per_file`).
    deep_spent: u64,
    /// Whether the deep budget ran out (said once).
    deep_exhausted: bool,
    /// The storages each PyTorch pickle references, by the pickle's location (`a!b!data.pkl`).
    storage_refs: HashMap<String, deep::PickleStorages>,
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
            dropped: Vec::new(),
            members: 0,
            members_reported: false,
            found: None,
            deadline: Instant::now() + limits.max_time,
            timed_out: false,
            deep_spent: 0,
            deep_exhausted: false,
            storage_refs: HashMap::new(),
        }
    }

    /// Keeps the pickle streams met (see [`Found`]).
    pub fn keep_pickles(&mut self) {
        self.found = Some(Vec::new());
    }

    /// The pickle streams kept.
    pub fn take_found(&mut self) -> Vec<Found> {
        self.found.take().unwrap_or_default()
    }

    /// Records the pickles of a stream (called by the pickle handler).
    fn found_pickles(&mut self, loc: &Location, torch: bool, traces: Vec<Trace>) {
        if let Some(found) = self.found.as_mut() {
            found.push(Found {
                members: loc.members.clone(),
                start: 0,
                data: Vec::new(),
                torch,
                traces,
            });
        }
    }

    fn found_count(&self) -> usize {
        self.found.as_ref().map_or(0, Vec::len)
    }

    /// Gives the streams recorded since `since` their bytes: `read(start, end)` reads the
    /// stream from `start` up to `end`, the end of its last pickle.
    fn fill_found(&mut self, since: usize, start: u64, mut read: impl FnMut(u64, u64) -> Vec<u8>) {
        if let Some(found) = self.found.as_mut() {
            for f in found.iter_mut().skip(since).filter(|f| f.data.is_empty()) {
                let end = f.traces.iter().map(|t| t.end).max().unwrap_or(0).min(MAX_FOUND);
                f.start = start;
                f.data = read(start, end);
            }
        }
    }

    /// The budgets of this scan.
    pub fn limits(&self) -> &'a ScanLimits {
        self.limits
    }

    /// The one per-rule cap (`max-findings-per-rule`), handed to every parser's collector.
    pub fn cap(&self) -> usize {
        self.limits.max_findings_per_rule.max(1)
    }

    /// The policy, for handlers that judge names themselves (config targets).
    pub fn policy(&self) -> &'a Policy {
        self.policy
    }

    /// The findings, at most [`ScanLimits::max_findings_per_rule`] per rule (the most severe
    /// kept, in scan order otherwise); the rest of a rule, with those the parsers' collectors
    /// already counted, become one finding that counts them, with their highest severity, so
    /// the verdict is unchanged.
    pub fn into_findings(self) -> Vec<Finding> {
        let max = self.cap();
        // Per rule, in order of first appearance: the findings, and what collectors counted.
        let mut by_rule: Vec<RuleGroup> = Vec::new();
        let mut index: HashMap<String, usize> = HashMap::new();
        for f in self.findings {
            let i = *index.entry(f.rule.clone()).or_insert_with(|| {
                by_rule.push((f.rule.clone(), Vec::new(), None));
                by_rule.len() - 1
            });
            by_rule[i].1.push(f);
        }
        for (n, sample) in self.dropped {
            let i = *index.entry(sample.rule.clone()).or_insert_with(|| {
                by_rule.push((sample.rule.clone(), Vec::new(), None));
                by_rule.len() - 1
            });
            by_rule[i].2 = Some((n, sample));
        }
        let mut kept = Vec::new();
        for (_, mut group, counted) in by_rule {
            if group.len() > max || counted.is_some() {
                // Stable: scan order among equally severe findings.
                group.sort_by_key(|f| std::cmp::Reverse(f.severity));
                let mut rest = group.split_off(max.min(group.len()));
                let mut count = rest.len();
                if let Some((n, sample)) = counted {
                    count += n;
                    // After the listed ones of equal severity: the collector saw it later.
                    let at = rest
                        .iter()
                        .position(|f| f.severity < sample.severity)
                        .unwrap_or(rest.len());
                    rest.insert(at, sample);
                }
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

    /// Reports a fact at a location (the policy decides whether and how it is a finding).
    pub fn fact(&mut self, fact: Fact, loc: &Location) {
        let more = fact.more;
        if let Some(f) = self.policy.finding(fact, loc) {
            if more == 0 {
                self.findings.push(f);
            } else if let Some(d) = self.dropped.iter_mut().find(|d| d.1.rule == f.rule) {
                d.0 += more;
                if f.severity > d.1.severity {
                    d.1 = f;
                }
            } else {
                self.dropped.push((more, f));
            }
        }
    }

    /// Facts from a parser, all at one location.
    pub fn facts(&mut self, facts: impl IntoIterator<Item = Fact>, loc: &Location) {
        for f in facts {
            self.fact(f, loc);
        }
    }

    /// How many findings so far (a handler may take back what it found, see `truncate`).
    fn mark(&self) -> usize {
        self.findings.len()
    }

    fn truncate(&mut self, mark: usize) {
        self.findings.truncate(mark);
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

    /// Counts one archive member against the budget of all archives together.
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

    /// Scans seekable content occupying `[0, len)` of `r`. Returns its format.
    pub fn seekable(
        &mut self,
        r: &mut dyn ReadSeek,
        len: u64,
        loc: &Location,
        depth: u32,
        hint: Hint,
    ) -> Format {
        if self.too_deep(depth, loc) || self.over_time(loc) {
            return Format::Unknown;
        }
        if !hint.in_memory && !hint.storage && len <= SMALL {
            let mut data = Vec::with_capacity(len as usize);
            if let Err(e) = r
                .seek(SeekFrom::Start(0))
                .and_then(|_| r.take(len).read_to_end(&mut data))
            {
                self.unreadable(loc, e);
                return Format::Unknown;
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
                return Format::Unknown;
            }
        };
        let format = sniff_len(&head, Some(len));
        if hint.storage && format != Format::Pickle && !matches!(format, Format::Zip | Format::SevenZip) {
            return Format::TensorData;
        }
        // Forward-only handlers read the content from its start.
        macro_rules! from_start {
            ($f:expr) => {{
                if let Err(e) = r.seek(SeekFrom::Start(0)) {
                    self.unreadable(loc, e);
                    return format;
                }
                $f
            }};
        }
        match format {
            Format::Zip | Format::PytorchZip | Format::TorchScript | Format::Keras | Format::Npz => {
                zip::scan(self, r, len, loc, depth)
            }
            Format::SevenZip => archive::sevenz(self, r, loc, depth),
            Format::Tar => from_start!({
                archive::tar(self, &mut Window::new(r, 0, len), loc, depth, hint);
                format
            }),
            Format::Gzip
            | Format::Bzip2
            | Format::Xz
            | Format::Lzma
            | Format::Zstd
            | Format::Lz4
            | Format::Zlib => from_start!({
                compressed::decompress(self, format, &mut Window::new(r, 0, len), loc, depth, hint);
                format
            }),
            Format::JoblibZfile => from_start!({
                compressed::joblib_zfile(self, &mut Window::new(r, 0, len), loc, depth, hint);
                format
            }),
            Format::Npy => npy::seekable(self, r, len, &head, loc, depth, hint),
            Format::Pickle | Format::PytorchLegacy | Format::Joblib => {
                if let Err(e) = r.seek(SeekFrom::Start(0)) {
                    self.unreadable(loc, e);
                    return Format::Pickle;
                }
                let since = self.found_count();
                let found = pickle::scan(
                    self,
                    SeekSource::new(&mut *r, 0, len),
                    Some(len),
                    loc,
                    depth,
                    hint,
                );
                self.fill_found(since, 0, |start, end| {
                    read_at(r, start, usize::try_from(end).unwrap_or(0)).unwrap_or_default()
                });
                zip::polyglot(self, r, len, loc, depth);
                found
            }
            Format::Safetensors => tensors::safetensors(self, r, len, loc),
            Format::Gguf => tensors::gguf(self, r, len, loc),
            Format::Text | Format::Json | Format::Python | Format::Jinja | Format::YamlConfig => {
                if let Err(e) = r.seek(SeekFrom::Start(0)) {
                    self.unreadable(loc, e);
                    return Format::Text;
                }
                text::scan(self, r, loc)
            }
            Format::Hdf5 => keras::hdf5(self, r, len, loc),
            Format::Onnx | Format::Protobuf => onnx::scan(self, r, len, loc),
            Format::SavedModel => tensorflow::saved_model(self, r, len, loc),
            Format::KerasMetadata => match tensorflow::keras_metadata(self, r, len, loc) {
                Some(found) => found,
                None => self.unknown(r, len, loc, depth),
            },
            Format::TensorData => Format::TensorData,
            Format::Unknown => self.unknown(r, len, loc, depth),
        }
    }

    /// Content nothing recognised: a zip with something before it (a self-extractor) is still
    /// a zip to zip readers.
    fn unknown(&mut self, r: &mut dyn ReadSeek, len: u64, loc: &Location, depth: u32) -> Format {
        if modelward_formats::zip::has_end_record(r, len).unwrap_or(false) {
            zip::scan(self, r, len, loc, depth)
        } else {
            Format::Unknown
        }
    }

    /// Scans forward-only content (a decompressed stream, a tar or 7z member). Formats that
    /// need random access are spooled and scanned as seekable content.
    pub fn stream(&mut self, r: &mut dyn Read, loc: &Location, depth: u32, hint: Hint) -> Format {
        if self.too_deep(depth, loc) || self.over_time(loc) {
            return Format::Unknown;
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
                return Format::Unknown;
            }
        };
        let format = sniff_len(&head, None);
        if hint.storage && format != Format::Pickle && !matches!(format, Format::Zip | Format::SevenZip) {
            return Format::TensorData;
        }
        let mut chained = Cursor::new(head).chain(r);
        match format {
            Format::Unknown => Format::Unknown,
            Format::Text | Format::Json | Format::Python | Format::Jinja | Format::YamlConfig => {
                text::scan(self, &mut chained, loc)
            }
            Format::Pickle | Format::PytorchLegacy | Format::Joblib => {
                if self.found.is_none() {
                    return pickle::scan(self, ReadSource(&mut chained), None, loc, depth, hint);
                }
                let since = self.found_count();
                let mut tee = tee(&mut chained);
                let found = pickle::scan(self, ReadSource(&mut tee), None, loc, depth, hint);
                let copy = tee.copy;
                self.fill_found(since, 0, |_, end| copy[..copy.len().min(end as usize)].to_vec());
                found
            }
            Format::Tar => {
                archive::tar(self, &mut chained, loc, depth, hint);
                format
            }
            Format::Gzip
            | Format::Bzip2
            | Format::Xz
            | Format::Lzma
            | Format::Zstd
            | Format::Lz4
            | Format::Zlib => {
                compressed::decompress(self, format, &mut chained, loc, depth, hint);
                format
            }
            Format::JoblibZfile => {
                compressed::joblib_zfile(self, &mut chained, loc, depth, hint);
                format
            }
            Format::Npy => {
                npy::stream(self, &mut chained, loc, depth, hint);
                format
            }
            Format::Zip
            | Format::PytorchZip
            | Format::TorchScript
            | Format::Keras
            | Format::Npz
            | Format::SevenZip
            | Format::Safetensors
            | Format::Gguf
            | Format::Hdf5
            | Format::Onnx
            | Format::Protobuf
            | Format::SavedModel
            | Format::KerasMetadata => self.spool(&mut chained, loc, depth),
            Format::TensorData => Format::TensorData,
        }
    }

    /// Copies a stream to a temporary file (memory up to 8 MiB) to scan it with random access.
    fn spool(&mut self, r: &mut dyn Read, loc: &Location, depth: u32) -> Format {
        let mut file = tempfile::SpooledTempFile::new(8 << 20);
        let copied = match io::copy(&mut r.take(self.limits.max_spool + 1), &mut file) {
            Ok(n) => n,
            Err(e) => {
                self.unreadable(loc, e);
                return Format::Unknown;
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
            return Format::Unknown;
        }
        if file.seek(SeekFrom::Start(0)).is_err() {
            return Format::Unknown;
        }
        self.seekable(&mut file, copied, loc, depth, Hint::default())
    }

    /// A whole protobuf model in memory (protobuf has no random access), at most
    /// `MAX_PROTOBUF` bytes; `over` is the format reported when it is larger.
    fn protobuf(
        &mut self,
        r: &mut dyn ReadSeek,
        len: u64,
        loc: &Location,
        over: Format,
    ) -> Result<Vec<u8>, Format> {
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
            return Err(over);
        }
        let mut data = Vec::with_capacity(len as usize);
        if let Err(e) = r
            .seek(SeekFrom::Start(0))
            .and_then(|_| r.take(len).read_to_end(&mut data))
        {
            self.unreadable(loc, e);
            return Err(Format::Unknown);
        }
        Ok(data)
    }
}

/// Largest protobuf model read whole: SavedModel and Keras metadata always (protobuf has no
/// random access), ONNX only when its wire walk (which seeks over tensor payloads) fails.
const MAX_PROTOBUF: u64 = 256 << 20;
