//! Renders symbolic values as Python-like text: `os.system('curl … | sh')`.
//!
//! Output is bounded in depth and length whatever the value graph looks like (memo cycles
//! included), so evidence lines stay readable and rendering can never run away.

use crate::value::{Arena, BytesKind, CallKind, Node, NodeId, Value};
use std::collections::HashMap;
use std::fmt::Write as _;

/// Bounds for rendering.
#[derive(Debug, Clone, Copy)]
pub struct RenderOptions {
    /// Container nesting shown before `…`.
    pub max_depth: usize,
    /// Characters of output before it is cut with `…`.
    pub max_len: usize,
    /// Characters shown of one string.
    pub max_str: usize,
    /// Items shown of one container.
    pub max_items: usize,
}

impl Default for RenderOptions {
    fn default() -> RenderOptions {
        RenderOptions {
            max_depth: 6,
            max_len: 400,
            max_str: 120,
            max_items: 8,
        }
    }
}

/// Renders `v` with the default bounds.
pub fn render(arena: &Arena, v: Value) -> String {
    render_with(arena, v, RenderOptions::default())
}

/// Renders `v` with the given bounds.
pub fn render_with(arena: &Arena, v: Value, opts: RenderOptions) -> String {
    render_named(arena, v, opts, &HashMap::new())
}

/// Renders `v`, writing `names[id]` for nodes that have a name (imported globals, call results
/// bound to variables) instead of their structure.
pub fn render_named(arena: &Arena, v: Value, opts: RenderOptions, names: &HashMap<NodeId, String>) -> String {
    let mut r = Renderer {
        arena,
        opts,
        out: String::new(),
        names,
    };
    r.value(v, 0);
    if r.out.chars().count() > opts.max_len {
        let mut s: String = r.out.chars().take(opts.max_len).collect();
        s.push('…');
        return s;
    }
    r.out
}

struct Renderer<'a> {
    arena: &'a Arena,
    opts: RenderOptions,
    out: String,
    names: &'a HashMap<NodeId, String>,
}

impl Renderer<'_> {
    fn full(&self) -> bool {
        self.out.len() > self.opts.max_len * 4
    }

    fn value(&mut self, v: Value, depth: usize) {
        if self.full() {
            return;
        }
        match v {
            Value::None => self.out.push_str("None"),
            Value::Bool(true) => self.out.push_str("True"),
            Value::Bool(false) => self.out.push_str("False"),
            Value::Int(i) => {
                let _ = write!(self.out, "{i}");
            }
            Value::Float(f) => self.float(f),
            Value::Unknown => self.out.push_str("<unknown>"),
            Value::Node(id) => {
                if depth > 0
                    && let Some(name) = self.names.get(&id)
                {
                    self.out.push_str(name);
                    return;
                }
                if depth > self.opts.max_depth {
                    self.out.push('…');
                    return;
                }
                let Some(node) = self.arena.get(id) else {
                    self.out.push_str("<unknown>");
                    return;
                };
                self.node(node, depth);
            }
        }
    }

    fn float(&mut self, f: f64) {
        if f.is_nan() {
            self.out.push_str("nan");
        } else if f.is_infinite() {
            self.out.push_str(if f > 0.0 { "inf" } else { "-inf" });
        } else if f.fract() == 0.0 && f.abs() < 1e16 {
            let _ = write!(self.out, "{f:.1}");
        } else {
            let _ = write!(self.out, "{f}");
        }
    }

    fn node(&mut self, node: &Node, depth: usize) {
        match node {
            Node::Str { text, truncated, .. } => self.string(text, *truncated, None),
            Node::Bytes { data, len, kind, .. } => {
                let text = crate::value::latin1(data);
                let truncated = (data.len() as u64) < *len;
                match kind {
                    BytesKind::Str8 => self.string(&text, truncated, None),
                    BytesKind::Bytes | BytesKind::ByteArray => {
                        if *kind == BytesKind::ByteArray {
                            self.out.push_str("bytearray(");
                        }
                        self.string(&text, truncated, Some(*len));
                        if *kind == BytesKind::ByteArray {
                            self.out.push(')');
                        }
                    }
                }
            }
            Node::BigInt(s) => self.out.push_str(s),
            Node::Global(g) => {
                self.out.push_str(&g.module);
                self.out.push('.');
                self.out.push_str(&g.name);
            }
            Node::Tuple(items) => {
                self.out.push('(');
                self.seq(items, depth, 0);
                if items.len() == 1 {
                    self.out.push(',');
                }
                self.out.push(')');
            }
            Node::List { items, dropped } => {
                self.out.push('[');
                self.seq(items, depth, *dropped);
                self.out.push(']');
            }
            Node::Set { items, frozen } => {
                if items.is_empty() {
                    self.out.push_str(if *frozen { "frozenset()" } else { "set()" });
                    return;
                }
                if *frozen {
                    self.out.push_str("frozenset(");
                }
                self.out.push('{');
                self.seq(items, depth, 0);
                self.out.push('}');
                if *frozen {
                    self.out.push(')');
                }
            }
            Node::Dict { items, dropped } => {
                self.out.push('{');
                for (i, (k, v)) in items.iter().enumerate() {
                    if i > 0 {
                        self.out.push_str(", ");
                    }
                    if i >= self.opts.max_items {
                        let _ = write!(self.out, "…{} more", items.len() as u64 - i as u64 + dropped);
                        break;
                    }
                    self.value(*k, depth + 1);
                    self.out.push_str(": ");
                    self.value(*v, depth + 1);
                }
                self.out.push('}');
            }
            Node::Call(call) => {
                match call.kind {
                    CallKind::PersistentLoad => {
                        self.out.push_str("persistent_load(");
                        self.value(call.args, depth + 1);
                        self.out.push(')');
                        return;
                    }
                    CallKind::InjectedSetState => {
                        self.value(call.callee, depth + 1);
                        self.out.push('(');
                        self.value(call.args, depth + 1);
                        self.out.push(')');
                        return;
                    }
                    CallKind::NewObj | CallKind::NewObjEx => {
                        self.value(call.callee, depth + 1);
                        self.out.push_str(".__new__(");
                        self.value(call.callee, depth + 1);
                        let args = self.arena.items(call.args).to_vec();
                        if !args.is_empty() {
                            self.out.push_str(", ");
                        }
                        self.args(call.args, depth);
                    }
                    _ => {
                        self.value(call.callee, depth + 1);
                        self.out.push('(');
                        self.args(call.args, depth);
                    }
                }
                if let Some(kw) = call.kwargs
                    && let Some(Node::Dict { items, .. }) = self.arena.node(kw)
                {
                    for (k, v) in items.clone() {
                        self.out.push_str(", ");
                        match self.arena.as_str(k) {
                            Some(s) => self.out.push_str(&s),
                            None => self.value(k, depth + 1),
                        }
                        self.out.push('=');
                        self.value(v, depth + 1);
                    }
                }
                self.out.push(')');
            }
            Node::Ext { code, resolved } => match resolved {
                Some(id) => self.value(Value::Node(*id), depth),
                None => {
                    let _ = write!(self.out, "<extension {code}>");
                }
            },
            Node::Buffer => self.out.push_str("<out-of-band buffer>"),
        }
    }

    /// Call arguments: a tuple is spread, anything else shown as `*value`.
    fn args(&mut self, args: Value, depth: usize) {
        match self.arena.node(args) {
            Some(Node::Tuple(items)) => {
                let items = items.clone();
                self.seq(&items, depth, 0);
            }
            _ => {
                self.out.push('*');
                self.value(args, depth + 1);
            }
        }
    }

    fn seq(&mut self, items: &[Value], depth: usize, dropped: u64) {
        for (i, v) in items.iter().enumerate() {
            if i > 0 {
                self.out.push_str(", ");
            }
            if i >= self.opts.max_items {
                let _ = write!(self.out, "…{} more", (items.len() - i) as u64 + dropped);
                return;
            }
            self.value(*v, depth + 1);
        }
        if dropped > 0 {
            let _ = write!(self.out, ", …{dropped} more");
        }
    }

    fn string(&mut self, s: &str, truncated: bool, bytes_len: Option<u64>) {
        if bytes_len.is_some() {
            self.out.push('b');
        }
        self.out.push('\'');
        let max = if bytes_len.is_some() {
            self.opts.max_str / 2
        } else {
            self.opts.max_str
        };
        let mut shown = 0;
        for c in s.chars() {
            if shown >= max {
                break;
            }
            shown += 1;
            match c {
                '\'' => self.out.push_str("\\'"),
                '\\' => self.out.push_str("\\\\"),
                '\n' => self.out.push_str("\\n"),
                '\r' => self.out.push_str("\\r"),
                '\t' => self.out.push_str("\\t"),
                c if bytes_len.is_some() && (c as u32) > 0x7e => {
                    let _ = write!(self.out, "\\x{:02x}", c as u32);
                }
                c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                    let _ = write!(self.out, "\\x{:02x}", c as u32);
                }
                c => self.out.push(c),
            }
        }
        let total = s.chars().count();
        if shown < total || truncated {
            match bytes_len {
                Some(n) => {
                    let _ = write!(self.out, "…' ({n} bytes)");
                }
                None => self.out.push_str("…'"),
            }
        } else {
            self.out.push('\'');
        }
    }
}
