//! Pickles hidden inside a pickle's constants: raw, base64 or hex bytes and strings.

use base64::Engine as _;
use modelward_pickle::{Arena, Node, NodeId, looks_like_pickle};

/// A constant that decodes to something that looks like a pickle.
#[derive(Debug)]
pub(crate) struct Candidate {
    /// Offset of the constant in the outer stream.
    pub offset: u64,
    /// How it was encoded.
    pub encoding: &'static str,
    /// The decoded pickle bytes.
    pub data: Vec<u8>,
    /// The node, to tell whether a loader receives it.
    pub node: NodeId,
}

fn text_like(b: &[u8]) -> bool {
    b.len() >= 24 && b.iter().all(|c| c.is_ascii_graphic() || c.is_ascii_whitespace())
}

/// Constants that look like pickles, at most `max`.
pub(crate) fn candidates(arena: &Arena, max: usize) -> Vec<Candidate> {
    let mut out = Vec::new();
    for i in 0..arena.len() {
        if out.len() >= max {
            break;
        }
        let id = NodeId(i as u32);
        let (data, offset, complete): (&[u8], u64, bool) = match arena.get(id) {
            Some(Node::Bytes {
                data, len, offset, ..
            }) => (data, *offset, data.len() as u64 == *len),
            Some(Node::Str {
                text,
                truncated,
                offset,
            }) => (text.as_bytes(), *offset, !truncated),
            _ => continue,
        };
        if !complete || data.len() < 4 {
            continue;
        }
        if looks_like_pickle(data) && data.last() == Some(&b'.') {
            out.push(Candidate {
                offset,
                encoding: "raw",
                data: data.to_vec(),
                node: id,
            });
            continue;
        }
        if !text_like(data) {
            continue;
        }
        let compact: Vec<u8> = data
            .iter()
            .copied()
            .filter(|c| !c.is_ascii_whitespace())
            .collect();
        let decoded = if compact.iter().all(u8::is_ascii_hexdigit) && compact.len().is_multiple_of(2) {
            decode_hex(&compact).map(|d| (d, "hex"))
        } else {
            base64::engine::general_purpose::STANDARD
                .decode(&compact)
                .or_else(|_| base64::engine::general_purpose::URL_SAFE.decode(&compact))
                .ok()
                .map(|d| (d, "base64"))
        };
        if let Some((d, enc)) = decoded
            && looks_like_pickle(&d)
        {
            out.push(Candidate {
                offset,
                encoding: enc,
                data: d,
                node: id,
            });
        }
    }
    out
}

fn decode_hex(s: &[u8]) -> Option<Vec<u8>> {
    s.chunks(2)
        .map(|p| {
            std::str::from_utf8(p)
                .ok()
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        })
        .collect()
}
