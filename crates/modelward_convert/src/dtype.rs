//! Element types: PyTorch storage classes and dtype names, numpy `descr` strings, and the
//! safetensors names they map to.

use std::fmt;

/// An element type safetensors can hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Dtype {
    /// `torch.float64`.
    F64,
    /// `torch.float32`.
    F32,
    /// `torch.float16`.
    F16,
    /// `torch.bfloat16`.
    BF16,
    /// `torch.int64`.
    I64,
    /// `torch.int32`.
    I32,
    /// `torch.int16`.
    I16,
    /// `torch.int8`.
    I8,
    /// `torch.uint64`.
    U64,
    /// `torch.uint32`.
    U32,
    /// `torch.uint16`.
    U16,
    /// `torch.uint8`.
    U8,
    /// `torch.bool`.
    Bool,
    /// `torch.float8_e4m3fn`.
    F8E4M3,
    /// `torch.float8_e5m2`.
    F8E5M2,
    /// `torch.float8_e4m3fnuz`.
    F8E4M3Fnuz,
    /// `torch.float8_e5m2fnuz`.
    F8E5M2Fnuz,
    /// `torch.complex64`: two little-endian `f32`s per element.
    C64,
}

impl Dtype {
    /// Every supported dtype.
    pub const ALL: [Dtype; 18] = [
        Dtype::F64,
        Dtype::F32,
        Dtype::F16,
        Dtype::BF16,
        Dtype::I64,
        Dtype::I32,
        Dtype::I16,
        Dtype::I8,
        Dtype::U64,
        Dtype::U32,
        Dtype::U16,
        Dtype::U8,
        Dtype::Bool,
        Dtype::F8E4M3,
        Dtype::F8E5M2,
        Dtype::F8E4M3Fnuz,
        Dtype::F8E5M2Fnuz,
        Dtype::C64,
    ];

    /// Bytes per element.
    pub fn size(self) -> u64 {
        match self {
            Dtype::F64 | Dtype::I64 | Dtype::U64 | Dtype::C64 => 8,
            Dtype::F32 | Dtype::I32 | Dtype::U32 => 4,
            Dtype::F16 | Dtype::BF16 | Dtype::I16 | Dtype::U16 => 2,
            Dtype::I8
            | Dtype::U8
            | Dtype::Bool
            | Dtype::F8E4M3
            | Dtype::F8E5M2
            | Dtype::F8E4M3Fnuz
            | Dtype::F8E5M2Fnuz => 1,
        }
    }

    /// Width of the unit whose bytes are reversed when changing byte order (a complex number
    /// is two floats, each swapped on its own).
    pub fn swap_unit(self) -> usize {
        match self {
            Dtype::C64 => 4,
            d => d.size() as usize,
        }
    }

    /// The safetensors name (`"F32"`, `"BF16"`, `"F8_E4M3"`, ...).
    pub fn safetensors(self) -> &'static str {
        match self {
            Dtype::F64 => "F64",
            Dtype::F32 => "F32",
            Dtype::F16 => "F16",
            Dtype::BF16 => "BF16",
            Dtype::I64 => "I64",
            Dtype::I32 => "I32",
            Dtype::I16 => "I16",
            Dtype::I8 => "I8",
            Dtype::U64 => "U64",
            Dtype::U32 => "U32",
            Dtype::U16 => "U16",
            Dtype::U8 => "U8",
            Dtype::Bool => "BOOL",
            Dtype::F8E4M3 => "F8_E4M3",
            Dtype::F8E5M2 => "F8_E5M2",
            Dtype::F8E4M3Fnuz => "F8_E4M3FNUZ",
            Dtype::F8E5M2Fnuz => "F8_E5M2FNUZ",
            Dtype::C64 => "C64",
        }
    }

    /// The dtype for a safetensors name.
    pub fn from_safetensors(name: &str) -> Option<Dtype> {
        Dtype::ALL.into_iter().find(|d| d.safetensors() == name)
    }

    /// The PyTorch name (`float32`, `bfloat16`, ...).
    pub fn torch(self) -> &'static str {
        match self {
            Dtype::F64 => "float64",
            Dtype::F32 => "float32",
            Dtype::F16 => "float16",
            Dtype::BF16 => "bfloat16",
            Dtype::I64 => "int64",
            Dtype::I32 => "int32",
            Dtype::I16 => "int16",
            Dtype::I8 => "int8",
            Dtype::U64 => "uint64",
            Dtype::U32 => "uint32",
            Dtype::U16 => "uint16",
            Dtype::U8 => "uint8",
            Dtype::Bool => "bool",
            Dtype::F8E4M3 => "float8_e4m3fn",
            Dtype::F8E5M2 => "float8_e5m2",
            Dtype::F8E4M3Fnuz => "float8_e4m3fnuz",
            Dtype::F8E5M2Fnuz => "float8_e5m2fnuz",
            Dtype::C64 => "complex64",
        }
    }
}

impl fmt::Display for Dtype {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.torch())
    }
}

/// What a `torch.<name>` dtype attribute is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TorchDtype {
    /// One safetensors can hold.
    Supported(Dtype),
    /// A real PyTorch dtype safetensors has no name for (complex128, quantized, ...).
    Unsupported(&'static str),
}

/// The dtype behind a `torch.<name>` attribute, aliases included.
pub fn torch_dtype(name: &str) -> Option<TorchDtype> {
    use TorchDtype::{Supported as S, Unsupported as U};
    Some(match name {
        "float64" | "double" => S(Dtype::F64),
        "float32" | "float" => S(Dtype::F32),
        "float16" | "half" => S(Dtype::F16),
        "bfloat16" => S(Dtype::BF16),
        "int64" | "long" => S(Dtype::I64),
        "int32" | "int" => S(Dtype::I32),
        "int16" | "short" => S(Dtype::I16),
        "int8" => S(Dtype::I8),
        "uint64" => S(Dtype::U64),
        "uint32" => S(Dtype::U32),
        "uint16" => S(Dtype::U16),
        "uint8" => S(Dtype::U8),
        "bool" => S(Dtype::Bool),
        "float8_e4m3fn" => S(Dtype::F8E4M3),
        "float8_e5m2" => S(Dtype::F8E5M2),
        "float8_e4m3fnuz" => S(Dtype::F8E4M3Fnuz),
        "float8_e5m2fnuz" => S(Dtype::F8E5M2Fnuz),
        "complex64" | "cfloat" => S(Dtype::C64),
        "complex128" | "cdouble" => U("complex128"),
        "complex32" | "chalf" => U("complex32"),
        "float8_e8m0fnu" => U("float8_e8m0fnu"),
        "float4_e2m1fn_x2" => U("float4_e2m1fn_x2"),
        "qint8" => U("qint8"),
        "quint8" => U("quint8"),
        "qint32" => U("qint32"),
        "quint4x2" => U("quint4x2"),
        "quint2x4" => U("quint2x4"),
        "bits8" | "bits16" | "bits1x8" | "bits2x4" | "bits4x2" => U("bits"),
        _ => return None,
    })
}

/// A storage class a persistent id names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StorageKind {
    /// A typed storage (`torch.FloatStorage`): elements of this dtype.
    Typed(Dtype),
    /// `torch.UntypedStorage`: bytes; the tensor's dtype comes with `_rebuild_tensor_v3`.
    Untyped,
    /// A real PyTorch storage class safetensors cannot hold (`ComplexDoubleStorage`, quantized).
    Unsupported(&'static str, u64),
}

impl StorageKind {
    /// Bytes per storage element.
    pub fn element_size(self) -> u64 {
        match self {
            StorageKind::Typed(d) => d.size(),
            StorageKind::Untyped => 1,
            StorageKind::Unsupported(_, n) => n,
        }
    }
}

/// The storage class for `module.name`, when it is one of PyTorch's.
pub fn storage_kind(module: &str, name: &str) -> Option<StorageKind> {
    use StorageKind::{Typed as T, Unsupported as U};
    if matches!(
        (module, name),
        ("torch", "UntypedStorage") | ("torch.storage", "UntypedStorage")
    ) {
        return Some(StorageKind::Untyped);
    }
    if module != "torch" && module != "torch.cuda" {
        return None;
    }
    Some(match name {
        "DoubleStorage" => T(Dtype::F64),
        "FloatStorage" => T(Dtype::F32),
        "HalfStorage" => T(Dtype::F16),
        "BFloat16Storage" => T(Dtype::BF16),
        "LongStorage" => T(Dtype::I64),
        "IntStorage" => T(Dtype::I32),
        "ShortStorage" => T(Dtype::I16),
        "CharStorage" => T(Dtype::I8),
        "ByteStorage" => T(Dtype::U8),
        "BoolStorage" => T(Dtype::Bool),
        "ComplexFloatStorage" => T(Dtype::C64),
        "ComplexDoubleStorage" => U("complex128", 16),
        "QInt8Storage" => U("qint8", 1),
        "QUInt8Storage" => U("quint8", 1),
        "QInt32Storage" => U("qint32", 4),
        "QUInt4x2Storage" => U("quint4x2", 1),
        "QUInt2x4Storage" => U("quint2x4", 1),
        _ => return None,
    })
}

/// A numpy `descr` for a plain numeric array: the dtype and whether it is big-endian.
/// `Err` names what is not supported.
pub fn npy_dtype(descr: &str) -> Result<(Dtype, bool), String> {
    let (order, rest) = match descr.chars().next() {
        Some(c @ ('<' | '>' | '|' | '=')) => (c, &descr[1..]),
        _ => ('=', descr),
    };
    let dtype = match rest {
        "f8" | "d" => Dtype::F64,
        "f4" | "f" => Dtype::F32,
        "f2" | "e" => Dtype::F16,
        "i8" | "q" => Dtype::I64,
        "i4" | "i" => Dtype::I32,
        "i2" | "h" => Dtype::I16,
        "i1" | "b" => Dtype::I8,
        "u8" | "Q" => Dtype::U64,
        "u4" | "I" => Dtype::U32,
        "u2" | "H" => Dtype::U16,
        "u1" | "B" => Dtype::U8,
        "b1" | "?" => Dtype::Bool,
        "c8" | "F" => Dtype::C64,
        _ => {
            return Err(format!("numpy dtype {descr:?} has no safetensors equivalent"));
        }
    };
    // '=' is the writer's native order; numpy always writes '<', '>' or '|', and every
    // platform it runs on today is little-endian.
    Ok((dtype, order == '>' && dtype.size() > 1))
}

/// Reverses the byte order of every `unit`-byte value in `buf`.
pub fn swap_in_place(buf: &mut [u8], unit: usize) {
    if unit > 1 {
        for c in buf.chunks_exact_mut(unit) {
            c.reverse();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_sizes() {
        for d in Dtype::ALL {
            assert_eq!(Dtype::from_safetensors(d.safetensors()), Some(d));
            assert_eq!(torch_dtype(d.torch()), Some(TorchDtype::Supported(d)));
            assert!((d.size() as usize).is_multiple_of(d.swap_unit()));
        }
        assert_eq!(
            storage_kind("torch", "BFloat16Storage"),
            Some(StorageKind::Typed(Dtype::BF16))
        );
        assert_eq!(
            storage_kind("torch.storage", "UntypedStorage"),
            Some(StorageKind::Untyped)
        );
        assert_eq!(storage_kind("os", "FloatStorage"), None);
        assert_eq!(npy_dtype("<f4"), Ok((Dtype::F32, false)));
        assert_eq!(npy_dtype(">i8"), Ok((Dtype::I64, true)));
        assert_eq!(npy_dtype("|b1"), Ok((Dtype::Bool, false)));
        assert_eq!(npy_dtype(">u1"), Ok((Dtype::U8, false)));
        assert!(npy_dtype("<c16").is_err());
        assert!(npy_dtype("|O").is_err());
        let mut b = [1, 2, 3, 4, 5, 6, 7, 8];
        swap_in_place(&mut b, 4);
        assert_eq!(b, [4, 3, 2, 1, 8, 7, 6, 5]);
    }
}
