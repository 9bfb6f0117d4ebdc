//! A small, bounded parser for the Python literals that file headers use (`.npy` headers,
//! including Python 2's `3L`). No evaluation: only literals are accepted.

/// A Python literal.
#[derive(Debug, Clone, PartialEq)]
pub enum Lit {
    /// `'text'` or `"text"`.
    Str(String),
    /// An integer (Python 2 `L` suffix accepted).
    Int(i128),
    /// A float.
    Float(f64),
    /// `True` / `False`.
    Bool(bool),
    /// `None`.
    None,
    /// `(…)`.
    Tuple(Vec<Lit>),
    /// `[…]`.
    List(Vec<Lit>),
    /// `{k: v, …}`.
    Dict(Vec<(Lit, Lit)>),
}

impl Lit {
    /// A dict entry by string key.
    pub fn get(&self, key: &str) -> Option<&Lit> {
        match self {
            Lit::Dict(items) => items
                .iter()
                .find(|(k, _)| matches!(k, Lit::Str(s) if s == key))
                .map(|(_, v)| v),
            _ => None,
        }
    }
}

/// Nesting depth of a Python literal parsed (deeper is not parsed).
const MAX_DEPTH: usize = 32;

/// Parses one literal; `None` on anything else.
pub fn parse(s: &str) -> Option<Lit> {
    let mut p = P {
        b: s.as_bytes(),
        i: 0,
    };
    let v = p.value(0)?;
    p.ws();
    (p.i == p.b.len()).then_some(v)
}

struct P<'a> {
    b: &'a [u8],
    i: usize,
}

impl P<'_> {
    fn ws(&mut self) {
        while self.b.get(self.i).is_some_and(|c| c.is_ascii_whitespace()) {
            self.i += 1;
        }
    }

    fn eat(&mut self, c: u8) -> bool {
        self.ws();
        if self.b.get(self.i) == Some(&c) {
            self.i += 1;
            true
        } else {
            false
        }
    }

    fn seq(&mut self, close: u8, depth: usize) -> Option<Vec<Lit>> {
        let mut items = Vec::new();
        loop {
            if self.eat(close) {
                return Some(items);
            }
            items.push(self.value(depth + 1)?);
            if !self.eat(b',') {
                return self.eat(close).then_some(items);
            }
        }
    }

    fn value(&mut self, depth: usize) -> Option<Lit> {
        if depth > MAX_DEPTH {
            return None;
        }
        self.ws();
        let c = *self.b.get(self.i)?;
        match c {
            b'(' => {
                self.i += 1;
                self.seq(b')', depth).map(Lit::Tuple)
            }
            b'[' => {
                self.i += 1;
                self.seq(b']', depth).map(Lit::List)
            }
            b'{' => {
                self.i += 1;
                let mut items = Vec::new();
                loop {
                    if self.eat(b'}') {
                        return Some(Lit::Dict(items));
                    }
                    let k = self.value(depth + 1)?;
                    if !self.eat(b':') {
                        return None;
                    }
                    let v = self.value(depth + 1)?;
                    items.push((k, v));
                    if !self.eat(b',') {
                        return self.eat(b'}').then_some(Lit::Dict(items));
                    }
                }
            }
            b'\'' | b'"' => {
                self.i += 1;
                let mut out = Vec::new();
                while let Some(&d) = self.b.get(self.i) {
                    self.i += 1;
                    if d == c {
                        return Some(Lit::Str(String::from_utf8_lossy(&out).into_owned()));
                    }
                    if d == b'\\' {
                        let e = *self.b.get(self.i)?;
                        self.i += 1;
                        out.push(match e {
                            b'n' => b'\n',
                            b't' => b'\t',
                            other => other,
                        });
                    } else {
                        out.push(d);
                    }
                }
                None
            }
            _ => {
                let start = self.i;
                while self
                    .b
                    .get(self.i)
                    .is_some_and(|d| d.is_ascii_alphanumeric() || matches!(d, b'.' | b'-' | b'+' | b'_'))
                {
                    self.i += 1;
                }
                let word = std::str::from_utf8(&self.b[start..self.i]).ok()?;
                match word {
                    "True" => Some(Lit::Bool(true)),
                    "False" => Some(Lit::Bool(false)),
                    "None" => Some(Lit::None),
                    _ => {
                        let w = word.strip_suffix(['L', 'l']).unwrap_or(word);
                        if let Ok(i) = w.parse::<i128>() {
                            Some(Lit::Int(i))
                        } else {
                            word.parse::<f64>().ok().map(Lit::Float)
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn npy_headers_including_python2() {
        let h = parse("{'descr': '<i8', 'fortran_order': False, 'shape': (2L, 3L), }").unwrap();
        assert_eq!(h.get("shape"), Some(&Lit::Tuple(vec![Lit::Int(2), Lit::Int(3)])));
        assert_eq!(h.get("descr"), Some(&Lit::Str("<i8".into())));
        assert!(parse("{'a': __import__('os')}").is_none());
        assert!(parse(&"(".repeat(100)).is_none());
    }
}
