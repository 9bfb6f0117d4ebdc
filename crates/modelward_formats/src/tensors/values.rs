//! Crafted value patterns: NaNs carrying data in their payload bits, and long constant runs in
//! a tensor whose other values are dense.

use super::Float;

/// What [`check`] saw in a sample of one tensor.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Values {
    /// Elements looked at.
    pub elements: usize,
    /// NaNs whose payload is not the canonical quiet NaN (`0x7fc00000` and its sign twin):
    /// arithmetic never produces them; they are data written into NaNs.
    pub odd_nans: usize,
    /// Offset (in the sample, bytes) of the first odd NaN.
    pub first_odd_nan: Option<usize>,
    /// Infinities (attention masks hold -inf legitimately; only reported in the message).
    pub infinities: usize,
    /// Longest run of one repeated non-zero element, and where it starts (bytes).
    pub longest_run: (usize, usize),
    /// Distinct element values among the first 4096 (a dense tensor has thousands).
    pub distinct_head: usize,
}

/// Runs at least this long of one non-zero value inside a dense tensor are reported.
pub const MIN_RUN: usize = 4096;

/// Scans the elements of `data`.
pub fn check(data: &[u8], dtype: Float) -> Values {
    let size = dtype.size();
    let (m, e) = (dtype.mantissa_bits(), dtype.exponent_bits());
    let exp_mask = ((1u64 << e) - 1) << m;
    let mant_mask = (1u64 << m) - 1;
    let quiet = 1u64 << (m - 1);
    let mut v = Values::default();
    let mut run = (0usize, 0usize, u64::MAX);
    let mut head = Vec::with_capacity(4096);
    for (i, c) in data.chunks_exact(size).enumerate() {
        let b = dtype.bits(c);
        v.elements += 1;
        if b & exp_mask == exp_mask {
            if b & mant_mask == 0 {
                v.infinities += 1;
            } else if b & mant_mask != quiet {
                v.odd_nans += 1;
                v.first_odd_nan.get_or_insert(i * size);
            }
        }
        let magnitude = b & !(1u64 << (m + e));
        if b == run.2 && magnitude != 0 {
            run.1 += 1;
        } else {
            run = (i, usize::from(magnitude != 0), b);
        }
        if run.1 > v.longest_run.0 {
            v.longest_run = (run.1, run.0 * size);
        }
        if head.len() < 4096 {
            head.push(b);
        }
    }
    head.sort_unstable();
    head.dedup();
    v.distinct_head = head.len();
    v
}

#[cfg(test)]
mod tests {
    use super::super::stego::tests::{encode, normals};
    use super::*;

    #[test]
    fn dense_weights_are_quiet() {
        let v = check(&encode(&normals(1 << 14, 0.02, 3), Float::F32), Float::F32);
        assert_eq!((v.odd_nans, v.infinities), (0, 0));
        assert!(v.longest_run.0 < 3);
        assert!(v.distinct_head > 4000);
    }

    #[test]
    fn nan_payloads_and_runs() {
        let mut data = encode(&normals(1 << 14, 0.02, 4), Float::F32);
        data[400..404].copy_from_slice(&0x7fc0_0000u32.to_le_bytes()); // canonical
        data[800..804].copy_from_slice(&0x7f80_0000u32.to_le_bytes()); // +inf
        for (i, chunk) in data[1200..1200 + 40].chunks_exact_mut(4).enumerate() {
            chunk.copy_from_slice(&(0x7f80_0000u32 | (0x4141 + i as u32)).to_le_bytes());
        }
        for chunk in data[8000..8000 + 4 * 5000].chunks_exact_mut(4) {
            chunk.copy_from_slice(&0.5f32.to_le_bytes());
        }
        let v = check(&data, Float::F32);
        assert_eq!((v.odd_nans, v.first_odd_nan, v.infinities), (10, Some(1200), 1));
        assert_eq!(v.longest_run, (5000, 8000));
        // bf16 NaN with a payload.
        let v = check(&[0xc1, 0x7f, 0xc0, 0x7f], Float::BF16);
        assert_eq!(v.odd_nans, 1);
        // Zeros are not a run.
        assert_eq!(check(&[0u8; 4 * 5000], Float::F32).longest_run.0, 0);
    }
}
