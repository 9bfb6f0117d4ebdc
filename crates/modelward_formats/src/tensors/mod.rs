//! Deep analysis of tensor data (`scan --deep`): pure functions over bytes, plus a sampler that
//! reads bounded ranges through `Read + Seek` (so remote sources fetch only the sampled ranges).
//!
//! - [`signatures`]: executables, archives, pickles and scripts stored as tensor bytes.
//! - [`stego`]: low-bit steganography in float tensors (EvilModel / StegoNet / MaleficNet style).
//! - [`values`]: crafted value patterns: NaN payloads, constant blocks.
//! - [`deep`]: which ranges to read under a budget, and the facts (`TEN2xx`) they give.

pub mod deep;
pub mod signatures;
pub mod stego;
pub mod values;

/// Element types the value tests understand.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Float {
    /// IEEE binary64.
    F64,
    /// IEEE binary32.
    F32,
    /// IEEE binary16.
    F16,
    /// bfloat16.
    BF16,
}

impl Float {
    /// Bytes per element.
    pub fn size(self) -> usize {
        match self {
            Float::F64 => 8,
            Float::F32 => 4,
            Float::F16 | Float::BF16 => 2,
        }
    }

    /// Mantissa (fraction) bits.
    pub fn mantissa_bits(self) -> u32 {
        match self {
            Float::F64 => 52,
            Float::F32 => 23,
            Float::F16 => 10,
            Float::BF16 => 7,
        }
    }

    /// Exponent bits.
    pub fn exponent_bits(self) -> u32 {
        match self {
            Float::F64 => 11,
            Float::F32 | Float::BF16 => 8,
            Float::F16 => 5,
        }
    }

    /// The float type of a safetensors dtype name.
    pub fn from_safetensors(dtype: &str) -> Option<Float> {
        Some(match dtype {
            "F64" => Float::F64,
            "F32" => Float::F32,
            "F16" => Float::F16,
            "BF16" => Float::BF16,
            _ => return None,
        })
    }

    /// The float type of a numpy descr (`<f4`, `<f2`, ...), little-endian or native only.
    pub fn from_numpy(descr: &str) -> Option<Float> {
        Some(match descr {
            "<f8" | "=f8" => Float::F64,
            "<f4" | "=f4" => Float::F32,
            "<f2" | "=f2" => Float::F16,
            _ => return None,
        })
    }

    /// The little-endian element at `chunk` (exactly `size()` bytes) as raw bits.
    pub fn bits(self, chunk: &[u8]) -> u64 {
        let mut b = [0u8; 8];
        b[..chunk.len().min(8)].copy_from_slice(&chunk[..chunk.len().min(8)]);
        u64::from_le_bytes(b)
    }
}
