//! safetensors: an 8-byte little-endian header length N, N bytes of JSON, then raw tensor data.
//!
//! No code can run from a safetensors file; what can go wrong is the parser. [`check`] reads
//! only the header (never the data), validates it the way the `safetensors` crate does, and
//! reports every deviation as a structural fact: header length against the file size, JSON
//! validity, duplicate keys (first-wins versus last-wins readers), nesting depth, dtypes, shape
//! products (checked arithmetic), offsets against the data area, overlaps and hidden bytes.
//! A file the reference loader accepts gives no facts.

use crate::io::ReadSeek;
use crate::json::{self, ErrorKind, Node, Options, clip};
use modelward_diagnostics::Fact;
use std::io::{Read, SeekFrom};

/// The largest header read (the `safetensors` crate refuses larger ones: `MAX_HEADER_SIZE`).
pub const MAX_HEADER: u64 = 100_000_000;
/// The deepest JSON nesting accepted before the header is called a parser-DoS attempt. A valid
/// header needs 3 (root object, tensor entry, shape array).
pub const MAX_DEPTH: usize = 16;
/// Most JSON values in a header (a tensor entry has about ten; real headers have at most a few
/// hundred thousand). Bounds the memory of the parsed header.
pub const MAX_VALUES: usize = 1 << 21;
/// Facts of one rule reported per file before the rest are summarised in one more fact.
pub const MAX_REPORTED: usize = 16;
/// Characters of JSON shown in evidence.
const EVIDENCE_CHARS: usize = 160;

/// What [`check`] found.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SafetensorsReport {
    /// Structural findings; empty for a file the reference loader accepts.
    pub facts: Vec<Fact>,
    /// Tensor entries in the header (every key except `__metadata__`).
    pub tensors: usize,
    /// The header length N as written (0 when the file is shorter than 8 bytes).
    pub header_len: u64,
    /// Where each well-formed tensor entry's bytes lie (file offsets, clipped to the file),
    /// for `scan --deep`.
    pub spans: Vec<TensorSpan>,
    /// Byte ranges of the data area no tensor covers (gaps, trailing bytes; file offsets).
    pub uncovered: Vec<(u64, u64)>,
}

/// One tensor's bytes in the file.
#[derive(Debug, Clone, PartialEq)]
pub struct TensorSpan {
    /// The tensor's name (the header key).
    pub name: String,
    /// Its dtype as written (`F32`, `BF16`, ...).
    pub dtype: String,
    /// First byte (file offset).
    pub begin: u64,
    /// One past the last byte (file offset).
    pub end: u64,
}

/// Whether the first bytes look like a safetensors file of `len` bytes: a header length N with
/// `2 <= N <= len - 8` followed by `{`. `head` may be shorter than the header.
pub fn looks_like(head: &[u8], len: u64) -> bool {
    let Some(n) = head.get(..8) else { return false };
    let mut le = [0u8; 8];
    le.copy_from_slice(n);
    let n = u64::from_le_bytes(le);
    n >= 2 && n <= len.saturating_sub(8) && head.get(8) == Some(&b'{')
}

/// Bits per element of every dtype the format defines (safetensors 0.8 `Dtype`).
pub fn dtype_bits(dtype: &str) -> Option<u64> {
    Some(match dtype {
        "F4" => 4,
        "F6_E2M3" | "F6_E3M2" => 6,
        "BOOL" | "U8" | "I8" | "F8_E5M2" | "F8_E4M3" | "F8_E8M0" | "F8_E4M3FNUZ" | "F8_E5M2FNUZ" => 8,
        "I16" | "U16" | "F16" | "BF16" => 16,
        "I32" | "U32" | "F32" => 32,
        "I64" | "U64" | "F64" | "C64" => 64,
        _ => return None,
    })
}

/// Validates the header of a safetensors file of `len` bytes, reading only the header.
/// At most [`MAX_REPORTED`] facts per rule (see [`check_capped`]).
pub fn check(r: &mut dyn ReadSeek, len: u64) -> SafetensorsReport {
    check_capped(r, len, MAX_REPORTED)
}

/// [`check`] with at most `cap` facts per rule (the scanner passes `max-findings-per-rule`).
pub fn check_capped(r: &mut dyn ReadSeek, len: u64, cap: usize) -> SafetensorsReport {
    let mut report = SafetensorsReport::default();
    let mut out = Facts::new(cap);
    if len < 8 {
        out.push(
            Fact::new(
                "SFT101",
                format!("the file has {len} bytes, fewer than the 8-byte header length"),
            )
            .at(0),
        );
        report.facts = out.finish();
        return report;
    }
    let mut n_bytes = [0u8; 8];
    if r.seek(SeekFrom::Start(0)).is_err() || r.read_exact(&mut n_bytes).is_err() {
        out.push(Fact::new("SFT101", "the 8-byte header length could not be read").at(0));
        report.facts = out.finish();
        return report;
    }
    let n = u64::from_le_bytes(n_bytes);
    report.header_len = n;
    let room = len - 8;
    let bad_len = if n > MAX_HEADER {
        Some(format!(
            "the header length {n} is over the {MAX_HEADER}-byte limit of the safetensors loader"
        ))
    } else if n > room {
        Some(format!(
            "the header length {n} runs past the end of the file ({room} bytes follow)"
        ))
    } else if n < 2 {
        Some(format!("the header length {n} is too small for a JSON object"))
    } else {
        None
    };
    if let Some(msg) = bad_len {
        out.push(
            Fact::new("SFT101", msg)
                .at(0)
                .evidence(format!("header length bytes {}", hex(&n_bytes))),
        );
        report.facts = out.finish();
        return report;
    }
    // n <= MAX_HEADER and n <= the real file size: safe to allocate.
    let mut header = Vec::with_capacity(n as usize);
    match r.take(n).read_to_end(&mut header) {
        Ok(got) if got as u64 == n => {}
        _ => {
            out.push(
                Fact::new(
                    "SFT101",
                    format!("the {n}-byte header could not be read whole: the file ends early"),
                )
                .at(8),
            );
            report.facts = out.finish();
            return report;
        }
    }
    let data_len = room - n;
    check_header(&header, data_len, &mut out, &mut report);
    report.facts = out.finish();
    report
}

/// Checks a header's bytes against a data area of `data_len` bytes (offsets are file offsets).
fn check_header(header: &[u8], data_len: u64, out: &mut Facts, report: &mut SafetensorsReport) {
    let text = match std::str::from_utf8(header) {
        Ok(t) => t,
        Err(e) => {
            let at = e.valid_up_to();
            out.push(
                Fact::new("SFT102", "the header is not valid UTF-8")
                    .at(8 + at as u64)
                    .evidence(format!(
                        "bytes {} after {:?}",
                        hex(&header[at..header.len().min(at + 8)]),
                        clip(&String::from_utf8_lossy(&header[at.saturating_sub(24)..at]), 24)
                    )),
            );
            return;
        }
    };
    let parsed = match json::parse(
        text,
        Options {
            max_depth: MAX_DEPTH,
            python: false,
            max_values: MAX_VALUES,
        },
    ) {
        Ok(p) => p,
        Err(e) => {
            let context = clip(&text[floor_char(text, e.at.saturating_sub(40))..], 80);
            let fact = match e.kind {
                ErrorKind::Depth => Fact::new(
                    "SFT104",
                    format!("the header JSON nests deeper than {MAX_DEPTH} levels (a valid header needs 3)"),
                ),
                ErrorKind::TooMany => Fact::new(
                    "SFT104",
                    format!("the header holds more than {MAX_VALUES} JSON values: not analysed further"),
                ),
                ErrorKind::Syntax => Fact::new("SFT102", format!("the header is not JSON: {}", e.message)),
            };
            out.push(fact.at(8 + e.at as u64).evidence(context));
            return;
        }
    };
    for d in &parsed.duplicates {
        out.push(
            Fact::new(
                "SFT103",
                format!(
                    "the header repeats the key {:?}: serde_json (the safetensors loader) keeps the last, other readers the first",
                    clip(&d.key, 80)
                ),
            )
            .at(8 + d.again as u64)
            .evidence(format!(
                "{:?} at header bytes {} and {}",
                clip(&d.key, 80),
                d.first,
                d.again
            )),
        );
    }
    let Some(members) = parsed.root.as_object() else {
        out.push(
            Fact::new(
                "SFT102",
                format!("the header is a JSON {}, not an object", parsed.root.kind()),
            )
            .at(8),
        );
        return;
    };
    let raw = |node: &Node<'_>| clip(&text[node.at..node.end], EVIDENCE_CHARS);
    let mut ranges: Vec<(u64, u64, String)> = Vec::new();
    for m in members {
        let at = 8 + m.key_at as u64;
        if m.key == "__metadata__" {
            check_metadata(&m.value, at, out, &raw);
            continue;
        }
        report.tensors += 1;
        let name = clip(&m.key, 80);
        let entry = |msg: String| {
            Fact::new("SFT105", format!("tensor {name:?}: {msg}"))
                .at(at)
                .evidence(format!("{name:?}: {}", raw(&m.value)))
        };
        if m.value.as_object().is_none() {
            out.push(entry(format!(
                "the entry is a JSON {}, not an object",
                m.value.kind()
            )));
            continue;
        }
        let dtype = m.value.get("dtype");
        let shape = m.value.get("shape");
        let offsets = m.value.get("data_offsets");
        let (Some(dtype), Some(shape), Some(offsets)) = (dtype, shape, offsets) else {
            out.push(entry("the entry lacks dtype, shape or data_offsets".to_owned()));
            continue;
        };
        let Some(dtype) = dtype.as_str() else {
            out.push(entry(format!("dtype is a JSON {}, not a string", dtype.kind())));
            continue;
        };
        let dims: Option<Vec<u64>> = shape
            .as_array()
            .and_then(|a| a.iter().map(Node::as_u64).collect());
        let Some(dims) = dims else {
            out.push(entry("shape is not a list of non-negative integers".to_owned()));
            continue;
        };
        let span: Option<Vec<u64>> = offsets
            .as_array()
            .and_then(|a| a.iter().map(Node::as_u64).collect());
        let (begin, end) = match span.as_deref() {
            Some(&[b, e]) => (b, e),
            _ => {
                out.push(entry(
                    "data_offsets is not a pair of non-negative integers".to_owned(),
                ));
                continue;
            }
        };
        if end < begin {
            out.push(entry(format!(
                "data_offsets [{begin}, {end}] end before they begin"
            )));
            continue;
        }
        match dtype_bits(dtype) {
            None => out.push(
                Fact::new(
                    "SFT106",
                    format!(
                        "tensor {name:?} has the dtype {:?}, which the safetensors format does not define",
                        clip(dtype, 40)
                    ),
                )
                .at(at)
                .evidence(format!("{name:?}: {}", raw(&m.value))),
            ),
            Some(bits) => {
                let count = dims.iter().try_fold(1u64, |acc, &d| acc.checked_mul(d));
                let size = count
                    .and_then(|c| c.checked_mul(bits))
                    .filter(|nbits| nbits % 8 == 0)
                    .map(|nbits| nbits / 8);
                let dims_text = format!("{dims:?}");
                match size {
                    None => out.push(
                        Fact::new(
                            "SFT107",
                            format!(
                                "tensor {name:?}: the shape {} of {dtype} overflows 64 bits or is not a whole number of bytes",
                                clip(&dims_text, 80)
                            ),
                        )
                        .at(at)
                        .evidence(format!("{name:?}: {}", raw(&m.value))),
                    ),
                    Some(size) if size != end - begin => out.push(
                        Fact::new(
                            "SFT107",
                            format!(
                                "tensor {name:?}: shape {} of {dtype} needs {size} bytes but data_offsets [{begin}, {end}] span {}",
                                clip(&dims_text, 80),
                                end - begin
                            ),
                        )
                        .at(at)
                        .evidence(format!("{name:?}: {}", raw(&m.value))),
                    ),
                    Some(_) => {}
                }
            }
        }
        if end > data_len {
            out.push(
                Fact::new(
                    "SFT108",
                    format!(
                        "tensor {name:?}: data_offsets [{begin}, {end}] reach past the {data_len}-byte data area"
                    ),
                )
                .at(at)
                .evidence(format!("{name:?}: {}", raw(&m.value))),
            );
        }
        // Out-of-bounds ranges still cover what they reach of the data area.
        ranges.push((begin.min(data_len), end.min(data_len), m.key.to_string()));
        let data_start = 8 + text.len() as u64;
        report.spans.push(TensorSpan {
            name: m.key.to_string(),
            dtype: dtype.to_owned(),
            begin: data_start + begin.min(data_len),
            end: data_start + end.min(data_len),
        });
    }
    report.uncovered = check_layout(ranges, data_len, 8 + text.len() as u64, out);
}

/// `__metadata__` must be an object whose values are strings (or `null`, which the loader
/// accepts as no metadata).
fn check_metadata(value: &Node<'_>, at: u64, out: &mut Facts, raw: &dyn Fn(&Node<'_>) -> String) {
    match value.as_object() {
        None if value.kind() == "null" => {}
        None => out.push(
            Fact::new(
                "SFT111",
                format!(
                    "__metadata__ is a JSON {}, not an object of strings",
                    value.kind()
                ),
            )
            .at(at)
            .evidence(format!("\"__metadata__\": {}", raw(value))),
        ),
        Some(members) => {
            for m in members {
                if m.value.as_str().is_none() {
                    out.push(
                        Fact::new(
                            "SFT111",
                            format!(
                                "__metadata__ value {:?} is a JSON {}, not a string",
                                clip(&m.key, 80),
                                m.value.kind()
                            ),
                        )
                        .at(8 + m.key_at as u64)
                        .evidence(format!(
                            "{:?}: {}",
                            clip(&m.key, 80),
                            raw(&m.value)
                        )),
                    );
                }
            }
        }
    }
}

/// Overlaps and uncovered bytes among the tensors' byte ranges within the data area; returns
/// the uncovered ranges (file offsets).
fn check_layout(
    mut ranges: Vec<(u64, u64, String)>,
    data_len: u64,
    data_start: u64,
    out: &mut Facts,
) -> Vec<(u64, u64)> {
    let mut uncovered = Vec::new();
    ranges.sort_by_key(|r| (r.0, r.1));
    let mut covered = 0u64; // everything below this is covered by some tensor
    let mut last: Option<&(u64, u64, String)> = None;
    for range in &ranges {
        let (begin, end, name) = range;
        if *begin < covered && begin != end {
            if let Some(prev) = last {
                out.push(
                    Fact::new(
                        "SFT109",
                        format!(
                            "tensors {:?} and {:?} share bytes: [{}, {}) overlaps [{}, {})",
                            clip(&prev.2, 80),
                            clip(name, 80),
                            prev.0,
                            prev.1,
                            begin,
                            end
                        ),
                    )
                    .at(data_start + begin)
                    .evidence(format!(
                        "{:?} [{}, {}] and {:?} [{begin}, {end}]",
                        clip(&prev.2, 80),
                        prev.0,
                        prev.1,
                        clip(name, 80)
                    )),
                );
            }
        } else if *begin > covered {
            uncovered.push((data_start + covered, data_start + begin));
            out.push(
                Fact::new(
                    "SFT110",
                    format!(
                        "{} bytes of the data area before tensor {:?} belong to no tensor",
                        begin - covered,
                        clip(name, 80)
                    ),
                )
                .at(data_start + covered)
                .evidence(format!("data bytes [{covered}, {begin}) are not covered")),
            );
        }
        if *end > covered {
            covered = *end;
            last = Some(range);
        }
    }
    if covered < data_len {
        uncovered.push((data_start + covered, data_start + data_len));
        out.push(
            Fact::new(
                "SFT110",
                format!(
                    "{} bytes after the last tensor belong to no tensor",
                    data_len - covered
                ),
            )
            .at(data_start + covered)
            .evidence(format!("data bytes [{covered}, {data_len}) are not covered")),
        );
    }
    uncovered
}

/// Facts, capped per rule by the one collector.
type Facts = modelward_diagnostics::FactCollector;

fn hex(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(" ")
}

fn floor_char(s: &str, mut i: usize) -> usize {
    while i > 0 && !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    /// A file from header JSON and `data` bytes (the header padded with spaces to 8 bytes, as
    /// the real writer does).
    fn file(header: &str, data: &[u8]) -> Vec<u8> {
        let mut h = header.as_bytes().to_vec();
        while !h.len().is_multiple_of(8) {
            h.push(b' ');
        }
        let mut v = (h.len() as u64).to_le_bytes().to_vec();
        v.extend_from_slice(&h);
        v.extend_from_slice(data);
        v
    }

    fn run(bytes: &[u8]) -> SafetensorsReport {
        check(&mut Cursor::new(bytes), bytes.len() as u64)
    }

    fn rules(bytes: &[u8]) -> Vec<&'static str> {
        run(bytes).facts.iter().map(|f| f.rule).collect()
    }

    const VALID: &str = r#"{"__metadata__":{"format":"pt"},"a":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]},"b":{"dtype":"BF16","shape":[3],"data_offsets":[16,22]},"e":{"dtype":"I64","shape":[0],"data_offsets":[22,22]},"f":{"dtype":"F4","shape":[4],"data_offsets":[22,24]}}"#;

    #[test]
    fn valid_file_gives_no_facts() {
        let f = file(VALID, &[0u8; 24]);
        let r = run(&f);
        assert_eq!(r.facts, []);
        assert_eq!(r.tensors, 4);
        assert!(looks_like(&f, f.len() as u64));
        let empty = file("{}", &[]);
        assert_eq!(run(&empty).facts, []);
        assert!(looks_like(&empty, empty.len() as u64));
    }

    #[test]
    fn looks_like_checks_length_and_brace() {
        let f = file(VALID, &[0u8; 24]);
        assert!(!looks_like(&f[..8], f.len() as u64));
        assert!(looks_like(&f[..9], f.len() as u64));
        assert!(!looks_like(&f, 20));
        assert!(!looks_like(b"\x80\x02}q\x00.", 6));
        let mut not_brace = f.clone();
        not_brace[8] = b'[';
        assert!(!looks_like(&not_brace, f.len() as u64));
        assert!(!looks_like(b"\x01\x00\x00\x00\x00\x00\x00\x00{", 9));
    }

    #[test]
    fn sft101_header_length() {
        let mut f = file(VALID, &[0u8; 24]);
        f[..8].copy_from_slice(&u64::MAX.to_le_bytes());
        assert_eq!(rules(&f), ["SFT101"]);
        let total = f.len() as u64;
        f[..8].copy_from_slice(&total.to_le_bytes());
        assert_eq!(rules(&f), ["SFT101"]);
        f[..8].copy_from_slice(&(MAX_HEADER + 1).to_le_bytes());
        assert_eq!(rules(&f), ["SFT101"]);
        assert_eq!(rules(b"\x00\x00"), ["SFT101"]);
        assert_eq!(rules(&0u64.to_le_bytes()), ["SFT101"]);
        // A reader shorter than the length it claims.
        let f = file(VALID, &[0u8; 24]);
        let r = check(&mut Cursor::new(&f[..40]), f.len() as u64);
        assert_eq!(r.facts[0].rule, "SFT101");
        assert_eq!(rules(&file(VALID, &[0u8; 24])), Vec::<&str>::new());
    }

    #[test]
    fn sft102_not_json() {
        assert_eq!(rules(&file("{\"a\": }", &[])), ["SFT102"]);
        assert_eq!(rules(&file("[1, 2]", &[])), ["SFT102"]);
        let mut f = file("{\"\u{e9}\": 1}", &[]);
        f[10] = 0xff; // break the UTF-8
        assert_eq!(rules(&f), ["SFT102"]);
        assert_eq!(rules(&file("{}", &[])), Vec::<&str>::new());
    }

    #[test]
    fn sft103_duplicate_keys() {
        let h = r#"{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}"#;
        let r = run(&file(h, &[7]));
        let codes: Vec<_> = r.facts.iter().map(|f| f.rule).collect();
        assert!(codes.contains(&"SFT103"), "{codes:?}");
        assert!(r.facts[0].evidence.as_deref().unwrap().contains("\"a\""));
        let h = r#"{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"b":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}}"#;
        assert_eq!(rules(&file(h, &[7, 8])), Vec::<&str>::new());
    }

    #[test]
    fn sft104_deep_nesting() {
        let deep = format!("{{\"__metadata__\":{}1{}}}", "[".repeat(5000), "]".repeat(5000));
        assert_eq!(rules(&file(&deep, &[])), ["SFT104"]);
        let wide = format!("{{\"__metadata__\":[{}0]}}", "0,".repeat(MAX_VALUES));
        assert_eq!(rules(&file(&wide, &[])), ["SFT104"]);
        let shallow = format!("{{\"x\":{}1{}}}", "[".repeat(10), "]".repeat(10));
        assert!(!rules(&file(&shallow, &[])).contains(&"SFT104"));
    }

    #[test]
    fn sft105_bad_entries() {
        for h in [
            r#"{"a":[1]}"#,
            r#"{"a":{"dtype":"U8","shape":[1]}}"#,
            r#"{"a":{"dtype":8,"shape":[1],"data_offsets":[0,1]}}"#,
            r#"{"a":{"dtype":"U8","shape":[-1],"data_offsets":[0,1]}}"#,
            r#"{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1,2]}}"#,
            r#"{"a":{"dtype":"U8","shape":[1],"data_offsets":[1.0,2]}}"#,
            r#"{"a":{"dtype":"U8","shape":[1],"data_offsets":[2,1]}}"#,
        ] {
            assert!(rules(&file(h, &[0, 0])).contains(&"SFT105"), "{h}");
        }
        let ok = r#"{"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2],"extra":"ignored"}}"#;
        assert_eq!(rules(&file(ok, &[0, 0])), Vec::<&str>::new());
    }

    #[test]
    fn sft106_unknown_dtype() {
        let h = r#"{"a":{"dtype":"Q4","shape":[2],"data_offsets":[0,2]}}"#;
        assert_eq!(rules(&file(h, &[0, 0])), ["SFT106"]);
        for d in ["F8_E8M0", "C64", "F6_E2M3", "U64"] {
            assert!(dtype_bits(d).is_some());
        }
    }

    #[test]
    fn sft107_size_mismatch_and_overflow() {
        let h = r#"{"a":{"dtype":"F32","shape":[2,2],"data_offsets":[0,8]}}"#;
        assert_eq!(rules(&file(h, &[0; 8])), ["SFT107"]);
        let h = r#"{"a":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,8]}}"#;
        assert_eq!(rules(&file(h, &[0; 8])), ["SFT107"]);
        let h = r#"{"a":{"dtype":"F4","shape":[3],"data_offsets":[0,2]}}"#;
        assert_eq!(rules(&file(h, &[0; 2])), ["SFT107"]);
        let h = r#"{"a":{"dtype":"F6_E3M2","shape":[4],"data_offsets":[0,3]}}"#;
        assert_eq!(rules(&file(h, &[0; 3])), Vec::<&str>::new());
    }

    #[test]
    fn sft108_out_of_bounds() {
        let h = r#"{"a":{"dtype":"U8","shape":[16],"data_offsets":[0,16]}}"#;
        assert_eq!(rules(&file(h, &[0; 8])), ["SFT108"]);
        let h =
            r#"{"a":{"dtype":"U8","shape":[0],"data_offsets":[18446744073709551615,18446744073709551615]}}"#;
        assert_eq!(rules(&file(h, &[])), ["SFT108"]);
        let h = r#"{"a":{"dtype":"U8","shape":[8],"data_offsets":[0,8]}}"#;
        assert_eq!(rules(&file(h, &[0; 8])), Vec::<&str>::new());
    }

    #[test]
    fn sft109_overlap() {
        let h = r#"{"a":{"dtype":"U8","shape":[8],"data_offsets":[0,8]},"b":{"dtype":"U8","shape":[4],"data_offsets":[4,8]}}"#;
        assert_eq!(rules(&file(h, &[0; 8])), ["SFT109"]);
        let h = r#"{"a":{"dtype":"U8","shape":[4],"data_offsets":[0,4]},"b":{"dtype":"U8","shape":[4],"data_offsets":[4,8]},"z":{"dtype":"U8","shape":[0],"data_offsets":[4,4]}}"#;
        assert_eq!(rules(&file(h, &[0; 8])), Vec::<&str>::new());
    }

    #[test]
    fn sft110_hidden_bytes() {
        let h = r#"{"a":{"dtype":"U8","shape":[4],"data_offsets":[0,4]},"b":{"dtype":"U8","shape":[4],"data_offsets":[8,12]}}"#;
        assert_eq!(rules(&file(h, &[0; 12])), ["SFT110"]);
        let h = r#"{"a":{"dtype":"U8","shape":[4],"data_offsets":[0,4]}}"#;
        let r = run(&file(h, b"\0\0\0\0PK\x03\x04payload"));
        assert_eq!(r.facts.len(), 1);
        assert_eq!(r.facts[0].rule, "SFT110");
        assert!(r.facts[0].message.contains("after the last tensor"));
        let h = r#"{"a":{"dtype":"U8","shape":[4],"data_offsets":[4,8]}}"#;
        assert_eq!(rules(&file(h, &[0; 8])), ["SFT110"]);
        let h = r#"{"a":{"dtype":"U8","shape":[4],"data_offsets":[0,4]}}"#;
        assert_eq!(rules(&file(h, &[0; 4])), Vec::<&str>::new());
    }

    #[test]
    fn sft111_metadata_values() {
        let h = r#"{"__metadata__":{"format":"pt","nested":{"a":1}}}"#;
        assert_eq!(rules(&file(h, &[])), ["SFT111"]);
        let h = r#"{"__metadata__":["x"]}"#;
        assert_eq!(rules(&file(h, &[])), ["SFT111"]);
        let h = r#"{"__metadata__":null}"#;
        assert_eq!(rules(&file(h, &[])), Vec::<&str>::new());
    }

    #[test]
    fn many_findings_are_capped() {
        let mut h = String::from("{");
        for i in 0..100 {
            h.push_str(&format!(
                "\"t{i}\":{{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,2]}},"
            ));
        }
        h.pop();
        h.push('}');
        let r = run(&file(&h, &[0; 2]));
        let n107 = r.facts.iter().filter(|f| f.rule == "SFT107").count();
        assert_eq!(n107, MAX_REPORTED + 1);
        assert!(r.facts.iter().any(|f| f.message.starts_with("84 more")));
    }

    #[test]
    fn never_panics_on_truncations_and_flips() {
        let base = file(VALID, &[0u8; 24]);
        for cut in 0..base.len() {
            let _ = run(&base[..cut]);
        }
        for i in 0..base.len() {
            for v in [0u8, 0xff, b'"', b'{', b'9'] {
                let mut m = base.clone();
                m[i] = v;
                let _ = run(&m);
            }
        }
    }
}
