//! Sampled, bounded reads of tensor data and the facts they give (`TEN2xx`).
//!
//! A tensor no larger than the per-tensor budget is read whole; a larger one is read as four
//! slices (start, one third, two thirds, end), each a quarter of the budget and aligned to the
//! element size. EvilModel-style embedding fills a tensor from its start, so the first slice
//! sees it. Every read goes through the caller's `Read + Seek` (a remote source fetches only
//! these ranges) and is counted against the per-file budget; nothing is allocated by what the
//! file claims, only by the budgets.

use super::{Float, signatures, stego, values};
use crate::io::ReadSeek;
use modelward_diagnostics::Fact;
use std::io::{Read, SeekFrom};

/// Deep-scan budgets (from the scanner's `ScanLimits`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeepLimits {
    /// Bytes of tensor data read per file, all tensors together.
    pub per_file: u64,
    /// Bytes read per tensor (or per unreferenced region).
    pub per_tensor: u64,
}

impl Default for DeepLimits {
    fn default() -> DeepLimits {
        DeepLimits {
            per_file: 256 << 20,
            per_tensor: 4 << 20,
        }
    }
}

/// Signatures reported per tensor.
const MAX_HITS: usize = 4;

/// Bytes of each slice the low-bit test looks at: 64 Ki float32 elements give 8 KiB assembled
/// at one bit per element (twice `stego::MIN_BYTES`), and the test makes 29 passes over what it
/// is given, so the whole slice (signatures and values are checked over all of it) would cost
/// most of the deep scan's time for no more power.
const STEGO_SAMPLE: usize = 256 << 10;

/// A byte range of the input holding one tensor (or a region no tensor claims).
#[derive(Debug, Clone, Copy)]
pub struct Region<'a> {
    /// Tensor or region name, for messages.
    pub name: &'a str,
    /// Element type, when it is a float type the value tests understand.
    pub dtype: Option<Float>,
    /// Start offset in the input.
    pub begin: u64,
    /// End offset (exclusive).
    pub end: u64,
}

/// The slices of `[begin, end)` read under a per-tensor budget, each aligned to `align`.
pub fn sample_ranges(begin: u64, end: u64, per_tensor: u64, align: u64) -> Vec<(u64, u64)> {
    let len = end.saturating_sub(begin);
    if len == 0 || per_tensor == 0 {
        return Vec::new();
    }
    if len <= per_tensor {
        return vec![(begin, end)];
    }
    let align = align.max(1);
    let slice = (per_tensor / 4 / align * align).max(align).min(len);
    let mut out: Vec<(u64, u64)> = [0, len / 3, 2 * len / 3, len - slice]
        .into_iter()
        .map(|rel| {
            let at = begin + rel / align * align;
            (at, (at + slice).min(end))
        })
        .collect();
    out.dedup();
    out
}

/// Reads the sampled slices of `region` and returns its facts. `spent` counts bytes read for
/// the file; reading stops once it reaches `limits.per_file`.
pub fn check_region(
    r: &mut dyn ReadSeek,
    region: &Region<'_>,
    limits: &DeepLimits,
    spent: &mut u64,
) -> Vec<Fact> {
    let mut facts = Vec::new();
    let align = region.dtype.map_or(1, |d| d.size() as u64);
    let mut hits = 0;
    let mut stego_done = false;
    let mut nan_done = false;
    let mut run_done = false;
    for (a, b) in sample_ranges(region.begin, region.end, limits.per_tensor, align) {
        let room = limits.per_file.saturating_sub(*spent);
        let b = b.min(a + room);
        if b <= a {
            break;
        }
        let mut buf = Vec::with_capacity((b - a) as usize);
        if r.seek(SeekFrom::Start(a)).is_err() || r.take(b - a).read_to_end(&mut buf).is_err() {
            break;
        }
        *spent += buf.len() as u64;
        let name = region.name;
        for h in signatures::scan(&buf, MAX_HITS - hits) {
            hits += 1;
            facts.push(
                Fact::new(
                    "TEN201",
                    format!(
                        "{name:?}: {} starts {} bytes into the data",
                        with_article(h.kind),
                        a + h.offset as u64 - region.begin
                    ),
                )
                .at(a + h.offset as u64)
                .evidence(h.preview),
            );
        }
        let Some(dtype) = region.dtype else { continue };
        let stego_len = buf.len().min(STEGO_SAMPLE) / dtype.size() * dtype.size();
        if !stego_done && let Some(s) = stego::test(&buf[..stego_len], dtype) {
            stego_done = true;
            // A recognisable payload is worth a look; structure alone is also what weights
            // once stored in lower precision show (measured on the real files: docs/anomaly.md).
            let (rule, what) = match s.payload {
                Some(kind) => ("TEN202", format!("carry {}", with_article(kind))),
                None => ("TEN206", "are less random than trained weights' are".to_owned()),
            };
            facts.push(
                Fact::new(
                    rule,
                    format!(
                        "{name:?}: the lowest {} bit(s) of its {dtype:?} elements {what} ({:.2} bits per byte; trained weights give ~8)",
                        s.bits, s.entropy
                    ),
                )
                .at(a)
                .evidence(format!(
                    "{} assembled bytes ({}), chi-square {:.0} (random ~255), {:.0}% printable; first bytes {}",
                    s.bytes,
                    if s.msb_first { "most-significant bit first" } else { "least-significant bit first" },
                    s.chi2,
                    100.0 * s.printable,
                    s.preview
                )),
            );
        }
        let v = values::check(&buf, dtype);
        if !nan_done && v.odd_nans >= 4 {
            nan_done = true;
            let at = a + v.first_odd_nan.unwrap_or(0) as u64;
            facts.push(
                Fact::new(
                    "TEN203",
                    format!(
                        "{name:?}: {} of {} sampled elements are NaNs with non-canonical payload bits",
                        v.odd_nans, v.elements
                    ),
                )
                .at(at)
                .evidence(signatures::preview(&buf, (at - a) as usize)),
            );
        }
        // Only in a tensor that is otherwise dense (a mask or an initialised bias is constant).
        if !run_done && v.longest_run.0 >= values::MIN_RUN && v.distinct_head >= 1024 {
            run_done = true;
            let at = a + v.longest_run.1 as u64;
            facts.push(
                Fact::new(
                    "TEN204",
                    format!(
                        "{name:?}: {} consecutive elements repeat one non-zero value inside otherwise dense weights",
                        v.longest_run.0
                    ),
                )
                .at(at)
                .evidence(signatures::preview(&buf, (at - a) as usize)),
            );
        }
    }
    facts
}

/// `an ELF executable`, `a zip archive`, `text`.
fn with_article(kind: &str) -> String {
    if kind == "text" {
        "text".into()
    } else if kind.starts_with(['a', 'e', 'i', 'o', 'u', 'E']) {
        format!("an {kind}")
    } else {
        format!("a {kind}")
    }
}

#[cfg(test)]
mod tests {
    use super::super::stego::tests::{embed, encode, normals, payload};
    use super::*;
    use std::io::Cursor;

    #[test]
    fn ranges_cover_small_tensors_and_sample_large_ones() {
        assert_eq!(sample_ranges(10, 20, 100, 4), [(10, 20)]);
        assert_eq!(sample_ranges(10, 10, 100, 4), []);
        let r = sample_ranges(0, 1 << 30, 4 << 20, 4);
        assert_eq!(r.len(), 4);
        assert!(r.iter().all(|(a, b)| b - a == 1 << 20 && a % 4 == 0));
        assert_eq!(r[0].0, 0);
        assert_eq!(r[3].1, 1 << 30);
        let _ = sample_ranges(3, u64::MAX, u64::MAX - 1, 7);
    }

    #[test]
    fn facts_and_budget() {
        let mut data = encode(&normals(1 << 16, 0.02, 21), Float::F32);
        let clean = data.clone();
        let limits = DeepLimits::default();
        let region = Region {
            name: "w",
            dtype: Some(Float::F32),
            begin: 0,
            end: data.len() as u64,
        };
        let mut spent = 0;
        assert_eq!(
            check_region(&mut Cursor::new(&clean), &region, &limits, &mut spent),
            []
        );
        assert_eq!(spent, clean.len() as u64);
        embed(&mut data, Float::F32, 8, &payload(1 << 16));
        let facts = check_region(&mut Cursor::new(&data), &region, &limits, &mut 0);
        let rules: Vec<_> = facts.iter().map(|f| f.rule).collect();
        assert_eq!(rules, ["TEN202"], "{facts:?}");
        // An ELF stored as the tensor's bytes.
        let mut elf = clean.clone();
        elf[4096..4096 + 20].copy_from_slice(&payload(20));
        let facts = check_region(&mut Cursor::new(&elf), &region, &limits, &mut 0);
        assert_eq!(facts[0].rule, "TEN201");
        assert_eq!(facts[0].offset, Some(4096));
        // The per-file budget stops reading.
        let tight = DeepLimits {
            per_file: 1000,
            per_tensor: 1 << 20,
        };
        let mut spent = 0;
        let facts = check_region(&mut Cursor::new(&elf), &region, &tight, &mut spent);
        assert_eq!((facts.len(), spent), (0, 1000));
    }
}
