//! Is this a pickle? Decided from the first bytes, by decoding them, never by a file name.

use crate::decode::{Arg, Step, decode_one};
use crate::limits::Limits;
use crate::machine::{Anomaly, Event, Flow, Machine};
use crate::opcode::Opcode;

/// Whether `head` (the first bytes of some content) starts a pickle.
///
/// Protocol 2+ pickles start with `PROTO n`. Protocol 0/1 pickles have no header, so the first
/// instructions are decoded and run: they must decode, must not underflow the stack, and must
/// either reach STOP or go on for a few instructions. An import with identifier-like names as
/// the very first instruction is enough (a payload that breaks right after its import is still
/// a pickle).
pub fn looks_like_pickle(head: &[u8]) -> bool {
    match head {
        [] => false,
        [0x80] => true,
        [0x80, p, ..] => *p <= 5 && second_decodes(head),
        [b, ..] => match Opcode::from_byte(*b) {
            Some(op) if OPENERS.contains(&op) => probe(head),
            _ => false,
        },
    }
}

/// Opcodes a protocol 0/1 pickle can sensibly start with.
const OPENERS: &[Opcode] = &[
    Opcode::MARK,
    Opcode::EMPTY_LIST,
    Opcode::EMPTY_DICT,
    Opcode::EMPTY_TUPLE,
    Opcode::GLOBAL,
    Opcode::NONE,
    Opcode::INT,
    Opcode::LONG,
    Opcode::FLOAT,
    Opcode::STRING,
    Opcode::UNICODE,
    Opcode::BININT,
    Opcode::BININT1,
    Opcode::BININT2,
    Opcode::BINSTRING,
    Opcode::SHORT_BINSTRING,
    Opcode::BINUNICODE,
    Opcode::BINFLOAT,
    Opcode::PERSID,
];

fn second_decodes(head: &[u8]) -> bool {
    // PROTO is two bytes; what follows must be an opcode (or the head ends there).
    match decode_one(head, 2, 0, u64::MAX, 1 << 20) {
        Step::Ok(_) | Step::NeedMore => true,
        Step::Err(_) => head.len() <= 2,
    }
}

fn is_identifier_path(s: &str) -> bool {
    !s.is_empty()
        && s.split('.').all(|part| {
            let mut chars = part.chars();
            chars.next().is_some_and(|c| c.is_alphabetic() || c == '_')
                && chars.all(|c| c.is_alphanumeric() || c == '_')
        })
}

fn probe(head: &[u8]) -> bool {
    let limits = Limits::default();
    let mut m = Machine::new(&limits);
    let mut pos = 0usize;
    let mut decoded = 0;
    while decoded < 64 {
        let ins = match decode_one(head, pos, 0, u64::MAX, 1 << 20) {
            Step::Ok(ins) => ins,
            // The head ends inside an instruction: judge on what was seen.
            // A protocol-0 text opcode whose line runs past the head (a vocabulary in one
            // STRING) after an opening that decoded cleanly: the real unpickler reads on.
            Step::NeedMore => {
                let long_text = matches!(head.get(pos..), Some([b'S', b'\'' | b'"', ..] | [b'V', ..]));
                return decoded >= 4 || (decoded >= 1 && long_text);
            }
            Step::Err(_) => return false,
        };
        if decoded == 0
            && let Arg::Global { module, name } = &ins.arg
        {
            return is_identifier_path(module) && is_identifier_path(name);
        }
        decoded += 1;
        pos = pos.saturating_add(usize::try_from(ins.len).unwrap_or(usize::MAX));
        let flow = m.step(&ins);
        let broke = m.events().iter().any(|e| {
            matches!(
                e,
                Event::Anomaly {
                    kind: Anomaly::StackUnderflow(_) | Anomaly::NoMark(_) | Anomaly::MissingMemo(_),
                    ..
                }
            )
        });
        if broke {
            return false;
        }
        match flow {
            Flow::Stop(_) => return true,
            Flow::Halt(_) => return false,
            _ => {}
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn real_openings_are_pickles() {
        assert!(looks_like_pickle(b"\x80\x04\x95\x10\x00\x00\x00\x00\x00\x00\x00"));
        assert!(looks_like_pickle(b"(lp0\nS'a'\np1\naS'b'\np2\na."));
        assert!(looks_like_pickle(b"cbuiltins\nexec\nX\xff\xff\xff"));
        assert!(looks_like_pickle(b"]q\x00(K\x01K\x02e."));
        // The fourth instruction is a STRING longer than the head.
        let mut long = b"(dS'k'\nS'".to_vec();
        long.extend(std::iter::repeat_n(b'a', 8192));
        assert!(looks_like_pickle(&long));
    }

    #[test]
    fn text_and_junk_are_not() {
        assert!(!looks_like_pickle(b"cmod\n\xf8\n"));
        assert!(!looks_like_pickle(b"License: MIT\n"));
        assert!(!looks_like_pickle(b"def main():\n    pass\n"));
        assert!(!looks_like_pickle(b"class Foo:\n    x = 1\n"));
        assert!(!looks_like_pickle(b"{\"a\": 1}"));
        assert!(!looks_like_pickle(b"\x89PNG\r\n\x1a\n"));
        assert!(!looks_like_pickle(b"NOTICE\n"));
        assert!(!looks_like_pickle(b"\x80\x09"));
    }
}
