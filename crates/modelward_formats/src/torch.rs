//! PyTorch's containers: zip checkpoints (any archive prefix), TorchScript archives, and the
//! legacy format (magic-number pickle, protocol, sys-info, object, storage keys, raw storages).

use crate::zip::ZipEntry;
use modelward_pickle::{Node, Trace, Value};

/// The magic number the legacy format pickles first.
pub const LEGACY_MAGIC: &str = "0x1950a86a20f9469cfc6c";
/// The legacy format's protocol version (second pickle).
pub const LEGACY_PROTOCOL_VERSION: i64 = 1001;

/// What a zip's member list says about PyTorch.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TorchLayout {
    /// Archive prefixes (`archive/`, `model/`, ...) that hold a `data.pkl`.
    pub prefixes: Vec<String>,
    /// A TorchScript archive (`code/` or `constants.pkl` beside `data.pkl`).
    pub torchscript: bool,
}

impl TorchLayout {
    /// Reads the layout from member names.
    pub fn of(entries: &[ZipEntry]) -> TorchLayout {
        let mut prefixes: Vec<String> = entries
            .iter()
            .filter_map(|e| e.name.strip_suffix("data.pkl"))
            .filter(|p| p.is_empty() || p.ends_with('/'))
            .map(str::to_owned)
            .collect();
        prefixes.sort();
        prefixes.dedup();
        let torchscript = prefixes.iter().any(|p| {
            entries
                .iter()
                .any(|e| e.name.starts_with(&format!("{p}code/")) || e.name == format!("{p}constants.pkl"))
        });
        TorchLayout {
            prefixes,
            torchscript,
        }
    }

    /// Whether the zip is a PyTorch checkpoint or TorchScript archive.
    pub fn is_torch(&self) -> bool {
        !self.prefixes.is_empty()
    }

    /// Whether a member is a raw tensor storage (`<prefix>data/<key>`): PyTorch reads those as
    /// bytes and never unpickles them, so only their first bytes are checked.
    pub fn is_storage(&self, name: &str) -> bool {
        self.prefixes.iter().any(|p| {
            name.strip_prefix(p.as_str())
                .and_then(|r| r.strip_prefix("data/"))
                .is_some_and(|k| !k.is_empty() && !k.contains('/') && !k.ends_with(".pkl"))
        })
    }

    /// Whether a member is TorchScript source that the TorchScript interpreter compiles.
    pub fn is_code(&self, name: &str) -> bool {
        self.torchscript
            && self
                .prefixes
                .iter()
                .any(|p| name.starts_with(&format!("{p}code/")) && name.ends_with(".py"))
    }
}

/// Whether the first pickles of a stream are PyTorch's legacy header, and whether the first is
/// the literal magic number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Legacy {
    /// Not the legacy format.
    No,
    /// Legacy format, first pickle the literal magic number.
    Literal,
    /// Legacy layout (protocol version 1001 second) but the first pickle is something else.
    BadMagic,
}

fn result_is(trace: &Trace, f: impl Fn(&modelward_pickle::Arena, Value) -> bool) -> bool {
    trace.result.is_some_and(|v| f(&trace.arena, v))
}

/// Classifies the first two pickles of a stream.
pub fn legacy(first: &Trace, second: Option<&Trace>) -> Legacy {
    let literal = trace_is_literal_magic(first);
    let versioned = second.is_some_and(|t| result_is(t, |_, v| v == Value::Int(LEGACY_PROTOCOL_VERSION)));
    match (literal, versioned) {
        (true, _) => Legacy::Literal,
        (false, true) => Legacy::BadMagic,
        _ => Legacy::No,
    }
}

fn trace_is_literal_magic(t: &Trace) -> bool {
    t.events.is_empty()
        && result_is(
            t,
            |a, v| matches!(a.node(v), Some(Node::BigInt(s)) if s == LEGACY_MAGIC),
        )
}

/// Calls and operators in TorchScript source that reach files, processes or custom code.
pub const TORCHSCRIPT_DANGEROUS: &[(&str, &str)] = &[
    ("torch.from_file", "reads a file named by the model"),
    ("aten::from_file", "reads a file named by the model"),
    ("torch.ops.load_library", "loads a native library"),
    ("torch.classes.load_library", "loads a native library"),
    ("open(", "opens a file"),
    ("__import__", "imports a module by name"),
    ("os.system", "runs a command"),
    ("subprocess", "runs a program"),
    ("eval(", "evaluates code"),
    ("exec(", "executes code"),
];

/// Namespaces of `torch.ops` that ship with PyTorch.
pub const TORCH_OP_NAMESPACES: &[&str] = &[
    "aten",
    "prim",
    "quantized",
    "_quantized",
    "profiler",
    "_caffe2",
    "torchvision",
    "image",
    "cuda",
    "_c10d_functional",
    "c10d",
    "mkldnn",
    "mkl",
    "fbgemm",
    "onednn",
];

/// Dangerous constructs in one TorchScript source file: (needle, why).
pub fn torchscript_hits(source: &str) -> Vec<(String, &'static str)> {
    let mut hits: Vec<(String, &'static str)> = TORCHSCRIPT_DANGEROUS
        .iter()
        .filter(|(needle, _)| source.contains(needle))
        .map(|(n, why)| ((*n).to_owned(), *why))
        .collect();
    for (i, _) in source.match_indices("torch.ops.") {
        let ns: String = source[i + 10..]
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        if !ns.is_empty()
            && !TORCH_OP_NAMESPACES.contains(&ns.as_str())
            && !hits.iter().any(|(n, _)| *n == format!("torch.ops.{ns}"))
        {
            hits.push((
                format!("torch.ops.{ns}"),
                "calls a custom operator from a native library",
            ));
        }
    }
    hits
}

/// How pickles and raw data alternate in a stream.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum StreamLayout {
    /// Pickles back to back; anything else after them is trailing data.
    #[default]
    Pickles,
    /// The `storages` member of PyTorch's tar format: a count, then per storage a pickle
    /// `(key, location, storage_type)` followed by an 8-byte element count and the raw bytes.
    TarStorages,
    /// The `tensors` member: a count, then per tensor a pickle `(key, storage_id, type)`
    /// followed by ndim, a reserved int, sizes, strides and a storage offset.
    TarTensors,
}

/// The layout of a member of PyTorch's oldest (tar) checkpoint format, by its name; `None`
/// for a member that is not part of that format.
pub fn tar_member_layout(name: &str) -> Option<StreamLayout> {
    match name {
        "sys_info" | "pickle" => Some(StreamLayout::Pickles),
        "storages" => Some(StreamLayout::TarStorages),
        "tensors" => Some(StreamLayout::TarTensors),
        _ => None,
    }
}

/// Element size of a legacy storage type (`torch.FloatStorage`, ...).
pub fn storage_element_size(name: &str) -> Option<u64> {
    let short = name.rsplit('.').next()?;
    Some(match short {
        "DoubleStorage" | "LongStorage" | "ComplexFloatStorage" => 8,
        "FloatStorage" | "IntStorage" | "QInt32Storage" => 4,
        "HalfStorage" | "BFloat16Storage" | "ShortStorage" => 2,
        "CharStorage" | "ByteStorage" | "BoolStorage" | "QUInt8Storage" | "QInt8Storage" => 1,
        "ComplexDoubleStorage" => 16,
        _ => return None,
    })
}

/// Bytes of the raw record that follows a record pickle of a tar member: for `storages`, the
/// 8-byte element count and the data (`storage_type` is the pickle's third item, `next` the
/// bytes after the pickle); for `tensors`, ndim and the int64 fields that follow. `None` when
/// the header cannot give a size.
pub fn tar_record_len(layout: StreamLayout, storage_type: Option<&str>, next: &[u8]) -> Option<u64> {
    match layout {
        StreamLayout::Pickles => Some(0),
        StreamLayout::TarStorages => {
            let elsize = storage_type.and_then(storage_element_size)?;
            let numel = u64::from_le_bytes(next.get(..8)?.try_into().ok()?);
            numel.checked_mul(elsize).and_then(|b| b.checked_add(8))
        }
        StreamLayout::TarTensors => {
            let ndim = u32::from_le_bytes(next.get(..4)?.try_into().ok()?);
            Some(u64::from(ndim) * 16 + 16)
        }
    }
}
