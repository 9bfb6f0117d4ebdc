//! A small JSON reader that keeps what `serde_json` throws away: byte offsets, duplicate keys
//! (which `serde_json` and Python's `json` resolve silently, last one wins) and nesting depth.
//!
//! Used for safetensors headers (strict RFC 8259, as the `safetensors` crate reads them with
//! `serde_json`) and Hugging Face configs (Python's `json`, which also accepts `NaN` and
//! `Infinity`). Recursion is bounded by [`Options::max_depth`] (never above [`MAX_DEPTH`]); the
//! tree holds at most one node per input byte, so memory follows the real input size.

use std::borrow::Cow;
use std::collections::HashMap;

/// The deepest nesting any caller may ask for.
pub const MAX_DEPTH: usize = 128;

/// How to read.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// Nesting deeper than this is an error of kind [`ErrorKind::Depth`].
    pub max_depth: usize,
    /// Python's `json`: `NaN`, `Infinity`, `-Infinity` and lone surrogate escapes are accepted.
    pub python: bool,
    /// More values than this is an error of kind [`ErrorKind::TooMany`] (bounds the tree's
    /// memory: about 50 bytes per value).
    pub max_values: usize,
}

/// A JSON value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value<'a> {
    /// `null`.
    Null,
    /// `true` / `false`.
    Bool(bool),
    /// A number, as written.
    Num(&'a str),
    /// A string, unescaped.
    Str(Cow<'a, str>),
    /// An array.
    Arr(Vec<Node<'a>>),
    /// An object, members in file order (duplicates kept).
    Obj(Vec<Member<'a>>),
}

/// A value and where it is.
#[derive(Debug, Clone, PartialEq)]
pub struct Node<'a> {
    /// Byte offset of the value's first byte.
    pub at: usize,
    /// Byte offset just past the value.
    pub end: usize,
    /// The value.
    pub value: Value<'a>,
}

/// One object member.
#[derive(Debug, Clone, PartialEq)]
pub struct Member<'a> {
    /// The key, unescaped.
    pub key: Cow<'a, str>,
    /// Byte offset of the key's opening quote.
    pub key_at: usize,
    /// The value.
    pub value: Node<'a>,
}

/// A key that appears more than once in one object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Duplicate {
    /// The key.
    pub key: String,
    /// Offset of its first occurrence.
    pub first: usize,
    /// Offset of the later occurrence.
    pub again: usize,
}

/// Why the text is not JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// A syntax error.
    Syntax,
    /// Nested deeper than allowed.
    Depth,
    /// More values than allowed.
    TooMany,
}

/// A parse error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    /// What went wrong.
    pub kind: ErrorKind,
    /// Byte offset.
    pub at: usize,
    /// One line.
    pub message: &'static str,
}

/// A parsed document.
#[derive(Debug, Clone, PartialEq)]
pub struct Parsed<'a> {
    /// The top-level value.
    pub root: Node<'a>,
    /// Every repeated key, in file order.
    pub duplicates: Vec<Duplicate>,
    /// The deepest nesting seen (a scalar at top level is depth 0, `{}` is 1).
    pub depth: usize,
}

impl<'a> Node<'a> {
    /// The member `key` of an object (the last one, as `serde_json` and Python keep).
    pub fn get(&self, key: &str) -> Option<&Node<'a>> {
        match &self.value {
            Value::Obj(members) => members.iter().rev().find(|m| m.key == key).map(|m| &m.value),
            _ => None,
        }
    }

    /// The string, if this is one.
    pub fn as_str(&self) -> Option<&str> {
        match &self.value {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    /// A non-negative integer written without fraction or exponent, if it fits in `u64`.
    pub fn as_u64(&self) -> Option<u64> {
        match self.value {
            Value::Num(n) if n.bytes().all(|b| b.is_ascii_digit()) => n.parse().ok(),
            _ => None,
        }
    }

    /// The elements, if this is an array.
    pub fn as_array(&self) -> Option<&[Node<'a>]> {
        match &self.value {
            Value::Arr(items) => Some(items),
            _ => None,
        }
    }

    /// The members, if this is an object.
    pub fn as_object(&self) -> Option<&[Member<'a>]> {
        match &self.value {
            Value::Obj(members) => Some(members),
            _ => None,
        }
    }

    /// A one-word name of the value's type.
    pub fn kind(&self) -> &'static str {
        match self.value {
            Value::Null => "null",
            Value::Bool(_) => "boolean",
            Value::Num(_) => "number",
            Value::Str(_) => "string",
            Value::Arr(_) => "array",
            Value::Obj(_) => "object",
        }
    }
}

/// Parses a whole document (whitespace around the value is allowed, nothing else).
pub fn parse(text: &str, options: Options) -> Result<Parsed<'_>, Error> {
    let mut p = Parser {
        text,
        bytes: text.as_bytes(),
        pos: 0,
        options: Options {
            max_depth: options.max_depth.min(MAX_DEPTH),
            ..options
        },
        duplicates: Vec::new(),
        depth: 0,
        values: 0,
    };
    p.ws();
    let root = p.value(0)?;
    p.ws();
    if p.pos != p.bytes.len() {
        return Err(p.err("trailing characters after the JSON value"));
    }
    Ok(Parsed {
        root,
        duplicates: p.duplicates,
        depth: p.depth,
    })
}

/// The byte offset in the raw JSON text of byte `decoded` of a string value's unescaped text;
/// `string_at` is the offset of the string's opening quote. Used to point into JSON-embedded
/// templates.
pub fn raw_offset(text: &str, string_at: usize, decoded: usize) -> usize {
    let b = text.as_bytes();
    let mut raw = string_at + 1;
    let mut out = 0usize;
    while raw < b.len() && out < decoded {
        match b[raw] {
            b'"' => break,
            b'\\' => {
                let Some(&e) = b.get(raw + 1) else { break };
                if e == b'u' {
                    let cp = hex4(b, raw + 2).unwrap_or(0xfffd);
                    if (0xd800..0xdc00).contains(&cp)
                        && b.get(raw + 6) == Some(&b'\\')
                        && b.get(raw + 7) == Some(&b'u')
                        && hex4(b, raw + 8).is_some_and(|lo| (0xdc00..0xe000).contains(&lo))
                    {
                        out += 4;
                        raw += 12;
                    } else {
                        out += char::from_u32(u32::from(cp)).map_or(3, char::len_utf8);
                        raw += 6;
                    }
                } else {
                    out += 1;
                    raw += 2;
                }
            }
            _ => {
                out += 1;
                raw += 1;
            }
        }
    }
    raw.min(b.len())
}

/// At most `max` characters of `s`, with `…` when cut; control characters shown escaped.
pub(crate) fn clip(s: &str, max: usize) -> String {
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i == max {
            out.push('…');
            break;
        }
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

fn hex4(b: &[u8], at: usize) -> Option<u16> {
    let digits = b.get(at..at + 4)?;
    let s = std::str::from_utf8(digits).ok()?;
    if !s.bytes().all(|c| c.is_ascii_hexdigit()) {
        return None;
    }
    u16::from_str_radix(s, 16).ok()
}

struct Parser<'a> {
    text: &'a str,
    bytes: &'a [u8],
    pos: usize,
    options: Options,
    duplicates: Vec<Duplicate>,
    depth: usize,
    values: usize,
}

impl<'a> Parser<'a> {
    fn err(&self, message: &'static str) -> Error {
        Error {
            kind: ErrorKind::Syntax,
            at: self.pos,
            message,
        }
    }

    fn ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.bytes.get(self.pos) {
            self.pos += 1;
        }
    }

    fn eat(&mut self, word: &str) -> bool {
        if self.bytes[self.pos..].starts_with(word.as_bytes()) {
            self.pos += word.len();
            true
        } else {
            false
        }
    }

    fn value(&mut self, depth: usize) -> Result<Node<'a>, Error> {
        let at = self.pos;
        self.values += 1;
        if self.values > self.options.max_values {
            return Err(Error {
                kind: ErrorKind::TooMany,
                at,
                message: "more values than the limit",
            });
        }
        let value = match self.bytes.get(self.pos) {
            None => return Err(self.err("unexpected end of input")),
            Some(b'{') => self.object(depth + 1)?,
            Some(b'[') => self.array(depth + 1)?,
            Some(b'"') => Value::Str(self.string()?),
            Some(b't') if self.eat("true") => Value::Bool(true),
            Some(b'f') if self.eat("false") => Value::Bool(false),
            Some(b'n') if self.eat("null") => Value::Null,
            Some(b'N') if self.options.python && self.eat("NaN") => Value::Num(&self.text[at..self.pos]),
            Some(b'I') if self.options.python && self.eat("Infinity") => Value::Num(&self.text[at..self.pos]),
            Some(b'-') if self.options.python && self.bytes[self.pos..].starts_with(b"-Infinity") => {
                self.pos += "-Infinity".len();
                Value::Num(&self.text[at..self.pos])
            }
            Some(b'-' | b'0'..=b'9') => self.number()?,
            Some(_) => return Err(self.err("expected a JSON value")),
        };
        Ok(Node {
            at,
            end: self.pos,
            value,
        })
    }

    fn enter(&mut self, depth: usize) -> Result<(), Error> {
        if depth > self.options.max_depth {
            return Err(Error {
                kind: ErrorKind::Depth,
                at: self.pos,
                message: "nested deeper than the limit",
            });
        }
        self.depth = self.depth.max(depth);
        Ok(())
    }

    fn object(&mut self, depth: usize) -> Result<Value<'a>, Error> {
        self.enter(depth)?;
        self.pos += 1;
        let mut members: Vec<Member<'a>> = Vec::new();
        self.ws();
        if self.bytes.get(self.pos) == Some(&b'}') {
            self.pos += 1;
            return Ok(Value::Obj(members));
        }
        loop {
            self.ws();
            if self.bytes.get(self.pos) != Some(&b'"') {
                return Err(self.err("expected a string key"));
            }
            let key_at = self.pos;
            let key = self.string()?;
            self.ws();
            if self.bytes.get(self.pos) != Some(&b':') {
                return Err(self.err("expected ':' after a key"));
            }
            self.pos += 1;
            self.ws();
            let value = self.value(depth)?;
            members.push(Member { key, key_at, value });
            self.ws();
            match self.bytes.get(self.pos) {
                Some(b',') => self.pos += 1,
                Some(b'}') => {
                    self.pos += 1;
                    break;
                }
                _ => return Err(self.err("expected ',' or '}' in an object")),
            }
        }
        if members.len() > 1 {
            let mut seen: HashMap<&str, usize> = HashMap::with_capacity(members.len());
            for m in &members {
                if let Some(&first) = seen.get(m.key.as_ref()) {
                    self.duplicates.push(Duplicate {
                        key: m.key.to_string(),
                        first,
                        again: m.key_at,
                    });
                } else {
                    seen.insert(m.key.as_ref(), m.key_at);
                }
            }
        }
        Ok(Value::Obj(members))
    }

    fn array(&mut self, depth: usize) -> Result<Value<'a>, Error> {
        self.enter(depth)?;
        self.pos += 1;
        let mut items = Vec::new();
        self.ws();
        if self.bytes.get(self.pos) == Some(&b']') {
            self.pos += 1;
            return Ok(Value::Arr(items));
        }
        loop {
            self.ws();
            items.push(self.value(depth)?);
            self.ws();
            match self.bytes.get(self.pos) {
                Some(b',') => self.pos += 1,
                Some(b']') => {
                    self.pos += 1;
                    break;
                }
                _ => return Err(self.err("expected ',' or ']' in an array")),
            }
        }
        Ok(Value::Arr(items))
    }

    fn number(&mut self) -> Result<Value<'a>, Error> {
        let start = self.pos;
        let b = self.bytes;
        let digits = |p: &mut usize| {
            let s = *p;
            while b.get(*p).is_some_and(u8::is_ascii_digit) {
                *p += 1;
            }
            *p - s
        };
        let mut p = self.pos;
        if b.get(p) == Some(&b'-') {
            p += 1;
        }
        match b.get(p) {
            Some(b'0') => p += 1,
            Some(b'1'..=b'9') => {
                digits(&mut p);
            }
            _ => {
                self.pos = p;
                return Err(self.err("malformed number"));
            }
        }
        if b.get(p) == Some(&b'.') {
            p += 1;
            if digits(&mut p) == 0 {
                self.pos = p;
                return Err(self.err("malformed number"));
            }
        }
        if let Some(b'e' | b'E') = b.get(p) {
            p += 1;
            if let Some(b'+' | b'-') = b.get(p) {
                p += 1;
            }
            if digits(&mut p) == 0 {
                self.pos = p;
                return Err(self.err("malformed number"));
            }
        }
        self.pos = p;
        Ok(Value::Num(&self.text[start..p]))
    }

    /// A string starting at the opening quote.
    fn string(&mut self) -> Result<Cow<'a, str>, Error> {
        self.pos += 1;
        let start = self.pos;
        // Fast path: no escapes.
        loop {
            match self.bytes.get(self.pos) {
                None => return Err(self.err("unterminated string")),
                Some(b'"') => {
                    let s = &self.text[start..self.pos];
                    self.pos += 1;
                    return Ok(Cow::Borrowed(s));
                }
                Some(b'\\') => break,
                Some(&c) if c < 0x20 => return Err(self.err("control character in a string")),
                Some(_) => self.pos += 1,
            }
        }
        let mut out = String::from(&self.text[start..self.pos]);
        loop {
            match self.bytes.get(self.pos) {
                None => return Err(self.err("unterminated string")),
                Some(b'"') => {
                    self.pos += 1;
                    return Ok(Cow::Owned(out));
                }
                Some(b'\\') => {
                    let Some(&e) = self.bytes.get(self.pos + 1) else {
                        return Err(self.err("unterminated string"));
                    };
                    self.pos += 2;
                    match e {
                        b'"' => out.push('"'),
                        b'\\' => out.push('\\'),
                        b'/' => out.push('/'),
                        b'b' => out.push('\u{8}'),
                        b'f' => out.push('\u{c}'),
                        b'n' => out.push('\n'),
                        b'r' => out.push('\r'),
                        b't' => out.push('\t'),
                        b'u' => {
                            let c = self.unicode_escape()?;
                            out.push(c);
                        }
                        _ => {
                            self.pos -= 1;
                            return Err(self.err("invalid escape in a string"));
                        }
                    }
                }
                Some(&c) if c < 0x20 => return Err(self.err("control character in a string")),
                Some(_) => {
                    // Copy one UTF-8 character (the text is a &str, so boundaries are valid).
                    let rest = &self.text[self.pos..];
                    let ch = rest.chars().next().unwrap_or('\u{fffd}');
                    out.push(ch);
                    self.pos += ch.len_utf8().max(1);
                }
            }
        }
    }

    /// After `\u`: four hex digits, and a low surrogate escape when the first is high.
    fn unicode_escape(&mut self) -> Result<char, Error> {
        let Some(hi) = hex4(self.bytes, self.pos) else {
            return Err(self.err("invalid \\u escape"));
        };
        self.pos += 4;
        if (0xd800..0xdc00).contains(&hi) {
            if self.bytes.get(self.pos) == Some(&b'\\')
                && self.bytes.get(self.pos + 1) == Some(&b'u')
                && let Some(lo) = hex4(self.bytes, self.pos + 2)
                && (0xdc00..0xe000).contains(&lo)
            {
                self.pos += 6;
                let cp = 0x10000 + ((u32::from(hi) - 0xd800) << 10) + (u32::from(lo) - 0xdc00);
                return Ok(char::from_u32(cp).unwrap_or('\u{fffd}'));
            }
            return if self.options.python {
                Ok('\u{fffd}')
            } else {
                Err(self.err("lone surrogate in a \\u escape"))
            };
        }
        if (0xdc00..0xe000).contains(&hi) {
            return if self.options.python {
                Ok('\u{fffd}')
            } else {
                Err(self.err("lone surrogate in a \\u escape"))
            };
        }
        Ok(char::from_u32(u32::from(hi)).unwrap_or('\u{fffd}'))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STRICT: Options = Options {
        max_depth: 64,
        python: false,
        max_values: 1 << 20,
    };

    #[test]
    fn values_offsets_and_duplicates() {
        let text = r#" {"a": [1, -2.5e3, true, null], "b": "x\u00e9\ud83d\ude00\n", "a": {}} "#;
        let p = parse(text, STRICT).unwrap();
        assert_eq!(p.duplicates.len(), 1);
        assert_eq!(p.duplicates[0].key, "a");
        assert_eq!((p.duplicates[0].first, p.duplicates[0].again), (2, 62));
        assert_eq!(p.root.get("b").unwrap().as_str(), Some("xé😀\n"));
        assert_eq!(p.root.get("a").unwrap().kind(), "object");
        assert_eq!(p.depth, 2);
        assert_eq!(p.root.at, 1);
    }

    #[test]
    fn rejects_what_serde_json_rejects() {
        for bad in [
            "",
            "{",
            "{\"a\":}",
            "[1,]",
            "{\"a\":1,}",
            "01",
            "1.",
            "-",
            "\"\\x41\"",
            "\"\u{1}\"",
            "{} x",
            "NaN",
            "\"\\ud800\"",
            "{'a': 1}",
            "[1 2]",
        ] {
            assert!(parse(bad, STRICT).is_err(), "{bad:?}");
        }
        let python = Options {
            max_depth: 4,
            python: true,
            max_values: 8,
        };
        assert!(parse("[NaN, -Infinity, \"\\ud800\"]", python).is_ok());
        let e = parse("[1, 2, 3, 4, 5, 6, 7, 8]", python).unwrap_err();
        assert_eq!(e.kind, ErrorKind::TooMany);
    }

    #[test]
    fn depth_is_bounded() {
        let deep = "[".repeat(100_000);
        let e = parse(&deep, STRICT).unwrap_err();
        assert_eq!(e.kind, ErrorKind::Depth);
        let ok = format!("{}{}", "[".repeat(64), "]".repeat(64));
        assert_eq!(parse(&ok, STRICT).unwrap().depth, 64);
    }

    #[test]
    fn integers_and_raw_offsets() {
        let p = parse(
            "[0, 18446744073709551615, 18446744073709551616, 1e3, -1, 1.0]",
            STRICT,
        )
        .unwrap();
        let got: Vec<_> = p.root.as_array().unwrap().iter().map(Node::as_u64).collect();
        assert_eq!(got, [Some(0), Some(u64::MAX), None, None, None, None]);
        let text = r#"{"t": "a\n\u00e9b"}"#;
        let p = parse(text, STRICT).unwrap();
        let s = p.root.get("t").unwrap();
        // decoded "a\néb": 'b' is at decoded byte 4; in the raw text after `a\n\u00e9`.
        assert_eq!(&text[raw_offset(text, s.at, 4)..][..1], "b");
        assert_eq!(&text[raw_offset(text, s.at, 0)..][..1], "a");
    }

    /// Strict mode accepts exactly what serde_json (the safetensors loader) accepts, on mutants
    /// of a few documents.
    #[test]
    fn agrees_with_serde_json_on_mutants() {
        let seeds = [
            r#"{"a":{"dtype":"F32","shape":[2,3],"data_offsets":[0,24]},"__metadata__":{"k":"v\u00e9\n"}}"#,
            r#"[1, -0.5e-3, true, false, null, "\ud83d\ude00", {"": []}]"#,
            r#"  {"x" : [ 0 , 10 , 1E+2 ] }  "#,
        ];
        let alphabet: &[u8] = b"{}[]:,\"\\u0123456789.eE+-tfnrl ax\n\x01\xc3\xa9";
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let mut checked = 0;
        for seed in seeds {
            for _ in 0..4000 {
                let mut bytes = seed.as_bytes().to_vec();
                for _ in 0..1 + next() % 3 {
                    let pos = (next() as usize) % (bytes.len() + 1);
                    let b = alphabet[(next() as usize) % alphabet.len()];
                    match next() % 3 {
                        0 if pos < bytes.len() => bytes[pos] = b,
                        1 if pos < bytes.len() => {
                            bytes.remove(pos);
                        }
                        _ => bytes.insert(pos, b),
                    }
                }
                let Ok(text) = std::str::from_utf8(&bytes) else {
                    continue;
                };
                let ours = parse(text, STRICT).is_ok();
                let theirs = serde_json::from_str::<serde_json::Value>(text).is_ok();
                assert_eq!(ours, theirs, "{text:?}");
                checked += 1;
            }
        }
        assert!(checked > 5000);
    }

    #[test]
    fn clip_escapes_and_cuts() {
        assert_eq!(clip("ab\ncd", 10), "ab\\ncd");
        assert_eq!(clip("abcdef", 3), "abc…");
    }
}
