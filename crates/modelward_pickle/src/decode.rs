//! Opcode decoding: one instruction at a time, zero-copy over a byte window.
//!
//! [`decode_one`] never allocates what the input claims: a length prefix is checked against the
//! real end of the input before anything is read, and an operand longer than `max_inline` is
//! returned as a [`Blob`] holding only its first bytes, with the instruction's `len` telling the
//! caller how far to skip.

use crate::opcode::{ArgKind, CountWidth, Opcode};
use std::borrow::Cow;
use std::fmt;

/// Longest text line (protocol 0 arguments) accepted before the line is called malformed.
pub const MAX_LINE: usize = 64 * 1024;
/// Longest text line read at all (protocol 0 `STRING`/`UNICODE`/`INT`...): the default string
/// budget. Longer is malformed; the reader's window grows to this only for such a line.
pub const MAX_LONG_LINE: usize = 16 << 20;

/// A decoded instruction.
#[derive(Debug, Clone, PartialEq)]
pub struct Instruction<'a> {
    /// Absolute byte offset of the opcode.
    pub offset: u64,
    /// The opcode.
    pub op: Opcode,
    /// Its argument.
    pub arg: Arg<'a>,
    /// Encoded length in bytes, opcode included (may exceed what was held in memory).
    pub len: u64,
}

/// A decoded argument.
#[derive(Debug, Clone, PartialEq)]
pub enum Arg<'a> {
    /// No argument.
    None,
    /// An integer that fits in 64 bits (also memo indices, protocol, extension codes, frame sizes).
    Int(i64),
    /// `INT` written as `00` / `01` (protocol 0 booleans).
    Bool(bool),
    /// An integer too large for 64 bits, as decimal text or little-endian two's-complement bytes.
    BigInt(BigInt<'a>),
    /// A float.
    Float(f64),
    /// A byte string (`BINBYTES*`, `BYTEARRAY8`, and Python 2 `STRING`s, which are bytes).
    Bytes(Blob<'a>),
    /// A unicode string.
    Text(Text<'a>),
    /// Module and name of `GLOBAL` / `INST`.
    Global {
        /// Module, as written.
        module: Cow<'a, str>,
        /// Attribute name, as written (may be dotted).
        name: Cow<'a, str>,
    },
}

/// An integer argument too wide for `i64`.
#[derive(Debug, Clone, PartialEq)]
pub enum BigInt<'a> {
    /// `LONG` / `INT` decimal text.
    Decimal(Cow<'a, str>),
    /// `LONG1` / `LONG4` little-endian two's-complement bytes (possibly only the head).
    Bytes(Blob<'a>),
}

/// A byte operand. `data` holds all of it unless it was longer than the inline limit, in which
/// case it holds only the head and `len` says how long it really is.
#[derive(Debug, Clone, PartialEq)]
pub struct Blob<'a> {
    /// The bytes held (all, or the head).
    pub data: Cow<'a, [u8]>,
    /// The declared length.
    pub len: u64,
    /// Absolute offset of the first data byte.
    pub data_offset: u64,
}

impl Blob<'_> {
    /// Whether `data` is the whole operand.
    pub fn is_complete(&self) -> bool {
        self.data.len() as u64 == self.len
    }
}

/// A unicode operand.
#[derive(Debug, Clone, PartialEq)]
pub struct Text<'a> {
    /// The decoded text (all of it, or the head when the operand is longer than the inline limit).
    pub text: Cow<'a, str>,
    /// Encoded length in bytes.
    pub len: u64,
    /// Absolute offset of the first encoded byte.
    pub data_offset: u64,
    /// Invalid UTF-8 was replaced (the real unpickler raises here).
    pub lossy: bool,
    /// Only the head is held.
    pub truncated: bool,
}

/// Why decoding stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecodeErrorKind {
    /// A byte that is no opcode.
    InvalidOpcode(u8),
    /// The input ends inside an instruction.
    Truncated(Opcode),
    /// An argument that the real unpickler rejects.
    BadArgument(Opcode, &'static str),
}

/// A decoding error, with the offset of the failing instruction.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{kind} at offset {offset}")]
pub struct DecodeError {
    /// Absolute offset of the opcode that failed.
    pub offset: u64,
    /// What went wrong.
    pub kind: DecodeErrorKind,
}

impl fmt::Display for DecodeErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeErrorKind::InvalidOpcode(b) => write!(f, "invalid opcode 0x{b:02x}"),
            DecodeErrorKind::Truncated(op) => write!(f, "input ends inside {}", op.name()),
            DecodeErrorKind::BadArgument(op, why) => write!(f, "bad {} argument: {why}", op.name()),
        }
    }
}

/// Outcome of decoding at one position.
#[derive(Debug, Clone, PartialEq)]
pub enum Step<'a> {
    /// An instruction.
    Ok(Instruction<'a>),
    /// The window ends inside the instruction but the input goes on: refill and retry.
    NeedMore,
    /// The input is malformed here.
    Err(DecodeError),
}

/// Decodes the instruction at `window[pos..]`.
///
/// `base` is the absolute offset of `window[0]`; `input_end` the absolute end of the input (so a
/// length that reaches past it is an error, not a request for more); `max_inline` the longest
/// operand returned whole.
pub fn decode_one(window: &[u8], pos: usize, base: u64, input_end: u64, max_inline: usize) -> Step<'_> {
    let offset = base + pos as u64;
    let Some(&byte) = window.get(pos) else {
        return Step::NeedMore;
    };
    let Some(op) = Opcode::from_byte(byte) else {
        return Step::Err(DecodeError {
            offset,
            kind: DecodeErrorKind::InvalidOpcode(byte),
        });
    };
    let cur = Cursor {
        window,
        pos: pos + 1,
        base,
        input_end,
        op,
        offset,
    };
    match decode_arg(cur, max_inline) {
        Ok((arg, end_abs)) => Step::Ok(Instruction {
            offset,
            op,
            arg,
            len: end_abs - offset,
        }),
        Err(Short::More) => Step::NeedMore,
        Err(Short::Bad(kind)) => Step::Err(DecodeError { offset, kind }),
    }
}

enum Short {
    More,
    Bad(DecodeErrorKind),
}

struct Cursor<'a> {
    window: &'a [u8],
    pos: usize,
    base: u64,
    input_end: u64,
    op: Opcode,
    offset: u64,
}

impl<'a> Cursor<'a> {
    fn abs(&self, pos: usize) -> u64 {
        self.base + pos as u64
    }

    fn truncated(&self) -> Short {
        Short::Bad(DecodeErrorKind::Truncated(self.op))
    }

    fn bad(&self, why: &'static str) -> Short {
        Short::Bad(DecodeErrorKind::BadArgument(self.op, why))
    }

    /// Exactly `n` bytes (small, fixed-width fields).
    fn fixed(&self, n: usize) -> Result<&'a [u8], Short> {
        let end = self.pos + n;
        if self.abs(end) > self.input_end {
            return Err(self.truncated());
        }
        self.window.get(self.pos..end).ok_or(Short::More)
    }

    /// One line without its `\n`, and the position after the `\n`.
    fn line(&self, from: usize) -> Result<(&'a [u8], usize), Short> {
        let rest = self.window.get(from..).unwrap_or_default();
        // Real protocol-0 files hold long text lines (a vocabulary in one STRING): read up to the
        // string budget, asking the reader for more rather than calling the line malformed.
        match rest.iter().take(MAX_LONG_LINE + 1).position(|&b| b == b'\n') {
            Some(n) => Ok((&rest[..n], from + n + 1)),
            None if rest.len() > MAX_LONG_LINE => Err(self.bad("line too long")),
            None if self.abs(self.window.len()) >= self.input_end => Err(self.truncated()),
            None => Err(Short::More),
        }
    }

    /// A length-prefixed operand starting at `self.pos + width`.
    fn counted(&self, width: usize, len: u64, max_inline: usize) -> Result<(Blob<'a>, u64), Short> {
        let start = self.pos + width;
        let data_offset = self.abs(start);
        let end_abs = data_offset.checked_add(len).ok_or_else(|| self.truncated())?;
        if end_abs > self.input_end {
            return Err(self.truncated());
        }
        let available = self.window.len().saturating_sub(start);
        let data = if len > max_inline as u64 {
            // Too long to hold: return the head only, the caller skips the rest.
            let head = available.min(HEAD);
            &self.window[start..start + head]
        } else if (len as usize) <= available {
            &self.window[start..start + len as usize]
        } else {
            return Err(Short::More);
        };
        Ok((
            Blob {
                data: Cow::Borrowed(data),
                len,
                data_offset,
            },
            end_abs,
        ))
    }
}

/// How much of an over-long operand is kept (enough to recognise a nested pickle or a magic).
pub const HEAD: usize = 4096;

fn le_u64(b: &[u8]) -> u64 {
    b.iter().rev().fold(0u64, |acc, &x| (acc << 8) | u64::from(x))
}

fn decode_arg(cur: Cursor<'_>, max_inline: usize) -> Result<(Arg<'_>, u64), Short> {
    let op = cur.op;
    let p = cur.pos;
    match op.arg_kind() {
        ArgKind::None => Ok((Arg::None, cur.abs(p))),
        ArgKind::U1 | ArgKind::U2 | ArgKind::U4 | ArgKind::U8 | ArgKind::I4 => {
            let n = match op.arg_kind() {
                ArgKind::U1 => 1,
                ArgKind::U2 => 2,
                ArgKind::U8 => 8,
                _ => 4,
            };
            let b = cur.fixed(n)?;
            let v = match op.arg_kind() {
                ArgKind::I4 => i64::from(i32::from_le_bytes([b[0], b[1], b[2], b[3]])),
                ArgKind::U8 => {
                    let v = le_u64(b);
                    i64::try_from(v).map_err(|_| cur.bad("length beyond 2^63"))?
                }
                _ => le_u64(b) as i64,
            };
            if op == Opcode::EXT4 && v < 0 {
                return Err(cur.bad("negative extension code"));
            }
            Ok((Arg::Int(v), cur.abs(p + n)))
        }
        ArgKind::F8 => {
            let b = cur.fixed(8)?;
            let mut a = [0u8; 8];
            a.copy_from_slice(b);
            Ok((Arg::Float(f64::from_be_bytes(a)), cur.abs(p + 8)))
        }
        ArgKind::Long1 | ArgKind::Long4 => {
            let (width, len) = if op.arg_kind() == ArgKind::Long1 {
                (1, u64::from(cur.fixed(1)?[0]))
            } else {
                let b = cur.fixed(4)?;
                let n = i32::from_le_bytes([b[0], b[1], b[2], b[3]]);
                (4, u64::try_from(n).map_err(|_| cur.bad("negative length"))?)
            };
            let (blob, end) = cur.counted(width, len, max_inline)?;
            let arg = if blob.len <= 8 && blob.is_complete() {
                Arg::Int(le_signed(&blob.data))
            } else {
                Arg::BigInt(BigInt::Bytes(blob))
            };
            Ok((arg, end))
        }
        ArgKind::Counted(w) => {
            let (width, len) = match w {
                CountWidth::One => (1, u64::from(cur.fixed(1)?[0])),
                CountWidth::FourSigned => {
                    let b = cur.fixed(4)?;
                    let n = i32::from_le_bytes([b[0], b[1], b[2], b[3]]);
                    (4, u64::try_from(n).map_err(|_| cur.bad("negative length"))?)
                }
                CountWidth::Four => (4, le_u64(cur.fixed(4)?)),
                CountWidth::Eight => (8, le_u64(cur.fixed(8)?)),
            };
            let (blob, end) = cur.counted(width, len, max_inline)?;
            let arg = match op {
                Opcode::BINUNICODE | Opcode::SHORT_BINUNICODE | Opcode::BINUNICODE8 => {
                    Arg::Text(utf8_text(blob))
                }
                _ => Arg::Bytes(blob),
            };
            Ok((arg, end))
        }
        ArgKind::DecimalShort | ArgKind::DecimalLong => {
            let (line, next) = cur.line(p)?;
            let s = std::str::from_utf8(line).map_err(|_| cur.bad("not a decimal number"))?;
            let t = s.trim();
            let arg = if op == Opcode::INT && t == "00" {
                Arg::Bool(false)
            } else if op == Opcode::INT && t == "01" {
                Arg::Bool(true)
            } else {
                let digits = if op == Opcode::LONG {
                    t.strip_suffix('L').unwrap_or(t)
                } else {
                    t
                };
                let body = digits.strip_prefix(['-', '+']).unwrap_or(digits);
                if body.is_empty() || !body.bytes().all(|b| b.is_ascii_digit() || b == b'_') {
                    return Err(cur.bad("not a decimal number"));
                }
                match digits.replace('_', "").parse::<i64>() {
                    Ok(v) => Arg::Int(v),
                    Err(_) if matches!(op, Opcode::GET | Opcode::PUT) => {
                        return Err(cur.bad("memo index out of range"));
                    }
                    Err(_) => Arg::BigInt(BigInt::Decimal(Cow::Owned(digits.to_owned()))),
                }
            };
            Ok((arg, cur.abs(next)))
        }
        ArgKind::FloatLine => {
            let (line, next) = cur.line(p)?;
            let s = std::str::from_utf8(line).map_err(|_| cur.bad("not a float"))?;
            let v = parse_py_float(s.trim()).ok_or_else(|| cur.bad("not a float"))?;
            Ok((Arg::Float(v), cur.abs(next)))
        }
        ArgKind::QuotedLine => {
            let (line, next) = cur.line(p)?;
            let data_offset = cur.abs(p + 1);
            let inner = match line {
                [q, inner @ .., q2] if q == q2 && (*q == b'\'' || *q == b'"') => inner,
                _ => return Err(cur.bad("STRING argument must be quoted")),
            };
            let bytes = python_escape_decode(inner).ok_or_else(|| cur.bad("invalid escape"))?;
            let len = bytes.len() as u64;
            Ok((
                Arg::Bytes(Blob {
                    data: Cow::Owned(bytes),
                    len,
                    data_offset,
                }),
                cur.abs(next),
            ))
        }
        ArgKind::UnicodeLine => {
            let (line, next) = cur.line(p)?;
            let text = raw_unicode_escape_decode(line);
            Ok((
                Arg::Text(Text {
                    len: line.len() as u64,
                    text: Cow::Owned(text),
                    data_offset: cur.abs(p),
                    lossy: false,
                    truncated: false,
                }),
                cur.abs(next),
            ))
        }
        ArgKind::RawLine => {
            let (line, next) = cur.line(p)?;
            if !line.is_ascii() {
                return Err(cur.bad("persistent id must be ASCII"));
            }
            let s = String::from_utf8_lossy(line);
            Ok((
                Arg::Text(Text {
                    len: line.len() as u64,
                    text: s,
                    data_offset: cur.abs(p),
                    lossy: false,
                    truncated: false,
                }),
                cur.abs(next),
            ))
        }
        ArgKind::LinePair => {
            let (m, after_m) = cur.line(p)?;
            let (n, next) = cur.line(after_m)?;
            let module = std::str::from_utf8(m).map_err(|_| cur.bad("module name is not UTF-8"))?;
            let name = std::str::from_utf8(n).map_err(|_| cur.bad("name is not UTF-8"))?;
            let _ = cur.offset;
            Ok((
                Arg::Global {
                    module: Cow::Borrowed(module),
                    name: Cow::Borrowed(name),
                },
                cur.abs(next),
            ))
        }
    }
}

fn utf8_text(blob: Blob<'_>) -> Text<'_> {
    let truncated = !blob.is_complete();
    let (text, lossy) = match blob.data {
        Cow::Borrowed(b) => match std::str::from_utf8(b) {
            Ok(s) => (Cow::Borrowed(s), false),
            // A head cut inside a multi-byte character is not an encoding error.
            Err(e) if truncated && e.error_len().is_none() => (
                Cow::Borrowed(std::str::from_utf8(&b[..e.valid_up_to()]).unwrap_or_default()),
                false,
            ),
            // CPython decodes with surrogatepass; lone surrogates and junk become U+FFFD here.
            Err(_) => (Cow::Owned(String::from_utf8_lossy(b).into_owned()), true),
        },
        Cow::Owned(v) => match String::from_utf8(v) {
            Ok(s) => (Cow::Owned(s), false),
            Err(e) => (
                Cow::Owned(String::from_utf8_lossy(e.as_bytes()).into_owned()),
                true,
            ),
        },
    };
    Text {
        text,
        len: blob.len,
        data_offset: blob.data_offset,
        lossy,
        truncated,
    }
}

/// Little-endian two's-complement to i64 (at most 8 bytes).
fn le_signed(b: &[u8]) -> i64 {
    if b.is_empty() {
        return 0;
    }
    let mut v = le_u64(b);
    let bits = b.len() * 8;
    if bits < 64 && b[b.len() - 1] & 0x80 != 0 {
        v |= u64::MAX << bits;
    }
    v as i64
}

fn parse_py_float(s: &str) -> Option<f64> {
    match s {
        "nan" => Some(f64::NAN),
        "inf" => Some(f64::INFINITY),
        "-inf" => Some(f64::NEG_INFINITY),
        _ => s.parse().ok(),
    }
}

/// Python's `codecs.escape_decode`, as `STRING` uses it. Unknown escapes keep their backslash.
fn python_escape_decode(s: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        let c = s[i];
        if c != b'\\' {
            out.push(c);
            i += 1;
            continue;
        }
        let Some(&e) = s.get(i + 1) else {
            return None; // trailing backslash
        };
        i += 2;
        match e {
            b'\n' => {}
            b'\\' => out.push(b'\\'),
            b'\'' => out.push(b'\''),
            b'"' => out.push(b'"'),
            b'a' => out.push(7),
            b'b' => out.push(8),
            b'f' => out.push(12),
            b'n' => out.push(b'\n'),
            b'r' => out.push(b'\r'),
            b't' => out.push(b'\t'),
            b'v' => out.push(11),
            b'x' => {
                let h = s.get(i..i + 2)?;
                let v = u8::from_str_radix(std::str::from_utf8(h).ok()?, 16).ok()?;
                out.push(v);
                i += 2;
            }
            b'0'..=b'7' => {
                let mut v = u32::from(e - b'0');
                let mut n = 1;
                while n < 3 {
                    match s.get(i) {
                        Some(&d @ b'0'..=b'7') => {
                            v = v * 8 + u32::from(d - b'0');
                            i += 1;
                            n += 1;
                        }
                        _ => break,
                    }
                }
                out.push((v & 0xff) as u8);
            }
            other => {
                out.push(b'\\');
                out.push(other);
            }
        }
    }
    Some(out)
}

/// Python's `raw-unicode-escape` decoder: `\uXXXX` and `\UXXXXXXXX` are escapes, every other
/// byte is Latin-1.
fn raw_unicode_escape_decode(s: &[u8]) -> String {
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        let c = s[i];
        if c == b'\\' {
            let width = match s.get(i + 1) {
                Some(b'u') => 4,
                Some(b'U') => 8,
                _ => 0,
            };
            if width > 0
                && let Some(ch) = s
                    .get(i + 2..i + 2 + width)
                    .and_then(|hex| std::str::from_utf8(hex).ok())
                    .and_then(|h| u32::from_str_radix(h, 16).ok())
                    .and_then(char::from_u32)
            {
                out.push(ch);
                i += 2 + width;
                continue;
            }
        }
        out.push(char::from(c));
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(bytes: &[u8]) -> Step<'_> {
        decode_one(bytes, 0, 0, bytes.len() as u64, 1 << 20)
    }

    #[test]
    fn lines_and_escapes() {
        let Step::Ok(i) = one(b"S'a\\x41\\n\\101'\n") else {
            panic!()
        };
        assert_eq!(
            i.arg,
            Arg::Bytes(Blob {
                data: Cow::Owned(b"aA\nA".to_vec()),
                len: 4,
                data_offset: 2
            })
        );
        let Step::Ok(i) = one(b"V\\u0070osix\n") else {
            panic!()
        };
        match i.arg {
            Arg::Text(t) => assert_eq!(t.text, "posix"),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            one(b"I01\n"),
            Step::Ok(Instruction {
                arg: Arg::Bool(true),
                ..
            })
        ));
        assert!(matches!(
            one(b"L12345678901234567890123L\n"),
            Step::Ok(Instruction {
                arg: Arg::BigInt(_),
                ..
            })
        ));
    }

    #[test]
    fn a_huge_declared_length_is_an_error_not_an_allocation() {
        let mut b = vec![0x8e];
        b.extend_from_slice(&(1u64 << 60).to_le_bytes());
        assert!(matches!(
            one(&b),
            Step::Err(DecodeError {
                kind: DecodeErrorKind::Truncated(Opcode::BINBYTES8),
                ..
            })
        ));
        let mut b = vec![b'T'];
        b.extend_from_slice(&(-5i32).to_le_bytes());
        assert!(matches!(
            one(&b),
            Step::Err(DecodeError {
                kind: DecodeErrorKind::BadArgument(..),
                ..
            })
        ));
    }

    #[test]
    fn a_long_operand_beyond_the_inline_limit_is_returned_as_a_head() {
        let mut b = vec![b'B'];
        b.extend_from_slice(&100_000u32.to_le_bytes());
        b.extend(std::iter::repeat_n(7u8, 100_000));
        let Step::Ok(i) = decode_one(&b, 0, 0, b.len() as u64, 1000) else {
            panic!()
        };
        assert_eq!(i.len, 100_005);
        match i.arg {
            Arg::Bytes(blob) => {
                assert_eq!(blob.len, 100_000);
                assert_eq!(blob.data.len(), HEAD);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn window_end_asks_for_more_but_input_end_is_truncation() {
        let b = b"cos\nsys";
        assert_eq!(decode_one(b, 0, 0, 100, 1 << 20), Step::NeedMore);
        assert!(matches!(
            decode_one(b, 0, 0, b.len() as u64, 1 << 20),
            Step::Err(_)
        ));
    }

    #[test]
    fn longs_are_sign_extended() {
        assert_eq!(le_signed(&[0xff]), -1);
        assert_eq!(le_signed(&[0x00, 0x80]), -32768);
        assert_eq!(le_signed(&[0x01, 0x02]), 0x0201);
    }
}
