//! Converting pickle-based checkpoints to safetensors without running Python.
//!
//! Inputs: PyTorch zip checkpoints, PyTorch's legacy (non-zip) format, numpy `.npy` and `.npz`.
//! A checkpoint is converted only when its pickle does nothing but build tensors and plain
//! containers. One pass over the pickle's instructions feeds both the symbolic machine of
//! `modelward_pickle`, whose trace the modelward policy judges (the same analysis as
//! `modelward scan`: any finding above info refuses), and the converter's own interpreter, a
//! strict allowlist (`collections.OrderedDict`, PyTorch's tensor rebuild functions, storage
//! classes, dtypes, `torch.Size`, `torch.device`, `_codecs.encode` for `bytes`) that also
//! keeps the values the trace does not (the entries SETITEMS writes into an `OrderedDict()`).
//! The allowlist is applied to the trace as well. Anything outside it is a refusal that names
//! what was found; nothing is imported or executed, and nothing is written.
//!
//! The conversion streams: the header is computed from the pickle alone (names, dtypes,
//! shapes, offsets), written first, then each tensor's bytes are copied from its storage
//! record in bounded chunks (contiguous runs straight through; strided views a chunk of output
//! at a time, reading the source in offset order). Memory stays bounded (about 20-30 MiB)
//! whatever the model's size.
//!
//! Tensors that share a storage (tied weights, views) are each written in full: safetensors
//! has no aliasing, and a file where every name is a complete tensor loads with any reader
//! (`safetensors`' own converter instead drops all but one name of identical aliases and
//! refuses partial views).
//!
//! ```no_run
//! use modelward_convert::{Options, convert};
//! let report = convert("model.pt".as_ref(), "model.safetensors".as_ref(), &Options::default())?;
//! println!("{} tensors", report.tensors.len());
//! # Ok::<(), modelward_convert::ConvertError>(())
//! ```
#![forbid(unsafe_code)]

mod copy;
pub mod dtype;
mod interp;
mod numpy;
mod plan;
mod torch;
mod verify;

pub use dtype::Dtype;
pub use plan::Dropped;
pub use verify::{SafetensorsHeader, TensorEntry, VerifyReport, read_header};

use copy::{At, CHUNK, Sources};
use modelward_diagnostics::{Finding, Location, Severity};
use modelward_formats::{Format, compress, sniff, zip};
use modelward_policy::{PickleContext, Policy};
use plan::{Region, RegionSrc, TensorPlan};
use std::collections::BTreeMap;
use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// What was read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceFormat {
    /// `torch.save` (zip).
    TorchZip,
    /// `torch.save(..., _use_new_zipfile_serialization=False)`.
    TorchLegacy,
    /// `numpy.save`.
    Npy,
    /// `numpy.savez` / `savez_compressed`.
    Npz,
}

impl SourceFormat {
    /// A short name.
    pub fn name(self) -> &'static str {
        match self {
            SourceFormat::TorchZip => "pytorch-zip",
            SourceFormat::TorchLegacy => "pytorch-legacy",
            SourceFormat::Npy => "numpy-npy",
            SourceFormat::Npz => "numpy-npz",
        }
    }
}

impl fmt::Display for SourceFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Why a conversion did not happen.
#[derive(Debug, thiserror::Error)]
pub enum ConvertError {
    /// The input does more than build tensors: the findings and reasons say what.
    #[error("refused to convert {path}: {}", refusal_summary(findings, reasons))]
    Refused {
        /// The input.
        path: String,
        /// The policy's findings (the same as `modelward scan` reports).
        findings: Vec<Finding>,
        /// What the converter's allowlist rejected.
        reasons: Vec<String>,
    },
    /// A well-formed input the converter cannot express in safetensors.
    #[error("cannot convert {path}: {message}")]
    Unsupported {
        /// The input.
        path: String,
        /// What.
        message: String,
    },
    /// An input that is inconsistent (PyTorch itself would fail to load it).
    #[error("cannot convert {path}: malformed input: {message}")]
    Malformed {
        /// The input.
        path: String,
        /// What.
        message: String,
    },
    /// Reading or writing failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The error.
        #[source]
        source: io::Error,
    },
    /// The output does not hold what the source holds.
    #[error("verification of {path} failed: {message}")]
    Verify {
        /// The output.
        path: String,
        /// What differs.
        message: String,
    },
    /// Arguments that cannot work (output exists, output is the input).
    #[error("{0}")]
    Usage(String),
}

fn refusal_summary(findings: &[Finding], reasons: &[String]) -> String {
    let mut parts: Vec<String> = findings
        .iter()
        .map(|f| format!("{} {} {}: {}", f.severity, f.rule, f.location, f.message))
        .collect();
    parts.extend(reasons.iter().cloned());
    if parts.is_empty() {
        parts.push("it does more than build tensors".into());
    }
    parts.join("; ")
}

/// Conversion settings.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Name of a tensor saved on its own (`torch.save(tensor)`, a `.npy`); default: the
    /// input's file stem.
    pub root_name: Option<String>,
    /// Re-read the output and compare every tensor with the source.
    pub verify: bool,
    /// Replace an existing output.
    pub overwrite: bool,
}

/// A tensor in the output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TensorInfo {
    /// Dotted name.
    pub name: String,
    /// Element type.
    pub dtype: Dtype,
    /// Shape.
    pub shape: Vec<u64>,
    /// Byte range in the data section.
    pub data_offsets: (u64, u64),
    /// Where the bytes come from (`archive/data/3`).
    pub source: String,
    /// Byte offset of element 0 within the source.
    pub source_offset: u64,
    /// Whether the source is a strided (non-contiguous) view.
    pub strided: bool,
    /// Whether the bytes were byte-swapped.
    pub swapped: bool,
}

/// What reading and judging an input produced: everything needed to write the output.
#[derive(Debug)]
pub struct Plan {
    input: PathBuf,
    format: SourceFormat,
    regions: Vec<Region>,
    tensors: Vec<TensorPlan>,
    metadata: BTreeMap<String, String>,
    dropped: Vec<Dropped>,
    notes: Vec<String>,
    header: Vec<u8>,
    data_len: u64,
}

/// What a conversion did.
#[derive(Debug, Clone)]
pub struct Report {
    /// The input.
    pub input: PathBuf,
    /// The output.
    pub output: PathBuf,
    /// The input's format.
    pub format: SourceFormat,
    /// Tensors written, in file order.
    pub tensors: Vec<TensorInfo>,
    /// `__metadata__` written.
    pub metadata: BTreeMap<String, String>,
    /// Values not written.
    pub dropped: Vec<Dropped>,
    /// Things worth knowing (shared storages, byte order, ignored members).
    pub notes: Vec<String>,
    /// Bytes of the 8-byte length plus the header.
    pub header_bytes: u64,
    /// Bytes of tensor data.
    pub data_bytes: u64,
    /// The verification, when asked for.
    pub verified: Option<VerifyReport>,
}

/// Collects findings and reasons while an input is judged.
pub(crate) struct Judge<'p> {
    policy: &'p Policy,
    path: String,
    base: Location,
    findings: Vec<Finding>,
    reasons: Vec<String>,
}

impl<'p> Judge<'p> {
    fn new(policy: &'p Policy, path: &Path) -> Judge<'p> {
        let p = path.display().to_string();
        Judge {
            policy,
            base: Location::file(p.clone()),
            path: p,
            findings: Vec::new(),
            reasons: Vec::new(),
        }
    }

    /// Runs the policy over a pickle's trace; `member` names the zip member that holds it
    /// (`None`: offsets are in the file itself).
    pub(crate) fn pickle(&mut self, t: &modelward_pickle::Trace, member: Option<&str>, ctx: PickleContext) {
        let loc = match member {
            Some(m) => self.base.member(m),
            None => self.base.clone(),
        };
        for f in self.policy.pickle_facts(t, ctx) {
            if let Some(f) = self.policy.finding(f, &loc)
                && f.severity > Severity::Info
            {
                self.findings.push(f);
            }
        }
    }

    /// Adds a container fact (zip anomalies).
    pub(crate) fn fact(&mut self, f: modelward_diagnostics::Fact) {
        if let Some(f) = self.policy.finding(f, &self.base)
            && f.severity > Severity::Info
        {
            self.findings.push(f);
        }
    }

    pub(crate) fn reason(&mut self, r: impl Into<String>) {
        let r = r.into();
        if !self.reasons.contains(&r) {
            self.reasons.push(r);
        }
    }

    /// Refuses now if anything was found.
    pub(crate) fn check(&mut self) -> Result<(), ConvertError> {
        if self.findings.is_empty() && self.reasons.is_empty() {
            Ok(())
        } else {
            self.refused()
        }
    }

    pub(crate) fn refused<T>(&mut self) -> Result<T, ConvertError> {
        Err(ConvertError::Refused {
            path: self.path.clone(),
            findings: std::mem::take(&mut self.findings),
            reasons: std::mem::take(&mut self.reasons),
        })
    }

    pub(crate) fn malformed(&self, m: impl Into<String>) -> ConvertError {
        ConvertError::Malformed {
            path: self.path.clone(),
            message: m.into(),
        }
    }

    pub(crate) fn unsupported(&self, m: impl Into<String>) -> ConvertError {
        ConvertError::Unsupported {
            path: self.path.clone(),
            message: m.into(),
        }
    }

    pub(crate) fn io(&self, e: io::Error) -> ConvertError {
        ConvertError::Io {
            path: self.path.clone(),
            source: e,
        }
    }
}

/// An input read and judged.
#[derive(Debug)]
pub(crate) struct Loaded {
    pub format: SourceFormat,
    pub regions: Vec<Region>,
    pub tensors: Vec<TensorPlan>,
    pub metadata: BTreeMap<String, String>,
    pub dropped: Vec<Dropped>,
    pub notes: Vec<String>,
}

fn io_err(path: &Path) -> impl Fn(io::Error) -> ConvertError + '_ {
    move |source| ConvertError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// The default output: the input with its extension replaced by `.safetensors`.
pub fn default_output(input: &Path) -> PathBuf {
    input.with_extension("safetensors")
}

impl Plan {
    /// Reads and judges an input, and lays out the output. Refuses (with the findings) any
    /// input whose pickle does more than build tensors and plain containers.
    pub fn open(input: &Path, opts: &Options) -> Result<Plan, ConvertError> {
        let policy = Policy::builtin();
        let mut judge = Judge::new(&policy, input);
        let mut file = File::open(input).map_err(io_err(input))?;
        let len = file.metadata().map_err(io_err(input))?.len();
        let mut head = Vec::new();
        (&mut file)
            .take(modelward_formats::SNIFF_LEN as u64)
            .read_to_end(&mut head)
            .map_err(io_err(input))?;
        let root_name = opts.root_name.clone().unwrap_or_else(|| {
            input
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_else(|| "tensor".into())
        });
        let loaded = match sniff(&head) {
            Format::Zip => {
                let listing = zip::list(&mut file, len, zip::ZipLimits::default())
                    .map_err(|e| judge.malformed(e.to_string()))?;
                for f in listing.facts.clone() {
                    judge.fact(f);
                }
                let layout = modelward_formats::torch::TorchLayout::of(&listing.entries);
                if layout.is_torch() {
                    // Zip anomalies join the pickle's findings in one refusal.
                    torch::load_zip(&mut file, len, &listing, &mut judge, &root_name)?
                } else if listing.entries.iter().any(|e| e.name.ends_with(".npy")) {
                    judge.check()?;
                    numpy::load_npz(&mut file, len, &listing, &mut judge)?
                } else {
                    return Err(judge
                        .unsupported("a zip archive that is neither a PyTorch checkpoint nor a numpy .npz"));
                }
            }
            Format::Pickle => torch::load_legacy(&mut file, len, &mut judge, &root_name)?,
            Format::Npy => numpy::load_npy(&mut file, len, &mut judge, &root_name)?,
            Format::Tar => {
                return Err(judge.unsupported(
                    "PyTorch's pre-1.0 tar checkpoint format is not supported; load and re-save it with a current PyTorch in a sandbox",
                ));
            }
            other => {
                return Err(judge.unsupported(format!(
                    "{other} content; only PyTorch checkpoints (zip or legacy) and numpy .npy/.npz are converted"
                )));
            }
        };
        Plan::from_loaded(input, loaded).map_err(|m| judge.unsupported(m))
    }

    fn from_loaded(input: &Path, l: Loaded) -> Result<Plan, String> {
        let Loaded {
            format,
            regions,
            mut tensors,
            metadata,
            dropped,
            mut notes,
        } = l;
        let data_len = plan::layout(&mut tensors);
        let header = plan::header(&tensors, &metadata)?;
        // Tensors whose source bytes overlap another tensor's: written in full each.
        let mut spans: Vec<(usize, u64, u64, &str)> = tensors
            .iter()
            .filter(|t| t.numel() > 0)
            .map(|t| {
                let (a, b) = t.extent();
                (t.region, a, b, t.name.as_str())
            })
            .collect();
        spans.sort();
        let mut shared = std::collections::BTreeSet::new();
        let mut reach: Option<(usize, u64, &str)> = None;
        for &(r, a, b, name) in &spans {
            if let Some((rr, end, prev)) = reach
                && rr == r
                && a < end
            {
                shared.insert(prev.to_owned());
                shared.insert(name.to_owned());
            }
            match reach {
                Some((rr, end, _)) if rr == r && end >= b => {}
                _ => reach = Some((r, b, name)),
            }
        }
        if !shared.is_empty() {
            let list: Vec<String> = shared.into_iter().collect();
            notes.push(format!(
                "{} tensors share storage bytes with another ({}); each was written in full, as safetensors has no aliasing",
                list.len(),
                abbreviate(&list, 8)
            ));
        }
        Ok(Plan {
            input: input.to_owned(),
            format,
            regions,
            tensors,
            metadata,
            dropped,
            notes,
            header,
            data_len,
        })
    }

    /// The input's format.
    pub fn format(&self) -> SourceFormat {
        self.format
    }

    /// The tensors, in output order.
    pub fn tensors(&self) -> Vec<TensorInfo> {
        self.tensors
            .iter()
            .map(|t| TensorInfo {
                name: t.name.clone(),
                dtype: t.dtype,
                shape: t.shape.clone(),
                data_offsets: (t.begin, t.end),
                source: self.regions[t.region].label.clone(),
                source_offset: t.byte_offset,
                strided: !t.is_c_contiguous(),
                swapped: t.swap,
            })
            .collect()
    }

    /// `__metadata__`.
    pub fn metadata(&self) -> &BTreeMap<String, String> {
        &self.metadata
    }

    /// Values not written.
    pub fn dropped(&self) -> &[Dropped] {
        &self.dropped
    }

    /// Notes.
    pub fn notes(&self) -> &[String] {
        &self.notes
    }

    /// The header JSON (padded).
    pub fn header_json(&self) -> &[u8] {
        &self.header
    }

    /// Bytes of tensor data the output holds.
    pub fn data_len(&self) -> u64 {
        self.data_len
    }

    /// Opens the source regions: the input, and scratch files for compressed members placed
    /// beside `scratch_for` (removed when the returned guard drops). Decompressed members'
    /// CRC-32s are checked on the way; mismatches are returned.
    fn open_sources(
        &self,
        scratch_for: &Path,
    ) -> Result<(Sources, Vec<At>, Scratch, Vec<String>), ConvertError> {
        let mut crc_mismatches = Vec::new();
        let input = File::open(&self.input).map_err(io_err(&self.input))?;
        let mut files = vec![input];
        let mut scratch = Scratch(Vec::new());
        let mut ats = Vec::with_capacity(self.regions.len());
        for (i, r) in self.regions.iter().enumerate() {
            match &r.src {
                RegionSrc::Input(start) => ats.push(At {
                    file: 0,
                    start: *start,
                    len: r.len,
                }),
                RegionSrc::Member(e) => {
                    let p = scratch_path(scratch_for, i);
                    let mut out = OpenOptions::new()
                        .read(true)
                        .write(true)
                        .create_new(true)
                        .open(&p)
                        .map_err(io_err(&p))?;
                    scratch.0.push(p.clone());
                    let in_len = files[0].metadata().map_err(io_err(&self.input))?.len();
                    let (got, crc) = {
                        let raw = zip::raw_member(&mut files[0], e, in_len).ok_or_else(|| {
                            ConvertError::Malformed {
                                path: self.input.display().to_string(),
                                message: format!("{} lies outside the file", e.name),
                            }
                        })?;
                        let dec = compress::zip_method(e.method, raw)
                            .ok_or_else(|| ConvertError::Unsupported {
                                path: self.input.display().to_string(),
                                message: format!("{} uses compression method {}", e.name, e.method),
                            })?
                            .map_err(io_err(&self.input))?;
                        let mut dec = zip::CrcReader::new(dec.take(r.len));
                        let got = io::copy(&mut dec, &mut out).map_err(io_err(&self.input))?;
                        (got, dec.crc32())
                    };
                    if let Some(want) = r.crc32
                        && crc != want
                    {
                        crc_mismatches.push(crc_message(&r.label, want, crc));
                    }
                    if got != r.len {
                        return Err(ConvertError::Malformed {
                            path: self.input.display().to_string(),
                            message: format!(
                                "{} decompresses to {got} bytes, not the {} its header declares",
                                e.name, r.len
                            ),
                        });
                    }
                    out.seek(SeekFrom::Start(0)).map_err(io_err(&p))?;
                    files.push(out);
                    ats.push(At {
                        file: files.len() - 1,
                        start: 0,
                        len: r.len,
                    });
                }
            }
        }
        Ok((Sources::new(files), ats, scratch, crc_mismatches))
    }

    /// Writes the safetensors file: header first, then every tensor's bytes in one pass, in
    /// bounded chunks. The output appears under its name only when complete (and verified,
    /// when asked).
    pub fn write(&self, output: &Path, opts: &Options) -> Result<Report, ConvertError> {
        if same_file(&self.input, output) {
            return Err(ConvertError::Usage(format!(
                "the output {} is the input",
                output.display()
            )));
        }
        if output.exists() && !opts.overwrite {
            return Err(ConvertError::Usage(format!(
                "{} exists; pass --force to replace it",
                output.display()
            )));
        }
        let partial = sibling(output, ".partial");
        let result = self.write_to(&partial, output, opts);
        if result.is_err() {
            let _ = fs::remove_file(&partial);
        }
        result
    }

    fn write_to(&self, partial: &Path, output: &Path, opts: &Options) -> Result<Report, ConvertError> {
        let (mut src, ats, _scratch, crc_mismatches) = self.open_sources(output)?;
        let mut out = File::create(partial).map_err(io_err(partial))?;
        out.write_all(&(self.header.len() as u64).to_le_bytes())
            .and_then(|()| out.write_all(&self.header))
            .map_err(io_err(partial))?;
        let mut buf = Vec::with_capacity(CHUNK);
        let mut written = 0u64;
        for t in &self.tensors {
            let mut n = 0u64;
            copy::emit(&mut src, ats[t.region], t, &mut buf, &mut |b| {
                n += b.len() as u64;
                out.write_all(b)
            })
            .map_err(|e| ConvertError::Io {
                path: format!(
                    "{} ({} from {})",
                    self.input.display(),
                    t.name,
                    self.regions[t.region].label
                ),
                source: e,
            })?;
            if n != t.nbytes() {
                return Err(ConvertError::Malformed {
                    path: self.input.display().to_string(),
                    message: format!("{} produced {n} bytes, not {}", t.name, t.nbytes()),
                });
            }
            written += n;
        }
        out.sync_all().map_err(io_err(partial))?;
        drop(out);
        drop(src);
        let verified = if opts.verify {
            Some(self.verify_file(partial, output)?)
        } else {
            None
        };
        if opts.overwrite && output.exists() {
            fs::remove_file(output).map_err(io_err(output))?;
        }
        fs::rename(partial, output).map_err(io_err(output))?;
        Ok(Report {
            input: self.input.clone(),
            output: output.to_owned(),
            format: self.format,
            tensors: self.tensors(),
            metadata: self.metadata.clone(),
            dropped: self.dropped.clone(),
            notes: self.notes.iter().cloned().chain(crc_mismatches).collect(),
            header_bytes: 8 + self.header.len() as u64,
            data_bytes: written,
            verified,
        })
    }

    /// Re-reads a safetensors file and checks it holds exactly this plan's tensors (names,
    /// dtypes, shapes, metadata) with bytes equal to the source's, compared chunk by chunk.
    /// The source bytes are gathered again by a separate, element-by-element path.
    pub fn verify(&self, output: &Path) -> Result<VerifyReport, ConvertError> {
        self.verify_file(output, output)
    }

    fn verify_file(&self, path: &Path, shown: &Path) -> Result<VerifyReport, ConvertError> {
        verify::verify(self, path, shown)
    }
}

/// Reads, judges and converts `input` to the safetensors file `output`.
pub fn convert(input: &Path, output: &Path, opts: &Options) -> Result<Report, ConvertError> {
    Plan::open(input, opts)?.write(output, opts)
}

/// Checks an existing safetensors file against the input it was converted from.
pub fn verify(input: &Path, output: &Path, opts: &Options) -> Result<VerifyReport, ConvertError> {
    Plan::open(input, opts)?.verify(output)
}

/// Scratch files, removed on drop.
struct Scratch(Vec<PathBuf>);

impl Drop for Scratch {
    fn drop(&mut self) {
        for p in &self.0 {
            let _ = fs::remove_file(p);
        }
    }
}

pub(crate) fn crc_message(label: &str, want: u32, got: u32) -> String {
    format!(
        "{label}: the zip records CRC-32 {want:08x} but the bytes have {got:08x}; the checkpoint was damaged or edited after it was written (PyTorch loads it regardless; the output holds the bytes as they are)"
    )
}

fn sibling(p: &Path, suffix: &str) -> PathBuf {
    let mut s = p.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

fn scratch_path(output: &Path, i: usize) -> PathBuf {
    sibling(output, &format!(".scratch-{}-{i}", std::process::id()))
}

fn same_file(a: &Path, b: &Path) -> bool {
    match (fs::canonicalize(a), fs::canonicalize(b)) {
        (Ok(x), Ok(y)) => x == y,
        _ => false,
    }
}

fn abbreviate(items: &[String], n: usize) -> String {
    if items.len() <= n {
        items.join(", ")
    } else {
        format!("{}, … {} more", items[..n].join(", "), items.len() - n)
    }
}
