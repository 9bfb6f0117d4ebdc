//! Recognising model-graph formats by content (HDF5, ONNX, TensorFlow SavedModel, Keras
//! metadata protobufs), for [`crate::sniff_len`]. Their parsers live in `modelward_graphs`.

/// The HDF5 superblock signature.
const HDF5_MAGIC: &[u8; 8] = b"\x89HDF\r\n\x1a\n";

/// Reads a base-128 varint at `*pos`.
fn read_varint(buf: &[u8], pos: &mut usize) -> Option<u64> {
    let mut v: u64 = 0;
    for i in 0..10 {
        let b = *buf.get(*pos)?;
        *pos += 1;
        v |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Some(v);
        }
    }
    None
}

/// Known `ModelProto` fields: `(number, length-delimited)`.
const MODEL_FIELDS: &[(u32, bool)] = &[
    (1, false),
    (2, true),
    (3, true),
    (4, true),
    (5, false),
    (6, true),
    (7, true),
    (8, true),
    (14, true),
    (20, true),
    (25, true),
    (26, true),
];

/// Best-effort test that a file is an ONNX model: the encoding of a `ModelProto` starts with
/// `ir_version` (field 1) followed by other model fields whose lengths fit in the file.
pub fn looks_like_onnx(head: &[u8], len: u64) -> bool {
    if head.first() != Some(&0x08) {
        return false;
    }
    let mut pos = 1usize;
    match read_varint(head, &mut pos) {
        Some(v) if (1..=64).contains(&v) => {}
        _ => return false,
    }
    let mut fields = 1;
    while pos < head.len() {
        let Some(key) = read_varint(head, &mut pos) else {
            return fields >= 2;
        };
        let (number, wt) = (key >> 3, key & 7);
        let Some(&(_, delimited)) = MODEL_FIELDS.iter().find(|f| u64::from(f.0) == number) else {
            return false;
        };
        if delimited != (wt == 2) || (!delimited && wt != 0) {
            return false;
        }
        if delimited {
            let Some(l) = read_varint(head, &mut pos) else {
                return fields >= 2;
            };
            if (pos as u64).saturating_add(l) > len {
                return false;
            }
            fields += 1;
            let end = pos.saturating_add(usize::try_from(l).unwrap_or(usize::MAX));
            if end > head.len() {
                return true;
            }
            pos = end;
        } else {
            if read_varint(head, &mut pos).is_none() {
                return fields >= 2;
            }
            fields += 1;
        }
    }
    fields >= 2
}

/// Best-effort test that `head` is a SavedModel: field 1 (schema version) and/or field 2 (a
/// meta graph) whose start looks like a `MetaGraphDef`. Meant as a hint for files named
/// `saved_model.pb`; a truncated head is fine.
pub fn looks_like_saved_model(head: &[u8]) -> bool {
    let mut pos = 0usize;
    let mut seen_meta = false;
    while pos < head.len() {
        let start = pos;
        let Some(key) = read_varint(head, &mut pos) else {
            return false;
        };
        match key {
            0x08 => {
                if read_varint(head, &mut pos).is_none_or(|v| v > 16) {
                    return false;
                }
            }
            0x12 => {
                let Some(len) = read_varint(head, &mut pos).and_then(|l| usize::try_from(l).ok()) else {
                    return false;
                };
                // The meta graph may run past the head; look at what is there.
                let body = &head[pos..head.len().min(pos.saturating_add(len))];
                let first = body.first().copied();
                // MetaGraphDef starts with meta_info_def (1), graph_def (2) or saver_def (3).
                if !matches!(first, Some(0x0a | 0x12 | 0x1a)) {
                    return false;
                }
                seen_meta = true;
                if pos.saturating_add(len) > head.len() {
                    return true;
                }
                pos += len;
            }
            _ => return seen_meta && start > 0,
        }
    }
    seen_meta
}

/// Whether `head` holds the HDF5 signature at 0, 512, 1024, 2048, ... (a user block may precede
/// the superblock).
pub fn looks_like_hdf5(head: &[u8]) -> bool {
    let mut at = 0usize;
    loop {
        match head.get(at..at + HDF5_MAGIC.len()) {
            Some(s) if s == HDF5_MAGIC => return true,
            Some(_) => {}
            None => return false,
        }
        at = if at == 0 { 512 } else { at * 2 };
    }
}

/// A Keras `keras_metadata.pb`: a protobuf whose strings hold a Keras JSON config.
pub fn looks_like_keras_metadata(head: &[u8]) -> bool {
    head.windows(12).any(|w| w == b"\"class_name\"")
}
