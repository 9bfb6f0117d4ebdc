//! Symbolic values: what the unpickler's stack and memo would hold, without running anything.
//!
//! Small scalars live inline in [`Value`]; strings, containers, imported globals and call
//! results live in an [`Arena`] and are shared by id, so a memo GET never copies and a memo
//! cycle is just two ids pointing at each other.

/// A value on the symbolic stack.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Value {
    /// `None`.
    None,
    /// `True` / `False`.
    Bool(bool),
    /// An integer that fits 64 bits.
    Int(i64),
    /// A float.
    Float(f64),
    /// Anything else, held in the arena.
    Node(NodeId),
    /// A value the machine could not know (after an error: stack underflow, missing memo key).
    Unknown,
}

/// Index of a node in the [`Arena`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeId(pub u32);

/// Which opcode family made a string.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BytesKind {
    /// `BINBYTES*`: Python `bytes`.
    Bytes,
    /// `BYTEARRAY8`.
    ByteArray,
    /// `STRING`/`BINSTRING`/`SHORT_BINSTRING`: a Python 2 `str`, loaded as `str` by Python 3
    /// (ASCII or the `encoding=` argument) unless `encoding='bytes'`.
    Str8,
}

/// How a call came about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallKind {
    /// `REDUCE`: `callable(*args)`.
    Reduce,
    /// `NEWOBJ`: `cls.__new__(cls, *args)`.
    NewObj,
    /// `NEWOBJ_EX`: `cls.__new__(cls, *args, **kwargs)`.
    NewObjEx,
    /// `OBJ`: `cls(*args)`.
    Obj,
    /// `INST`: `module.name(*args)`.
    Inst,
    /// `BUILD` on an object whose `__setstate__` was injected by an earlier `BUILD`.
    InjectedSetState,
    /// `persistent_load(pid)`.
    PersistentLoad,
}

impl CallKind {
    /// The opcode name shown to users.
    pub fn opcode(self) -> &'static str {
        match self {
            CallKind::Reduce => "REDUCE",
            CallKind::NewObj => "NEWOBJ",
            CallKind::NewObjEx => "NEWOBJ_EX",
            CallKind::Obj => "OBJ",
            CallKind::Inst => "INST",
            CallKind::InjectedSetState => "BUILD",
            CallKind::PersistentLoad => "BINPERSID",
        }
    }

    /// Whether the callable only allocates an instance (`__new__`) rather than running a
    /// function body with the arguments.
    pub fn only_allocates(self) -> bool {
        matches!(self, CallKind::NewObj | CallKind::NewObjEx)
    }
}

/// An imported name, as the unpickler's `find_class` would resolve it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Global {
    /// Module after the Python 2 mapping.
    pub module: String,
    /// Attribute name after the Python 2 mapping (may be dotted: protocol 4 walks attributes).
    pub name: String,
    /// `module.name` as written in the file, when the Python 2 mapping changed it.
    pub written: Option<String>,
    /// Offset of the opcode that imported it.
    pub offset: u64,
}

impl Global {
    /// `module.name`.
    pub fn qualified(&self) -> String {
        format!("{}.{}", self.module, self.name)
    }
}

/// A call the unpickler would make.
#[derive(Debug, Clone, PartialEq)]
pub struct Call {
    /// What is called.
    pub callee: Value,
    /// Positional arguments (usually a tuple node).
    pub args: Value,
    /// Keyword arguments (`NEWOBJ_EX`).
    pub kwargs: Option<Value>,
    /// How.
    pub kind: CallKind,
    /// Offset of the opcode that makes the call.
    pub offset: u64,
    /// The result when it is a string modelward can compute without running anything
    /// (`_codecs.encode('bf', 'rot13')` is `'os'`).
    pub folded: Option<String>,
}

/// A value held in the arena.
#[derive(Debug, Clone, PartialEq)]
pub enum Node {
    /// A unicode string (maybe only its head).
    Str {
        /// The text held.
        text: String,
        /// Only the head is held.
        truncated: bool,
        /// Offset of the string's first byte.
        offset: u64,
    },
    /// A byte string (maybe only its head).
    Bytes {
        /// The bytes held.
        data: Vec<u8>,
        /// Real length.
        len: u64,
        /// Offset of the first byte.
        offset: u64,
        /// Which opcode made it.
        kind: BytesKind,
    },
    /// An integer wider than 64 bits, rendered.
    BigInt(String),
    /// An imported name.
    Global(Global),
    /// A tuple.
    Tuple(Vec<Value>),
    /// A list; `dropped` items were appended beyond the per-container budget.
    List {
        /// Items kept.
        items: Vec<Value>,
        /// Items counted but not kept.
        dropped: u64,
    },
    /// A dict.
    Dict {
        /// Entries kept.
        items: Vec<(Value, Value)>,
        /// Entries counted but not kept.
        dropped: u64,
    },
    /// A set or frozenset.
    Set {
        /// Items kept.
        items: Vec<Value>,
        /// `FROZENSET` rather than `EMPTY_SET`.
        frozen: bool,
    },
    /// The result of a call.
    /// (Boxed: calls are rarer than strings, and this keeps every node small.)
    Call(Box<Call>),
    /// A protocol 2 extension code (`EXT1/2/4`).
    Ext {
        /// The code.
        code: i64,
        /// What an earlier `copyreg.add_extension` in the same stream registered for it.
        resolved: Option<NodeId>,
    },
    /// An out-of-band buffer (`NEXT_BUFFER`).
    Buffer,
}

/// Where the machine keeps its nodes.
#[derive(Debug, Default, Clone)]
pub struct Arena {
    nodes: Vec<Node>,
}

impl Arena {
    /// Adds a node.
    pub fn push(&mut self, node: Node) -> NodeId {
        let id = NodeId(u32::try_from(self.nodes.len()).unwrap_or(u32::MAX));
        self.nodes.push(node);
        id
    }

    /// Number of nodes.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Whether the arena is empty.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// The node behind an id.
    pub fn get(&self, id: NodeId) -> Option<&Node> {
        self.nodes.get(id.0 as usize)
    }

    /// The node behind an id, mutably.
    pub fn get_mut(&mut self, id: NodeId) -> Option<&mut Node> {
        self.nodes.get_mut(id.0 as usize)
    }

    /// The node behind a value.
    pub fn node(&self, v: Value) -> Option<&Node> {
        match v {
            Value::Node(id) => self.get(id),
            _ => None,
        }
    }

    /// The string a value holds, if it is one the unpickler treats as `str`.
    pub fn as_str(&self, v: Value) -> Option<std::borrow::Cow<'_, str>> {
        match self.node(v)? {
            Node::Str { text, .. } => Some(std::borrow::Cow::Borrowed(text)),
            Node::Bytes {
                data,
                kind: BytesKind::Str8,
                ..
            } => Some(latin1(data)),
            Node::Call(c) => c.folded.as_deref().map(std::borrow::Cow::Borrowed),
            _ => None,
        }
    }

    /// The imported name a value is, looking through resolved extension codes.
    pub fn as_global(&self, v: Value) -> Option<&Global> {
        match self.node(v)? {
            Node::Global(g) => Some(g),
            Node::Ext {
                resolved: Some(id), ..
            } => match self.get(*id)? {
                Node::Global(g) => Some(g),
                _ => None,
            },
            _ => None,
        }
    }

    /// Items of a tuple (or list) value.
    pub fn items(&self, v: Value) -> &[Value] {
        match self.node(v) {
            Some(Node::Tuple(items) | Node::List { items, .. }) => items,
            _ => &[],
        }
    }
}

/// Latin-1 decoding (how Python 3 loads Python 2 `str` with `encoding='latin1'`).
pub fn latin1(b: &[u8]) -> std::borrow::Cow<'_, str> {
    if b.is_ascii() {
        std::borrow::Cow::Borrowed(std::str::from_utf8(b).unwrap_or_default())
    } else {
        std::borrow::Cow::Owned(b.iter().map(|&c| char::from(c)).collect())
    }
}
