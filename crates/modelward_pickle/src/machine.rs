//! The symbolic machine: the unpickler's stack, memo and marks, run over decoded
//! instructions without importing or calling anything. Every import and every call the real
//! unpickler would make is recorded as an [`Event`], with its offset.

use crate::compat::map_py2_name;
use crate::decode::{Arg, BigInt, Instruction};
use crate::limits::{LimitKind, Limits};
use crate::opcode::Opcode;
use crate::value::{Arena, BytesKind, Call, CallKind, Global, Node, NodeId, Value};
use std::collections::{HashMap, HashSet};

/// Something the unpickler would do that matters for safety, or a sign of a malformed stream.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// `find_class(module, name)`: GLOBAL, INST, STACK_GLOBAL, or an EXT code resolved through an
    /// earlier `copyreg.add_extension`.
    Import {
        /// The [`Node::Global`].
        global: NodeId,
        /// Which opcode.
        op: Opcode,
        /// Where.
        offset: u64,
    },
    /// A call (REDUCE, NEWOBJ, NEWOBJ_EX, OBJ, INST, persistent_load, injected `__setstate__`).
    /// Recorded when it happens, so a call whose result is popped or never used still counts.
    Call {
        /// The [`Node::Call`].
        call: NodeId,
        /// Where.
        offset: u64,
    },
    /// BUILD on an ordinary object: `obj.__setstate__(state)` or `obj.__dict__.update(state)`.
    Build {
        /// The object.
        target: Value,
        /// The state.
        state: Value,
        /// Where.
        offset: u64,
    },
    /// BUILD on an imported object (a module, class or function): sets its attributes.
    SetAttr {
        /// The imported object.
        target: Value,
        /// The attributes set.
        state: Value,
        /// Where.
        offset: u64,
    },
    /// BUILD whose state sets `__setstate__` on the object: the next BUILD calls it.
    InjectSetState {
        /// The object.
        target: Value,
        /// What `__setstate__` becomes.
        value: Value,
        /// Where.
        offset: u64,
    },
    /// SETITEM(S), APPEND(S) or ADDITEMS on something other than a dict, list or set the
    /// stream built itself: calls that object's `__setitem__`, `append`, `extend` or `add`.
    /// Recorded once per target.
    Mutate {
        /// The object.
        target: Value,
        /// Which opcode.
        op: Opcode,
        /// Where (first time).
        offset: u64,
    },
    /// EXT1/EXT2/EXT4: a name looked up in `copyreg`'s extension registry.
    Ext {
        /// The code.
        code: i64,
        /// Whether an earlier `copyreg.add_extension` in the stream registered it.
        resolved: bool,
        /// Where.
        offset: u64,
    },
    /// Something the real unpickler rejects or a scanner must not take at face value.
    Anomaly {
        /// What.
        kind: Anomaly,
        /// Where.
        offset: u64,
    },
}

/// Malformed or evasive constructs.
#[derive(Debug, Clone, PartialEq)]
pub enum Anomaly {
    /// STACK_GLOBAL whose operands are not constant strings (computed at load time, or unknown).
    NonConstantStackGlobal {
        /// Module operand.
        module: Value,
        /// Name operand.
        name: Value,
    },
    /// STACK_GLOBAL operands that are not `str` at all: the unpickler raises here.
    StackGlobalType {
        /// Module operand.
        module: Value,
        /// Name operand.
        name: Value,
    },
    /// GET of a memo key never PUT: the unpickler raises `KeyError`.
    MissingMemo(i64),
    /// PUT with a negative index.
    NegativeMemoIndex(i64),
    /// An opcode needed more values than the stack (above the last MARK) held.
    StackUnderflow(Opcode),
    /// An opcode needed a MARK and there was none.
    NoMark(Opcode),
    /// PROTO with a protocol this Python does not know.
    BadProtocol(i64),
    /// A unicode string that is not valid UTF-8.
    InvalidUtf8,
    /// NEXT_BUFFER without out-of-band buffers: the unpickler raises.
    OutOfBandBuffer,
    /// EXT code with nothing registered for it: the unpickler raises unless the loading process
    /// registered it.
    UnresolvedExtension(i64),
    /// A budget was crossed; the rest of the pickle was not analysed.
    Limit(LimitKind),
}

/// What the driver should do after a step.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Flow {
    /// Go on.
    Continue,
    /// BUILD ran on `target` with `state` (formats like joblib put raw bytes after some BUILDs).
    Built {
        /// The object.
        target: Value,
        /// The state.
        state: Value,
    },
    /// STOP: the pickle is complete and this is what `load` returns.
    Stop(Value),
    /// A budget was crossed: stop this pickle.
    Halt(LimitKind),
}

/// The symbolic unpickler.
#[derive(Debug)]
pub struct Machine<'l> {
    limits: &'l Limits,
    arena: Arena,
    stack: Vec<Value>,
    marks: Vec<usize>,
    memo: HashMap<i64, Value>,
    events: Vec<Event>,
    protocol: u8,
    ops: u64,
    string_bytes: usize,
    extensions: HashMap<i64, NodeId>,
    injected: HashMap<NodeId, Value>,
    mutated: HashSet<NodeId>,
}

impl<'l> Machine<'l> {
    /// A machine with empty stack and memo.
    pub fn new(limits: &'l Limits) -> Machine<'l> {
        Machine {
            limits,
            arena: Arena::default(),
            stack: Vec::new(),
            marks: Vec::new(),
            memo: HashMap::new(),
            events: Vec::new(),
            protocol: 0,
            ops: 0,
            string_bytes: 0,
            extensions: HashMap::new(),
            injected: HashMap::new(),
            mutated: HashSet::new(),
        }
    }

    /// The highest protocol a PROTO opcode announced (0 if none).
    pub fn protocol(&self) -> u8 {
        self.protocol
    }

    /// Instructions executed.
    pub fn ops(&self) -> u64 {
        self.ops
    }

    /// The arena of values.
    pub fn arena(&self) -> &Arena {
        &self.arena
    }

    /// Events so far.
    pub fn events(&self) -> &[Event] {
        &self.events
    }

    /// Ends the run, returning the arena and events.
    pub fn finish(self) -> (Arena, Vec<Event>) {
        (self.arena, self.events)
    }

    /// Records an anomaly found outside the machine (e.g. by the stream driver).
    pub fn anomaly(&mut self, kind: Anomaly, offset: u64) {
        self.events.push(Event::Anomaly { kind, offset });
    }

    /// Executes one instruction symbolically.
    pub fn step(&mut self, ins: &Instruction<'_>) -> Flow {
        self.ops += 1;
        if self.ops > self.limits.max_ops {
            return self.halt(LimitKind::Ops, ins.offset);
        }
        if self.arena.len() >= self.limits.max_nodes {
            return self.halt(LimitKind::Nodes, ins.offset);
        }
        // Checked every 4096 instructions: an estimate of what the machine holds.
        if self.ops.is_multiple_of(4096) && self.approx_memory() > self.limits.max_memory {
            return self.halt(LimitKind::Memory, ins.offset);
        }
        let off = ins.offset;
        let op = ins.op;
        match op {
            Opcode::MARK => {
                if self.marks.len() >= self.limits.max_marks {
                    return self.halt(LimitKind::Marks, off);
                }
                self.marks.push(self.stack.len());
            }
            Opcode::STOP => {
                let v = self.pop(op, off);
                return Flow::Stop(v);
            }
            Opcode::POP => {
                if self.stack.len() > self.mark_floor() {
                    self.stack.pop();
                } else {
                    // CPython pops the mark when the stack above it is empty.
                    self.pop_mark(op, off);
                }
            }
            Opcode::POP_MARK => {
                self.pop_mark(op, off);
            }
            Opcode::DUP => {
                let v = self.top(op, off);
                return self.push(v, off);
            }
            Opcode::FRAME | Opcode::READONLY_BUFFER => {}
            Opcode::PROTO => {
                if let Arg::Int(p) = ins.arg {
                    if (0..=5).contains(&p) {
                        self.protocol = self.protocol.max(p as u8);
                    } else {
                        self.anomaly(Anomaly::BadProtocol(p), off);
                    }
                }
            }
            Opcode::NONE => return self.push(Value::None, off),
            Opcode::NEWTRUE => return self.push(Value::Bool(true), off),
            Opcode::NEWFALSE => return self.push(Value::Bool(false), off),
            Opcode::INT
            | Opcode::BININT
            | Opcode::BININT1
            | Opcode::BININT2
            | Opcode::LONG
            | Opcode::LONG1
            | Opcode::LONG4 => {
                let v = match &ins.arg {
                    Arg::Int(i) => Value::Int(*i),
                    Arg::Bool(b) => Value::Bool(*b),
                    Arg::BigInt(BigInt::Decimal(s)) => {
                        Value::Node(self.arena.push(Node::BigInt(s.to_string())))
                    }
                    Arg::BigInt(BigInt::Bytes(b)) => {
                        Value::Node(self.arena.push(Node::BigInt(long_hex(&b.data, b.len))))
                    }
                    _ => Value::Unknown,
                };
                return self.push(v, off);
            }
            Opcode::FLOAT | Opcode::BINFLOAT => {
                let v = match ins.arg {
                    Arg::Float(f) => Value::Float(f),
                    _ => Value::Unknown,
                };
                return self.push(v, off);
            }
            Opcode::STRING
            | Opcode::BINSTRING
            | Opcode::SHORT_BINSTRING
            | Opcode::BINBYTES
            | Opcode::SHORT_BINBYTES
            | Opcode::BINBYTES8
            | Opcode::BYTEARRAY8 => {
                let kind = match op {
                    Opcode::BINBYTES | Opcode::SHORT_BINBYTES | Opcode::BINBYTES8 => BytesKind::Bytes,
                    Opcode::BYTEARRAY8 => BytesKind::ByteArray,
                    _ => BytesKind::Str8,
                };
                let v = match &ins.arg {
                    Arg::Bytes(b) => {
                        let data = self.budget_bytes(&b.data);
                        Value::Node(self.arena.push(Node::Bytes {
                            data,
                            len: b.len,
                            offset: b.data_offset,
                            kind,
                        }))
                    }
                    _ => Value::Unknown,
                };
                return self.push(v, off);
            }
            Opcode::UNICODE | Opcode::BINUNICODE | Opcode::SHORT_BINUNICODE | Opcode::BINUNICODE8 => {
                let v = match &ins.arg {
                    Arg::Text(t) => {
                        if t.lossy {
                            self.anomaly(Anomaly::InvalidUtf8, off);
                        }
                        let (text, cut) = self.budget_str(&t.text);
                        Value::Node(self.arena.push(Node::Str {
                            text,
                            truncated: t.truncated || cut,
                            offset: t.data_offset,
                        }))
                    }
                    _ => Value::Unknown,
                };
                return self.push(v, off);
            }
            Opcode::EMPTY_LIST => {
                let id = self.arena.push(Node::List {
                    items: Vec::new(),
                    dropped: 0,
                });
                return self.push(Value::Node(id), off);
            }
            Opcode::EMPTY_TUPLE => {
                let id = self.arena.push(Node::Tuple(Vec::new()));
                return self.push(Value::Node(id), off);
            }
            Opcode::EMPTY_DICT => {
                let id = self.arena.push(Node::Dict {
                    items: Vec::new(),
                    dropped: 0,
                });
                return self.push(Value::Node(id), off);
            }
            Opcode::EMPTY_SET => {
                let id = self.arena.push(Node::Set {
                    items: Vec::new(),
                    frozen: false,
                });
                return self.push(Value::Node(id), off);
            }
            Opcode::TUPLE1 | Opcode::TUPLE2 | Opcode::TUPLE3 => {
                let n = match op {
                    Opcode::TUPLE1 => 1,
                    Opcode::TUPLE2 => 2,
                    _ => 3,
                };
                let mut items = vec![Value::Unknown; n];
                for slot in items.iter_mut().rev() {
                    *slot = self.pop(op, off);
                }
                let id = self.arena.push(Node::Tuple(items));
                return self.push(Value::Node(id), off);
            }
            Opcode::TUPLE | Opcode::LIST | Opcode::FROZENSET | Opcode::DICT => {
                let items = self.pop_mark(op, off);
                let node = match op {
                    Opcode::TUPLE => Node::Tuple(self.cap(items)),
                    Opcode::LIST => {
                        let dropped = items.len().saturating_sub(self.limits.max_container_items) as u64;
                        Node::List {
                            items: self.cap(items),
                            dropped,
                        }
                    }
                    Opcode::FROZENSET => Node::Set {
                        items: self.cap(items),
                        frozen: true,
                    },
                    _ => {
                        let pairs: Vec<(Value, Value)> = items
                            .chunks(2)
                            .map(|c| (c[0], *c.get(1).unwrap_or(&Value::Unknown)))
                            .collect();
                        let dropped = pairs.len().saturating_sub(self.limits.max_container_items) as u64;
                        let mut pairs = pairs;
                        pairs.truncate(self.limits.max_container_items);
                        Node::Dict {
                            items: pairs,
                            dropped,
                        }
                    }
                };
                let id = self.arena.push(node);
                return self.push(Value::Node(id), off);
            }
            Opcode::APPEND => {
                let v = self.pop(op, off);
                let target = self.top(op, off);
                self.add_items(target, vec![v], op, off);
            }
            Opcode::APPENDS | Opcode::ADDITEMS => {
                let items = self.pop_mark(op, off);
                let target = self.top(op, off);
                self.add_items(target, items, op, off);
            }
            Opcode::SETITEM => {
                let v = self.pop(op, off);
                let k = self.pop(op, off);
                let target = self.top(op, off);
                self.set_items(target, vec![k, v], op, off);
            }
            Opcode::SETITEMS => {
                let items = self.pop_mark(op, off);
                let target = self.top(op, off);
                self.set_items(target, items, op, off);
            }
            Opcode::GET | Opcode::BINGET | Opcode::LONG_BINGET => {
                let idx = int_arg(&ins.arg);
                let v = match self.memo.get(&idx) {
                    Some(v) => *v,
                    None => {
                        self.anomaly(Anomaly::MissingMemo(idx), off);
                        Value::Unknown
                    }
                };
                return self.push(v, off);
            }
            Opcode::PUT | Opcode::BINPUT | Opcode::LONG_BINPUT => {
                let idx = int_arg(&ins.arg);
                let v = self.top(op, off);
                if idx < 0 {
                    self.anomaly(Anomaly::NegativeMemoIndex(idx), off);
                } else {
                    return self.memo_put(idx, v, off);
                }
            }
            Opcode::MEMOIZE => {
                let v = self.top(op, off);
                let idx = self.memo.len() as i64;
                return self.memo_put(idx, v, off);
            }
            Opcode::GLOBAL => {
                if let Arg::Global { module, name } = &ins.arg {
                    let g = self.import(module, name, op, off);
                    return self.push(g, off);
                }
            }
            Opcode::STACK_GLOBAL => {
                let name = self.pop(op, off);
                let module = self.pop(op, off);
                let v = self.stack_global(module, name, off);
                return self.push(v, off);
            }
            Opcode::INST => {
                let args = self.pop_mark(op, off);
                if let Arg::Global { module, name } = &ins.arg {
                    let callee = self.import(module, name, op, off);
                    let args = self.tuple(args);
                    let v = self.call(callee, args, None, CallKind::Inst, off);
                    return self.push(v, off);
                }
            }
            Opcode::OBJ => {
                let mut items = self.pop_mark(op, off);
                let callee = if items.is_empty() {
                    self.anomaly(Anomaly::StackUnderflow(op), off);
                    Value::Unknown
                } else {
                    items.remove(0)
                };
                let args = self.tuple(items);
                let v = self.call(callee, args, None, CallKind::Obj, off);
                return self.push(v, off);
            }
            Opcode::REDUCE => {
                let args = self.pop(op, off);
                let callee = self.pop(op, off);
                let v = self.call(callee, args, None, CallKind::Reduce, off);
                return self.push(v, off);
            }
            Opcode::NEWOBJ => {
                let args = self.pop(op, off);
                let cls = self.pop(op, off);
                let v = self.call(cls, args, None, CallKind::NewObj, off);
                return self.push(v, off);
            }
            Opcode::NEWOBJ_EX => {
                let kwargs = self.pop(op, off);
                let args = self.pop(op, off);
                let cls = self.pop(op, off);
                let v = self.call(cls, args, Some(kwargs), CallKind::NewObjEx, off);
                return self.push(v, off);
            }
            Opcode::BUILD => {
                let state = self.pop(op, off);
                let target = self.top(op, off);
                self.build(target, state, off);
                return Flow::Built { target, state };
            }
            Opcode::PERSID | Opcode::BINPERSID => {
                let pid = if op == Opcode::PERSID {
                    match &ins.arg {
                        Arg::Text(t) => {
                            let (text, _) = self.budget_str(&t.text);
                            Value::Node(self.arena.push(Node::Str {
                                text,
                                truncated: false,
                                offset: t.data_offset,
                            }))
                        }
                        _ => Value::Unknown,
                    }
                } else {
                    self.pop(op, off)
                };
                let v = self.call(Value::Unknown, pid, None, CallKind::PersistentLoad, off);
                return self.push(v, off);
            }
            Opcode::EXT1 | Opcode::EXT2 | Opcode::EXT4 => {
                let code = int_arg(&ins.arg);
                let resolved = self.extensions.get(&code).copied();
                self.events.push(Event::Ext {
                    code,
                    resolved: resolved.is_some(),
                    offset: off,
                });
                let v = match resolved {
                    Some(reg) => {
                        // The registry maps the code to (module, name): import it now.
                        let g = match self.arena.get(reg) {
                            Some(Node::Global(g)) => g.clone(),
                            _ => return Flow::Continue,
                        };
                        let id = self.arena.push(Node::Global(Global { offset: off, ..g }));
                        self.events.push(Event::Import {
                            global: id,
                            op,
                            offset: off,
                        });
                        Value::Node(self.arena.push(Node::Ext {
                            code,
                            resolved: Some(id),
                        }))
                    }
                    None => {
                        self.anomaly(Anomaly::UnresolvedExtension(code), off);
                        Value::Node(self.arena.push(Node::Ext { code, resolved: None }))
                    }
                };
                return self.push(v, off);
            }
            Opcode::NEXT_BUFFER => {
                self.anomaly(Anomaly::OutOfBandBuffer, off);
                let id = self.arena.push(Node::Buffer);
                return self.push(Value::Node(id), off);
            }
        }
        Flow::Continue
    }

    /// What the values, events, memo and strings take, roughly (container items and boxed
    /// calls are counted at a flat rate per value).
    pub fn approx_memory(&self) -> usize {
        self.arena.len() * (std::mem::size_of::<Node>() + 48)
            + self.events.capacity() * std::mem::size_of::<Event>()
            + self.memo.capacity() * (std::mem::size_of::<(i64, Value)>() + 8)
            + self.stack.capacity() * std::mem::size_of::<Value>()
            + self.string_bytes
    }

    fn halt(&mut self, kind: LimitKind, offset: u64) -> Flow {
        self.anomaly(Anomaly::Limit(kind), offset);
        Flow::Halt(kind)
    }

    fn mark_floor(&self) -> usize {
        self.marks.last().copied().unwrap_or(0)
    }

    fn push(&mut self, v: Value, off: u64) -> Flow {
        if self.stack.len() >= self.limits.max_stack {
            return self.halt(LimitKind::Stack, off);
        }
        self.stack.push(v);
        Flow::Continue
    }

    fn pop(&mut self, op: Opcode, off: u64) -> Value {
        if self.stack.len() > self.mark_floor() {
            self.stack.pop().unwrap_or(Value::Unknown)
        } else {
            self.anomaly(Anomaly::StackUnderflow(op), off);
            Value::Unknown
        }
    }

    fn top(&mut self, op: Opcode, off: u64) -> Value {
        if self.stack.len() > self.mark_floor() {
            self.stack.last().copied().unwrap_or(Value::Unknown)
        } else {
            self.anomaly(Anomaly::StackUnderflow(op), off);
            Value::Unknown
        }
    }

    fn pop_mark(&mut self, op: Opcode, off: u64) -> Vec<Value> {
        match self.marks.pop() {
            Some(at) => self.stack.split_off(at.min(self.stack.len())),
            None => {
                self.anomaly(Anomaly::NoMark(op), off);
                Vec::new()
            }
        }
    }

    fn cap(&self, mut items: Vec<Value>) -> Vec<Value> {
        items.truncate(self.limits.max_container_items);
        items
    }

    fn tuple(&mut self, items: Vec<Value>) -> Value {
        let items = self.cap(items);
        Value::Node(self.arena.push(Node::Tuple(items)))
    }

    fn memo_put(&mut self, idx: i64, v: Value, off: u64) -> Flow {
        if self.memo.len() >= self.limits.max_memo && !self.memo.contains_key(&idx) {
            return self.halt(LimitKind::Memo, off);
        }
        self.memo.insert(idx, v);
        Flow::Continue
    }

    /// Keeps bytes within the per-pickle budget; past it only a head is kept.
    fn budget_bytes(&mut self, data: &[u8]) -> Vec<u8> {
        let room = self.limits.max_string_bytes.saturating_sub(self.string_bytes);
        let keep = data.len().min(room.max(256.min(data.len())));
        self.string_bytes += keep;
        data[..keep].to_vec()
    }

    fn budget_str(&mut self, s: &str) -> (String, bool) {
        let room = self.limits.max_string_bytes.saturating_sub(self.string_bytes);
        if s.len() <= room.max(256) {
            self.string_bytes += s.len();
            return (s.to_owned(), false);
        }
        let mut end = room.max(256).min(s.len());
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        self.string_bytes += end;
        (s[..end].to_owned(), true)
    }

    fn import(&mut self, module: &str, name: &str, op: Opcode, off: u64) -> Value {
        let (m, n, written) = if self.protocol < 3 {
            match map_py2_name(module, name) {
                Some((m, n)) => (m, n, Some(format!("{module}.{name}"))),
                None => (module.to_owned(), name.to_owned(), None),
            }
        } else {
            (module.to_owned(), name.to_owned(), None)
        };
        let id = self.arena.push(Node::Global(Global {
            module: m,
            name: n,
            written,
            offset: off,
        }));
        self.events.push(Event::Import {
            global: id,
            op,
            offset: off,
        });
        Value::Node(id)
    }

    fn stack_global(&mut self, module: Value, name: Value, off: u64) -> Value {
        let m = self.arena.as_str(module).map(|s| s.into_owned());
        let n = self.arena.as_str(name).map(|s| s.into_owned());
        let computed = |v: Value, a: &Arena| matches!(a.node(v), Some(Node::Call(_)));
        match (m, n) {
            (Some(m), Some(n)) => {
                if computed(module, &self.arena) || computed(name, &self.arena) {
                    self.anomaly(Anomaly::NonConstantStackGlobal { module, name }, off);
                }
                self.import(&m, &n, Opcode::STACK_GLOBAL, off)
            }
            _ => {
                let is_dynamic = |v: Value, a: &Arena| {
                    matches!(v, Value::Unknown)
                        || matches!(a.node(v), Some(Node::Call(_) | Node::Ext { .. } | Node::Buffer))
                };
                if is_dynamic(module, &self.arena) || is_dynamic(name, &self.arena) {
                    self.anomaly(Anomaly::NonConstantStackGlobal { module, name }, off);
                } else {
                    self.anomaly(Anomaly::StackGlobalType { module, name }, off);
                }
                Value::Unknown
            }
        }
    }

    fn call(&mut self, callee: Value, args: Value, kwargs: Option<Value>, kind: CallKind, off: u64) -> Value {
        let folded = self.fold(callee, args);
        if kind == CallKind::Reduce {
            self.note_extension(callee, args);
        }
        let id = self.arena.push(Node::Call(Box::new(Call {
            callee,
            args,
            kwargs,
            kind,
            offset: off,
            folded,
        })));
        self.events.push(Event::Call {
            call: id,
            offset: off,
        });
        Value::Node(id)
    }

    /// Computes the few pure string functions attackers use to hide names from a byte grep.
    fn fold(&self, callee: Value, args: Value) -> Option<String> {
        let g = self.arena.as_global(callee)?;
        let items = self.arena.items(args);
        let name = g.qualified();
        match name.as_str() {
            "_codecs.encode" | "codecs.encode" | "_codecs.decode" | "codecs.decode" => {
                let s = self.arena.as_str(*items.first()?)?;
                let enc = self.arena.as_str(*items.get(1)?)?;
                matches!(
                    enc.to_ascii_lowercase().replace('-', "_").as_str(),
                    "rot13" | "rot_13"
                )
                .then(|| rot13(&s))
            }
            "builtins.str" => self.arena.as_str(*items.first()?).map(|s| s.into_owned()),
            _ => None,
        }
    }

    /// `copyreg.add_extension(module, name, code)`: remember it so a later EXT resolves.
    fn note_extension(&mut self, callee: Value, args: Value) {
        let Some(g) = self.arena.as_global(callee) else {
            return;
        };
        if g.module != "copyreg" || g.name != "add_extension" {
            return;
        }
        let items = self.arena.items(args).to_vec();
        let (Some(m), Some(n), Some(Value::Int(code))) = (
            items
                .first()
                .and_then(|v| self.arena.as_str(*v))
                .map(|s| s.into_owned()),
            items
                .get(1)
                .and_then(|v| self.arena.as_str(*v))
                .map(|s| s.into_owned()),
            items.get(2).copied(),
        ) else {
            return;
        };
        let id = self.arena.push(Node::Global(Global {
            module: m,
            name: n,
            written: None,
            offset: 0,
        }));
        self.extensions.insert(code, id);
    }

    fn build(&mut self, target: Value, state: Value, off: u64) {
        if self.arena.as_global(target).is_some() {
            self.events.push(Event::SetAttr {
                target,
                state,
                offset: off,
            });
        } else if let Some(f) = target_id(target).and_then(|id| self.injected.get(&id).copied()) {
            let args = self.tuple(vec![state]);
            let id = self.arena.push(Node::Call(Box::new(Call {
                callee: f,
                args,
                kwargs: None,
                kind: CallKind::InjectedSetState,
                offset: off,
                folded: None,
            })));
            self.events.push(Event::Call {
                call: id,
                offset: off,
            });
        } else {
            self.events.push(Event::Build {
                target,
                state,
                offset: off,
            });
        }
        // A state (or the dict half of a (dict, slotstate) tuple) that sets __setstate__.
        let mut dicts = vec![state];
        if let Some(Node::Tuple(items)) = self.arena.node(state) {
            dicts.extend(items.iter().copied());
        }
        for d in dicts {
            let Some(Node::Dict { items, .. }) = self.arena.node(d) else {
                continue;
            };
            let hit = items
                .iter()
                .find(|(k, _)| self.arena.as_str(*k).is_some_and(|s| s == "__setstate__"))
                .map(|(_, v)| *v);
            if let Some(value) = hit {
                if let Some(id) = target_id(target) {
                    self.injected.insert(id, value);
                }
                self.events.push(Event::InjectSetState {
                    target,
                    value,
                    offset: off,
                });
            }
        }
    }

    fn add_items(&mut self, target: Value, items: Vec<Value>, op: Opcode, off: u64) {
        let max = self.limits.max_container_items;
        let plain = match target_id(target).and_then(|id| self.arena.get_mut(id)) {
            Some(Node::List { items: list, dropped }) if op != Opcode::ADDITEMS => {
                push_capped(list, dropped, items, max);
                true
            }
            Some(Node::Set {
                items: set,
                frozen: false,
            }) if op == Opcode::ADDITEMS => {
                let mut d = 0;
                push_capped(set, &mut d, items, max);
                true
            }
            _ => false,
        };
        if !plain {
            self.mutate(target, op, off);
        }
    }

    fn set_items(&mut self, target: Value, items: Vec<Value>, op: Opcode, off: u64) {
        let max = self.limits.max_container_items;
        let plain = match target_id(target).and_then(|id| self.arena.get_mut(id)) {
            Some(Node::Dict { items: dict, dropped }) => {
                for pair in items.chunks(2) {
                    if dict.len() < max {
                        dict.push((pair[0], *pair.get(1).unwrap_or(&Value::Unknown)));
                    } else {
                        *dropped += 1;
                    }
                }
                true
            }
            _ => false,
        };
        if !plain {
            self.mutate(target, op, off);
        }
    }

    fn mutate(&mut self, target: Value, op: Opcode, off: u64) {
        let first = match target_id(target) {
            Some(id) => self.mutated.insert(id),
            None => true,
        };
        if first {
            self.events.push(Event::Mutate {
                target,
                op,
                offset: off,
            });
        }
    }
}

fn push_capped(list: &mut Vec<Value>, dropped: &mut u64, items: Vec<Value>, max: usize) {
    for v in items {
        if list.len() < max {
            list.push(v);
        } else {
            *dropped += 1;
        }
    }
}

fn target_id(v: Value) -> Option<NodeId> {
    match v {
        Value::Node(id) => Some(id),
        _ => None,
    }
}

fn int_arg(arg: &Arg<'_>) -> i64 {
    match arg {
        Arg::Int(i) => *i,
        _ => -1,
    }
}

/// A little-endian two's-complement integer as a Python hex literal (`0x1950a86a20f9469cfc6c`).
fn long_hex(le: &[u8], len: u64) -> String {
    if le.len() as u64 != len || le.len() > 64 {
        return format!("<{len}-byte integer>");
    }
    let negative = le.last().is_some_and(|b| b & 0x80 != 0);
    let mut mag: Vec<u8> = le.to_vec();
    if negative {
        // Two's complement negation: invert, add one.
        let mut carry = true;
        for b in mag.iter_mut() {
            *b = !*b;
            if carry {
                let (v, c) = b.overflowing_add(1);
                *b = v;
                carry = c;
            }
        }
    }
    let hex: String = mag.iter().rev().map(|b| format!("{b:02x}")).collect();
    let hex = hex.trim_start_matches('0');
    let hex = if hex.is_empty() { "0" } else { hex };
    format!("{}0x{hex}", if negative { "-" } else { "" })
}

fn rot13(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            'a'..='z' => (((c as u8 - b'a') + 13) % 26 + b'a') as char,
            'A'..='Z' => (((c as u8 - b'A') + 13) % 26 + b'A') as char,
            c => c,
        })
        .collect()
}
