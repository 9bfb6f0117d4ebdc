//! Protobuf wire-format helpers shared by the ONNX and TensorFlow readers.
//!
//! prost decodes eagerly: a few bytes on the wire can become a few hundred bytes of structs, and
//! byte fields are copied. Before decoding, [`estimate`] walks the message once with the schema
//! that `build.rs` derived from the vendored protos and sums what the decode would allocate, so
//! an input that would blow up is refused rather than decoded. [`decode`] then runs prost over a
//! buffer that keeps large byte fields (tensor data) out of memory: they become small sentinels
//! whose real length [`Blobs::len_of`] returns.

use prost::bytes::{Buf, Bytes};
use prost::encoding::{DecodeContext, decode_key};
use prost::{DecodeError, Message};
use std::collections::HashMap;

/// Byte fields longer than this are not copied out of the input (only their length is kept).
pub const INLINE_BLOB_MAX: usize = 4096;
/// Nesting limit of the estimate; prost's own recursion limit is 100.
pub const MAX_WIRE_DEPTH: u32 = 100;

/// How the estimate treats a field.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Kind {
    Varint,
    Fixed32,
    Fixed64,
    Str,
    Bytes,
    Msg(usize),
}

/// One message type of the vendored protos.
#[derive(Debug)]
pub(crate) struct MsgSchema {
    #[allow(dead_code)]
    pub name: &'static str,
    /// In-memory size of the generated struct.
    pub weight: usize,
    /// `(field number, kind, repeated)`.
    pub fields: &'static [(u32, Kind, bool)],
}

const MAP_ENTRY_WEIGHT: usize = 64;

include!(concat!(env!("OUT_DIR"), "/schema.rs"));

/// Reads a base-128 varint at `*pos`.
pub(crate) fn read_varint(buf: &[u8], pos: &mut usize) -> Option<u64> {
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

/// Why an estimate stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum EstimateError {
    /// The decode would allocate more than the budget.
    OverBudget,
    /// Not a valid encoding of the message (prost would refuse it too).
    Malformed(usize),
}

/// One field as it appears on the wire.
pub(crate) enum WireValue<'a> {
    Varint,
    Fixed64,
    Fixed32,
    Len(&'a [u8]),
    Group,
}

/// Reads one field (tag and value) at `*pos`; `None` when the bytes are not a field.
pub(crate) fn read_field<'a>(buf: &'a [u8], pos: &mut usize) -> Option<(u32, WireValue<'a>)> {
    let key = read_varint(buf, pos)?;
    let number = u32::try_from(key >> 3)
        .ok()
        .filter(|n| *n > 0 && *n < (1 << 29))?;
    let value = match key & 7 {
        0 => {
            read_varint(buf, pos)?;
            WireValue::Varint
        }
        1 => {
            *pos = pos.checked_add(8).filter(|p| *p <= buf.len())?;
            WireValue::Fixed64
        }
        5 => {
            *pos = pos.checked_add(4).filter(|p| *p <= buf.len())?;
            WireValue::Fixed32
        }
        2 => {
            let len = usize::try_from(read_varint(buf, pos)?).ok()?;
            let end = pos.checked_add(len).filter(|e| *e <= buf.len())?;
            let v = &buf[*pos..end];
            *pos = end;
            WireValue::Len(v)
        }
        3 | 4 => WireValue::Group,
        _ => return None,
    };
    Some((number, value))
}

/// Estimated bytes a prost decode of `buf` as message `msg` (an index into `SCHEMA`) allocates.
pub(crate) fn estimate(buf: &[u8], msg: usize, budget: u64) -> Result<u64, EstimateError> {
    let mut total = 0u64;
    walk(buf, 0, msg, 0, budget, &mut total)?;
    Ok(total)
}

fn charge(total: &mut u64, n: u64, budget: u64) -> Result<(), EstimateError> {
    *total = total.saturating_add(n);
    if *total > budget {
        Err(EstimateError::OverBudget)
    } else {
        Ok(())
    }
}

fn walk(
    buf: &[u8],
    base: usize,
    msg: usize,
    depth: u32,
    budget: u64,
    total: &mut u64,
) -> Result<(), EstimateError> {
    if depth > MAX_WIRE_DEPTH {
        return Err(EstimateError::Malformed(base));
    }
    let Some(schema) = SCHEMA.get(msg) else {
        return Err(EstimateError::Malformed(base));
    };
    let mut pos = 0usize;
    while pos < buf.len() {
        let start = pos;
        let Some((number, value)) = read_field(buf, &mut pos) else {
            return Err(EstimateError::Malformed(base + start));
        };
        let field = schema.fields.iter().find(|f| f.0 == number);
        let Some(&(_, kind, repeated)) = field else {
            if matches!(value, WireValue::Group) {
                // prost skips unknown groups; we refuse them (no real writer uses groups here).
                return Err(EstimateError::Malformed(base + start));
            }
            continue;
        };
        // Vec growth can double what a repeated field holds.
        let grow = if repeated { 2 } else { 1 };
        match (kind, value) {
            (Kind::Msg(child), WireValue::Len(v)) => {
                let w = SCHEMA.get(child).map_or(MAP_ENTRY_WEIGHT, |s| s.weight) as u64;
                charge(total, w * grow, budget)?;
                let child_base = base + (pos - v.len());
                walk(v, child_base, child, depth + 1, budget, total)?;
            }
            (Kind::Str, WireValue::Len(v)) => charge(total, (v.len() as u64 + 24) * grow, budget)?,
            (Kind::Bytes, WireValue::Len(v)) => {
                let kept = if v.len() > INLINE_BLOB_MAX {
                    96
                } else {
                    v.len() as u64 + 32
                };
                charge(total, kept * grow, budget)?;
            }
            (Kind::Varint, WireValue::Len(v)) => charge(total, v.len() as u64 * 8 * grow, budget)?,
            (Kind::Fixed32, WireValue::Len(v)) => charge(total, v.len() as u64 * 2 * grow, budget)?,
            (Kind::Fixed64, WireValue::Len(v)) => charge(total, v.len() as u64 * grow, budget)?,
            (Kind::Varint, WireValue::Varint)
            | (Kind::Fixed32, WireValue::Fixed32)
            | (Kind::Fixed64, WireValue::Fixed64) => charge(total, 8 * grow, budget)?,
            _ => return Err(EstimateError::Malformed(base + start)),
        }
    }
    Ok(())
}

/// Lengths of the byte fields that [`decode`] kept out of memory.
#[derive(Debug, Default)]
pub(crate) struct Blobs(HashMap<usize, (usize, Bytes)>);

impl Blobs {
    /// The real length of a byte field of a decoded message.
    pub(crate) fn len_of(&self, b: &Bytes) -> usize {
        if b.is_empty() {
            return 0;
        }
        self.0.get(&(b.as_ptr() as usize)).map_or(b.len(), |e| e.0)
    }

    /// Whether a byte field was kept out of memory (its content is not available).
    pub(crate) fn is_skipped(&self, b: &Bytes) -> bool {
        !b.is_empty() && self.0.contains_key(&(b.as_ptr() as usize))
    }
}

/// A `Buf` over a slice that hands prost a small sentinel instead of copying long byte fields.
struct SkipBuf<'a> {
    data: &'a [u8],
    pos: usize,
    /// Payload position → real length, for the placeholders [`read_slim`] left where it
    /// skipped a long byte field.
    placeholders: &'a HashMap<usize, usize>,
    /// Sentinel address → (real length, the sentinel itself). Keeping a handle keeps the
    /// allocation alive, so no later byte field can be given the same address.
    blobs: HashMap<usize, (usize, Bytes)>,
}

impl Buf for SkipBuf<'_> {
    fn remaining(&self) -> usize {
        self.data.len() - self.pos
    }

    fn chunk(&self) -> &[u8] {
        &self.data[self.pos..]
    }

    fn advance(&mut self, cnt: usize) {
        self.pos = self.pos.saturating_add(cnt).min(self.data.len());
    }

    fn copy_to_bytes(&mut self, len: usize) -> Bytes {
        let len = len.min(self.remaining());
        if let Some(&real) = self.placeholders.get(&self.pos) {
            let sentinel = Bytes::from((real as u64).to_le_bytes().to_vec());
            self.blobs
                .insert(sentinel.as_ptr() as usize, (real, sentinel.clone()));
            self.advance(len);
            return sentinel;
        }
        if len > INLINE_BLOB_MAX {
            // A fresh allocation: its address identifies the sentinel while the message lives.
            let sentinel = Bytes::from((len as u64).to_le_bytes().to_vec());
            self.blobs
                .insert(sentinel.as_ptr() as usize, (len, sentinel.clone()));
            self.advance(len);
            return sentinel;
        }
        let b = Bytes::copy_from_slice(&self.data[self.pos..self.pos + len]);
        self.advance(len);
        b
    }
}

/// Decodes `data` as `M` (after an [`estimate`] has bounded the cost).
pub(crate) fn decode<M: Message + Default>(data: &[u8]) -> Result<(M, Blobs), DecodeError> {
    decode_with(data, &HashMap::new())
}

/// Decodes what [`read_slim`] kept: the same message as [`decode`] of the whole input.
pub(crate) fn decode_slim<M: Message + Default>(slim: &Slim) -> Result<(M, Blobs), DecodeError> {
    decode_with(&slim.data, &slim.placeholders)
}

fn decode_with<M: Message + Default>(
    data: &[u8],
    placeholders: &HashMap<usize, usize>,
) -> Result<(M, Blobs), DecodeError> {
    let mut msg = M::default();
    let mut buf = SkipBuf {
        data,
        pos: 0,
        placeholders,
        blobs: HashMap::new(),
    };
    let ctx = DecodeContext::default();
    while buf.has_remaining() {
        let (tag, wire_type) = decode_key(&mut buf)?;
        msg.merge_field(tag, wire_type, &mut buf, ctx.clone())?;
    }
    Ok((msg, Blobs(buf.blobs)))
}

/// A message read from a file without its long byte fields (tensor payloads): the fields
/// kept, re-encoded, and a placeholder for each byte field left on disk.
#[derive(Debug, Default)]
pub(crate) struct Slim {
    pub data: Vec<u8>,
    placeholders: HashMap<usize, usize>,
}

/// Buffered reads over the file, with the position kept.
struct Cursor<'r> {
    r: std::io::BufReader<&'r mut dyn modelward_formats::io::ReadSeek>,
    pos: u64,
}

impl Cursor<'_> {
    fn byte(&mut self) -> Option<u8> {
        let mut b = [0u8];
        std::io::Read::read_exact(&mut self.r, &mut b).ok()?;
        self.pos += 1;
        Some(b[0])
    }

    fn varint(&mut self) -> Option<u64> {
        let mut v: u64 = 0;
        for i in 0..10 {
            let b = self.byte()?;
            v |= u64::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                return Some(v);
            }
        }
        None
    }

    fn copy(&mut self, n: u64, out: &mut Vec<u8>) -> Option<()> {
        let start = out.len();
        out.resize(start + usize::try_from(n).ok()?, 0);
        std::io::Read::read_exact(&mut self.r, &mut out[start..]).ok()?;
        self.pos += n;
        Some(())
    }

    fn skip(&mut self, n: u64) -> Option<()> {
        self.r.seek_relative(i64::try_from(n).ok()?).ok()?;
        self.pos += n;
        Some(())
    }
}

fn put_varint(mut v: u64, out: &mut Vec<u8>) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Reads message `msg` (an index into `SCHEMA`) occupying `[0, len)` of `r`, seeking over
/// byte fields longer than [`INLINE_BLOB_MAX`] (tensor `raw_data` and the like: only their
/// length is kept, as [`decode`] would keep it) and unknown long fields (prost skips those),
/// so a model of gigabytes costs the bytes of its graph. At most `max_kept` bytes are kept.
/// `None` when the input is not a well-formed encoding within those bounds (the caller then
/// falls back to reading it whole, and reports exactly what it reported before).
pub(crate) fn read_slim(
    r: &mut dyn modelward_formats::io::ReadSeek,
    len: u64,
    msg: usize,
    max_kept: u64,
) -> Option<Slim> {
    r.seek(std::io::SeekFrom::Start(0)).ok()?;
    let mut c = Cursor {
        r: std::io::BufReader::with_capacity(8 * 1024, r),
        pos: 0,
    };
    let mut slim = Slim::default();
    let mut kept = 0u64;
    let mut placeholders = Vec::new();
    slim_msg(
        &mut c,
        len,
        msg,
        0,
        max_kept,
        &mut kept,
        &mut slim.data,
        &mut placeholders,
    )?;
    slim.placeholders = placeholders.into_iter().collect();
    Some(slim)
}

/// Counts kept bytes against the budget.
fn keep(kept: &mut u64, n: u64, max_kept: u64) -> Option<()> {
    *kept = kept.saturating_add(n);
    (*kept <= max_kept).then_some(())
}

#[allow(clippy::too_many_arguments)]
fn slim_msg(
    c: &mut Cursor<'_>,
    end: u64,
    msg: usize,
    depth: u32,
    max_kept: u64,
    kept: &mut u64,
    out: &mut Vec<u8>,
    placeholders: &mut Vec<(usize, usize)>,
) -> Option<()> {
    if depth > MAX_WIRE_DEPTH {
        return None;
    }
    let schema = SCHEMA.get(msg)?;
    while c.pos < end {
        let key = c.varint()?;
        let number = u32::try_from(key >> 3)
            .ok()
            .filter(|n| *n > 0 && *n < (1 << 29))?;
        match key & 7 {
            0 => {
                let v = c.varint()?;
                put_varint(key, out);
                put_varint(v, out);
            }
            1 | 5 => {
                let n = if key & 7 == 1 { 8 } else { 4 };
                put_varint(key, out);
                c.copy(n, out)?;
            }
            2 => {
                let l = c.varint()?;
                if c.pos.checked_add(l)? > end {
                    return None;
                }
                let kind = schema.fields.iter().find(|f| f.0 == number).map(|f| f.1);
                let long = l > INLINE_BLOB_MAX as u64;
                match kind {
                    Some(Kind::Msg(child)) if SCHEMA.get(child).is_some() => {
                        let mut sub = Vec::new();
                        let mut sub_places = Vec::new();
                        let sub_end = c.pos + l;
                        slim_msg(
                            c,
                            sub_end,
                            child,
                            depth + 1,
                            max_kept,
                            kept,
                            &mut sub,
                            &mut sub_places,
                        )?;
                        put_varint(key, out);
                        put_varint(sub.len() as u64, out);
                        let base = out.len();
                        placeholders.extend(sub_places.into_iter().map(|(p, n)| (p + base, n)));
                        out.extend_from_slice(&sub);
                    }
                    Some(Kind::Bytes) if long => {
                        c.skip(l)?;
                        put_varint(key, out);
                        put_varint(8, out);
                        placeholders.push((out.len(), usize::try_from(l).ok()?));
                        out.extend_from_slice(&l.to_le_bytes());
                    }
                    None if long => c.skip(l)?,
                    _ => {
                        keep(kept, l, max_kept)?;
                        put_varint(key, out);
                        put_varint(l, out);
                        c.copy(l, out)?;
                    }
                }
            }
            _ => return None,
        }
        keep(kept, 0, max_kept)?;
    }
    (c.pos == end).then_some(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::onnx::TensorProto;

    #[test]
    fn long_byte_fields_stay_out_of_memory_and_keep_their_length() {
        let t = TensorProto {
            dims: vec![3000],
            data_type: Some(1),
            raw_data: Some(Bytes::from(vec![7u8; 12_000])),
            name: Some("w".into()),
            ..TensorProto::default()
        };
        let enc = t.encode_to_vec();
        let cost = estimate(&enc, ONNX_TENSORPROTO, u64::MAX).unwrap();
        assert!(cost < 4096, "{cost}");
        let (d, blobs) = decode::<TensorProto>(&enc).unwrap();
        let raw = d.raw_data.unwrap();
        assert!(raw.len() < 16);
        assert!(blobs.is_skipped(&raw));
        assert_eq!(blobs.len_of(&raw), 12_000);
        assert_eq!(d.name.as_deref(), Some("w"));
    }

    #[test]
    fn a_slim_read_decodes_to_the_same_message_and_skips_the_payload() {
        use crate::proto::onnx::{GraphProto, ModelProto, NodeProto};
        let big = TensorProto {
            dims: vec![3000],
            data_type: Some(1),
            raw_data: Some(Bytes::from(vec![7u8; 200_000])),
            name: Some("w".into()),
            ..TensorProto::default()
        };
        let model = ModelProto {
            ir_version: Some(8),
            graph: Some(GraphProto {
                node: vec![NodeProto {
                    op_type: Some("Identity".into()),
                    ..NodeProto::default()
                }],
                initializer: vec![big.clone(), big],
                ..GraphProto::default()
            }),
            ..ModelProto::default()
        };
        let enc = model.encode_to_vec();
        let count = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        let mut r = modelward_formats::io::Counting::new(std::io::Cursor::new(enc.clone()), count.clone());
        let slim = read_slim(&mut r, enc.len() as u64, ONNX_MODELPROTO, u64::MAX).expect("slim");
        let read = count.load(std::sync::atomic::Ordering::Relaxed);
        assert!(read < 32 * 1024, "read {read} of {}", enc.len());
        let (whole, wb) = decode::<ModelProto>(&enc).unwrap();
        let (thin, tb) = decode_slim::<ModelProto>(&slim).unwrap();
        let g = |m: &ModelProto| m.graph.clone().unwrap();
        assert_eq!(g(&whole).node, g(&thin).node);
        for (a, b) in g(&whole).initializer.iter().zip(g(&thin).initializer.iter()) {
            assert_eq!(a.name, b.name);
            assert_eq!(a.dims, b.dims);
            let (ra, rb) = (a.raw_data.clone().unwrap(), b.raw_data.clone().unwrap());
            assert_eq!(wb.len_of(&ra), tb.len_of(&rb));
            assert!(tb.is_skipped(&rb));
        }
        // A truncated file is not slimmed: the caller reads it whole and reports as before.
        let mut cut = std::io::Cursor::new(enc[..enc.len() - 10].to_vec());
        assert!(read_slim(&mut cut, enc.len() as u64 - 10, ONNX_MODELPROTO, u64::MAX).is_none());
    }

    #[test]
    fn short_byte_fields_are_copied_as_they_are() {
        let t = TensorProto {
            raw_data: Some(Bytes::from_static(&[1, 2, 3, 4, 5, 6, 7, 8])),
            ..TensorProto::default()
        };
        let (d, blobs) = decode::<TensorProto>(&t.encode_to_vec()).unwrap();
        let raw = d.raw_data.unwrap();
        assert!(!blobs.is_skipped(&raw));
        assert_eq!(&raw[..], &[1, 2, 3, 4, 5, 6, 7, 8]);
    }

    #[test]
    fn many_empty_messages_are_refused_before_decoding() {
        // 100 000 empty nodes: 200 KB on the wire, tens of MB as structs.
        let mut graph = Vec::new();
        for _ in 0..100_000 {
            graph.extend_from_slice(&[0x0a, 0x00]);
        }
        let cost = estimate(&graph, ONNX_GRAPHPROTO, u64::MAX).unwrap();
        assert!(cost > 100 * graph.len() as u64);
        assert_eq!(
            estimate(&graph, ONNX_GRAPHPROTO, 1 << 20),
            Err(EstimateError::OverBudget)
        );
    }

    #[test]
    fn malformed_input_is_reported_with_an_offset() {
        assert!(matches!(
            estimate(&[0x0a, 0x05, 0x01], ONNX_GRAPHPROTO, u64::MAX),
            Err(EstimateError::Malformed(0))
        ));
    }
}
