//! Recognising formats by content. Names and extensions are never consulted.

use std::fmt;

/// Every format modelward recognises, and the one spelling reports use for it
/// ([`Format::name`], the JSON report's `format` field; listed in `docs/json-schema.md`).
///
/// [`sniff_len`] returns the formats recognised by their first bytes; the *refinements* below
/// them are named by the scanner once it has opened the content (a zip whose members are a
/// PyTorch checkpoint is `PytorchZip`). Deliberately exhaustive: the scanner's dispatcher
/// matches every variant without a wildcard arm, so a new format cannot be recognised and
/// silently left unscanned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// A zip archive (PyTorch checkpoints, `.npz`, `.keras`, ...).
    Zip,
    /// A tar archive.
    Tar,
    /// A 7-Zip archive.
    SevenZip,
    /// gzip.
    Gzip,
    /// bzip2.
    Bzip2,
    /// xz.
    Xz,
    /// Legacy `.lzma` (LZMA-alone), as joblib writes it.
    Lzma,
    /// Zstandard.
    Zstd,
    /// LZ4 frame.
    Lz4,
    /// A bare zlib stream (joblib `compress='zlib'`).
    Zlib,
    /// joblib <= 0.9 `ZF` file: a zlib-compressed pickle with a length header.
    JoblibZfile,
    /// numpy `.npy`.
    Npy,
    /// A Python pickle (including PyTorch's legacy format and joblib's stream).
    Pickle,
    /// safetensors: an 8-byte header length and a JSON header.
    Safetensors,
    /// GGUF (llama.cpp).
    Gguf,
    /// UTF-8 text (JSON configs, YAML, Python sources, Jinja templates): analysed by content.
    Text,
    /// HDF5 (Keras `.h5`).
    Hdf5,
    /// An ONNX `ModelProto`.
    Onnx,
    /// A TensorFlow SavedModel (`saved_model.pb`).
    SavedModel,
    /// A protobuf holding a Keras JSON config (`keras_metadata.pb`).
    KerasMetadata,
    /// Nothing modelward knows.
    Unknown,

    // Refinements, named after opening (never returned by `sniff_len`).
    /// A zip laid out as `torch.save` writes it.
    PytorchZip,
    /// A zip laid out as `torch.jit.save` writes it (code files that `torch.jit.load` runs).
    TorchScript,
    /// A Keras v3 `.keras` zip (`config.json` and `metadata.json`).
    Keras,
    /// A zip of `.npy` members (`numpy.savez`).
    Npz,
    /// PyTorch's legacy (pre-1.6) format: five pickles, then raw storages.
    PytorchLegacy,
    /// A joblib pickle stream with inline numpy arrays.
    Joblib,
    /// Raw tensor storage that a loader never unpickles (inside a PyTorch container).
    TensorData,
    /// A JSON document.
    Json,
    /// Python source.
    Python,
    /// A Jinja template.
    Jinja,
    /// YAML (or other text) naming targets a config loader instantiates (Hydra `_target_`),
    /// model-related even when every target is safe.
    YamlConfig,
    /// A protobuf model too large to decode whose kind was not settled.
    Protobuf,
}

impl Format {
    /// Every format, in declaration order.
    pub const ALL: &'static [Format] = &[
        Format::Zip,
        Format::Tar,
        Format::SevenZip,
        Format::Gzip,
        Format::Bzip2,
        Format::Xz,
        Format::Lzma,
        Format::Zstd,
        Format::Lz4,
        Format::Zlib,
        Format::JoblibZfile,
        Format::Npy,
        Format::Pickle,
        Format::Safetensors,
        Format::Gguf,
        Format::Text,
        Format::Hdf5,
        Format::Onnx,
        Format::SavedModel,
        Format::KerasMetadata,
        Format::Unknown,
        Format::PytorchZip,
        Format::TorchScript,
        Format::Keras,
        Format::Npz,
        Format::PytorchLegacy,
        Format::Joblib,
        Format::TensorData,
        Format::Json,
        Format::Python,
        Format::Jinja,
        Format::YamlConfig,
        Format::Protobuf,
    ];

    /// The name used in reports.
    pub fn name(self) -> &'static str {
        match self {
            Format::Zip => "zip",
            Format::Tar => "tar",
            Format::SevenZip => "7z",
            Format::Gzip => "gzip",
            Format::Bzip2 => "bzip2",
            Format::Xz => "xz",
            Format::Lzma => "lzma",
            Format::Zstd => "zstd",
            Format::Lz4 => "lz4",
            Format::Zlib => "zlib",
            Format::JoblibZfile => "joblib-zfile",
            Format::Npy => "npy",
            Format::Pickle => "pickle",
            Format::Safetensors => "safetensors",
            Format::Gguf => "gguf",
            Format::Text => "text",
            Format::Hdf5 => "hdf5",
            Format::Onnx => "onnx",
            Format::SavedModel => "tensorflow-savedmodel",
            Format::KerasMetadata => "keras-metadata",
            Format::Unknown => "unknown",
            Format::PytorchZip => "pytorch-zip",
            Format::TorchScript => "torchscript",
            Format::Keras => "keras",
            Format::Npz => "npz",
            Format::PytorchLegacy => "pytorch-legacy",
            Format::Joblib => "joblib",
            Format::TensorData => "tensor-data",
            Format::Json => "json",
            Format::Python => "python",
            Format::Jinja => "jinja",
            Format::YamlConfig => "yaml-config",
            Format::Protobuf => "protobuf",
        }
    }

    /// Whether this is a single-stream compression wrapper.
    pub fn is_compression(self) -> bool {
        matches!(
            self,
            Format::Gzip
                | Format::Bzip2
                | Format::Xz
                | Format::Lzma
                | Format::Zstd
                | Format::Lz4
                | Format::Zlib
        )
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// How many leading bytes [`sniff`] wants (tar's magic sits at 257).
pub const SNIFF_LEN: usize = 4096;

/// Recognises a format from the first bytes of some content; `len` is the content's length when
/// known (safetensors is recognised by a header length that fits it).
pub fn sniff_len(head: &[u8], len: Option<u64>) -> Format {
    // safetensors: a JSON object right after the 8-byte length. A length that does not fit the
    // file is still safetensors (a lying header is what its checks report).
    let json_object = head.get(8..).is_some_and(|rest| {
        let mut it = rest.iter().skip_while(|b| b.is_ascii_whitespace());
        it.next() == Some(&b'{') && matches!(it.find(|b| !b.is_ascii_whitespace()), Some(b'"' | b'}') | None)
    });
    if crate::safetensors::looks_like(head, len.unwrap_or(u64::MAX)) || json_object {
        return Format::Safetensors;
    }
    if crate::gguf::looks_like(head) {
        return Format::Gguf;
    }
    match sniff(head) {
        Format::Unknown if is_text(head) => Format::Text,
        Format::Unknown => sniff_graph(head, len.unwrap_or(u64::MAX)),
        f => f,
    }
}

/// Model-graph formats, tried last: HDF5, then a SavedModel (the more specific protobuf shape;
/// ONNX's check accepts most protobufs), ONNX, a Keras metadata protobuf.
fn sniff_graph(head: &[u8], len: u64) -> Format {
    use crate::graph_sniff as g;
    if g::looks_like_hdf5(head) {
        Format::Hdf5
    } else if g::looks_like_saved_model(head) {
        Format::SavedModel
    } else if g::looks_like_onnx(head, len) {
        Format::Onnx
    } else if g::looks_like_keras_metadata(head) {
        Format::KerasMetadata
    } else {
        Format::Unknown
    }
}

/// UTF-8 without NULs or other control bytes (a cut in the middle of the last character is
/// allowed: `head` may be a prefix).
pub fn is_text(head: &[u8]) -> bool {
    if head.is_empty()
        || head
            .iter()
            .any(|&b| b == 0 || (b < 0x20 && !matches!(b, b'\n' | b'\r' | b'\t' | 0x0c)))
    {
        return false;
    }
    match std::str::from_utf8(head) {
        Ok(_) => true,
        Err(e) => e.error_len().is_none() && e.valid_up_to() + 4 > head.len(),
    }
}

/// Recognises a format from the first bytes of some content (container and pickle formats).
pub fn sniff(head: &[u8]) -> Format {
    let starts = |m: &[u8]| head.starts_with(m);
    if starts(b"PK\x03\x04") || starts(b"PK\x05\x06") || starts(b"PK\x07\x08") {
        return Format::Zip;
    }
    if starts(b"7z\xbc\xaf\x27\x1c") {
        return Format::SevenZip;
    }
    if starts(b"\x1f\x8b\x08") {
        return Format::Gzip;
    }
    if head.len() >= 4 && starts(b"BZh") && (b'1'..=b'9').contains(&head[3]) {
        return Format::Bzip2;
    }
    if starts(b"\xfd7zXZ\x00") {
        return Format::Xz;
    }
    if starts(b"\x28\xb5\x2f\xfd") {
        return Format::Zstd;
    }
    if starts(b"\x04\x22\x4d\x18") {
        return Format::Lz4;
    }
    if starts(b"\x93NUMPY") {
        return Format::Npy;
    }
    if head.len() >= 21
        && starts(b"ZF")
        && head[2..21]
            .iter()
            .all(|&b| b.is_ascii_hexdigit() || b == b'x' || b == b' ' || b == b'L')
    {
        return Format::JoblibZfile;
    }
    if head.len() >= 263 && &head[257..262] == b"ustar" {
        return Format::Tar;
    }
    if is_lzma_alone(head) {
        return Format::Lzma;
    }
    if head.len() >= 2 && head[0] == 0x78 && (u16::from(head[0]) << 8 | u16::from(head[1])) % 31 == 0 {
        return Format::Zlib;
    }
    if modelward_pickle::looks_like_pickle(head) {
        return Format::Pickle;
    }
    Format::Unknown
}

/// LZMA-alone: properties byte (lc/lp/pb packed, < 225; 0x5d in practice), a dictionary size,
/// an uncompressed size that is either unknown (all 0xff) or plausible.
fn is_lzma_alone(head: &[u8]) -> bool {
    if head.len() < 13 || head[0] != 0x5d {
        return false;
    }
    let dict = u32::from_le_bytes([head[1], head[2], head[3], head[4]]);
    let size = u64::from_le_bytes([
        head[5], head[6], head[7], head[8], head[9], head[10], head[11], head[12],
    ]);
    dict.is_power_of_two() && dict >= 4096 && (size == u64::MAX || size < (1 << 48))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The JSON schema lists exactly the spellings reports use, each once.
    #[test]
    fn the_json_schema_lists_every_format_name() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/json-schema.json");
        let schema = std::fs::read_to_string(path).expect("docs/json-schema.json");
        let listed: Vec<String> = schema
            .split("\"format\": { \"enum\": [")
            .nth(1)
            .and_then(|rest| rest.split(']').next())
            .expect("files[].format is an enum")
            .split(',')
            .map(|n| n.trim().trim_matches('"').to_owned())
            .collect();
        let names: Vec<String> = Format::ALL.iter().map(|f| f.name().to_owned()).collect();
        assert_eq!(listed, names);
        let mut unique = names.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), names.len(), "two formats share a name");
    }

    #[test]
    fn magics() {
        assert_eq!(sniff(b"PK\x03\x04rest"), Format::Zip);
        assert_eq!(sniff(b"\x1f\x8b\x08\x00"), Format::Gzip);
        assert_eq!(sniff(b"BZh91AY"), Format::Bzip2);
        assert_eq!(sniff(b"\x93NUMPY\x01\x00"), Format::Npy);
        assert_eq!(sniff(b"\x80\x02}q\x00."), Format::Pickle);
        assert_eq!(sniff(b"\x78\x9c\x01\x02"), Format::Zlib);
        assert_eq!(sniff(b"\x89PNG\r\n\x1a\n"), Format::Unknown);
        assert_eq!(sniff(b""), Format::Unknown);
        let mut tar = vec![0u8; 512];
        tar[257..262].copy_from_slice(b"ustar");
        assert_eq!(sniff(&tar), Format::Tar);
    }
}
