//! PyTorch checkpoints: the zip format (`<prefix>/data.pkl` + `<prefix>/data/<key>` records +
//! `byteorder`) and the legacy format (five pickles, then every storage as an 8-byte element
//! count and its bytes, always little-endian).

use crate::interp::{Interp, Obj, StorageRef, run_pickle, trace_violations};
use crate::plan::{Region, RegionSrc, TensorPlan, flatten};
use crate::{Judge, Loaded, SourceFormat};
use modelward_formats::compress;
use modelward_formats::torch::{LEGACY_PROTOCOL_VERSION, Legacy, TorchLayout, legacy};
use modelward_formats::zip::{self, ZipEntry, ZipListing};
use modelward_pickle::stream::{ReadSource, Reader, SeekSource};
use modelward_pickle::{End, Limits};
use modelward_policy::PickleContext;
use std::collections::HashMap;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::rc::Rc;

/// Largest `byteorder` record read.
const MAX_BYTEORDER: u64 = 16;

/// The CRC-32 a member's bytes must have (encrypted-flagged members' CRCs mean nothing).
pub(crate) fn crc_of(e: &ZipEntry) -> Option<u32> {
    (e.flags & 1 == 0).then_some(e.crc32)
}

fn find<'a>(listing: &'a ZipListing, name: &str) -> Option<&'a ZipEntry> {
    listing.entries.iter().find(|e| e.name == name)
}

/// Reads a small member whole.
fn read_small(file: &mut File, len: u64, e: &ZipEntry, max: u64) -> Result<Vec<u8>, String> {
    let raw = zip::raw_member(file, e, len).ok_or_else(|| format!("{} lies outside the file", e.name))?;
    let dec = compress::zip_method(e.method, raw)
        .ok_or_else(|| format!("{} uses compression method {}", e.name, e.method))?
        .map_err(|err| format!("{}: {err}", e.name))?;
    let mut out = Vec::new();
    dec.take(max)
        .read_to_end(&mut out)
        .map_err(|err| format!("{}: {err}", e.name))?;
    Ok(out)
}

/// A zip checkpoint.
pub(crate) fn load_zip(
    file: &mut File,
    len: u64,
    listing: &ZipListing,
    judge: &mut Judge<'_>,
    root_name: &str,
) -> Result<Loaded, crate::ConvertError> {
    let layout = TorchLayout::of(&listing.entries);
    if layout.torchscript {
        judge.reason(
            "a TorchScript archive (code/ or constants.pkl beside data.pkl) is a program, not a checkpoint of tensors",
        );
        return judge.refused();
    }
    if layout.prefixes.len() != 1 {
        judge.reason(format!(
            "the zip holds {} data.pkl records ({}); PyTorch reads one",
            layout.prefixes.len(),
            layout.prefixes.join(", ")
        ));
        return judge.refused();
    }
    let prefix = layout.prefixes[0].clone();
    let pkl_name = format!("{prefix}data.pkl");
    let Some(pkl) = find(listing, &pkl_name).cloned() else {
        return Err(judge.malformed(format!("no {pkl_name}")));
    };
    let limits = Limits::default();
    let mut interp = Interp::new(false);
    let (trace, trailing) = {
        let raw = zip::raw_member(&mut *file, &pkl, len)
            .ok_or_else(|| judge.malformed(format!("{pkl_name} lies outside the file")))?;
        let dec = match compress::zip_method(pkl.method, raw) {
            Some(Ok(d)) => d,
            Some(Err(e)) => return Err(judge.malformed(format!("{pkl_name}: {e}"))),
            None => {
                return Err(judge.unsupported(format!("{pkl_name} uses compression method {}", pkl.method)));
            }
        };
        let mut reader = Reader::new(ReadSource(zip::CrcReader::new(dec)), 0, None, limits.max_inline);
        let trace = run_pickle(&mut reader, &limits, &mut interp);
        let trailing = trace.end_reason == End::Stop && !reader.at_end().unwrap_or(true);
        // The rest of the member, for its CRC-32 (PyTorch never checks it; a mismatch means
        // the pickle was edited after it was written, which `modelward scan` reports too).
        let _ = reader.drain();
        let crc = reader.into_source().0;
        if let Some(want) = crc_of(&pkl)
            && crc.done
            && crc.crc32() != want
        {
            judge.fact(
                modelward_diagnostics::Fact::new(
                    "ARC101",
                    format!(
                        "{pkl_name:?}: stored CRC-32 {want:08x}, data has {:08x}",
                        crc.crc32()
                    ),
                )
                .at(pkl.header_offset),
            );
        }
        (trace, trailing)
    };
    judge.pickle(&trace, Some(&pkl_name), PickleContext { torch: true });
    if let Some(r) = &interp.refusal {
        judge.reason(format!("{pkl_name}@{}: {}", r.offset, r.message));
    }
    for (off, v) in trace_violations(&trace) {
        judge.reason(format!("{pkl_name}@{off}: {v}"));
    }
    let root = interp.take_result();
    judge.check()?;
    let Some(root) = root else {
        return Err(judge.malformed(format!("{pkl_name} does not reach STOP")));
    };
    let mut notes = Vec::new();
    if trailing {
        notes.push(format!(
            "{pkl_name} has bytes after its STOP opcode; PyTorch never reads them and neither does the converter"
        ));
    }
    // Byte order of every storage.
    let big = match find(listing, &format!("{prefix}byteorder")) {
        None => {
            notes.push(
                "no byteorder record (written by PyTorch < 1.13 or with it disabled): storages are read as little-endian, as PyTorch does on little-endian machines".into(),
            );
            false
        }
        Some(e) => {
            let b = read_small(file, len, e, MAX_BYTEORDER).map_err(|m| judge.malformed(m))?;
            match b.as_slice() {
                b"little" => false,
                b"big" => true,
                other => {
                    return Err(judge.malformed(format!(
                        "byteorder record says {:?}",
                        String::from_utf8_lossy(other)
                    )));
                }
            }
        }
    };
    // One region per storage record.
    let mut regions: Vec<Region> = Vec::new();
    let mut by_key: HashMap<String, usize> = HashMap::new();
    for s in &interp.storages {
        if by_key.contains_key(&s.key) {
            continue;
        }
        let name = format!("{prefix}data/{}", s.key);
        let Some(e) = find(listing, &name) else {
            return Err(judge.malformed(format!(
                "data.pkl names storage {:?} but the zip has no {name}",
                s.key
            )));
        };
        let Some(data_offset) = e.data_offset else {
            return Err(judge.malformed(format!("{name} has no readable local header")));
        };
        let region = if e.method == 0 {
            if data_offset
                .checked_add(e.compressed_size)
                .is_none_or(|end| end > len)
            {
                return Err(judge.malformed(format!("{name} runs past the end of the file")));
            }
            Region {
                label: name.clone(),
                src: RegionSrc::Input(data_offset),
                len: e.compressed_size,
                crc32: crc_of(e),
            }
        } else if compress::zip_method(e.method, std::io::empty()).is_some() {
            Region {
                label: name.clone(),
                src: RegionSrc::Member(e.clone()),
                len: e.uncompressed_size,
                crc32: crc_of(e),
            }
        } else {
            return Err(judge.unsupported(format!("{name} uses compression method {}", e.method)));
        };
        by_key.insert(s.key.clone(), regions.len());
        regions.push(region);
    }
    for s in &interp.storages {
        let region = &regions[by_key[&s.key]];
        let need = s.root_bytes().unwrap_or(u64::MAX);
        if need > region.len {
            return Err(judge.malformed(format!(
                "storage {:?} needs {need} bytes but {} holds {}",
                s.key, region.label, region.len
            )));
        }
    }
    build(
        judge,
        &interp,
        &root,
        root_name,
        regions,
        &by_key,
        big,
        notes,
        SourceFormat::TorchZip,
        true,
    )
}

/// Tensors, metadata and dropped values from the interpreter's result.
#[allow(clippy::too_many_arguments)]
fn build(
    judge: &mut Judge<'_>,
    interp: &Interp,
    root: &Obj,
    root_name: &str,
    regions: Vec<Region>,
    by_key: &HashMap<String, usize>,
    big: bool,
    mut notes: Vec<String>,
    format: SourceFormat,
    zip: bool,
) -> Result<Loaded, crate::ConvertError> {
    let flat = flatten(interp, root, root_name).map_err(|m| judge.unsupported(m))?;
    let mut tensors = Vec::with_capacity(flat.tensors.len());
    for (name, ti) in &flat.tensors {
        let def = &interp.tensors[*ti];
        let region = by_key[&def.storage.key];
        let (wstart, _) = def
            .storage
            .window()
            .ok_or_else(|| judge.malformed("a storage size overflows"))?;
        let byte_offset = wstart + def.offset * def.dtype.size();
        tensors.push(TensorPlan {
            name: name.clone(),
            dtype: def.dtype,
            shape: def.shape.clone(),
            strides: def.strides.clone(),
            region,
            byte_offset,
            swap: big && def.dtype.swap_unit() > 1,
            begin: 0,
            end: 0,
        });
        if !zip && wstart > 0 {
            notes.push(format!(
                "{name} reads a legacy storage view at byte {wstart} of storage {:?}",
                def.storage.key
            ));
        }
    }
    if big {
        notes.push(
            "the checkpoint is big-endian (byteorder record): every element was byte-swapped to little-endian, by the tensor's dtype"
                .into(),
        );
    }
    let mut metadata = flat.metadata;
    if let Some(v) = metadata.get("format") {
        notes.push(format!(
            "the checkpoint's own string 'format' = {v:?} is kept in __metadata__ instead of \"pt\""
        ));
    } else {
        metadata.insert("format".into(), "pt".into());
    }
    Ok(Loaded {
        format,
        regions,
        tensors,
        metadata,
        dropped: flat.dropped,
        notes,
    })
}

/// The legacy format (`torch.save(..., _use_new_zipfile_serialization=False)`).
pub(crate) fn load_legacy(
    file: &mut File,
    len: u64,
    judge: &mut Judge<'_>,
    root_name: &str,
) -> Result<Loaded, crate::ConvertError> {
    let limits = Limits::default();
    let mut interp = Interp::new(true);
    let mut traces = Vec::new();
    let mut values: Vec<Option<Obj>> = Vec::new();
    // Which pickle the interpreter refused in.
    let mut refused_in = None;
    let data_start = {
        file.seek(SeekFrom::Start(0)).map_err(|e| judge.io(e))?;
        let mut reader = Reader::new(
            SeekSource::new(&mut *file, 0, len),
            0,
            Some(len),
            limits.max_inline,
        );
        for _ in 0..5 {
            let t = run_pickle(&mut reader, &limits, &mut interp);
            let stopped = t.end_reason == End::Stop;
            values.push(interp.take_result());
            if interp.refusal.is_some() && refused_in.is_none() {
                refused_in = Some(traces.len());
            }
            traces.push(t);
            if !stopped {
                break;
            }
        }
        reader.position()
    };
    const NAMES: [&str; 5] = [
        "magic number",
        "protocol version",
        "sys_info",
        "object",
        "storage keys",
    ];
    let what = |i: usize| format!("pickle {} ({})", i + 1, NAMES[i]);
    for (i, t) in traces.iter().enumerate() {
        judge.pickle(t, None, PickleContext { torch: true });
        if refused_in == Some(i)
            && let Some(r) = &interp.refusal
        {
            judge.reason(format!("{}@{}: {}", what(i), r.offset, r.message));
        }
        for (off, v) in trace_violations(t) {
            judge.reason(format!("{}@{off}: {v}", what(i)));
        }
    }
    judge.check()?;
    if traces.len() < 5 || legacy(&traces[0], traces.get(1)) != Legacy::Literal {
        return Err(judge.unsupported(
            "a pickle that is not a PyTorch checkpoint (no legacy magic number and five pickles); only PyTorch zip and legacy checkpoints and numpy .npy/.npz are converted",
        ));
    }
    if values[1] != Some(Obj::Int(LEGACY_PROTOCOL_VERSION)) {
        return Err(judge.malformed("the legacy protocol version is not 1001"));
    }
    let Some(root) = values[3].clone() else {
        return Err(judge.malformed("the object pickle does not reach STOP"));
    };
    let keys: Vec<String> = match &values[4] {
        Some(Obj::Cont(i)) => match &interp.conts[*i] {
            crate::interp::Cont::List(items) => items
                .iter()
                .map(|k| match k {
                    Obj::Str(s) => Ok(s.to_string()),
                    _ => Err(()),
                })
                .collect::<Result<_, _>>()
                .map_err(|()| judge.malformed("a storage key is not a string"))?,
            _ => return Err(judge.malformed("the storage keys are not a list")),
        },
        _ => return Err(judge.malformed("the storage keys are not a list")),
    };
    // First reference of each root key decides its element size, as in torch.load.
    let mut first: HashMap<&str, &Rc<StorageRef>> = HashMap::new();
    for s in &interp.storages {
        let f = first.entry(s.key.as_str()).or_insert(s);
        if f.root_bytes() != s.root_bytes() {
            return Err(judge.malformed(format!(
                "storage {:?} is referenced with two different sizes",
                s.key
            )));
        }
    }
    let mut regions = Vec::new();
    let mut by_key: HashMap<String, usize> = HashMap::new();
    let mut pos = data_start;
    let mut head = [0u8; 8];
    for key in &keys {
        let Some(s) = first.get(key.as_str()) else {
            return Err(judge.malformed(format!(
                "storage key {key:?} is listed but no persistent id names it (torch.load raises)"
            )));
        };
        if by_key.contains_key(key) {
            return Err(judge.malformed(format!("storage key {key:?} is listed twice")));
        }
        if pos.checked_add(8).is_none_or(|e| e > len) {
            return Err(judge.malformed(format!("storage {key:?} starts past the end of the file")));
        }
        file.seek(SeekFrom::Start(pos))
            .and_then(|_| file.read_exact(&mut head))
            .map_err(|e| judge.io(e))?;
        let count = u64::from_le_bytes(head);
        let es = s.kind.element_size();
        let nbytes = count
            .checked_mul(es)
            .ok_or_else(|| judge.malformed(format!("storage {key:?} claims {count} elements")))?;
        if Some(nbytes) != s.root_bytes() {
            return Err(judge.malformed(format!(
                "storage {key:?} holds {count} elements in the file but its persistent id says {}",
                s.numel
            )));
        }
        let start = pos + 8;
        if start.checked_add(nbytes).is_none_or(|e| e > len) {
            return Err(judge.malformed(format!(
                "storage {key:?} ({nbytes} bytes at {start}) runs past the end of the file"
            )));
        }
        by_key.insert(key.clone(), regions.len());
        regions.push(Region {
            label: format!("storage {key:?} @{start}"),
            src: RegionSrc::Input(start),
            len: nbytes,
            crc32: None,
        });
        pos = start + nbytes;
    }
    for s in &interp.storages {
        if !by_key.contains_key(&s.key) {
            return Err(judge.malformed(format!("storage {:?} has no data in the file", s.key)));
        }
    }
    let mut notes = Vec::new();
    if pos < len {
        notes.push(format!(
            "{} bytes follow the last storage; torch.load never reads them",
            len - pos
        ));
    }
    build(
        judge,
        &interp,
        &root,
        root_name,
        regions,
        &by_key,
        false,
        notes,
        SourceFormat::TorchLegacy,
        false,
    )
}
