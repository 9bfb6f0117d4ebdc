//! ONNX models: custom-op domains, Python ops, external-data paths, tensor sizes, Loop bounds.
//!
//! An ONNX file is one `ModelProto`. Loading it with onnxruntime runs only operators the runtime
//! knows, unless a node names a custom domain (a native custom-op library must then be
//! registered) or onnxruntime-extensions' `PyOp` / `ai.onnx.contrib` (a Python callback). Tensor
//! bytes may live in other files named by `external_data.location`, which loaders have resolved
//! outside the model folder (CVE-2022-25882, CVE-2024-27318). [`check_model`] decodes the model
//! with the vendored `onnx.proto` after a bounded cost estimate, visits the main graph, every
//! subgraph (`If`/`Loop`/`Scan` attributes, any depth up to [`MAX_GRAPH_DEPTH`]), the training
//! graphs and the local functions, and reports:
//!
//! - `ONX101` (medium): nodes in a domain outside the standard ones and not a local function.
//! - `ONX102` (high): `PyOp`, or any node in `ai.onnx.contrib`.
//! - `ONX103` (high): an external-data location that is absolute, a URL, a drive path or climbs
//!   out with `..` after normalisation.
//! - `ONX104` (medium) / `ONX105` (low): tensor data shorter / longer than its shape and type say.
//! - `ONX106` (info): a `Loop` whose constant trip count is huge (a denial of service).
//! - `ONX107` (info): external data that stays in the folder, reported when the caller cannot
//!   tell where the model's folder is.
//! - `ONX108` (low): the file is not a valid ONNX protobuf.

use crate::proto::onnx::{FunctionProto, GraphProto, ModelProto, NodeProto, TensorProto};
use crate::tensorflow::path_escapes;
use crate::wire::{self, Blobs, EstimateError};
use modelward_diagnostics::Fact;
use std::collections::{BTreeMap, HashMap, HashSet};

/// Most bytes of struct memory an ONNX decode may cost (large tensor bytes are not copied).
pub const MAX_DECODE_MEMORY: u64 = 512 << 20;
/// Deepest subgraph nesting followed.
pub const MAX_GRAPH_DEPTH: usize = 24;
/// A constant `Loop` trip count above this is reported as a denial of service.
pub const HUGE_TRIP_COUNT: i64 = 1_000_000_000;
/// Most findings of one rule per model.
pub const MAX_FACTS_PER_RULE: usize = 50;

/// Operator domains every ONNX runtime (or onnxruntime itself) implements.
pub const STANDARD_DOMAINS: &[&str] = &[
    "",
    "ai.onnx",
    "ai.onnx.ml",
    "ai.onnx.training",
    "ai.onnx.preview.training",
    "com.microsoft",
    "com.microsoft.experimental",
    "com.microsoft.nchwc",
    "com.ms.internal.nhwc",
];

/// The domain of onnxruntime-extensions' custom (and Python) ops.
const CONTRIB_DOMAIN: &str = "ai.onnx.contrib";

pub use modelward_formats::graph_sniff::looks_like_onnx;

/// The external-data locations named by a model's tensors (for a caller that wants to check the
/// files themselves: symlinks, existence). Empty when the model cannot be decoded.
pub fn external_data_locations(bytes: &[u8]) -> Vec<String> {
    let Some((model, blobs)) = decode(bytes).ok() else {
        return Vec::new();
    };
    let mut c = Checker::new(&blobs, true, MAX_FACTS_PER_RULE);
    c.model(&model);
    c.locations
}

/// Checks an ONNX model of `len` bytes read from `r` without reading its tensor payloads:
/// the protobuf is walked on the wire and every long byte field (initializer `raw_data`,
/// attribute tensors, unknown fields) is seeked over, so only the graph (nodes, domains,
/// functions, `external_data` entries) is read. The facts are those of [`check_model_capped`]
/// on the whole file. `None` when the file is not a well-formed model within the budgets:
/// the caller then reads it whole, for the same report as before.
pub fn check_model_seekable(
    r: &mut dyn modelward_formats::io::ReadSeek,
    len: u64,
    model_dir_is_known: bool,
    cap: usize,
) -> Option<Checked> {
    let slim = wire::read_slim(r, len, wire::ONNX_MODELPROTO, MAX_DECODE_MEMORY)?;
    wire::estimate(&slim.data, wire::ONNX_MODELPROTO, MAX_DECODE_MEMORY).ok()?;
    let (model, blobs) = wire::decode_slim::<ModelProto>(&slim).ok()?;
    let mut c = Checker::new(&blobs, model_dir_is_known, cap);
    c.model(&model);
    let external_locations = c.locations.clone();
    Some(Checked {
        facts: c.finish(),
        external_locations,
    })
}

/// What [`check_model_seekable`] found.
pub struct Checked {
    /// The facts, as [`check_model_capped`] gives them.
    pub facts: Vec<Fact>,
    /// The in-folder external-data locations (for [`check_external_files`]).
    pub external_locations: Vec<String>,
}

fn decode(bytes: &[u8]) -> Result<(ModelProto, Blobs), Fact> {
    if let Err(e) = wire::estimate(bytes, wire::ONNX_MODELPROTO, MAX_DECODE_MEMORY) {
        return Err(match e {
            EstimateError::OverBudget => Fact::new(
                "MWD002",
                format!(
                    "ONNX model not scanned: decoding it would take more than {} MiB",
                    MAX_DECODE_MEMORY >> 20
                ),
            )
            .evidence(format!("{} bytes of protobuf", bytes.len())),
            EstimateError::Malformed(at) => Fact::new("ONX108", "the file is not a valid ONNX protobuf")
                .at(at as u64)
                .evidence(format!("bad field at offset {at} of {} bytes", bytes.len())),
        });
    }
    wire::decode::<ModelProto>(bytes)
        .map_err(|e| Fact::new("ONX108", "the file is not a valid ONNX protobuf").evidence(e.to_string()))
}

/// Checks an ONNX model. `model_dir_is_known` says whether the caller knows the folder the model
/// sits in (a file on disk) and checks relative external-data files itself; when it does not
/// (a member of an archive, a stream), in-folder external data is reported as info (`ONX107`).
pub fn check_model(bytes: &[u8], model_dir_is_known: bool) -> Vec<Fact> {
    check_model_capped(bytes, model_dir_is_known, MAX_FACTS_PER_RULE)
}

/// [`check_model`] with at most `cap` facts per rule (the scanner passes
/// `max-findings-per-rule`).
pub fn check_model_capped(bytes: &[u8], model_dir_is_known: bool, cap: usize) -> Vec<Fact> {
    let (model, blobs) = match decode(bytes) {
        Ok(m) => m,
        Err(f) => return vec![f],
    };
    let mut c = Checker::new(&blobs, model_dir_is_known, cap);
    c.model(&model);
    c.finish()
}

struct Checker<'a> {
    blobs: &'a Blobs,
    dir_known: bool,
    /// Capped per rule by the one collector.
    facts: modelward_diagnostics::FactCollector,
    /// Local functions: `(domain, name)`.
    functions: HashSet<(String, String)>,
    /// `(rule, domain, op)` → (count, first place).
    ops: BTreeMap<(&'static str, String, String), (usize, String)>,
    /// In-folder external-data locations.
    locations: Vec<String>,
    depth_capped: bool,
}

fn domain_of(d: Option<&str>) -> &str {
    d.unwrap_or("")
}

impl<'a> Checker<'a> {
    fn new(blobs: &'a Blobs, dir_known: bool, cap: usize) -> Checker<'a> {
        Checker {
            blobs,
            dir_known,
            facts: modelward_diagnostics::FactCollector::new(cap),
            functions: HashSet::new(),
            ops: BTreeMap::new(),
            locations: Vec::new(),
            depth_capped: false,
        }
    }

    fn push(&mut self, f: Fact) {
        self.facts.push(f);
    }

    fn model(&mut self, m: &ModelProto) {
        for f in &m.functions {
            self.functions.insert((
                domain_of(f.domain.as_deref()).to_owned(),
                f.name.clone().unwrap_or_default(),
            ));
        }
        if let Some(g) = &m.graph {
            self.graph(g, "main graph", 0);
        }
        for (i, t) in m.training_info.iter().enumerate() {
            if let Some(g) = &t.initialization {
                self.graph(g, &format!("training_info[{i}].initialization"), 1);
            }
            if let Some(g) = &t.algorithm {
                self.graph(g, &format!("training_info[{i}].algorithm"), 1);
            }
        }
        for f in &m.functions {
            self.function(f);
        }
    }

    fn graph(&mut self, g: &GraphProto, label: &str, depth: usize) {
        if depth > MAX_GRAPH_DEPTH {
            self.depth_capped = true;
            return;
        }
        let label = match g.name.as_deref() {
            Some(n) if !n.is_empty() && depth > 0 => format!("{label} '{n}'"),
            _ => label.to_owned(),
        };
        let mut consts: HashMap<&str, &TensorProto> = HashMap::new();
        for t in &g.initializer {
            if let Some(n) = t.name.as_deref() {
                consts.insert(n, t);
            }
            self.tensor(t, &label);
        }
        for s in &g.sparse_initializer {
            if let Some(v) = &s.values {
                self.tensor(v, &label);
            }
            if let Some(i) = &s.indices {
                self.tensor(i, &label);
            }
        }
        for n in &g.node {
            if n.op_type.as_deref() == Some("Constant")
                && let (Some(out), Some(t)) = (
                    n.output.first(),
                    n.attribute
                        .iter()
                        .find(|a| a.name.as_deref() == Some("value"))
                        .and_then(|a| a.t.as_ref()),
                )
            {
                consts.insert(out.as_str(), t);
            }
        }
        for n in &g.node {
            self.node(n, &label, depth, &consts);
        }
    }

    fn function(&mut self, f: &FunctionProto) {
        let label = format!(
            "function '{}{}'",
            f.domain.as_deref().map_or_else(String::new, |d| format!("{d}.")),
            f.name.as_deref().unwrap_or("?")
        );
        let consts: HashMap<&str, &TensorProto> = HashMap::new();
        for n in &f.node {
            self.node(n, &label, 1, &consts);
        }
    }

    fn node(&mut self, n: &NodeProto, label: &str, depth: usize, consts: &HashMap<&str, &TensorProto>) {
        let domain = domain_of(n.domain.as_deref());
        let op = n.op_type.as_deref().unwrap_or("");
        let name = n.name.as_deref().unwrap_or("");
        let place = if name.is_empty() {
            label.to_owned()
        } else {
            format!("node '{name}' in {label}")
        };
        if op == "PyOp" || domain == CONTRIB_DOMAIN {
            self.op("ONX102", domain, op, &place);
        } else if !STANDARD_DOMAINS.contains(&domain)
            && !self.functions.contains(&(domain.to_owned(), op.to_owned()))
        {
            self.op("ONX101", domain, op, &place);
        }
        if op == "Loop"
            && (domain.is_empty() || domain == "ai.onnx")
            && let Some(m) = n.input.first().filter(|m| !m.is_empty())
            && let Some(t) = consts.get(m.as_str())
            && let Some(v) = self.scalar_i64(t)
            && v > HUGE_TRIP_COUNT
        {
            let f = Fact::new("ONX106", format!("Loop {place} runs {v} iterations"))
                .evidence(format!("trip count M = {m} = {v}"));
            self.push(f);
        }
        for a in &n.attribute {
            let an = a.name.as_deref().unwrap_or("?");
            if let Some(t) = &a.t {
                self.tensor(t, &place);
            }
            for t in &a.tensors {
                self.tensor(t, &place);
            }
            if let Some(s) = &a.sparse_tensor
                && let Some(v) = &s.values
            {
                self.tensor(v, &place);
            }
            if let Some(g) = &a.g {
                self.graph(g, &format!("{place} attribute {an}"), depth + 1);
            }
            for g in &a.graphs {
                self.graph(g, &format!("{place} attribute {an}"), depth + 1);
            }
        }
    }

    fn op(&mut self, rule: &'static str, domain: &str, op: &str, place: &str) {
        self.ops
            .entry((rule, domain.to_owned(), op.to_owned()))
            .or_insert_with(|| (0, place.to_owned()))
            .0 += 1;
    }

    fn scalar_i64(&self, t: &TensorProto) -> Option<i64> {
        if t.data_type != Some(7) {
            return None;
        }
        if let Some(&v) = t.int64_data.first() {
            return Some(v);
        }
        let raw = t.raw_data.as_ref()?;
        if self.blobs.is_skipped(raw) {
            return None;
        }
        let b: [u8; 8] = raw.get(..8)?.try_into().ok()?;
        Some(i64::from_le_bytes(b))
    }

    fn tensor(&mut self, t: &TensorProto, place: &str) {
        let tname = t.name.as_deref().unwrap_or("");
        let external = t.data_location == Some(1) || !t.external_data.is_empty();
        if external {
            let loc = t
                .external_data
                .iter()
                .find(|e| e.key.as_deref() == Some("location"))
                .and_then(|e| e.value.clone());
            match loc {
                Some(l) if path_escapes(&l) => {
                    let f = Fact::new(
                        "ONX103",
                        format!("tensor '{tname}' in {place} reads its data from outside the model folder"),
                    )
                    .evidence(format!("external_data location = {l:?}"));
                    self.push(f);
                }
                Some(l) if self.locations.len() < MAX_FACTS_PER_RULE && !self.locations.contains(&l) => {
                    self.locations.push(l);
                }
                Some(_) | None => {}
            }
            return;
        }
        if t.segment.is_some() {
            return;
        }
        let Some(bits) = t.data_type.and_then(bits_of) else {
            return;
        };
        let mut elements: u64 = 1;
        for &d in &t.dims {
            let Ok(d) = u64::try_from(d) else {
                let f = Fact::new(
                    "ONX104",
                    format!("tensor '{tname}' in {place} has a negative dimension"),
                )
                .evidence(format!("dims {:?}", t.dims));
                self.push(f);
                return;
            };
            elements = match elements.checked_mul(d) {
                Some(e) => e,
                None => {
                    let f = Fact::new(
                        "ONX104",
                        format!("tensor '{tname}' in {place} has a shape that overflows"),
                    )
                    .evidence(format!("dims {:?}", t.dims));
                    self.push(f);
                    return;
                }
            };
        }
        let (have, want, unit) = if let Some(raw) = &t.raw_data {
            let need = elements.saturating_mul(bits).div_ceil(8);
            (self.blobs.len_of(raw) as u64, need, "bytes of raw_data")
        } else {
            let (count, per_element) = match t.data_type.unwrap_or(0) {
                1 => (t.float_data.len(), 1),
                14 => (t.float_data.len(), 2),
                11 => (t.double_data.len(), 1),
                15 => (t.double_data.len(), 2),
                7 => (t.int64_data.len(), 1),
                12 | 13 => (t.uint64_data.len(), 1),
                8 => (t.string_data.len(), 1),
                2..=6 | 9 | 10 | 16..=20 | 24 => (t.int32_data.len(), 1),
                _ => return,
            };
            if count == 0 {
                return;
            }
            (count as u64, elements.saturating_mul(per_element), "typed values")
        };
        if have == want {
            return;
        }
        let (rule, how) = if have < want {
            ("ONX104", "fewer")
        } else {
            ("ONX105", "more")
        };
        let f = Fact::new(
            rule,
            format!("tensor '{tname}' in {place} holds {how} {unit} than its shape needs"),
        )
        .evidence(format!(
            "dims {:?}, data_type {}, expected {want}, found {have}",
            t.dims,
            t.data_type.unwrap_or(0)
        ));
        self.push(f);
    }

    fn finish(mut self) -> Vec<Fact> {
        let ops = std::mem::take(&mut self.ops);
        for ((rule, domain, op), (n, first)) in ops {
            let shown = if domain.is_empty() {
                op.clone()
            } else {
                format!("{domain}::{op}")
            };
            let msg = if rule == "ONX102" {
                format!("{shown} ({n}×) calls a Python function registered with onnxruntime-extensions")
            } else {
                format!(
                    "{shown} ({n}×) is a custom operator: loading needs a native library for domain '{domain}'"
                )
            };
            let f =
                Fact::new(rule, msg).evidence(format!("domain {domain:?}, op_type {op:?}, first in {first}"));
            self.push(f);
        }
        if !self.dir_known && !self.locations.is_empty() {
            let f = Fact::new(
                "ONX107",
                format!(
                    "{} external data file(s) beside the model were not checked",
                    self.locations.len()
                ),
            )
            .evidence(
                self.locations
                    .iter()
                    .map(|l| format!("{l:?}"))
                    .collect::<Vec<_>>()
                    .join(", "),
            );
            self.push(f);
        }
        if self.depth_capped {
            let f = Fact::new(
                "MWD002",
                "ONNX subgraphs nested deeper than the limit were not checked",
            )
            .evidence(format!("limit {MAX_GRAPH_DEPTH}"));
            self.push(f);
        }
        self.facts.finish()
    }
}

/// Bits per element of an ONNX `TensorProto.DataType` with a fixed size (not STRING).
fn bits_of(t: i32) -> Option<u64> {
    Some(match t {
        2 | 3 | 9 | 17..=20 | 24 => 8,
        4 | 5 | 10 | 16 => 16,
        1 | 6 | 12 => 32,
        7 | 11 | 13 | 14 => 64,
        15 => 128,
        21..=23 => 4,
        25 | 26 => 2,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn onnx_heads() {
        // ir_version 8, producer_name "pytorch"
        let head = [
            0x08, 0x08, 0x12, 0x07, b'p', b'y', b't', b'o', b'r', b'c', b'h', 0x3a, 0x10,
        ];
        assert!(looks_like_onnx(&head, 100));
        assert!(!looks_like_onnx(&head, 12));
        assert!(!looks_like_onnx(b"\x08\x08", 2));
        assert!(!looks_like_onnx(b"PK\x03\x04", 100));
        assert!(!looks_like_onnx(&[0x08, 0x00, 0x12, 0x01, b'x'], 5));
    }

    fn nested_if(levels: usize) -> Vec<u8> {
        use crate::proto::onnx::{AttributeProto, GraphProto, ModelProto, NodeProto};
        use prost::Message;
        let mut g = GraphProto {
            node: vec![NodeProto {
                op_type: Some("Identity".into()),
                ..NodeProto::default()
            }],
            ..GraphProto::default()
        };
        for _ in 0..levels {
            let attr = AttributeProto {
                name: Some("then_branch".into()),
                g: Some(g),
                ..AttributeProto::default()
            };
            g = GraphProto {
                node: vec![NodeProto {
                    op_type: Some("If".into()),
                    attribute: vec![attr],
                    ..NodeProto::default()
                }],
                ..GraphProto::default()
            };
        }
        ModelProto {
            ir_version: Some(8),
            graph: Some(g),
            ..ModelProto::default()
        }
        .encode_to_vec()
    }

    #[test]
    fn deep_subgraphs_are_cut_at_the_limit_and_deeper_nesting_is_refused() {
        let facts = check_model(&nested_if(MAX_GRAPH_DEPTH + 4), true);
        assert_eq!(facts.len(), 1, "{facts:?}");
        assert_eq!(facts[0].rule, "MWD002");
        assert!(check_model(&nested_if(MAX_GRAPH_DEPTH - 1), true).is_empty());
        let facts = check_model(&nested_if(200), true);
        assert_eq!(facts[0].rule, "ONX108");
    }

    #[test]
    fn element_sizes() {
        assert_eq!(bits_of(1), Some(32));
        assert_eq!(bits_of(22), Some(4));
        assert_eq!(bits_of(8), None);
        assert_eq!(bits_of(0), None);
    }
}

/// Checks the external-data files of a model that sits on disk at `model`: a location that
/// resolves outside the model's folder once symbolic links are followed, or that passes through
/// a symbolic link in the folder at all, lets the model read (and `save_external_data` write)
/// files of the attacker's choosing (CVE-2026-27489/34446). Lexical escapes (absolute paths,
/// `a/../..`) are reported by [`check_model`]; this adds what only the file system shows.
pub fn check_external_files(model: &std::path::Path, locations: &[String]) -> Vec<Fact> {
    use std::path::{Component, Path};
    let mut out = Vec::new();
    let dir = match model.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let Ok(canon_dir) = dir.canonicalize() else {
        return out;
    };
    for l in locations.iter().take(MAX_FACTS_PER_RULE) {
        if path_escapes(l) {
            continue;
        }
        let normal = l.replace('\\', "/");
        let mut p = dir.to_path_buf();
        let mut link = None;
        for comp in Path::new(&normal).components() {
            match comp {
                Component::Normal(c) => {
                    p.push(c);
                    if link.is_none() && p.symlink_metadata().is_ok_and(|m| m.file_type().is_symlink()) {
                        link = Some(p.clone());
                    }
                }
                Component::ParentDir => {
                    p.pop();
                }
                _ => {}
            }
        }
        let resolved = p.canonicalize().ok();
        let outside = resolved.as_ref().is_some_and(|c| !c.starts_with(&canon_dir));
        let why = match (&link, outside) {
            (Some(s), true) => format!(
                "goes through the symbolic link {} and resolves outside the model folder",
                s.display()
            ),
            (Some(s), false) => format!("goes through the symbolic link {}", s.display()),
            (None, true) => "resolves outside the model folder".to_owned(),
            (None, false) => continue,
        };
        out.push(
            Fact::new("ONX103", format!("external data {l:?} {why}")).evidence(format!(
                "external_data location = {l:?} -> {}",
                resolved.map_or_else(|| "(does not resolve)".to_owned(), |c| c.display().to_string())
            )),
        );
    }
    out
}

#[cfg(all(test, unix))]
mod external_file_tests {
    use super::*;

    #[test]
    fn a_symlink_in_the_model_folder_is_found_and_a_plain_file_is_not() {
        let base = std::env::temp_dir().join(format!("modelward-onnx-ext-{}", std::process::id()));
        let dir = base.join("model");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(base.join("secret"), b"x").unwrap();
        std::fs::write(dir.join("plain.data"), b"x").unwrap();
        let _ = std::fs::remove_file(dir.join("link.data"));
        std::os::unix::fs::symlink(base.join("secret"), dir.join("link.data")).unwrap();
        let model = dir.join("m.onnx");
        let f = check_external_files(&model, &["link.data".into()]);
        assert_eq!(f.len(), 1, "{f:?}");
        assert!(f[0].message.contains("symbolic link") && f[0].message.contains("outside"));
        assert!(check_external_files(&model, &["plain.data".into(), "sub/../plain.data".into()]).is_empty());
        let _ = std::fs::remove_dir_all(&base);
    }
}
