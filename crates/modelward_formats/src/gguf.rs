//! GGUF (llama.cpp / ggml): a header, a table of typed metadata key/value pairs, tensor infos,
//! then aligned tensor data.
//!
//! Two things can go wrong with a GGUF file. Its chat templates (`tokenizer.chat_template`
//! and the named `tokenizer.chat_template.<name>` variants) are Jinja2 and are collected here
//! for [`crate::template::analyse`]. And its counts, lengths, dims and offsets feed native
//! parsers with a history of heap overflows (CVE-2024-25664..25668) and out-of-bounds reads
//! ("Bleeding Llama"): [`check`] checks every one against the real file size before use and
//! reports the impossible ones. It reads the metadata and tensor infos through a buffered reader
//! and never the tensor data. Version 1 uses 32-bit lengths and counts, versions 2 and 3 64-bit
//! ones; big-endian files (same magic, byte-swapped version) are read too.
//!
//! Vocab-only files have no tensors and may end before the aligned data offset: that is normal.

use crate::io::ReadSeek;
use crate::json::clip;
use modelward_diagnostics::Fact;
use std::collections::HashSet;
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom};

/// Most metadata entries read (real files have tens; arrays count as one).
pub const MAX_KV: u64 = 1 << 20;
/// Most tensor infos read (large MoE models have tens of thousands).
pub const MAX_TENSORS: u64 = 1 << 20;
/// Longest metadata key read (ggml keys are short dotted names).
pub const MAX_KEY_LEN: u64 = 1 << 16;
/// Longest chat template collected (real ones are 0.3 to 12 KB).
pub const MAX_TEMPLATE: u64 = 1 << 20;
/// Deepest nesting of arrays inside arrays.
pub const MAX_ARRAY_DEPTH: u32 = 4;
/// Most bytes pulled from the input for metadata and tensor infos (the largest real vocabularies
/// take a few MiB).
pub const MAX_METADATA_READ: u64 = 256 << 20;
/// ggml's `GGML_MAX_DIMS`.
pub const GGML_MAX_DIMS: u32 = 4;
/// ggml's `GGML_MAX_NAME`: tensor names must be shorter.
pub const GGML_MAX_NAME: u64 = 64;
/// The alignment when `general.alignment` is absent.
pub const DEFAULT_ALIGNMENT: u64 = 32;
/// Facts of one rule reported per file before the rest are summarised in one more fact.
pub const MAX_REPORTED: usize = 16;
/// Buffer of the reader.
const BUF: usize = 64 * 1024;
/// Bytes of a tensor name kept for reports.
const NAME_SHOWN: u64 = 256;

/// What [`check`] found.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct GgufReport {
    /// Structural findings; empty for a well-formed file.
    pub facts: Vec<Fact>,
    /// Format version (1 to 3), 0 when the header is unreadable.
    pub version: u32,
    /// Tensor count as written.
    pub tensor_count: u64,
    /// Metadata entry count as written.
    pub kv_count: u64,
    /// `(key, template, file offset of the template text)` for `tokenizer.chat_template` and
    /// every `tokenizer.chat_template.<name>` string (lossily decoded as UTF-8).
    pub chat_templates: Vec<(String, String, u64)>,
    /// Offset of the tensor data section, when the tensor infos were read.
    pub data_offset: Option<u64>,
    /// The alignment in force.
    pub alignment: u64,
    /// Whether the file is big-endian.
    pub big_endian: bool,
}

/// Whether `head` starts like a GGUF file: magic `GGUF` and a version 1 to 3 (either byte order).
pub fn looks_like(head: &[u8]) -> bool {
    version_of(head).is_some()
}

fn version_of(head: &[u8]) -> Option<(u32, bool)> {
    let v = head.get(4..8)?;
    if &head[..4] != b"GGUF" {
        return None;
    }
    let arr = [v[0], v[1], v[2], v[3]];
    let le = u32::from_le_bytes(arr);
    let be = u32::from_be_bytes(arr);
    if (1..=3).contains(&le) {
        Some((le, false))
    } else if (1..=3).contains(&be) {
        Some((be, true))
    } else {
        None
    }
}

// Metadata value types.
const T_STRING: u32 = 8;
const T_ARRAY: u32 = 9;
const T_UINT32: u32 = 4;

fn value_type_name(t: u32) -> &'static str {
    match t {
        0 => "UINT8",
        1 => "INT8",
        2 => "UINT16",
        3 => "INT16",
        4 => "UINT32",
        5 => "INT32",
        6 => "FLOAT32",
        7 => "BOOL",
        8 => "STRING",
        9 => "ARRAY",
        10 => "UINT64",
        11 => "INT64",
        12 => "FLOAT64",
        _ => "unknown",
    }
}

fn fixed_size(t: u32) -> Option<u64> {
    match t {
        0 | 1 | 7 => Some(1),
        2 | 3 => Some(2),
        4..=6 => Some(4),
        10..=12 => Some(8),
        _ => None,
    }
}

/// `(name, elements per block, bytes per block)` of a ggml tensor type (gguf-py 0.19
/// `GGML_QUANT_SIZES`).
pub fn ggml_type(t: u32) -> Option<(&'static str, u64, u64)> {
    Some(match t {
        0 => ("F32", 1, 4),
        1 => ("F16", 1, 2),
        2 => ("Q4_0", 32, 18),
        3 => ("Q4_1", 32, 20),
        6 => ("Q5_0", 32, 22),
        7 => ("Q5_1", 32, 24),
        8 => ("Q8_0", 32, 34),
        9 => ("Q8_1", 32, 40),
        10 => ("Q2_K", 256, 84),
        11 => ("Q3_K", 256, 110),
        12 => ("Q4_K", 256, 144),
        13 => ("Q5_K", 256, 176),
        14 => ("Q6_K", 256, 210),
        15 => ("Q8_K", 256, 292),
        16 => ("IQ2_XXS", 256, 66),
        17 => ("IQ2_XS", 256, 74),
        18 => ("IQ3_XXS", 256, 98),
        19 => ("IQ1_S", 256, 50),
        20 => ("IQ4_NL", 32, 18),
        21 => ("IQ3_S", 256, 110),
        22 => ("IQ2_S", 256, 82),
        23 => ("IQ4_XS", 256, 136),
        24 => ("I8", 1, 1),
        25 => ("I16", 1, 2),
        26 => ("I32", 1, 4),
        27 => ("I64", 1, 8),
        28 => ("F64", 1, 8),
        29 => ("IQ1_M", 256, 56),
        30 => ("BF16", 1, 2),
        34 => ("TQ1_0", 256, 54),
        35 => ("TQ2_0", 256, 66),
        39 => ("MXFP4", 32, 17),
        40 => ("NVFP4", 64, 36),
        41 => ("Q1_0", 128, 18),
        _ => return None,
    })
}

/// Type ids at or above this are not a newer ggml type but garbage.
const IMPLAUSIBLE_TYPE: u32 = 1024;

/// Reads and checks the header, metadata and tensor infos of a GGUF file of `len` bytes,
/// with at most [`MAX_REPORTED`] facts per rule (see [`check_capped`]).
pub fn check(r: &mut dyn ReadSeek, len: u64) -> GgufReport {
    check_capped(r, len, MAX_REPORTED)
}

/// [`check`] with at most `cap` facts per rule (the scanner passes `max-findings-per-rule`).
pub fn check_capped(r: &mut dyn ReadSeek, len: u64, cap: usize) -> GgufReport {
    let mut report = GgufReport {
        alignment: DEFAULT_ALIGNMENT,
        ..GgufReport::default()
    };
    let mut facts = Facts::new(cap);
    if r.seek(SeekFrom::Start(0)).is_err() {
        facts.push(Fact::new("GGF106", "the file could not be read").at(0));
        report.facts = facts.finish();
        return report;
    }
    let mut p = Parser {
        input: In {
            r: BufReader::with_capacity(BUF, Meter { inner: r, read: 0 }),
            pos: 0,
            len,
            be: false,
            wide: true,
        },
        facts,
        report,
    };
    // Every early stop has already recorded its fact.
    let _ = p.run();
    let Parser {
        mut report, facts, ..
    } = p;
    report.facts = facts.finish();
    report
}

/// Why parsing stopped (the fact is already recorded).
struct Stop;

struct Parser<'a> {
    input: In<'a>,
    facts: Facts,
    report: GgufReport,
}

struct TensorInfo {
    name: String,
    at: u64,
    dims: Vec<u64>,
    ty: u32,
    offset: u64,
}

impl Parser<'_> {
    fn stop(&mut self, fact: Fact) -> Stop {
        self.facts.push(fact);
        Stop
    }

    /// Turns an input failure into a fact.
    fn fail(&mut self, e: InErr, what: &str) -> Stop {
        let at = self.input.pos;
        let fact = match e {
            InErr::Eof => Fact::new("GGF106", format!("the file ends inside {what}")).at(at),
            InErr::Io(e) => Fact::new("GGF106", format!("read error inside {what}: {e}")).at(at),
            InErr::Budget => Fact::new(
                "GGF110",
                format!(
                    "more than {} MiB of metadata: the rest of the file was not checked",
                    MAX_METADATA_READ >> 20
                ),
            )
            .at(at),
        };
        self.stop(fact)
    }

    fn run(&mut self) -> Result<(), Stop> {
        let head = self.input.array::<8>().map_err(|e| self.fail(e, "the header"))?;
        let Some((version, be)) = version_of(&head) else {
            let what = if &head[..4] == b"GGUF" {
                format!(
                    "unsupported GGUF version {}",
                    u32::from_le_bytes([head[4], head[5], head[6], head[7]])
                )
            } else {
                "not a GGUF header (magic is not 'GGUF')".to_owned()
            };
            return Err(self.stop(Fact::new("GGF106", what).at(0)));
        };
        self.report.version = version;
        self.report.big_endian = be;
        self.input.be = be;
        self.input.wide = version >= 2;
        let tensor_count = self.input.count().map_err(|e| self.fail(e, "the header"))?;
        let kv_count = self.input.count().map_err(|e| self.fail(e, "the header"))?;
        self.report.tensor_count = tensor_count;
        self.report.kv_count = kv_count;
        let lw = self.input.len_width();
        let min_kv = u128::from(lw + 4 + 1);
        let min_tensor = u128::from(lw + 4 + 4 + 8);
        let need = u128::from(kv_count) * min_kv + u128::from(tensor_count) * min_tensor;
        let remaining = self.input.remaining();
        if need > u128::from(remaining) {
            return Err(self.stop(
                Fact::new(
                    "GGF101",
                    format!(
                        "the header claims {tensor_count} tensors and {kv_count} metadata entries, which need at least {need} bytes; {remaining} follow"
                    ),
                )
                .at(8)
                .evidence(format!("tensor_count={tensor_count} kv_count={kv_count} file size={}", self.input.len)),
            ));
        }
        if kv_count > MAX_KV || tensor_count > MAX_TENSORS {
            return Err(self.stop(
                Fact::new(
                    "GGF110",
                    format!(
                        "{tensor_count} tensors and {kv_count} metadata entries exceed modelward's limits ({MAX_TENSORS}, {MAX_KV}): not checked"
                    ),
                )
                .at(8),
            ));
        }
        let mut keys: HashSet<Vec<u8>> = HashSet::new();
        for i in 0..kv_count {
            self.kv(i, &mut keys)?;
        }
        let mut tensors = Vec::new();
        let mut names: HashSet<String> = HashSet::new();
        for i in 0..tensor_count {
            let t = self.tensor_info(i)?;
            if !names.insert(t.name.clone()) {
                self.facts.push(
                    Fact::new(
                        "GGF107",
                        format!("the tensor name {:?} appears more than once", t.name),
                    )
                    .at(t.at)
                    .evidence(format!("tensor {i}: {:?}", t.name)),
                );
            }
            tensors.push(t);
        }
        let infos_end = self.input.pos;
        let align = self.report.alignment;
        let Some(data_offset) = infos_end.div_ceil(align).checked_mul(align) else {
            return Err(self.stop(Fact::new("GGF105", "the data offset overflows").at(infos_end)));
        };
        self.report.data_offset = Some(data_offset);
        if tensors.is_empty() {
            return Ok(());
        }
        if data_offset > self.input.len {
            self.facts.push(
                Fact::new(
                    "GGF105",
                    format!(
                        "the tensor data would start at {data_offset}, past the end of the {}-byte file",
                        self.input.len
                    ),
                )
                .at(infos_end),
            );
            return Ok(());
        }
        self.tensor_data(&tensors, data_offset);
        Ok(())
    }

    fn kv(&mut self, i: u64, keys: &mut HashSet<Vec<u8>>) -> Result<(), Stop> {
        let at = self.input.pos;
        let what = format!("metadata entry {i}");
        let key_len = self.input.count().map_err(|e| self.fail(e, &what))?;
        if key_len > self.input.remaining() {
            let rem = self.input.remaining();
            return Err(self.stop(
                Fact::new(
                    "GGF102",
                    format!("metadata entry {i}: the key length {key_len} runs past the end of the file ({rem} bytes follow)"),
                )
                .at(at)
                .evidence(format!("key length {key_len} at offset {at}")),
            ));
        }
        if key_len > MAX_KEY_LEN {
            return Err(self.stop(
                Fact::new(
                    "GGF110",
                    format!("metadata entry {i}: a {key_len}-byte key is over modelward's limit ({MAX_KEY_LEN}); the rest was not checked"),
                )
                .at(at),
            ));
        }
        let key = self
            .input
            .take(key_len as usize)
            .map_err(|e| self.fail(e, &what))?;
        let key_text = String::from_utf8_lossy(&key).into_owned();
        let what = format!("metadata entry {i} ({:?})", clip(&key_text, 80));
        let ty = self.input.u32().map_err(|e| self.fail(e, &what))?;
        let value_at = self.input.pos;
        if !keys.insert(key) {
            self.facts.push(
                Fact::new(
                    "GGF107",
                    format!(
                        "the metadata key {:?} appears more than once",
                        clip(&key_text, 80)
                    ),
                )
                .at(at)
                .evidence(format!("entry {i}: {:?}", clip(&key_text, 80))),
            );
        }
        let is_template =
            key_text == "tokenizer.chat_template" || key_text.starts_with("tokenizer.chat_template.");
        if key_text == "general.alignment" {
            return self.alignment(ty, value_at, &what);
        }
        if is_template && ty == T_STRING {
            return self.template(key_text, &what);
        }
        self.value(ty, 0, &what, value_at)
    }

    fn alignment(&mut self, ty: u32, at: u64, what: &str) -> Result<(), Stop> {
        if ty != T_UINT32 {
            self.facts.push(
                Fact::new(
                    "GGF108",
                    format!(
                        "general.alignment is a {}, not a UINT32 (ggml asserts on the type)",
                        value_type_name(ty)
                    ),
                )
                .at(at),
            );
            return self.value(ty, 0, what, at);
        }
        let a = self.input.u32().map_err(|e| self.fail(e, what))?;
        if a == 0 || !a.is_power_of_two() {
            self.facts.push(
                Fact::new("GGF108", format!("general.alignment is {a}, not a power of two"))
                    .at(at)
                    .evidence(format!("general.alignment = {a}")),
            );
        } else {
            self.report.alignment = u64::from(a);
        }
        Ok(())
    }

    fn template(&mut self, key: String, what: &str) -> Result<(), Stop> {
        let at = self.input.pos;
        let n = self.string_len(what)?;
        let text_at = self.input.pos;
        if n > MAX_TEMPLATE {
            self.facts.push(
                Fact::new(
                    "GGF110",
                    format!(
                        "the chat template {:?} is {n} bytes, over modelward's {MAX_TEMPLATE}-byte limit: not analysed",
                        clip(&key, 80)
                    ),
                )
                .at(at),
            );
            return self.input.skip(n).map_err(|e| self.fail(e, what));
        }
        let bytes = self.input.take(n as usize).map_err(|e| self.fail(e, what))?;
        let text = String::from_utf8_lossy(&bytes).into_owned();
        self.report.chat_templates.push((key, text, text_at));
        Ok(())
    }

    /// Reads a string length and checks it against the rest of the file.
    fn string_len(&mut self, what: &str) -> Result<u64, Stop> {
        let at = self.input.pos;
        let n = self.input.count().map_err(|e| self.fail(e, what))?;
        let rem = self.input.remaining();
        if n > rem {
            return Err(self.stop(
                Fact::new(
                    "GGF102",
                    format!(
                        "{what}: a string length of {n} runs past the end of the file ({rem} bytes follow)"
                    ),
                )
                .at(at)
                .evidence(format!("string length {n} at offset {at}")),
            ));
        }
        Ok(n)
    }

    /// Skips over one value of type `ty`, checking every length and count.
    fn value(&mut self, ty: u32, depth: u32, what: &str, at: u64) -> Result<(), Stop> {
        if let Some(size) = fixed_size(ty) {
            return self.input.skip(size).map_err(|e| self.fail(e, what));
        }
        match ty {
            T_STRING => {
                let n = self.string_len(what)?;
                self.input.skip(n).map_err(|e| self.fail(e, what))
            }
            T_ARRAY => {
                let elem = self.input.u32().map_err(|e| self.fail(e, what))?;
                let count_at = self.input.pos;
                let count = self.input.count().map_err(|e| self.fail(e, what))?;
                let rem = self.input.remaining();
                let min = match elem {
                    T_STRING => Some(self.input.len_width()),
                    T_ARRAY => Some(4 + self.input.len_width()),
                    t => fixed_size(t),
                };
                let Some(min) = min else {
                    return Err(self.stop(
                        Fact::new(
                            "GGF103",
                            format!("{what}: an array of unknown element type {elem}"),
                        )
                        .at(at)
                        .evidence(format!("array element type {elem}, count {count}")),
                    ));
                };
                if u128::from(count) * u128::from(min) > u128::from(rem) {
                    return Err(self.stop(
                        Fact::new(
                            "GGF102",
                            format!(
                                "{what}: an array of {count} {} elements cannot fit in the {rem} bytes that follow",
                                value_type_name(elem)
                            ),
                        )
                        .at(count_at)
                        .evidence(format!("array count {count} at offset {count_at}")),
                    ));
                }
                if elem == T_ARRAY && depth + 1 >= MAX_ARRAY_DEPTH {
                    return Err(self.stop(
                        Fact::new(
                            "GGF103",
                            format!("{what}: arrays nested deeper than {MAX_ARRAY_DEPTH} levels"),
                        )
                        .at(at),
                    ));
                }
                match elem {
                    T_STRING => {
                        // Vocabularies are arrays of 100k+ short strings: walk the buffered
                        // bytes in bulk, and take the checked path for one string whenever the
                        // bulk walk stops (a string across the buffer's end, or a bad length
                        // that the checked path reports).
                        let mut left = count;
                        while left > 0 {
                            left -= self
                                .input
                                .skip_buffered_strings(left)
                                .map_err(|e| self.fail(e, what))?;
                            if left > 0 {
                                let el_at = self.input.pos;
                                self.value(T_STRING, depth + 1, what, el_at)?;
                                left -= 1;
                            }
                        }
                        Ok(())
                    }
                    T_ARRAY => {
                        for _ in 0..count {
                            let el_at = self.input.pos;
                            self.value(elem, depth + 1, what, el_at)?;
                        }
                        Ok(())
                    }
                    _ => self.input.skip(count * min).map_err(|e| self.fail(e, what)),
                }
            }
            _ => Err(self.stop(
                Fact::new("GGF103", format!("{what}: unknown value type {ty}"))
                    .at(at.saturating_sub(4))
                    .evidence(format!("value type {ty}")),
            )),
        }
    }

    fn tensor_info(&mut self, i: u64) -> Result<TensorInfo, Stop> {
        let at = self.input.pos;
        let what = format!("tensor info {i}");
        let name_len = self.string_len(&what)?;
        let shown = self
            .input
            .take(name_len.min(NAME_SHOWN) as usize)
            .map_err(|e| self.fail(e, &what))?;
        self.input
            .skip(name_len - name_len.min(NAME_SHOWN))
            .map_err(|e| self.fail(e, &what))?;
        let name = String::from_utf8_lossy(&shown).into_owned();
        let what = format!("tensor info {i} ({:?})", clip(&name, 80));
        if name_len >= GGML_MAX_NAME {
            self.facts.push(
                Fact::new(
                    "GGF104",
                    format!(
                        "{what}: the name is {name_len} bytes; ggml allows at most {}",
                        GGML_MAX_NAME - 1
                    ),
                )
                .at(at)
                .evidence(format!("name length {name_len}")),
            );
        }
        let dims_at = self.input.pos;
        let n_dims = self.input.u32().map_err(|e| self.fail(e, &what))?;
        let dim_width = if self.input.wide { 8 } else { 4 };
        let rem = self.input.remaining();
        if u64::from(n_dims) * dim_width > rem {
            return Err(self.stop(
                Fact::new(
                    "GGF102",
                    format!("{what}: {n_dims} dimensions cannot fit in the {rem} bytes that follow"),
                )
                .at(dims_at)
                .evidence(format!("n_dims {n_dims}")),
            ));
        }
        if n_dims > GGML_MAX_DIMS {
            self.facts.push(
                Fact::new(
                    "GGF104",
                    format!("{what}: {n_dims} dimensions; ggml allows at most {GGML_MAX_DIMS}"),
                )
                .at(dims_at)
                .evidence(format!("n_dims {n_dims}")),
            );
        }
        let mut dims = Vec::with_capacity(n_dims.min(GGML_MAX_DIMS) as usize);
        for _ in 0..n_dims {
            let d = if self.input.wide {
                self.input.u64()
            } else {
                self.input.u32().map(u64::from)
            }
            .map_err(|e| self.fail(e, &what))?;
            dims.push(d);
        }
        let ty = self.input.u32().map_err(|e| self.fail(e, &what))?;
        let offset = self.input.u64().map_err(|e| self.fail(e, &what))?;
        Ok(TensorInfo {
            name,
            at,
            dims,
            ty,
            offset,
        })
    }

    /// Shapes, types and data ranges of the tensors, against a data section at `data_offset`.
    fn tensor_data(&mut self, tensors: &[TensorInfo], data_offset: u64) {
        let len = self.input.len;
        let align = self.report.alignment;
        let mut ranges: Vec<(u64, u64, usize)> = Vec::new();
        for (idx, t) in tensors.iter().enumerate() {
            let shape = format!("{:?}", t.dims);
            let evidence = || {
                format!(
                    "{:?}: shape {}, type {}, offset {}",
                    clip(&t.name, 80),
                    clip(&shape, 120),
                    ggml_type(t.ty).map_or_else(|| t.ty.to_string(), |g| g.0.to_owned()),
                    t.offset
                )
            };
            let what = format!("tensor {:?}", clip(&t.name, 80));
            let mut count: Option<u64> = Some(1);
            for &d in &t.dims {
                if d > i64::MAX as u64 {
                    count = None;
                    self.facts.push(
                        Fact::new(
                            "GGF104",
                            format!("{what}: a dimension of {d} is negative as ggml's int64"),
                        )
                        .at(t.at)
                        .evidence(evidence()),
                    );
                    break;
                }
                count = count
                    .and_then(|c| c.checked_mul(d))
                    .filter(|&c| c <= i64::MAX as u64);
                if count.is_none() {
                    self.facts.push(
                        Fact::new(
                            "GGF104",
                            format!(
                                "{what}: the element count of shape {} overflows int64",
                                clip(&shape, 120)
                            ),
                        )
                        .at(t.at)
                        .evidence(evidence()),
                    );
                    break;
                }
            }
            if t.offset % align != 0 {
                self.facts.push(
                    Fact::new(
                        "GGF105",
                        format!(
                            "{what}: data offset {} is not a multiple of the alignment {align}",
                            t.offset
                        ),
                    )
                    .at(t.at)
                    .evidence(evidence()),
                );
            }
            let Some(count) = count else { continue };
            let Some((tname, block, block_bytes)) = ggml_type(t.ty) else {
                if t.ty >= IMPLAUSIBLE_TYPE {
                    self.facts.push(
                        Fact::new("GGF104", format!("{what}: type id {} is no ggml type", t.ty))
                            .at(t.at)
                            .evidence(evidence()),
                    );
                } else {
                    self.facts.push(
                        Fact::new(
                            "GGF109",
                            format!(
                                "{what}: ggml type {} is unknown to modelward; its size was not checked",
                                t.ty
                            ),
                        )
                        .at(t.at)
                        .evidence(evidence()),
                    );
                }
                continue;
            };
            let row = t.dims.first().copied().unwrap_or(1);
            if row % block != 0 {
                self.facts.push(
                    Fact::new(
                        "GGF104",
                        format!("{what}: rows of {row} elements are not a multiple of the {tname} block size {block}"),
                    )
                    .at(t.at)
                    .evidence(evidence()),
                );
                continue;
            }
            let size = (count / block).checked_mul(block_bytes);
            let end = size.and_then(|s| data_offset.checked_add(t.offset)?.checked_add(s));
            match (size, end) {
                (Some(size), Some(end)) if end <= len => {
                    if size > 0 {
                        ranges.push((t.offset, t.offset + size, idx));
                    }
                }
                (size, _) => {
                    let size_text = size.map_or_else(|| "more than 2^64".to_owned(), |s| s.to_string());
                    self.facts.push(
                        Fact::new(
                            "GGF105",
                            format!(
                                "{what}: {size_text} bytes of data at offset {} reach past the end of the file (data section at {data_offset}, file {len} bytes)",
                                t.offset
                            ),
                        )
                        .at(t.at)
                        .evidence(evidence()),
                    );
                }
            }
        }
        ranges.sort_unstable();
        let mut prev: Option<(u64, u64, usize)> = None;
        for r in ranges {
            if let Some(p) = prev {
                if r.0 < p.1 {
                    let (a, b) = (&tensors[p.2], &tensors[r.2]);
                    self.facts.push(
                        Fact::new(
                            "GGF105",
                            format!(
                                "tensors {:?} and {:?} share data bytes: [{}, {}) overlaps [{}, {})",
                                clip(&a.name, 80),
                                clip(&b.name, 80),
                                p.0,
                                p.1,
                                r.0,
                                r.1
                            ),
                        )
                        .at(b.at)
                        .evidence(format!(
                            "{:?} offset {}, {:?} offset {}",
                            clip(&a.name, 80),
                            a.offset,
                            clip(&b.name, 80),
                            b.offset
                        )),
                    );
                }
                if r.1 > p.1 {
                    prev = Some(r);
                }
            } else {
                prev = Some(r);
            }
        }
    }
}

enum InErr {
    Eof,
    Io(io::Error),
    Budget,
}

/// Counts bytes pulled from the input for the metadata budget.
struct Meter<'a> {
    inner: &'a mut dyn ReadSeek,
    read: u64,
}

impl Read for Meter<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read += n as u64;
        Ok(n)
    }
}

impl Seek for Meter<'_> {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        self.inner.seek(to)
    }
}

/// The input: position, real length, byte order and length width.
struct In<'a> {
    r: BufReader<Meter<'a>>,
    pos: u64,
    len: u64,
    be: bool,
    /// Versions 2 and 3: 64-bit lengths and counts.
    wide: bool,
}

impl In<'_> {
    fn remaining(&self) -> u64 {
        self.len.saturating_sub(self.pos)
    }

    fn len_width(&self) -> u64 {
        if self.wide { 8 } else { 4 }
    }

    fn budget(&self) -> Result<(), InErr> {
        if self.r.get_ref().read > MAX_METADATA_READ {
            Err(InErr::Budget)
        } else {
            Ok(())
        }
    }

    fn fill(&mut self, buf: &mut [u8]) -> Result<(), InErr> {
        if (buf.len() as u64) > self.remaining() {
            return Err(InErr::Eof);
        }
        self.budget()?;
        self.r.read_exact(buf).map_err(|e| match e.kind() {
            io::ErrorKind::UnexpectedEof => InErr::Eof,
            _ => InErr::Io(e),
        })?;
        self.pos += buf.len() as u64;
        Ok(())
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], InErr> {
        let mut b = [0u8; N];
        self.fill(&mut b)?;
        Ok(b)
    }

    fn u32(&mut self) -> Result<u32, InErr> {
        let b = self.array::<4>()?;
        Ok(if self.be {
            u32::from_be_bytes(b)
        } else {
            u32::from_le_bytes(b)
        })
    }

    fn u64(&mut self) -> Result<u64, InErr> {
        let b = self.array::<8>()?;
        Ok(if self.be {
            u64::from_be_bytes(b)
        } else {
            u64::from_le_bytes(b)
        })
    }

    /// A length or count: 32-bit in version 1, 64-bit after.
    fn count(&mut self) -> Result<u64, InErr> {
        if self.wide {
            self.u64()
        } else {
            self.u32().map(u64::from)
        }
    }

    /// `n` bytes; the caller has checked `n` against [`In::remaining`] and its own limit.
    fn take(&mut self, n: usize) -> Result<Vec<u8>, InErr> {
        if n as u64 > self.remaining() {
            return Err(InErr::Eof);
        }
        let mut v = vec![0u8; n];
        self.fill(&mut v)?;
        Ok(v)
    }

    /// Skips up to `max` length-prefixed strings lying wholly in the reader's buffer, with the
    /// same length check as [`Parser::string_len`]; stops early (possibly at 0) at a string that
    /// crosses the buffer's end or whose length is impossible, for the caller's checked path.
    fn skip_buffered_strings(&mut self, max: u64) -> Result<u64, InErr> {
        self.budget()?;
        let lw = self.len_width() as usize;
        let (be, remaining) = (self.be, self.remaining());
        let buf = self.r.fill_buf().map_err(InErr::Io)?;
        let (mut off, mut done) = (0usize, 0u64);
        while done < max {
            let Some(len) = buf.get(off..off + lw) else { break };
            let n = match (lw, be) {
                (8, false) => u64::from_le_bytes(len.try_into().unwrap_or_default()),
                (8, true) => u64::from_be_bytes(len.try_into().unwrap_or_default()),
                (_, false) => u64::from(u32::from_le_bytes(len.try_into().unwrap_or_default())),
                (_, true) => u64::from(u32::from_be_bytes(len.try_into().unwrap_or_default())),
            };
            let after_len = off + lw;
            let Some(rest_of_file) = remaining.checked_sub(after_len as u64) else {
                break;
            };
            if n > rest_of_file || n > (buf.len() - after_len) as u64 {
                break;
            }
            off = after_len + n as usize;
            done += 1;
        }
        self.r.consume(off);
        self.pos += off as u64;
        Ok(done)
    }

    fn skip(&mut self, n: u64) -> Result<(), InErr> {
        if n > self.remaining() {
            return Err(InErr::Eof);
        }
        self.budget()?;
        let buffered = self.r.buffer().len() as u64;
        if n <= buffered {
            self.r.consume(n as usize);
        } else {
            let off = i64::try_from(n).map_err(|_| InErr::Eof)?;
            self.r.seek_relative(off).map_err(InErr::Io)?;
        }
        self.pos += n;
        Ok(())
    }
}

/// Facts, capped per rule by the one collector.
type Facts = modelward_diagnostics::FactCollector;

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    /// Builds GGUF bytes.
    struct G {
        v: Vec<u8>,
        version: u32,
        be: bool,
    }

    impl G {
        fn new(version: u32, tensors: u64, kvs: u64) -> G {
            let mut g = G {
                v: b"GGUF".to_vec(),
                version,
                be: false,
            };
            g.u32(version);
            g.count(tensors);
            g.count(kvs);
            g
        }
        fn be(tensors: u64, kvs: u64) -> G {
            let mut g = G {
                v: b"GGUF".to_vec(),
                version: 3,
                be: true,
            };
            g.u32(3);
            g.count(tensors);
            g.count(kvs);
            g
        }
        fn u32(&mut self, x: u32) -> &mut G {
            let b = if self.be { x.to_be_bytes() } else { x.to_le_bytes() };
            self.v.extend_from_slice(&b);
            self
        }
        fn u64(&mut self, x: u64) -> &mut G {
            let b = if self.be { x.to_be_bytes() } else { x.to_le_bytes() };
            self.v.extend_from_slice(&b);
            self
        }
        fn count(&mut self, x: u64) -> &mut G {
            if self.version >= 2 {
                self.u64(x)
            } else {
                self.u32(x as u32)
            }
        }
        fn str(&mut self, s: &str) -> &mut G {
            self.count(s.len() as u64);
            self.v.extend_from_slice(s.as_bytes());
            self
        }
        fn kv_str(&mut self, k: &str, s: &str) -> &mut G {
            self.str(k).u32(T_STRING).str(s)
        }
        fn kv_u32(&mut self, k: &str, x: u32) -> &mut G {
            self.str(k).u32(T_UINT32).u32(x)
        }
        fn kv_tokens(&mut self, k: &str, items: &[&str]) -> &mut G {
            self.str(k).u32(T_ARRAY).u32(T_STRING).count(items.len() as u64);
            for s in items {
                self.str(s);
            }
            self
        }
        fn tensor(&mut self, name: &str, dims: &[u64], ty: u32, off: u64) -> &mut G {
            self.str(name).u32(dims.len() as u32);
            for &d in dims {
                if self.version >= 2 {
                    self.u64(d);
                } else {
                    self.u32(d as u32);
                }
            }
            self.u32(ty).u64(off)
        }
        fn pad(&mut self, align: usize) -> &mut G {
            while !self.v.len().is_multiple_of(align) {
                self.v.push(0);
            }
            self
        }
        fn data(&mut self, n: usize) -> &mut G {
            self.v.extend(std::iter::repeat_n(0u8, n));
            self
        }
    }

    fn run(bytes: &[u8]) -> GgufReport {
        check(&mut Cursor::new(bytes), bytes.len() as u64)
    }

    fn rules(bytes: &[u8]) -> Vec<&'static str> {
        run(bytes).facts.iter().map(|f| f.rule).collect()
    }

    const TPL: &str = "{% for m in messages %}{{ m.content }}{% endfor %}";

    fn valid() -> Vec<u8> {
        let mut g = G::new(3, 2, 4);
        g.kv_str("general.architecture", "llama")
            .kv_u32("general.alignment", 32)
            .kv_tokens("tokenizer.ggml.tokens", &["<s>", "</s>", "a"])
            .kv_str("tokenizer.chat_template", TPL)
            .tensor("a.weight", &[4, 2], 0, 0)
            .tensor("b.weight", &[32, 1], 8, 32)
            .pad(32)
            .data(32 + 34);
        g.v.clone()
    }

    #[test]
    fn valid_file_gives_no_facts_and_its_template() {
        let f = valid();
        assert!(looks_like(&f));
        let r = run(&f);
        assert_eq!(r.facts, []);
        assert_eq!((r.version, r.tensor_count, r.kv_count), (3, 2, 4));
        assert_eq!(r.chat_templates.len(), 1);
        let (key, text, at) = &r.chat_templates[0];
        assert_eq!((key.as_str(), text.as_str()), ("tokenizer.chat_template", TPL));
        assert_eq!(&f[*at as usize..*at as usize + 6], b"{% for");
    }

    #[test]
    fn vocab_only_v1_v2_and_big_endian() {
        // Vocab-only: no tensors, ends without padding.
        for version in [1, 2, 3] {
            let mut g = G::new(version, 0, 3);
            g.kv_str("general.architecture", "llama")
                .kv_tokens("tokenizer.ggml.tokens", &["x"; 50])
                .kv_str("tokenizer.chat_template.tool_use", TPL);
            let r = run(&g.v);
            assert_eq!(r.facts, [], "v{version}");
            assert_eq!(r.chat_templates[0].0, "tokenizer.chat_template.tool_use");
        }
        let mut g = G::be(1, 1);
        g.kv_str("tokenizer.chat_template", TPL)
            .tensor("t", &[2], 0, 0)
            .pad(32)
            .data(8);
        assert!(looks_like(&g.v));
        let r = run(&g.v);
        assert!(r.big_endian);
        assert_eq!(r.facts, []);
        assert_eq!(r.chat_templates[0].1, TPL);
    }

    /// A vocabulary far larger than the reader's buffer, with strings of every length from 0 to
    /// 300 bytes so that some cross each buffer boundary, in every length width and byte order.
    #[test]
    fn large_vocabularies_cross_buffer_boundaries() {
        let words: Vec<String> = (0..40_000).map(|i| "w".repeat(i % 301)).collect();
        let words: Vec<&str> = words.iter().map(String::as_str).collect();
        for (version, be) in [(1, false), (3, false), (3, true)] {
            let mut g = if be { G::be(0, 2) } else { G::new(version, 0, 2) };
            g.kv_tokens("tokenizer.ggml.tokens", &words);
            let tpl_at = g.v.len();
            g.kv_str("tokenizer.chat_template", TPL);
            assert!(g.v.len() > 8 * BUF, "the vocabulary spans many buffers");
            let r = run(&g.v);
            assert_eq!(r.facts, [], "v{version} be={be}");
            assert_eq!(
                r.chat_templates.len(),
                1,
                "the key after the vocabulary was reached"
            );
            assert!(r.chat_templates[0].2 > tpl_at as u64);

            // One impossible length deep inside: reported at its own offset, nothing after it.
            let mut g = if be { G::be(0, 2) } else { G::new(version, 0, 2) };
            g.kv_tokens("tokenizer.ggml.tokens", &words[..30_000]);
            let bad_at = g.v.len();
            let big = if version == 1 {
                u64::from(u32::MAX)
            } else {
                u64::MAX >> 1
            };
            if version == 1 {
                g.u32(big as u32)
            } else {
                g.u64(big)
            };
            g.data(100);
            let v = {
                // Patch the array count to claim the bad string and 9,999 more.
                let mut v = g.v.clone();
                let count_at = 4 + 4 + 2 * if version == 1 { 4 } else { 8 } + {
                    let key = "tokenizer.ggml.tokens".len() + if version == 1 { 4 } else { 8 };
                    key + 4 + 4
                };
                let count = 40_000u64;
                if version == 1 {
                    v[count_at..count_at + 4].copy_from_slice(&(count as u32).to_le_bytes());
                } else if be {
                    v[count_at..count_at + 8].copy_from_slice(&count.to_be_bytes());
                } else {
                    v[count_at..count_at + 8].copy_from_slice(&count.to_le_bytes());
                }
                v
            };
            let r = run(&v);
            let facts: Vec<_> = r.facts.iter().map(|f| (f.rule, f.offset)).collect();
            assert_eq!(facts, [("GGF102", Some(bad_at as u64))], "v{version} be={be}");
            assert!(r.chat_templates.is_empty());
        }
    }

    #[test]
    fn looks_like_needs_magic_and_version() {
        assert!(!looks_like(b"GGUF"));
        assert!(!looks_like(b"GGUF\x04\x00\x00\x00"));
        assert!(!looks_like(b"GGML\x03\x00\x00\x00"));
        assert!(looks_like(b"GGUF\x01\x00\x00\x00"));
    }

    #[test]
    fn ggf101_impossible_counts() {
        let g = G::new(3, u64::MAX, 1);
        assert_eq!(rules(&g.v), ["GGF101"]);
        let mut g = G::new(3, 0, 1_000_000);
        g.kv_str("a", "b");
        assert_eq!(rules(&g.v), ["GGF101"]);
        let g = G::new(1, 0, u32::MAX as u64);
        assert_eq!(rules(&g.v), ["GGF101"]);
        let mut g = G::new(3, 0, 1);
        g.kv_str("a", "b");
        assert_eq!(rules(&g.v), Vec::<&str>::new());
    }

    #[test]
    fn ggf102_impossible_lengths() {
        // A string length past the end (CVE-2024-25664 shape).
        let mut g = G::new(3, 0, 1);
        g.str("general.name").u32(T_STRING).u64(u64::MAX - 3).data(16);
        assert_eq!(rules(&g.v), ["GGF102"]);
        // A key length past the end.
        let mut g = G::new(3, 0, 1);
        g.u64(1 << 40).data(16);
        assert_eq!(rules(&g.v), ["GGF102"]);
        // An array count that cannot fit.
        let mut g = G::new(3, 0, 1);
        g.str("tokenizer.ggml.scores")
            .u32(T_ARRAY)
            .u32(6)
            .u64(1 << 40)
            .data(16);
        assert_eq!(rules(&g.v), ["GGF102"]);
        // Too many dimensions to fit.
        let mut g = G::new(3, 1, 0);
        g.str("t").u32(u32::MAX).data(24);
        assert_eq!(rules(&g.v), ["GGF102"]);
        assert_eq!(rules(&valid()), Vec::<&str>::new());
    }

    #[test]
    fn ggf103_bad_value_types() {
        let mut g = G::new(3, 0, 1);
        g.str("x").u32(13).data(16);
        assert_eq!(rules(&g.v), ["GGF103"]);
        let mut g = G::new(3, 0, 1);
        g.str("x").u32(T_ARRAY).u32(77).u64(1).data(16);
        assert_eq!(rules(&g.v), ["GGF103"]);
        // Arrays nested beyond the limit.
        let mut g = G::new(3, 0, 1);
        g.str("x").u32(T_ARRAY);
        for _ in 0..8 {
            g.u32(T_ARRAY).u64(1);
        }
        g.data(64);
        assert_eq!(rules(&g.v), ["GGF103"]);
        // One level of nesting is fine.
        let mut g = G::new(3, 0, 1);
        g.str("x").u32(T_ARRAY).u32(T_ARRAY).u64(1).u32(0).u64(2).data(2);
        assert_eq!(rules(&g.v), Vec::<&str>::new());
    }

    #[test]
    fn ggf104_bad_shapes() {
        let cases: Vec<(&[u64], u32)> = vec![
            (&[1, 1, 1, 1, 1], 0),    // too many dims
            (&[u64::MAX, 1], 0),      // negative as int64
            (&[1 << 32, 1 << 32], 0), // count overflows int64
            (&[33, 1], 8),            // row not a multiple of the block
            (&[4], 5000),             // garbage type id
        ];
        for (dims, ty) in cases {
            let mut g = G::new(3, 1, 0);
            g.tensor("t", dims, ty, 0).pad(32).data(64);
            assert!(rules(&g.v).contains(&"GGF104"), "{dims:?} {ty}");
        }
        let mut g = G::new(3, 1, 0);
        g.tensor(&"n".repeat(64), &[4], 0, 0).pad(32).data(16);
        assert_eq!(rules(&g.v), ["GGF104"]);
        let mut g = G::new(3, 1, 0);
        g.tensor(&"n".repeat(63), &[4], 0, 0).pad(32).data(16);
        assert_eq!(rules(&g.v), Vec::<&str>::new());
    }

    #[test]
    fn ggf105_lying_offsets() {
        // Bleeding Llama: a tensor whose data lies past the end of the file.
        let mut g = G::new(3, 1, 0);
        g.tensor("t", &[1 << 20], 0, 0).pad(32).data(64);
        assert_eq!(rules(&g.v), ["GGF105"]);
        let mut g = G::new(3, 1, 0);
        g.tensor("t", &[4], 0, u64::MAX - 31).pad(32).data(64);
        assert_eq!(rules(&g.v), ["GGF105"]);
        // Misaligned.
        let mut g = G::new(3, 1, 0);
        g.tensor("t", &[4], 0, 4).pad(32).data(64);
        assert_eq!(rules(&g.v), ["GGF105"]);
        // Overlapping.
        let mut g = G::new(3, 2, 0);
        g.tensor("a", &[16], 0, 0)
            .tensor("b", &[16], 0, 32)
            .pad(32)
            .data(128);
        assert_eq!(rules(&g.v), ["GGF105"]);
        // Tensors but the data section is past the end.
        let mut g = G::new(3, 1, 0);
        g.tensor("t", &[0], 0, 0);
        assert_eq!(rules(&g.v), ["GGF105"]);
        let mut g = G::new(3, 2, 0);
        g.tensor("a", &[8], 0, 0)
            .tensor("b", &[16], 0, 32)
            .pad(32)
            .data(128);
        assert_eq!(rules(&g.v), Vec::<&str>::new());
    }

    #[test]
    fn ggf106_truncated_or_not_gguf() {
        let f = valid();
        for cut in [0, 3, 8, 20] {
            assert_eq!(rules(&f[..cut]), ["GGF106"], "cut at {cut}");
        }
        // Ends inside the value type of the only entry.
        let mut g = G::new(3, 0, 1);
        g.kv_str("general.name", "x");
        assert_eq!(rules(&g.v[..24 + 8 + 12 + 2]), ["GGF106"]);
        assert_eq!(
            rules(b"GGUF\x07\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"),
            ["GGF106"]
        );
        assert_eq!(rules(&f), Vec::<&str>::new());
    }

    #[test]
    fn ggf107_duplicates() {
        let mut g = G::new(3, 0, 2);
        g.kv_str("tokenizer.chat_template", TPL)
            .kv_str("tokenizer.chat_template", "{{ evil }}");
        let r = run(&g.v);
        assert_eq!(r.facts.iter().map(|f| f.rule).collect::<Vec<_>>(), ["GGF107"]);
        assert_eq!(r.chat_templates.len(), 2, "both copies are analysed");
        let mut g = G::new(3, 2, 0);
        g.tensor("a", &[8], 0, 0)
            .tensor("a", &[8], 0, 32)
            .pad(32)
            .data(64);
        assert_eq!(rules(&g.v), ["GGF107"]);
    }

    #[test]
    fn ggf108_alignment() {
        let mut g = G::new(3, 0, 1);
        g.kv_u32("general.alignment", 33);
        assert_eq!(rules(&g.v), ["GGF108"]);
        let mut g = G::new(3, 0, 1);
        g.kv_u32("general.alignment", 0);
        assert_eq!(rules(&g.v), ["GGF108"]);
        let mut g = G::new(3, 0, 1);
        g.kv_str("general.alignment", "32");
        assert_eq!(rules(&g.v), ["GGF108"]);
        let mut g = G::new(3, 1, 1);
        g.kv_u32("general.alignment", 64)
            .tensor("t", &[4], 0, 0)
            .pad(64)
            .data(16);
        let r = run(&g.v);
        assert_eq!((r.facts.len(), r.alignment), (0, 64));
    }

    #[test]
    fn ggf109_unknown_type() {
        let mut g = G::new(3, 1, 0);
        g.tensor("t", &[4], 200, 0).pad(32).data(16);
        assert_eq!(rules(&g.v), ["GGF109"]);
        let mut g = G::new(3, 1, 0);
        g.tensor("t", &[64], 41, 0).pad(32).data(18 / 2);
        // Q1_0: 128 per block, 64 elements is not a whole block.
        assert_eq!(rules(&g.v), ["GGF104"]);
    }

    #[test]
    fn ggf110_limits() {
        let mut g = G::new(3, 0, 1);
        g.str("tokenizer.chat_template")
            .u32(T_STRING)
            .u64(MAX_TEMPLATE + 1);
        g.data(MAX_TEMPLATE as usize + 1);
        let r = run(&g.v);
        assert_eq!(r.facts.iter().map(|f| f.rule).collect::<Vec<_>>(), ["GGF110"]);
        assert!(r.chat_templates.is_empty());
        let mut g = G::new(3, 0, 1);
        g.str("k")
            .u32(T_STRING)
            .u64(MAX_TEMPLATE + 1)
            .data(MAX_TEMPLATE as usize + 1);
        assert_eq!(rules(&g.v), Vec::<&str>::new());
    }

    #[test]
    fn tensor_data_is_never_read() {
        let mut g = G::new(3, 1, 1);
        g.kv_str("tokenizer.chat_template", TPL)
            .tensor("big", &[8 << 20], 0, 0)
            .pad(32);
        let meta = g.v.len() as u64;
        g.data(32 << 20);
        let count = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        let mut r = crate::io::Counting::new(Cursor::new(&g.v), count.clone());
        let rep = check(&mut r, g.v.len() as u64);
        assert_eq!(rep.facts, []);
        let read = count.load(std::sync::atomic::Ordering::Relaxed);
        assert!(read <= meta + BUF as u64, "read {read} bytes of {}", g.v.len());
    }

    #[test]
    fn never_panics_on_truncations_and_flips() {
        let base = valid();
        for cut in 0..base.len() {
            let _ = run(&base[..cut]);
        }
        for i in 0..base.len() {
            for v in [0u8, 0xff, 0x7f, 0x09, 0x08] {
                let mut m = base.clone();
                m[i] = v;
                let _ = run(&m);
            }
        }
    }
}
