//! From values to a safetensors layout: flattening nested containers to dotted names, choosing
//! the order of tensors in the file, and the header.

use crate::dtype::Dtype;
use crate::interp::{Cont, Interp, MAX_DEPTH, Obj};
use std::collections::{BTreeMap, HashSet};

/// Largest header safetensors readers accept.
pub const MAX_HEADER: u64 = 100_000_000;

/// A value that is not written: what it was and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dropped {
    /// Dotted name of the value (`(root)` for the top level).
    pub name: String,
    /// What it was.
    pub what: String,
}

/// Where a region of source bytes lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum RegionSrc {
    /// Bytes of the input file starting here.
    Input(u64),
    /// A compressed zip member: decompressed to a scratch file before use.
    Member(modelward_formats::zip::ZipEntry),
}

/// A run of source bytes that tensors read from (a storage record, a legacy storage, an array).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Region {
    /// For messages (`archive/data/0`).
    pub label: String,
    pub src: RegionSrc,
    /// Bytes available.
    pub len: u64,
    /// The CRC-32 the zip directory records for the whole region (unencrypted zip members).
    pub crc32: Option<u32>,
}

/// One tensor to write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TensorPlan {
    pub name: String,
    pub dtype: Dtype,
    pub shape: Vec<u64>,
    /// Strides in elements.
    pub strides: Vec<u64>,
    /// Index into the regions.
    pub region: usize,
    /// Byte offset of element 0 within the region.
    pub byte_offset: u64,
    /// The source is big-endian: swap every element.
    pub swap: bool,
    /// Which storage it reads (region index and the byte range), for the shared-storage note.
    pub begin: u64,
    pub end: u64,
}

impl TensorPlan {
    /// Element count.
    pub fn numel(&self) -> u64 {
        self.shape.iter().product()
    }

    /// Bytes in the output.
    pub fn nbytes(&self) -> u64 {
        self.numel() * self.dtype.size()
    }

    /// Whether the elements are laid out in C order without gaps.
    pub fn is_c_contiguous(&self) -> bool {
        let mut expect = 1u64;
        for (&n, &s) in self.shape.iter().zip(&self.strides).rev() {
            if n != 1 && s != expect {
                return false;
            }
            expect *= n;
        }
        true
    }

    /// Bytes of the region the tensor reads, from its first to past its last element.
    pub fn extent(&self) -> (u64, u64) {
        if self.numel() == 0 {
            return (self.byte_offset, self.byte_offset);
        }
        let last: u64 = self
            .shape
            .iter()
            .zip(&self.strides)
            .map(|(&n, &s)| (n - 1) * s)
            .sum();
        (
            self.byte_offset,
            self.byte_offset + (last + 1) * self.dtype.size(),
        )
    }
}

/// The tree flattened to names.
#[derive(Debug, Default)]
pub(crate) struct Flat {
    /// (name, tensor index in the interpreter).
    pub tensors: Vec<(String, usize)>,
    pub metadata: BTreeMap<String, String>,
    pub dropped: Vec<Dropped>,
}

fn join(path: &[String]) -> String {
    path.join(".")
}

fn shown(path: &[String]) -> String {
    if path.is_empty() {
        "(root)".into()
    } else {
        join(path)
    }
}

/// Flattens the object a checkpoint holds: nested dicts and lists become dotted names
/// (`encoder.layers.0.weight`, the Hugging Face convention), strings go to `__metadata__`,
/// everything else is listed as dropped. A tensor at the top level is named `root_name`.
pub(crate) fn flatten(it: &Interp, root: &Obj, root_name: &str) -> Result<Flat, String> {
    let mut flat = Flat::default();
    let mut path = Vec::new();
    let mut on_path = Vec::new();
    match root {
        Obj::Tensor(i) => {
            flat.tensors.push((root_name.to_owned(), *i));
            for d in &it.tensors[*i].dropped {
                flat.dropped.push(Dropped {
                    name: root_name.to_owned(),
                    what: d.clone(),
                });
            }
        }
        Obj::Cont(_) | Obj::Tuple(_) => walk(it, root, &mut path, &mut on_path, &mut flat)?,
        other => {
            return Err(format!(
                "the checkpoint holds {}, not tensors",
                other.describe(it)
            ));
        }
    }
    let mut seen = HashSet::new();
    for name in flat.tensors.iter().map(|(n, _)| n).chain(flat.metadata.keys()) {
        if name == "__metadata__" {
            return Err("a value is named __metadata__, which safetensors reserves".into());
        }
        if !seen.insert(name.as_str()) {
            return Err(format!(
                "two values flatten to the name {name:?}; rename one before converting"
            ));
        }
    }
    Ok(flat)
}

fn walk(
    it: &Interp,
    v: &Obj,
    path: &mut Vec<String>,
    on_path: &mut Vec<usize>,
    flat: &mut Flat,
) -> Result<(), String> {
    if path.len() > MAX_DEPTH {
        return Err(format!("containers nest more than {MAX_DEPTH} deep"));
    }
    match v {
        Obj::Tensor(i) => {
            let name = join(path);
            for d in &it.tensors[*i].dropped {
                flat.dropped.push(Dropped {
                    name: name.clone(),
                    what: d.clone(),
                });
            }
            flat.tensors.push((name, *i));
        }
        Obj::Str(s) => {
            flat.metadata.insert(join(path), s.to_string());
        }
        Obj::Tuple(items) => {
            for (k, item) in items.iter().enumerate() {
                path.push(k.to_string());
                walk(it, item, path, on_path, flat)?;
                path.pop();
            }
        }
        Obj::Cont(ci) => {
            if on_path.contains(ci) {
                return Err(format!("{} contains itself", shown(path)));
            }
            on_path.push(*ci);
            match &it.conts[*ci] {
                Cont::Dict { items, attrs, .. } => {
                    if let Some(a) = attrs {
                        flat.dropped.push(Dropped {
                            name: shown(path),
                            what: format!("OrderedDict attributes: {}", attr_names(it, a)),
                        });
                    }
                    for (k, item) in items {
                        let comp = match k {
                            Obj::Str(s) => s.to_string(),
                            Obj::Int(i) => i.to_string(),
                            Obj::Bool(b) => if *b { "True" } else { "False" }.to_owned(),
                            Obj::None => "None".to_owned(),
                            other => {
                                return Err(format!(
                                    "{} has a key that is {}",
                                    shown(path),
                                    other.describe(it)
                                ));
                            }
                        };
                        path.push(comp);
                        walk(it, item, path, on_path, flat)?;
                        path.pop();
                    }
                }
                Cont::List(items) => {
                    for (k, item) in items.iter().enumerate() {
                        path.push(k.to_string());
                        walk(it, item, path, on_path, flat)?;
                        path.pop();
                    }
                }
                Cont::Set(items) => {
                    if items.iter().any(|x| matches!(x, Obj::Tensor(_))) {
                        return Err(format!(
                            "{} is a set holding tensors, which have no stable names",
                            shown(path)
                        ));
                    }
                    flat.dropped.push(Dropped {
                        name: shown(path),
                        what: v.describe(it),
                    });
                }
            }
            on_path.pop();
        }
        other => flat.dropped.push(Dropped {
            name: shown(path),
            what: other.describe(it),
        }),
    }
    Ok(())
}

fn attr_names(it: &Interp, a: &Obj) -> String {
    match a {
        Obj::Cont(i) => match &it.conts[*i] {
            Cont::Dict { items, .. } => items
                .iter()
                .map(|(k, _)| match k {
                    Obj::Str(s) => s.to_string(),
                    o => o.describe(it),
                })
                .collect::<Vec<_>>()
                .join(", "),
            _ => a.describe(it),
        },
        _ => a.describe(it),
    }
}

/// Orders tensors like safetensors' own writer (wider elements first, so every tensor starts
/// aligned to its element size) and, within a width, by where their bytes are in the source
/// (so the input is read front to back); assigns data offsets.
pub(crate) fn layout(tensors: &mut [TensorPlan]) -> u64 {
    tensors.sort_by(|a, b| {
        b.dtype
            .size()
            .cmp(&a.dtype.size())
            .then(a.region.cmp(&b.region))
            .then(a.byte_offset.cmp(&b.byte_offset))
            .then(a.name.cmp(&b.name))
    });
    let mut at = 0u64;
    for t in tensors.iter_mut() {
        t.begin = at;
        at += t.nbytes();
        t.end = at;
    }
    at
}

/// The header: JSON padded with spaces to a multiple of 8 bytes (what safetensors writes).
pub(crate) fn header(tensors: &[TensorPlan], metadata: &BTreeMap<String, String>) -> Result<Vec<u8>, String> {
    let mut map = serde_json::Map::new();
    if !metadata.is_empty() {
        let m: serde_json::Map<String, serde_json::Value> = metadata
            .iter()
            .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
            .collect();
        map.insert("__metadata__".into(), serde_json::Value::Object(m));
    }
    for t in tensors {
        map.insert(
            t.name.clone(),
            serde_json::json!({
                "dtype": t.dtype.safetensors(),
                "shape": t.shape,
                "data_offsets": [t.begin, t.end],
            }),
        );
    }
    let mut bytes = serde_json::to_vec(&serde_json::Value::Object(map)).map_err(|e| e.to_string())?;
    while bytes.len() % 8 != 0 {
        bytes.push(b' ');
    }
    if bytes.len() as u64 > MAX_HEADER {
        return Err(format!(
            "the safetensors header would be {} bytes; readers accept at most {MAX_HEADER}",
            bytes.len()
        ));
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(name: &str, dtype: Dtype, shape: &[u64], strides: &[u64]) -> TensorPlan {
        TensorPlan {
            name: name.into(),
            dtype,
            shape: shape.into(),
            strides: strides.into(),
            region: 0,
            byte_offset: 0,
            swap: false,
            begin: 0,
            end: 0,
        }
    }

    #[test]
    fn contiguity_extent_and_layout() {
        assert!(t("a", Dtype::F32, &[2, 3], &[3, 1]).is_c_contiguous());
        assert!(t("a", Dtype::F32, &[2, 1], &[1, 7]).is_c_contiguous());
        assert!(!t("a", Dtype::F32, &[2, 3], &[1, 2]).is_c_contiguous());
        assert_eq!(t("a", Dtype::F32, &[2, 3], &[1, 2]).extent(), (0, 24));
        assert_eq!(t("a", Dtype::F32, &[0, 3], &[3, 1]).extent(), (0, 0));
        let mut v = vec![
            t("b", Dtype::U8, &[3], &[1]),
            t("a", Dtype::F64, &[1], &[1]),
            t("c", Dtype::F16, &[2], &[1]),
        ];
        assert_eq!(layout(&mut v), 8 + 4 + 3);
        let names: Vec<&str> = v.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, ["a", "c", "b"]);
        let h = header(&v, &BTreeMap::new()).unwrap();
        assert_eq!(h.len() % 8, 0);
        let j: serde_json::Value = serde_json::from_slice(&h).unwrap();
        assert_eq!(j["c"]["data_offsets"], serde_json::json!([8, 12]));
    }
}
