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
    let mut msg = M::default();
    let mut buf = SkipBuf {
        data,
        pos: 0,
        blobs: HashMap::new(),
    };
    let ctx = DecodeContext::default();
    while buf.has_remaining() {
        let (tag, wire_type) = decode_key(&mut buf)?;
        msg.merge_field(tag, wire_type, &mut buf, ctx.clone())?;
    }
    Ok((msg, Blobs(buf.blobs)))
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
