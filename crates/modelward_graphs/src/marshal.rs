//! A tolerant reader of CPython `marshal` data, enough to show what a code object uses.
//!
//! Keras `Lambda` layers carry `marshal.dumps(function.__code__)` (base64 in the model config).
//! Running that code is what an attacker wants; reading it is enough to show which names
//! (`os`, `system`, `__import__`, ...) and constants (`'curl … | sh'`) it uses. This reader walks
//! the object stream of CPython 3.7 to 3.13 (marshal format 4; 3.14 slice constants are skipped)
//! without interpreting any bytecode: it keeps every code object's `co_names` and constants
//! (strings, numbers, nested code objects) and the outermost `co_name` / `co_filename`.
//!
//! The layout of a code object changed in 3.8 (`co_posonlyargcount`) and in 3.11 (`co_nlocals`
//! gone, `co_localsplusnames`, `co_qualname`, `co_exceptiontable`). Nothing in the stream says
//! which Python wrote it, so [`summarize`] tries the layouts newest first and keeps the first one
//! that reads the whole input consistently. When none does, it falls back to collecting the
//! strings it can recognise, and says so (`truncated`).
//!
//! Every length is checked against the input before use, nothing is allocated from a length read
//! from the input, and depth, object count and output size are bounded by the constants below.

use std::rc::Rc;

/// Only this much of a marshal payload is read.
pub const MAX_MARSHAL_BYTES: usize = 4 << 20;
/// Deepest nesting of containers and code objects followed.
pub const MAX_MARSHAL_DEPTH: usize = 48;
/// Most objects read from one payload.
pub const MAX_MARSHAL_OBJECTS: usize = 200_000;
/// Most names and most constants kept in a summary (each).
pub const MAX_SUMMARY_ITEMS: usize = 256;
/// Longest rendering of one constant, in characters.
pub const MAX_CONST_CHARS: usize = 160;
/// Longest string kept from the stream, in bytes (longer ones are cut).
const MAX_KEPT_STR: usize = 4096;

/// What a marshal payload contains, as far as a static reader can tell.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CodeSummary {
    /// `co_names` of every code object (globals, attributes and imported modules it uses), in
    /// order of appearance, without duplicates.
    pub names: Vec<String>,
    /// Constants (strings, numbers, bytes, tuples, nested code as `<code NAME>`), rendered like
    /// Python literals, without duplicates. `None`, `True`, `False` and `...` are left out.
    pub consts: Vec<String>,
    /// Nested code objects (inner functions, lambdas, comprehensions).
    pub nested: usize,
    /// Part of the payload could not be read, or a limit cut the summary short.
    pub truncated: bool,
    /// `co_name` of the outermost code object (`<lambda>`, a function name, `<module>`).
    pub co_name: Option<String>,
    /// `co_filename` of the outermost code object (the path on the author's machine).
    pub co_filename: Option<String>,
    /// The code-object layout that read the payload: `"3.11+"`, `"3.8-3.10"` or `"3.7"`; `None`
    /// when no layout did and the strings were collected by a byte scan.
    pub layout: Option<&'static str>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Layout {
    /// 3.11, 3.12, 3.13: 5 ints; localsplusnames, localspluskinds, qualname, exceptiontable.
    Py311,
    /// 3.8, 3.9, 3.10: 6 ints (posonlyargcount, nlocals); varnames, freevars, cellvars.
    Py38,
    /// 3.7 and older 3.x: 5 ints (no posonlyargcount).
    Py37,
}

impl Layout {
    fn label(self) -> &'static str {
        match self {
            Layout::Py311 => "3.11+",
            Layout::Py38 => "3.8-3.10",
            Layout::Py37 => "3.7",
        }
    }
}

#[derive(Debug, Clone)]
enum Val {
    /// A slot reserved for a container or code object still being read.
    Pending,
    Null,
    Singleton,
    Int(i64),
    BigInt(String),
    Float(f64),
    Complex,
    Str(Rc<str>),
    Bytes(Rc<[u8]>, usize),
    Seq(Rc<[Val]>),
    Code(Rc<str>),
    Other,
}

#[derive(Debug)]
struct Stop;

struct Reader<'a> {
    b: &'a [u8],
    pos: usize,
    refs: Vec<Val>,
    objects: usize,
    layout: Layout,
    sum: CodeSummary,
    top_code_seen: bool,
}

type R<T> = Result<T, Stop>;

impl<'a> Reader<'a> {
    fn new(b: &'a [u8], layout: Layout) -> Reader<'a> {
        Reader {
            b,
            pos: 0,
            refs: Vec::new(),
            objects: 0,
            layout,
            sum: CodeSummary::default(),
            top_code_seen: false,
        }
    }

    fn byte(&mut self) -> R<u8> {
        let v = *self.b.get(self.pos).ok_or(Stop)?;
        self.pos += 1;
        Ok(v)
    }

    fn take(&mut self, n: usize) -> R<&'a [u8]> {
        let end = self.pos.checked_add(n).ok_or(Stop)?;
        let s = self.b.get(self.pos..end).ok_or(Stop)?;
        self.pos = end;
        Ok(s)
    }

    fn i32(&mut self) -> R<i32> {
        let s = self.take(4)?;
        Ok(i32::from_le_bytes([s[0], s[1], s[2], s[3]]))
    }

    /// A non-negative count that cannot exceed the bytes left (every item takes at least one).
    fn count(&mut self) -> R<usize> {
        let n = usize::try_from(self.i32()?).map_err(|_| Stop)?;
        if n > self.b.len() - self.pos {
            return Err(Stop);
        }
        Ok(n)
    }

    fn text(&mut self, n: usize) -> R<Val> {
        let s = self.take(n)?;
        let cut = &s[..s.len().min(MAX_KEPT_STR)];
        Ok(Val::Str(Rc::from(String::from_utf8_lossy(cut).as_ref())))
    }

    fn reserve(&mut self, flag: bool) -> Option<usize> {
        flag.then(|| {
            self.refs.push(Val::Pending);
            self.refs.len() - 1
        })
    }

    fn fill(&mut self, slot: Option<usize>, v: &Val) {
        if let Some(i) = slot
            && let Some(r) = self.refs.get_mut(i)
        {
            *r = v.clone();
        }
    }

    fn object(&mut self, depth: usize) -> R<Val> {
        if depth > MAX_MARSHAL_DEPTH || self.objects >= MAX_MARSHAL_OBJECTS {
            self.sum.truncated = true;
            return Err(Stop);
        }
        self.objects += 1;
        let code = self.byte()?;
        let flag = code & 0x80 != 0;
        let slot = self.reserve(flag);
        let v = match code & 0x7f {
            b'0' => Val::Null,
            b'N' | b'F' | b'T' | b'S' | b'.' => Val::Singleton,
            b'i' => Val::Int(i64::from(self.i32()?)),
            b'l' => self.long()?,
            b'g' => {
                let s = self.take(8)?;
                let mut a = [0u8; 8];
                a.copy_from_slice(s);
                Val::Float(f64::from_le_bytes(a))
            }
            b'f' => {
                let n = usize::from(self.byte()?);
                let s = self.take(n)?;
                std::str::from_utf8(s)
                    .ok()
                    .and_then(|t| t.parse::<f64>().ok())
                    .map_or(Val::Other, Val::Float)
            }
            b'y' => {
                self.take(16)?;
                Val::Complex
            }
            b'x' => {
                for _ in 0..2 {
                    let n = usize::from(self.byte()?);
                    self.take(n)?;
                }
                Val::Complex
            }
            b's' => {
                let n = self.count()?;
                let s = self.take(n)?;
                Val::Bytes(Rc::from(&s[..s.len().min(64)]), n)
            }
            b't' | b'u' | b'a' | b'A' => {
                let n = self.count()?;
                self.text(n)?
            }
            b'z' | b'Z' => {
                let n = usize::from(self.byte()?);
                self.text(n)?
            }
            b')' => {
                // TYPE_SMALL_TUPLE: one-byte count.
                let n = usize::from(self.byte()?);
                self.seq(n, depth)?
            }
            b'(' | b'[' | b'<' | b'>' => {
                let n = self.count()?;
                self.seq(n, depth)?
            }
            b'{' => {
                let mut items = Vec::new();
                loop {
                    let k = self.object(depth + 1)?;
                    if matches!(k, Val::Null) {
                        break;
                    }
                    let v = self.object(depth + 1)?;
                    items.push(k);
                    items.push(v);
                }
                Val::Seq(Rc::from(items))
            }
            b':' => {
                // Python 3.14 slice constants: start, stop, step.
                for _ in 0..3 {
                    self.object(depth + 1)?;
                }
                Val::Other
            }
            b'r' => {
                let i = usize::try_from(self.i32()?).map_err(|_| Stop)?;
                self.refs.get(i).cloned().ok_or(Stop)?
            }
            b'c' => self.code(depth)?,
            _ => return Err(Stop),
        };
        self.fill(slot, &v);
        Ok(v)
    }

    fn long(&mut self) -> R<Val> {
        let n = self.i32()?;
        let digits = usize::try_from(n.unsigned_abs()).map_err(|_| Stop)?;
        if digits > (self.b.len() - self.pos) / 2 {
            return Err(Stop);
        }
        let mut acc: Option<i128> = Some(0);
        let s = self.take(digits * 2)?;
        for (i, d) in s.chunks_exact(2).enumerate() {
            let d = i128::from(u16::from_le_bytes([d[0], d[1]]));
            acc = acc.and_then(|a| {
                let shift = u32::try_from(15 * i).ok()?;
                if shift >= 120 {
                    return None;
                }
                a.checked_add(d << shift)
            });
        }
        Ok(match acc {
            Some(a) if n < 0 => i64::try_from(-a).map_or(Val::BigInt((-a).to_string()), Val::Int),
            Some(a) => i64::try_from(a).map_or(Val::BigInt(a.to_string()), Val::Int),
            None => Val::BigInt(format!("<int of {digits} 15-bit digits>")),
        })
    }

    fn seq(&mut self, n: usize, depth: usize) -> R<Val> {
        let mut items = Vec::new();
        for _ in 0..n {
            items.push(self.object(depth + 1)?);
        }
        Ok(Val::Seq(Rc::from(items)))
    }

    fn int_fields(&mut self) -> R<()> {
        let n = match self.layout {
            Layout::Py38 => 6,
            Layout::Py311 | Layout::Py37 => 5,
        };
        for _ in 0..n {
            self.i32()?;
        }
        Ok(())
    }

    fn code(&mut self, depth: usize) -> R<Val> {
        let outermost = !self.top_code_seen;
        self.top_code_seen = true;
        if !outermost {
            self.sum.nested += 1;
        }
        self.int_fields()?;
        let bytecode = self.object(depth + 1)?;
        if !matches!(bytecode, Val::Bytes(..)) {
            return Err(Stop);
        }
        let consts = self.object(depth + 1)?;
        let names = self.object(depth + 1)?;
        let (Val::Seq(consts), Val::Seq(names)) = (consts, names) else {
            return Err(Stop);
        };
        let (filename, name) = match self.layout {
            Layout::Py311 => {
                let _localsplusnames = self.object(depth + 1)?;
                let kinds = self.object(depth + 1)?;
                if !matches!(kinds, Val::Bytes(..)) {
                    return Err(Stop);
                }
                let filename = self.object(depth + 1)?;
                let name = self.object(depth + 1)?;
                let _qualname = self.object(depth + 1)?;
                self.i32()?;
                self.object(depth + 1)?;
                self.object(depth + 1)?;
                (filename, name)
            }
            Layout::Py38 | Layout::Py37 => {
                for _ in 0..3 {
                    if !matches!(self.object(depth + 1)?, Val::Seq(_)) {
                        return Err(Stop);
                    }
                }
                let filename = self.object(depth + 1)?;
                let name = self.object(depth + 1)?;
                self.i32()?;
                self.object(depth + 1)?;
                (filename, name)
            }
        };
        let (Val::Str(filename), Val::Str(name)) = (filename, name) else {
            return Err(Stop);
        };
        for n in names.iter() {
            match n {
                Val::Str(s) => self.add_name(s),
                _ => return Err(Stop),
            }
        }
        for c in consts.iter() {
            if let Some(r) = render(c) {
                self.add_const(r);
            }
        }
        if outermost {
            self.sum.co_name = Some(name.to_string());
            self.sum.co_filename = Some(filename.to_string());
        }
        Ok(Val::Code(name))
    }

    fn add_name(&mut self, s: &str) {
        if self.sum.names.iter().any(|n| n == s) {
            return;
        }
        if self.sum.names.len() >= MAX_SUMMARY_ITEMS {
            self.sum.truncated = true;
            return;
        }
        self.sum.names.push(s.to_owned());
    }

    fn add_const(&mut self, r: String) {
        if self.sum.consts.contains(&r) {
            return;
        }
        if self.sum.consts.len() >= MAX_SUMMARY_ITEMS {
            self.sum.truncated = true;
            return;
        }
        self.sum.consts.push(r);
    }
}

fn cut(s: String) -> String {
    if s.chars().count() <= MAX_CONST_CHARS {
        return s;
    }
    let mut t: String = s.chars().take(MAX_CONST_CHARS).collect();
    t.push('…');
    t
}

fn quote(s: &str) -> String {
    let mut o = String::from("'");
    for ch in s.chars().take(MAX_CONST_CHARS + 1) {
        match ch {
            '\'' => o.push_str("\\'"),
            '\\' => o.push_str("\\\\"),
            '\n' => o.push_str("\\n"),
            '\r' => o.push_str("\\r"),
            '\t' => o.push_str("\\t"),
            c if c.is_control() => o.push_str(&format!("\\x{:02x}", u32::from(c))),
            c => o.push(c),
        }
    }
    o.push('\'');
    o
}

fn render(v: &Val) -> Option<String> {
    Some(cut(match v {
        Val::Pending | Val::Null | Val::Singleton | Val::Other => return None,
        Val::Int(i) => i.to_string(),
        Val::BigInt(s) => s.clone(),
        Val::Float(f) => format!("{f:?}"),
        Val::Complex => "<complex>".to_owned(),
        Val::Str(s) => quote(s),
        Val::Bytes(head, len) => {
            let mut o = String::from("b'");
            for &b in head.iter() {
                if b.is_ascii_graphic() || b == b' ' {
                    if b == b'\'' || b == b'\\' {
                        o.push('\\');
                    }
                    o.push(char::from(b));
                } else {
                    o.push_str(&format!("\\x{b:02x}"));
                }
            }
            o.push('\'');
            if *len > head.len() {
                o.push_str(&format!("…({len} bytes)"));
            }
            o
        }
        Val::Seq(items) => {
            let parts: Vec<String> = items.iter().filter_map(render).collect();
            format!("({})", parts.join(", "))
        }
        Val::Code(name) => format!("<code {name}>"),
    }))
}

/// Reads a marshal payload (usually one code object) and summarises it.
pub fn summarize(bytes: &[u8]) -> CodeSummary {
    let over = bytes.len() > MAX_MARSHAL_BYTES;
    let b = &bytes[..bytes.len().min(MAX_MARSHAL_BYTES)];
    let mut best: Option<CodeSummary> = None;
    for layout in [Layout::Py311, Layout::Py38, Layout::Py37] {
        let mut r = Reader::new(b, layout);
        let ok = r.object(0).is_ok();
        let complete = ok && r.pos == b.len();
        if ok && r.top_code_seen {
            let mut sum = r.sum;
            sum.layout = Some(layout.label());
            sum.truncated |= over || !complete;
            if complete {
                return sum;
            }
            best.get_or_insert(sum);
        } else if ok && !r.top_code_seen && complete {
            // Not a code object at all (a tuple, a string): nothing layout-specific was read.
            let mut sum = r.sum;
            sum.truncated |= over;
            return sum;
        }
    }
    best.unwrap_or_else(|| scavenge(b))
}

/// Fallback: the strings of a stream no layout could read (short ASCII and Unicode objects).
fn scavenge(b: &[u8]) -> CodeSummary {
    let mut sum = CodeSummary {
        truncated: true,
        ..CodeSummary::default()
    };
    let mut i = 0usize;
    while i < b.len() {
        let t = b[i] & 0x7f;
        let (len, start) = match t {
            b'z' | b'Z' => match b.get(i + 1) {
                Some(&n) => (usize::from(n), i + 2),
                None => break,
            },
            b'a' | b'A' | b'u' | b't' => match b.get(i + 1..i + 5) {
                Some(s) => (
                    usize::try_from(u32::from_le_bytes([s[0], s[1], s[2], s[3]])).unwrap_or(usize::MAX),
                    i + 5,
                ),
                None => break,
            },
            _ => {
                i += 1;
                continue;
            }
        };
        let Some(s) = start.checked_add(len).and_then(|end| b.get(start..end)) else {
            i += 1;
            continue;
        };
        if len > 0 && s.iter().all(|c| c.is_ascii_graphic() || *c == b' ') {
            let text = String::from_utf8_lossy(s).into_owned();
            if text
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b'.')
            {
                if sum.names.len() < MAX_SUMMARY_ITEMS && !sum.names.contains(&text) {
                    sum.names.push(text);
                }
            } else {
                let q = cut(quote(&text));
                if sum.consts.len() < MAX_SUMMARY_ITEMS && !sum.consts.contains(&q) {
                    sum.consts.push(q);
                }
            }
            i = start + len;
        } else {
            i += 1;
        }
    }
    sum
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_and_garbage_input_give_a_truncated_summary() {
        let s = summarize(&[]);
        assert!(s.truncated);
        assert!(s.names.is_empty());
        let s = summarize(&[0xe3, 0xff, 0xff, 0xff, 0xff, 0x00]);
        assert!(s.truncated);
    }

    #[test]
    fn plain_objects_are_read_without_a_layout() {
        // marshal.dumps(('os', 1))
        let b = [0xa9, 0x02, 0xda, 0x02, b'o', b's', 0xe9, 0x01, 0, 0, 0];
        let s = summarize(&b);
        assert!(!s.truncated, "{s:?}");
        assert!(s.layout.is_none());
    }

    #[test]
    fn big_ints_and_refs_do_not_overflow_or_loop() {
        // A long with 40 digits, then a reference to slot 0 of a list containing itself.
        let mut b = vec![b')', 2, b'l', 40, 0, 0, 0];
        b.extend(std::iter::repeat_n(0xff, 80));
        b.extend_from_slice(&[b'r', 0, 0, 0, 0]);
        let s = summarize(&b);
        assert!(s.names.is_empty());
    }
}
