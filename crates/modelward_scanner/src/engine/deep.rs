//! Tensor data. Always on, from layouts alone: PyTorch storages that no tensor references and
//! storages whose size disagrees with what the pickle says they hold. With `scan --deep`, the
//! sampled bytes of every tensor and of every byte range no tensor claims, under the budgets of
//! `ScanLimits::deep` (`modelward_formats::tensors`: file signatures, low-bit stego, crafted
//! values). Reads go through the content's own reader, so a remote file fetches only the
//! sampled ranges.

use super::Engine;
use modelward_diagnostics::{Fact, Location};
use modelward_formats::io::ReadSeek;
use modelward_formats::tensors::Float;
use modelward_formats::tensors::deep::{Region, check_region};
use modelward_formats::torch::TorchLayout;
use modelward_formats::zip::ZipEntry;
use modelward_pickle::{CallKind, End, Event, Node, Trace, Value};
use std::collections::HashMap;

/// A storage one PyTorch pickle loads: `persistent_load(('storage', torch.FloatStorage, KEY,
/// 'cpu', NUMEL))`.
#[derive(Debug, Clone)]
pub(crate) struct StorageRef {
    /// The storage type's name (`FloatStorage`, `UntypedStorage`, ...).
    type_name: String,
    /// Elements (bytes for `UntypedStorage`), when the pickle gives them as an integer.
    numel: Option<u64>,
}

/// The storages a PyTorch pickle references, and whether the pickle was read to its end (an
/// incomplete pickle may reference more than was seen, so nothing is called unreferenced).
#[derive(Debug, Default)]
pub(crate) struct PickleStorages {
    refs: HashMap<String, StorageRef>,
    complete: bool,
}

/// Keys kept per pickle: beyond this the references are not tracked (nothing is reported).
const MAX_REFS: usize = 1 << 20;

/// The location a pickle's references are filed under.
fn key(loc: &Location) -> String {
    std::iter::once(loc.path.as_str())
        .chain(loc.members.iter().map(String::as_str))
        .collect::<Vec<_>>()
        .join("!")
}

/// Records the storages the pickles of one PyTorch stream reference (called by the pickle
/// handler for every stream judged in a PyTorch context).
pub(super) fn record_storages(cx: &mut Engine<'_>, loc: &Location, traces: &[Trace]) {
    let mut out = PickleStorages {
        refs: HashMap::new(),
        complete: !traces.is_empty() && traces.iter().all(|t| t.end_reason == End::Stop),
    };
    for t in traces {
        for e in &t.events {
            let Event::Call { call, .. } = e else { continue };
            let Some(Node::Call(c)) = t.arena.get(*call) else {
                continue;
            };
            if c.kind != CallKind::PersistentLoad {
                continue;
            }
            let pid = t.arena.items(c.args);
            if pid.len() < 5 || t.arena.as_str(pid[0]).as_deref() != Some("storage") {
                continue;
            }
            let (Some(ty), Some(k)) = (t.arena.as_global(pid[1]), t.arena.as_str(pid[2])) else {
                continue;
            };
            if out.refs.len() >= MAX_REFS {
                out.complete = false;
                break;
            }
            let numel = match pid[4] {
                Value::Int(n) if n >= 0 => Some(n as u64),
                _ => None,
            };
            out.refs.insert(
                k.into_owned(),
                StorageRef {
                    type_name: ty.name.clone(),
                    numel,
                },
            );
        }
    }
    cx.storage_refs.insert(key(loc), out);
}

/// Bytes per element of a PyTorch storage type, and the float type the value tests read.
fn storage_element(type_name: &str) -> Option<(u64, Option<Float>)> {
    Some(match type_name {
        "DoubleStorage" => (8, Some(Float::F64)),
        "FloatStorage" => (4, Some(Float::F32)),
        "HalfStorage" => (2, Some(Float::F16)),
        "BFloat16Storage" => (2, Some(Float::BF16)),
        "LongStorage" | "ComplexFloatStorage" => (8, None),
        "IntStorage" => (4, None),
        "ShortStorage" => (2, None),
        "CharStorage" | "ByteStorage" | "BoolStorage" | "UntypedStorage" => (1, None),
        "ComplexDoubleStorage" => (16, None),
        _ => return None,
    })
}

/// The storages of a PyTorch zip (`{prefix}data/KEY`) against what its pickles reference:
/// `TEN101` for a storage no pickle loads, `TEN102` for one whose size is not what its type
/// and element count say. With `--deep`, every stored storage is sampled.
pub(super) fn torch_storages(
    cx: &mut Engine<'_>,
    r: &mut dyn ReadSeek,
    loc: &Location,
    layout: &TorchLayout,
    entries: &[ZipEntry],
) {
    let mut regions = Vec::new();
    // Taken for the walk (facts need `cx`), put back after: an enclosing zip's pickles too.
    let all_refs = std::mem::take(&mut cx.storage_refs);
    for prefix in &layout.prefixes {
        let pickles: Vec<&PickleStorages> = ["data.pkl", "constants.pkl"]
            .iter()
            .filter_map(|p| all_refs.get(&key(&loc.member(format!("{prefix}{p}")))))
            .collect();
        if pickles.is_empty() {
            continue;
        }
        let complete = pickles.iter().all(|p| p.complete);
        let lookup = |k: &str| pickles.iter().find_map(|p| p.refs.get(k)).cloned();
        for e in entries {
            let Some(k) = e
                .name
                .strip_prefix(prefix.as_str())
                .and_then(|n| n.strip_prefix("data/"))
                .filter(|_| layout.is_storage(&e.name))
            else {
                continue;
            };
            let mloc = loc.member(e.display_name());
            let mut dtype = None;
            match lookup(k) {
                None if complete && e.uncompressed_size > 0 => cx.fact(
                    Fact::new(
                        "TEN101",
                        format!(
                            "storage {k:?} ({} bytes) is loaded by no tensor of the checkpoint",
                            e.uncompressed_size
                        ),
                    )
                    .evidence(format!("member {}; the pickle references no key {k:?}", e.name)),
                    &mloc,
                ),
                None => {}
                Some(s) => {
                    let elem = storage_element(&s.type_name);
                    dtype = elem.and_then(|(_, f)| f);
                    if let (Some((size, _)), Some(n)) = (elem, s.numel)
                        && n.checked_mul(size) != Some(e.uncompressed_size)
                    {
                        cx.fact(
                            Fact::new(
                                "TEN102",
                                format!(
                                    "storage {k:?} holds {} bytes; the pickle loads it as {n} × {} ({size} bytes each)",
                                    e.uncompressed_size, s.type_name
                                ),
                            )
                            .evidence(format!(
                                "persistent_load(('storage', torch.{}, {k:?}, …, {n}))",
                                s.type_name
                            )),
                            &mloc,
                        );
                    }
                }
            }
            // PyTorch stores storages uncompressed; a compressed one is judged by its head only.
            if e.method == 0
                && let Some(begin) = e.data_offset
            {
                regions.push((e.name.clone(), dtype, begin, begin + e.compressed_size, mloc));
            }
        }
    }
    cx.storage_refs = all_refs;
    for (name, dtype, begin, end, mloc) in regions {
        // Offsets of deep facts are into the member.
        let region = Region {
            name: &name,
            dtype,
            begin,
            end,
        };
        sample_at(cx, r, &region, &mloc, begin);
    }
}

/// `--deep`: samples `regions` of `r` (offsets into `r`, the content at `loc`).
pub(super) fn sample(cx: &mut Engine<'_>, r: &mut dyn ReadSeek, regions: &[Region<'_>], loc: &Location) {
    for region in regions {
        sample_at(cx, r, region, loc, 0);
    }
}

/// One region; fact offsets are made relative to `base` (a member's first byte).
fn sample_at(cx: &mut Engine<'_>, r: &mut dyn ReadSeek, region: &Region<'_>, loc: &Location, base: u64) {
    let Some(limits) = cx.limits.deep else { return };
    if cx.deep_spent >= limits.per_file {
        if !cx.deep_exhausted && region.end > region.begin {
            cx.deep_exhausted = true;
            cx.fact(
                Fact::new(
                    "TEN205",
                    format!(
                        "the deep scan read its {} MiB budget for this file; {:?} and later tensors were not sampled",
                        limits.per_file >> 20,
                        region.name
                    ),
                ),
                loc,
            );
        }
        return;
    }
    let mut spent = cx.deep_spent;
    let facts = check_region(r, region, &limits, &mut spent);
    cx.deep_spent = spent;
    for mut f in facts {
        f.offset = f.offset.map(|o| o.saturating_sub(base));
        cx.fact(f, loc);
    }
}
