//! joblib: pickles whose `NumpyArrayWrapper` objects are followed, inside the stream, by the raw
//! array bytes (or, for object arrays, by a nested pickle); and the old `ZF` compressed layout.

use crate::npy::itemsize;
use modelward_diagnostics::Fact;
use modelward_pickle::machine::Event;
use modelward_pickle::{Arena, Inline, InlineHook, Node, Value};

/// The wrapper class, under joblib's own name and the copy scikit-learn < 0.23 vendored as
/// `sklearn.externals.joblib` (same format, same inline array bytes).
const WRAPPERS: [&str; 2] = [
    "joblib.numpy_pickle.NumpyArrayWrapper",
    "sklearn.externals.joblib.numpy_pickle.NumpyArrayWrapper",
];

/// Length of the old `ZF` header: `ZF` and the payload length in hex, padded to 19 characters.
pub const ZFILE_HEADER: u64 = 21;

/// Follows joblib's inline arrays; usable on every pickle (it does nothing until a wrapper
/// appears).
#[derive(Debug, Default)]
pub struct JoblibHook {
    /// Arrays stepped over.
    pub arrays: u64,
    /// Arrays that could not be sized (the stream cannot be followed past them).
    pub facts: Vec<Fact>,
}

fn class_name(arena: &Arena, obj: Value) -> Option<String> {
    let Some(Node::Call(c)) = arena.node(obj) else {
        return None;
    };
    let g = arena.as_global(c.callee)?;
    let q = g.qualified();
    if q == "copyreg._reconstructor" {
        // protocol 0/1: _reconstructor(cls, base, state)
        let cls = *arena.items(c.args).first()?;
        return arena.as_global(cls).map(|g| g.qualified());
    }
    Some(q)
}

fn dict_get(arena: &Arena, dict: Value, key: &str) -> Option<Value> {
    let Some(Node::Dict { items, .. }) = arena.node(dict) else {
        return None;
    };
    items
        .iter()
        .find(|(k, _)| arena.as_str(*k).is_some_and(|s| s == key))
        .map(|(_, v)| *v)
}

/// `numpy.dtype('<f8', ...)`: the descr string, and the element size its BUILD state gives
/// for flexible types.
fn dtype_info(arena: &Arena, events: &[Event], dtype: Value) -> Option<(String, Option<u64>)> {
    let Some(Node::Call(c)) = arena.node(dtype) else {
        return None;
    };
    let descr = arena.as_str(*arena.items(c.args).first()?)?.into_owned();
    let elsize = events.iter().rev().find_map(|e| match e {
        Event::Build { target, state, .. } if *target == dtype => match arena.items(*state).get(5) {
            Some(Value::Int(n)) if *n > 0 => Some(*n as u64),
            _ => None,
        },
        _ => None,
    });
    Some((descr, elsize))
}

impl InlineHook for JoblibHook {
    fn after_build(&mut self, arena: &Arena, events: &[Event], target: Value, state: Value) -> Inline {
        if !class_name(arena, target).is_some_and(|c| WRAPPERS.contains(&c.as_str())) {
            return Inline::None;
        }
        let offset = events.iter().rev().find_map(|e| match e {
            Event::Build { offset, .. } => Some(*offset),
            _ => None,
        });
        let padded =
            matches!(dict_get(arena, state, "numpy_array_alignment_bytes"), Some(Value::Int(n)) if n > 0);
        let fail = |this: &mut Self, why: &str| {
            let mut f = Fact::new(
                "JBL101",
                format!("a joblib NumpyArrayWrapper {why}; the stream cannot be followed past it"),
            );
            f.offset = offset;
            this.facts.push(f);
            Inline::Skip {
                padded: false,
                len: u64::MAX,
            }
        };
        let Some((descr, elsize)) =
            dict_get(arena, state, "dtype").and_then(|d| dtype_info(arena, events, d))
        else {
            return fail(self, "has no readable dtype");
        };
        self.arrays += 1;
        if descr.trim_start_matches(['<', '>', '|', '=']).starts_with('O') {
            // joblib pickles object arrays straight into the stream, without alignment padding.
            return Inline::Pickle { padded: false };
        }
        let count = match dict_get(arena, state, "shape").map(|s| arena.items(s).to_vec()) {
            Some(dims) => dims.iter().try_fold(1u64, |acc, d| match d {
                Value::Int(n) if *n >= 0 => acc.checked_mul(*n as u64),
                _ => None,
            }),
            None => None,
        };
        let size = elsize.or_else(|| itemsize(&descr));
        match (count, size) {
            (Some(n), Some(s)) => match n.checked_mul(s) {
                Some(len) => Inline::Skip { padded, len },
                None => fail(self, "claims an array larger than 2^64 bytes"),
            },
            _ => fail(self, &format!("has an unreadable shape or dtype {descr:?}")),
        }
    }
}

/// Where the zlib stream of a joblib <= 0.9 `ZF` file starts within its first bytes: after
/// `ZF`, the payload length as Python's `hex()` (with an `L` under Python 2), space-padded.
pub fn zfile_payload_start(head: &[u8]) -> usize {
    let mut at = 2usize.min(head.len());
    if head.get(at..at + 2) == Some(b"0x") {
        at += 2;
    }
    while head.get(at).is_some_and(u8::is_ascii_hexdigit) {
        at += 1;
    }
    if head.get(at) == Some(&b'L') {
        at += 1;
    }
    while head.get(at) == Some(&b' ') {
        at += 1;
    }
    at.min(head.len())
}
