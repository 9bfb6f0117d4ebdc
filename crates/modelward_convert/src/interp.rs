//! The converter's own model of PyTorch's unpickler, restricted to what a checkpoint of tensors
//! needs.
//!
//! [`modelward_pickle::Machine`] records every import and call but keeps no items written into
//! objects it cannot see inside (the entries of an `OrderedDict()` arrive by SETITEMS on a call
//! result), so the converter runs this interpreter over the same instructions, in the same
//! pass. It is an allowlist by construction: the only names it resolves are
//! `collections.OrderedDict`, PyTorch's tensor rebuild functions, storage classes, dtypes,
//! `torch.Size`, `torch.device`, and the two tensor classes `_rebuild_from_type_v2` names; the
//! only calls it models are those; any other opcode, name, call or shape of argument stops it
//! with a [`Refusal`]. Nothing is imported or executed.

use crate::dtype::{Dtype, StorageKind, TorchDtype, storage_kind, torch_dtype};
use modelward_pickle::decode::{Arg, Instruction};
use modelward_pickle::machine::Event;
use modelward_pickle::stream::{End, Reader, Source, Trace};
use modelward_pickle::{Limits, Node, Opcode, Value};
use std::collections::HashMap;
use std::rc::Rc;

/// Most container items, tensors and memo entries the interpreter keeps for one input.
const MAX_ITEMS: u64 = 10_000_000;
/// Deepest nesting of containers followed when flattening.
pub(crate) const MAX_DEPTH: usize = 256;

/// A name the interpreter resolves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Allowed {
    OrderedDict,
    RebuildTensor,
    RebuildTensorV2,
    RebuildTensorV3,
    RebuildParameter,
    RebuildParameterWithState,
    RebuildFromTypeV2,
    TensorClass,
    ParameterClass,
    Storage(StorageKind),
    Dtype(TorchDtype),
    Size,
    Device,
    /// `_codecs.encode(text, 'latin1')`: how protocol 2 writes a `bytes` value.
    CodecsEncode,
}

impl Allowed {
    /// The name as Python spells it.
    pub(crate) fn name(self) -> String {
        match self {
            Allowed::OrderedDict => "collections.OrderedDict".into(),
            Allowed::RebuildTensor => "torch._utils._rebuild_tensor".into(),
            Allowed::RebuildTensorV2 => "torch._utils._rebuild_tensor_v2".into(),
            Allowed::RebuildTensorV3 => "torch._utils._rebuild_tensor_v3".into(),
            Allowed::RebuildParameter => "torch._utils._rebuild_parameter".into(),
            Allowed::RebuildParameterWithState => "torch._utils._rebuild_parameter_with_state".into(),
            Allowed::RebuildFromTypeV2 => "torch._tensor._rebuild_from_type_v2".into(),
            Allowed::TensorClass => "torch.Tensor".into(),
            Allowed::ParameterClass => "torch.nn.parameter.Parameter".into(),
            Allowed::Storage(StorageKind::Typed(d)) => format!("a torch {d} storage class"),
            Allowed::Storage(StorageKind::Untyped) => "torch.UntypedStorage".into(),
            Allowed::Storage(StorageKind::Unsupported(n, _)) => format!("a torch {n} storage class"),
            Allowed::Dtype(TorchDtype::Supported(d)) => format!("torch.{d}"),
            Allowed::Dtype(TorchDtype::Unsupported(n)) => format!("torch.{n}"),
            Allowed::Size => "torch.Size".into(),
            Allowed::Device => "torch.device".into(),
            Allowed::CodecsEncode => "_codecs.encode".into(),
        }
    }

    /// Whether the interpreter models calling it.
    fn callable(self) -> bool {
        matches!(
            self,
            Allowed::OrderedDict
                | Allowed::RebuildTensor
                | Allowed::RebuildTensorV2
                | Allowed::RebuildTensorV3
                | Allowed::RebuildParameter
                | Allowed::RebuildParameterWithState
                | Allowed::RebuildFromTypeV2
                | Allowed::Size
                | Allowed::Device
                | Allowed::CodecsEncode
        )
    }
}

/// The strict allowlist: the names a checkpoint of tensors and plain containers may import.
pub(crate) fn allowed(module: &str, name: &str) -> Option<Allowed> {
    Some(match (module, name) {
        ("collections", "OrderedDict") => Allowed::OrderedDict,
        ("torch._utils", "_rebuild_tensor") => Allowed::RebuildTensor,
        ("torch._utils", "_rebuild_tensor_v2") => Allowed::RebuildTensorV2,
        ("torch._utils", "_rebuild_tensor_v3") => Allowed::RebuildTensorV3,
        ("torch._utils", "_rebuild_parameter") => Allowed::RebuildParameter,
        ("torch._utils", "_rebuild_parameter_with_state") => Allowed::RebuildParameterWithState,
        ("torch._tensor" | "torch._utils", "_rebuild_from_type_v2") => Allowed::RebuildFromTypeV2,
        ("torch", "Tensor") | ("torch._tensor", "Tensor") => Allowed::TensorClass,
        ("torch.nn.parameter", "Parameter") => Allowed::ParameterClass,
        ("torch", "Size") => Allowed::Size,
        ("torch", "device") => Allowed::Device,
        ("_codecs", "encode") => Allowed::CodecsEncode,
        ("torch", n) if torch_dtype(n).is_some() => Allowed::Dtype(torch_dtype(n)?),
        (m, n) => Allowed::Storage(storage_kind(m, n)?),
    })
}

/// A storage as a persistent id names it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct StorageRef {
    /// The record key (`data/<key>` in a zip, the root key in the legacy format).
    pub key: String,
    /// The storage class.
    pub kind: StorageKind,
    /// Elements of the storage class in the root storage.
    pub numel: u64,
    /// Legacy storage views: (view key, offset, size), in elements.
    pub view: Option<(String, u64, u64)>,
    /// Where the persistent id is.
    pub offset: u64,
}

impl StorageRef {
    /// Bytes of the root storage.
    pub fn root_bytes(&self) -> Option<u64> {
        self.numel.checked_mul(self.kind.element_size())
    }

    /// The bytes a tensor over this reference sees, relative to the root storage.
    pub fn window(&self) -> Option<(u64, u64)> {
        let es = self.kind.element_size();
        match &self.view {
            None => Some((0, self.root_bytes()?)),
            Some((_, off, size)) => Some((off.checked_mul(es)?, size.checked_mul(es)?)),
        }
    }
}

/// A tensor the pickle rebuilds.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct TensorDef {
    pub storage: Rc<StorageRef>,
    pub dtype: Dtype,
    /// Storage offset in elements of `dtype`, relative to the storage window.
    pub offset: u64,
    pub shape: Vec<u64>,
    /// Strides in elements of `dtype`.
    pub strides: Vec<u64>,
    /// Python attributes and other state torch would attach, dropped (names).
    pub dropped: Vec<String>,
}

/// A value.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Obj {
    None,
    Bool(bool),
    Int(i64),
    BigInt,
    Float(f64),
    Str(Rc<str>),
    /// A string only partly held (longer than the inline budget).
    LongStr(u64),
    Bytes(u64),
    Tuple(Rc<[Obj]>),
    /// A dict, list or set, by index.
    Cont(usize),
    Global(Allowed),
    Storage(Rc<StorageRef>),
    Tensor(usize),
    Size(usize),
    Device(Rc<str>),
}

impl Obj {
    /// A short description for messages.
    pub(crate) fn describe(&self, it: &Interp) -> String {
        match self {
            Obj::None => "None".into(),
            Obj::Bool(b) => if *b { "True" } else { "False" }.into(),
            Obj::Int(i) => format!("int {i}"),
            Obj::BigInt => "a large int".into(),
            Obj::Float(f) => format!("float {f}"),
            Obj::Str(s) => format!("str {:?}", short(s)),
            Obj::LongStr(n) => format!("a str of {n} bytes"),
            Obj::Bytes(n) => format!("bytes ({n} bytes)"),
            Obj::Tuple(t) => format!("a tuple of {} item(s)", t.len()),
            Obj::Cont(i) => match &it.conts[*i] {
                Cont::Dict { items, .. } => format!("a dict of {} item(s)", items.len()),
                Cont::List(v) => format!("a list of {} item(s)", v.len()),
                Cont::Set(v) => format!("a set of {} item(s)", v.len()),
            },
            Obj::Global(g) => g.name(),
            Obj::Storage(s) => format!("a bare storage ({:?})", s.key),
            Obj::Tensor(_) => "a tensor".into(),
            Obj::Size(n) => format!("a torch.Size of {n} dim(s)"),
            Obj::Device(d) => format!("torch.device({d:?})"),
        }
    }
}

fn short(s: &str) -> String {
    if s.chars().count() > 40 {
        format!("{}…", s.chars().take(40).collect::<String>())
    } else {
        s.to_owned()
    }
}

/// Dict keys the interpreter can compare like Python does.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum Key {
    Str(Rc<str>),
    Int(i64),
    None,
}

/// A mutable container.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Cont {
    Dict {
        items: Vec<(Obj, Obj)>,
        index: HashMap<Key, usize>,
        ordered: bool,
        /// Attributes set by BUILD (an `OrderedDict`'s `_metadata`).
        attrs: Option<Obj>,
    },
    List(Vec<Obj>),
    Set(Vec<Obj>),
}

/// Why the interpreter stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Refusal {
    /// Offset of the instruction.
    pub offset: u64,
    /// What it does that a checkpoint of tensors does not.
    pub message: String,
}

type R<T> = Result<T, String>;

/// The interpreter. Containers and tensors persist across the pickles of one stream (the
/// legacy format's five); stack, memo and marks are per pickle.
#[derive(Debug, Default)]
pub(crate) struct Interp {
    pub conts: Vec<Cont>,
    pub tensors: Vec<TensorDef>,
    /// Every persistent id, in order.
    pub storages: Vec<Rc<StorageRef>>,
    stack: Vec<Obj>,
    marks: Vec<usize>,
    memo: HashMap<i64, Obj>,
    protocol: u8,
    legacy: bool,
    items: u64,
    pub refusal: Option<Refusal>,
    result: Option<Obj>,
}

impl Interp {
    /// An interpreter for zip checkpoints (5-item persistent ids) or the legacy format (6 items).
    pub fn new(legacy: bool) -> Interp {
        Interp {
            legacy,
            ..Interp::default()
        }
    }

    /// Starts a new pickle: empty stack, memo and marks.
    pub fn begin(&mut self) {
        self.stack.clear();
        self.marks.clear();
        self.memo.clear();
        self.protocol = 0;
        self.result = None;
    }

    /// What the last pickle returned, when it reached STOP without a refusal.
    pub fn take_result(&mut self) -> Option<Obj> {
        if self.refusal.is_some() {
            return None;
        }
        self.result.take()
    }

    /// Steps over one instruction; after the first refusal every instruction is ignored.
    pub fn step(&mut self, ins: &Instruction<'_>) {
        if self.refusal.is_some() {
            return;
        }
        if let Err(message) = self.exec(ins) {
            self.refusal = Some(Refusal {
                offset: ins.offset,
                message,
            });
        }
    }

    fn count(&mut self, n: u64) -> R<()> {
        self.items += n;
        if self.items > MAX_ITEMS {
            return Err(format!("the pickle holds more than {MAX_ITEMS} values"));
        }
        Ok(())
    }

    fn floor(&self) -> usize {
        self.marks.last().copied().unwrap_or(0)
    }

    fn push(&mut self, v: Obj) -> R<()> {
        self.count(1)?;
        self.stack.push(v);
        Ok(())
    }

    fn pop(&mut self, op: Opcode) -> R<Obj> {
        if self.stack.len() > self.floor() {
            Ok(self.stack.pop().unwrap_or(Obj::None))
        } else {
            Err(format!("{} pops an empty stack (malformed pickle)", op.name()))
        }
    }

    fn top(&self, op: Opcode) -> R<Obj> {
        if self.stack.len() > self.floor() {
            Ok(self.stack.last().cloned().unwrap_or(Obj::None))
        } else {
            Err(format!(
                "{} needs a value on the stack (malformed pickle)",
                op.name()
            ))
        }
    }

    fn pop_mark(&mut self, op: Opcode) -> R<Vec<Obj>> {
        let at = self
            .marks
            .pop()
            .ok_or_else(|| format!("{} without a MARK (malformed pickle)", op.name()))?;
        Ok(self.stack.split_off(at.min(self.stack.len())))
    }

    fn new_cont(&mut self, c: Cont) -> Obj {
        self.conts.push(c);
        Obj::Cont(self.conts.len() - 1)
    }

    fn new_dict(&mut self, ordered: bool) -> Obj {
        self.new_cont(Cont::Dict {
            items: Vec::new(),
            index: HashMap::new(),
            ordered,
            attrs: None,
        })
    }

    fn exec(&mut self, ins: &Instruction<'_>) -> R<()> {
        let op = ins.op;
        match op {
            Opcode::PROTO => {
                if let Arg::Int(p) = ins.arg {
                    if !(0..=5).contains(&p) {
                        return Err(format!("unknown pickle protocol {p}"));
                    }
                    self.protocol = self.protocol.max(p as u8);
                }
            }
            Opcode::FRAME => {}
            Opcode::STOP => {
                let v = self.pop(op)?;
                self.result = Some(v);
            }
            Opcode::MARK => {
                if self.marks.len() >= 100_000 {
                    return Err("MARKs nested more than 100000 deep".into());
                }
                self.marks.push(self.stack.len());
            }
            Opcode::POP => {
                if self.stack.len() > self.floor() {
                    self.stack.pop();
                } else {
                    self.pop_mark(op)?;
                }
            }
            Opcode::POP_MARK => {
                self.pop_mark(op)?;
            }
            Opcode::DUP => {
                let v = self.top(op)?;
                self.push(v)?;
            }
            Opcode::NONE => self.push(Obj::None)?,
            Opcode::NEWTRUE => self.push(Obj::Bool(true))?,
            Opcode::NEWFALSE => self.push(Obj::Bool(false))?,
            Opcode::INT
            | Opcode::BININT
            | Opcode::BININT1
            | Opcode::BININT2
            | Opcode::LONG
            | Opcode::LONG1
            | Opcode::LONG4 => {
                let v = match &ins.arg {
                    Arg::Int(i) => Obj::Int(*i),
                    Arg::Bool(b) => Obj::Bool(*b),
                    Arg::BigInt(_) => Obj::BigInt,
                    _ => return Err(format!("{} without an integer", op.name())),
                };
                self.push(v)?;
            }
            Opcode::FLOAT | Opcode::BINFLOAT => match ins.arg {
                Arg::Float(f) => self.push(Obj::Float(f))?,
                _ => return Err(format!("{} without a float", op.name())),
            },
            Opcode::STRING | Opcode::BINSTRING | Opcode::SHORT_BINSTRING => {
                // Python 2 `str`: torch.load reads these as UTF-8 text.
                let Arg::Bytes(b) = &ins.arg else {
                    return Err(format!("{} without bytes", op.name()));
                };
                let v = if !b.is_complete() {
                    Obj::LongStr(b.len)
                } else {
                    match std::str::from_utf8(&b.data) {
                        Ok(s) => Obj::Str(Rc::from(s)),
                        Err(_) => {
                            return Err(format!(
                                "{} holds bytes that are not UTF-8 (torch.load raises)",
                                op.name()
                            ));
                        }
                    }
                };
                self.push(v)?;
            }
            Opcode::BINBYTES | Opcode::SHORT_BINBYTES | Opcode::BINBYTES8 | Opcode::BYTEARRAY8 => {
                let Arg::Bytes(b) = &ins.arg else {
                    return Err(format!("{} without bytes", op.name()));
                };
                self.push(Obj::Bytes(b.len))?;
            }
            Opcode::UNICODE | Opcode::BINUNICODE | Opcode::SHORT_BINUNICODE | Opcode::BINUNICODE8 => {
                let Arg::Text(t) = &ins.arg else {
                    return Err(format!("{} without text", op.name()));
                };
                if t.lossy {
                    return Err("a unicode string is not valid UTF-8 (the unpickler raises)".into());
                }
                let v = if t.truncated {
                    Obj::LongStr(t.len)
                } else {
                    Obj::Str(Rc::from(t.text.as_ref()))
                };
                self.push(v)?;
            }
            Opcode::EMPTY_LIST => {
                let v = self.new_cont(Cont::List(Vec::new()));
                self.push(v)?;
            }
            Opcode::EMPTY_DICT => {
                let v = self.new_dict(false);
                self.push(v)?;
            }
            Opcode::EMPTY_SET => {
                let v = self.new_cont(Cont::Set(Vec::new()));
                self.push(v)?;
            }
            Opcode::EMPTY_TUPLE => self.push(Obj::Tuple(Rc::from(Vec::new())))?,
            Opcode::TUPLE1 | Opcode::TUPLE2 | Opcode::TUPLE3 => {
                let n = match op {
                    Opcode::TUPLE1 => 1,
                    Opcode::TUPLE2 => 2,
                    _ => 3,
                };
                let mut items = vec![Obj::None; n];
                for slot in items.iter_mut().rev() {
                    *slot = self.pop(op)?;
                }
                self.push(Obj::Tuple(Rc::from(items)))?;
            }
            Opcode::TUPLE => {
                let items = self.pop_mark(op)?;
                self.push(Obj::Tuple(Rc::from(items)))?;
            }
            Opcode::LIST => {
                let items = self.pop_mark(op)?;
                let v = self.new_cont(Cont::List(items));
                self.push(v)?;
            }
            Opcode::FROZENSET => {
                let items = self.pop_mark(op)?;
                let v = self.new_cont(Cont::Set(items));
                self.push(v)?;
            }
            Opcode::DICT => {
                let items = self.pop_mark(op)?;
                let v = self.new_dict(false);
                self.set_items(&v, items)?;
                self.push(v)?;
            }
            Opcode::APPEND => {
                let v = self.pop(op)?;
                let target = self.top(op)?;
                self.append(&target, vec![v], false)?;
            }
            Opcode::APPENDS => {
                let items = self.pop_mark(op)?;
                let target = self.top(op)?;
                self.append(&target, items, false)?;
            }
            Opcode::ADDITEMS => {
                let items = self.pop_mark(op)?;
                let target = self.top(op)?;
                self.append(&target, items, true)?;
            }
            Opcode::SETITEM => {
                let v = self.pop(op)?;
                let k = self.pop(op)?;
                let target = self.top(op)?;
                self.set_items(&target, vec![k, v])?;
            }
            Opcode::SETITEMS => {
                let items = self.pop_mark(op)?;
                let target = self.top(op)?;
                self.set_items(&target, items)?;
            }
            Opcode::GET | Opcode::BINGET | Opcode::LONG_BINGET => {
                let Arg::Int(i) = ins.arg else {
                    return Err("memo GET without an index".into());
                };
                let v = self.memo.get(&i).cloned().ok_or_else(|| {
                    format!("memo key {i} read before it was written (the unpickler raises)")
                })?;
                self.push(v)?;
            }
            Opcode::PUT | Opcode::BINPUT | Opcode::LONG_BINPUT => {
                let Arg::Int(i) = ins.arg else {
                    return Err("memo PUT without an index".into());
                };
                if i < 0 {
                    return Err(format!("negative memo index {i}"));
                }
                let v = self.top(op)?;
                self.count(1)?;
                self.memo.insert(i, v);
            }
            Opcode::MEMOIZE => {
                let v = self.top(op)?;
                let i = self.memo.len() as i64;
                self.count(1)?;
                self.memo.insert(i, v);
            }
            Opcode::GLOBAL => {
                let Arg::Global { module, name } = &ins.arg else {
                    return Err("GLOBAL without a name".into());
                };
                let g = self.import(module, name)?;
                self.push(g)?;
            }
            Opcode::STACK_GLOBAL => {
                let name = self.pop(op)?;
                let module = self.pop(op)?;
                let (Obj::Str(m), Obj::Str(n)) = (&module, &name) else {
                    return Err("STACK_GLOBAL with operands that are not constant strings".into());
                };
                let g = self.import(m, n)?;
                self.push(g)?;
            }
            Opcode::REDUCE => {
                let args = self.pop(op)?;
                let callee = self.pop(op)?;
                let v = self.call(&callee, &args)?;
                self.push(v)?;
            }
            Opcode::NEWOBJ => {
                // cls.__new__(cls, *args): only an empty OrderedDict is plain data.
                let args = self.pop(op)?;
                let cls = self.pop(op)?;
                let empty = matches!(&args, Obj::Tuple(t) if t.is_empty());
                if cls != Obj::Global(Allowed::OrderedDict) || !empty {
                    return Err(format!("NEWOBJ of {}", cls.describe(self)));
                }
                let v = self.new_dict(true);
                self.push(v)?;
            }
            Opcode::BUILD => {
                let state = self.pop(op)?;
                let target = self.top(op)?;
                self.build(&target, state)?;
            }
            Opcode::BINPERSID => {
                let pid = self.pop(op)?;
                let v = self.persistent_load(&pid, ins.offset)?;
                self.push(v)?;
            }
            Opcode::PERSID
            | Opcode::INST
            | Opcode::OBJ
            | Opcode::NEWOBJ_EX
            | Opcode::EXT1
            | Opcode::EXT2
            | Opcode::EXT4
            | Opcode::NEXT_BUFFER
            | Opcode::READONLY_BUFFER => {
                return Err(format!(
                    "uses {}, which no checkpoint of tensors needs",
                    op.name()
                ));
            }
        }
        Ok(())
    }

    fn import(&mut self, module: &str, name: &str) -> R<Obj> {
        let (m, n) = if self.protocol < 3 {
            modelward_pickle::compat::map_py2_name(module, name)
                .unwrap_or_else(|| (module.to_owned(), name.to_owned()))
        } else {
            (module.to_owned(), name.to_owned())
        };
        match allowed(&m, &n) {
            Some(a) => Ok(Obj::Global(a)),
            None => Err(not_allowed_message(&m, &n)),
        }
    }

    fn append(&mut self, target: &Obj, items: Vec<Obj>, set: bool) -> R<()> {
        self.count(items.len() as u64)?;
        match (target, set) {
            (Obj::Cont(i), false) => match &mut self.conts[*i] {
                Cont::List(v) => {
                    v.extend(items);
                    Ok(())
                }
                _ => Err("APPEND into something that is not a list".into()),
            },
            (Obj::Cont(i), true) => match &mut self.conts[*i] {
                Cont::Set(v) => {
                    v.extend(items);
                    Ok(())
                }
                _ => Err("ADDITEMS into something that is not a set".into()),
            },
            (other, _) => Err(format!("writes items into {}", other.describe(self))),
        }
    }

    fn key(&self, k: &Obj) -> R<Key> {
        Ok(match k {
            Obj::Str(s) => Key::Str(s.clone()),
            Obj::Int(i) => Key::Int(*i),
            Obj::Bool(b) => Key::Int(i64::from(*b)),
            Obj::None => Key::None,
            other => {
                return Err(format!(
                    "a dict key is {}; only str, int, bool and None keys are supported",
                    other.describe(self)
                ));
            }
        })
    }

    fn set_items(&mut self, target: &Obj, items: Vec<Obj>) -> R<()> {
        if !items.len().is_multiple_of(2) {
            return Err("SETITEMS with an odd number of values (malformed pickle)".into());
        }
        self.count(items.len() as u64)?;
        let Obj::Cont(ci) = target else {
            return Err(format!("writes items into {}", target.describe(self)));
        };
        let ci = *ci;
        let mut keys = Vec::with_capacity(items.len() / 2);
        for pair in items.chunks_exact(2) {
            keys.push(self.key(&pair[0])?);
        }
        let Cont::Dict {
            items: dict, index, ..
        } = &mut self.conts[ci]
        else {
            return Err("SETITEM into something that is not a dict".into());
        };
        let mut it = items.into_iter();
        for key in keys {
            let (Some(k), Some(v)) = (it.next(), it.next()) else {
                break;
            };
            match index.get(&key) {
                // Python keeps the first key and its position, and replaces the value.
                Some(&at) => dict[at].1 = v,
                None => {
                    index.insert(key, dict.len());
                    dict.push((k, v));
                }
            }
        }
        Ok(())
    }

    fn build(&mut self, target: &Obj, state: Obj) -> R<()> {
        if let Obj::Cont(i) = target
            && let Cont::Dict {
                ordered: true,
                attrs: attrs @ None,
                ..
            } = &mut self.conts[*i]
        {
            *attrs = Some(state);
            return Ok(());
        }
        Err(format!(
            "BUILD sets the state of {}; only an OrderedDict's attributes (a state dict's _metadata) are plain data",
            target.describe(self)
        ))
    }

    fn persistent_load(&mut self, pid: &Obj, offset: u64) -> R<Obj> {
        let Obj::Tuple(t) = pid else {
            return Err(format!(
                "persistent_load of {}, not a storage tuple",
                pid.describe(self)
            ));
        };
        match t.first() {
            Some(Obj::Str(s)) if &**s == "storage" => {}
            Some(Obj::Str(s)) if &**s == "module" => {
                return Err(
                    "persistent_load of a 'module' record: a whole-model legacy save with embedded source code; convert model.state_dict() instead"
                        .into(),
                );
            }
            _ => return Err("persistent_load of something other than ('storage', ...)".into()),
        }
        let want = if self.legacy { 6 } else { 5 };
        if t.len() != want {
            return Err(format!(
                "a storage persistent id has {} items; this format has {want}",
                t.len()
            ));
        }
        let Obj::Global(Allowed::Storage(kind)) = t[1] else {
            return Err(format!(
                "a storage persistent id names {} instead of a storage class",
                t[1].describe(self)
            ));
        };
        let Obj::Str(key) = &t[2] else {
            return Err("a storage key is not a string".into());
        };
        if !matches!(t[3], Obj::Str(_)) {
            return Err("a storage location is not a string".into());
        }
        let numel = nonneg(&t[4]).ok_or("a storage size is not a non-negative int")?;
        let view = match t.get(5) {
            None | Some(Obj::None) => None,
            Some(Obj::Tuple(v)) if v.len() == 3 => {
                let Obj::Str(vk) = &v[0] else {
                    return Err("a storage view key is not a string".into());
                };
                let off = nonneg(&v[1]).ok_or("a storage view offset is not a non-negative int")?;
                let size = nonneg(&v[2]).ok_or("a storage view size is not a non-negative int")?;
                if off.checked_add(size).is_none_or(|e| e > numel) {
                    return Err(format!(
                        "storage view {vk:?} ({off}+{size}) runs past its storage of {numel} elements"
                    ));
                }
                Some((vk.to_string(), off, size))
            }
            Some(other) => {
                return Err(format!(
                    "a storage view is {}, not (key, offset, size)",
                    other.describe(self)
                ));
            }
        };
        let r = Rc::new(StorageRef {
            key: key.to_string(),
            kind,
            numel,
            view,
            offset,
        });
        if r.root_bytes().is_none() {
            return Err("a storage size overflows".into());
        }
        self.storages.push(r.clone());
        self.count(1)?;
        Ok(Obj::Storage(r))
    }

    fn call(&mut self, callee: &Obj, args: &Obj) -> R<Obj> {
        let Obj::Global(g) = callee else {
            return Err(format!("calls {}, not an imported name", callee.describe(self)));
        };
        if !g.callable() {
            return Err(format!("calls {}, which a checkpoint never calls", g.name()));
        }
        let Obj::Tuple(a) = args else {
            return Err("call arguments are not a tuple".into());
        };
        let a = a.clone();
        match g {
            Allowed::OrderedDict => self.ordered_dict(&a),
            Allowed::RebuildTensor => {
                arity(&a, 4, 4, "_rebuild_tensor")?;
                self.rebuild(&a[0], &a[1], &a[2], &a[3], None)
            }
            Allowed::RebuildTensorV2 => {
                arity(&a, 6, 7, "_rebuild_tensor_v2")?;
                self.check_grad_hooks(&a[4], &a[5])?;
                self.check_metadata(a.get(6))?;
                self.rebuild(&a[0], &a[1], &a[2], &a[3], None)
            }
            Allowed::RebuildTensorV3 => {
                arity(&a, 7, 8, "_rebuild_tensor_v3")?;
                self.check_grad_hooks(&a[4], &a[5])?;
                self.check_metadata(a.get(7))?;
                let dtype = match &a[6] {
                    Obj::Global(Allowed::Dtype(TorchDtype::Supported(d))) => *d,
                    Obj::Global(Allowed::Dtype(TorchDtype::Unsupported(n))) => {
                        return Err(format!("a {n} tensor: safetensors has no {n} dtype"));
                    }
                    other => {
                        return Err(format!(
                            "_rebuild_tensor_v3's dtype is {}",
                            other.describe(self)
                        ));
                    }
                };
                self.rebuild(&a[0], &a[1], &a[2], &a[3], Some(dtype))
            }
            Allowed::RebuildParameter => {
                arity(&a, 3, 3, "_rebuild_parameter")?;
                self.check_grad_hooks(&a[1], &a[2])?;
                match &a[0] {
                    t @ Obj::Tensor(_) => Ok(t.clone()),
                    other => Err(format!("_rebuild_parameter of {}", other.describe(self))),
                }
            }
            Allowed::RebuildParameterWithState => {
                arity(&a, 4, 4, "_rebuild_parameter_with_state")?;
                self.check_grad_hooks(&a[1], &a[2])?;
                match &a[0] {
                    Obj::Tensor(i) => {
                        let dropped = self.state_names(&a[3])?;
                        self.tensors[*i].dropped.extend(dropped);
                        Ok(Obj::Tensor(*i))
                    }
                    other => Err(format!(
                        "_rebuild_parameter_with_state of {}",
                        other.describe(self)
                    )),
                }
            }
            Allowed::RebuildFromTypeV2 => {
                arity(&a, 4, 4, "_rebuild_from_type_v2")?;
                let func_ok = matches!(
                    a[0],
                    Obj::Global(
                        Allowed::RebuildTensor
                            | Allowed::RebuildTensorV2
                            | Allowed::RebuildTensorV3
                            | Allowed::RebuildParameter
                            | Allowed::RebuildParameterWithState
                    )
                );
                if !func_ok {
                    return Err(format!(
                        "_rebuild_from_type_v2 calls {}",
                        a[0].describe(self)
                    ));
                }
                if !matches!(
                    a[1],
                    Obj::Global(Allowed::TensorClass | Allowed::ParameterClass)
                ) {
                    return Err(format!(
                        "_rebuild_from_type_v2 makes a {} (a tensor subclass)",
                        a[1].describe(self)
                    ));
                }
                let t = self.call(&a[0], &a[2])?;
                let Obj::Tensor(i) = t else {
                    return Err("_rebuild_from_type_v2 did not build a tensor".into());
                };
                let dropped = self.state_names(&a[3])?;
                self.tensors[i].dropped.extend(dropped);
                Ok(Obj::Tensor(i))
            }
            Allowed::Size => {
                arity(&a, 1, 1, "torch.Size")?;
                match &a[0] {
                    Obj::Tuple(t) if t.iter().all(|v| matches!(v, Obj::Int(_))) => Ok(Obj::Size(t.len())),
                    other => Err(format!("torch.Size of {}", other.describe(self))),
                }
            }
            Allowed::Device => {
                arity(&a, 1, 2, "torch.device")?;
                match (&a[0], a.get(1)) {
                    (Obj::Str(s), None | Some(Obj::Int(_))) => Ok(Obj::Device(s.clone())),
                    _ => Err("torch.device with arguments other than (str[, int])".into()),
                }
            }
            Allowed::CodecsEncode => match &a[..] {
                [Obj::Str(text), Obj::Str(enc)] if matches!(&**enc, "latin1" | "latin-1") => {
                    Ok(Obj::Bytes(text.chars().count() as u64))
                }
                _ => Err("_codecs.encode with arguments other than (str, 'latin1'), which is not how a bytes value is pickled".into()),
            },
            _ => Err(format!("calls {}", g.name())),
        }
    }

    fn ordered_dict(&mut self, a: &[Obj]) -> R<Obj> {
        let d = self.new_dict(true);
        match a {
            [] => Ok(d),
            // Python 2's OrderedDict.__reduce__: OrderedDict([[k, v], ...]).
            [Obj::Cont(li)] => {
                let pairs = match &self.conts[*li] {
                    Cont::List(v) => v.clone(),
                    _ => return Err("OrderedDict(...) of something that is not a list".into()),
                };
                let mut flat = Vec::with_capacity(pairs.len() * 2);
                for p in pairs {
                    match p {
                        Obj::Tuple(t) if t.len() == 2 => flat.extend(t.iter().cloned()),
                        Obj::Cont(pi) => match &self.conts[pi] {
                            Cont::List(kv) if kv.len() == 2 => flat.extend(kv.iter().cloned()),
                            _ => return Err("OrderedDict(...) of items that are not pairs".into()),
                        },
                        _ => return Err("OrderedDict(...) of items that are not pairs".into()),
                    }
                }
                self.set_items(&d, flat)?;
                Ok(d)
            }
            _ => Err("OrderedDict(...) with arguments other than a list of pairs".into()),
        }
    }

    fn check_grad_hooks(&self, requires_grad: &Obj, hooks: &Obj) -> R<()> {
        if !matches!(requires_grad, Obj::Bool(_)) {
            return Err(format!("requires_grad is {}", requires_grad.describe(self)));
        }
        let empty = match hooks {
            Obj::None => true,
            Obj::Cont(i) => matches!(&self.conts[*i], Cont::Dict { items, .. } if items.is_empty()),
            _ => false,
        };
        if !empty {
            return Err(format!(
                "a tensor carries backward hooks ({}); checkpoints of plain tensors have none",
                hooks.describe(self)
            ));
        }
        Ok(())
    }

    fn check_metadata(&self, meta: Option<&Obj>) -> R<()> {
        match meta {
            None | Some(Obj::None) => Ok(()),
            Some(Obj::Cont(i)) => match &self.conts[*i] {
                Cont::Dict { items, .. } if items.is_empty() => Ok(()),
                Cont::Dict { items, .. } => {
                    let keys: Vec<String> = items.iter().map(|(k, _)| k.describe(self)).collect();
                    Err(format!(
                        "a tensor carries metadata ({}) that changes how its bytes are read (e.g. the conjugate bit); resolve it (t.resolve_conj()) before saving",
                        keys.join(", ")
                    ))
                }
                _ => Err("tensor metadata is not a dict".into()),
            },
            Some(other) => Err(format!("tensor metadata is {}", other.describe(self))),
        }
    }

    /// Names of Python attributes in a tensor's state (`{'foo': ...}` or `(dict, slots)`).
    fn state_names(&self, state: &Obj) -> R<Vec<String>> {
        let mut out = Vec::new();
        let mut dicts = vec![state.clone()];
        if let Obj::Tuple(t) = state {
            dicts = t.to_vec();
        }
        for d in dicts {
            match d {
                Obj::None => {}
                Obj::Cont(i) => match &self.conts[i] {
                    Cont::Dict { items, .. } => {
                        for (k, v) in items {
                            let name = match k {
                                Obj::Str(s) => s.to_string(),
                                other => other.describe(self),
                            };
                            out.push(format!("attribute {name} = {}", v.describe(self)));
                        }
                    }
                    _ => return Err("a tensor's state is not a dict".into()),
                },
                other => {
                    return Err(format!("a tensor's state is {}", other.describe(self)));
                }
            }
        }
        Ok(out)
    }

    fn rebuild(
        &mut self,
        storage: &Obj,
        offset: &Obj,
        size: &Obj,
        stride: &Obj,
        dtype: Option<Dtype>,
    ) -> R<Obj> {
        let Obj::Storage(s) = storage else {
            return Err(format!(
                "a tensor is rebuilt from {}, not a storage",
                storage.describe(self)
            ));
        };
        let dtype = match (dtype, s.kind) {
            (Some(d), _) => d,
            (None, StorageKind::Typed(d)) => d,
            (None, StorageKind::Untyped) => Dtype::U8,
            (None, StorageKind::Unsupported(n, _)) => {
                return Err(format!("a {n} tensor: safetensors has no {n} dtype"));
            }
        };
        if let StorageKind::Unsupported(n, _) = s.kind {
            return Err(format!("a tensor over a {n} storage"));
        }
        let offset = nonneg(offset).ok_or("a tensor's storage offset is not a non-negative int")?;
        let shape = int_tuple(size).ok_or("a tensor's size is not a tuple of non-negative ints")?;
        let strides = int_tuple(stride).ok_or("a tensor's stride is not a tuple of non-negative ints")?;
        if shape.len() != strides.len() {
            return Err(format!(
                "a tensor has {} sizes but {} strides",
                shape.len(),
                strides.len()
            ));
        }
        if shape.len() > 64 {
            return Err(format!("a tensor has {} dimensions", shape.len()));
        }
        let numel = shape
            .iter()
            .try_fold(1u64, |a, &d| a.checked_mul(d))
            .ok_or("a tensor's element count overflows")?;
        let (_, window) = s.window().ok_or("a storage size overflows")?;
        if numel > 0 {
            let last = shape
                .iter()
                .zip(&strides)
                .try_fold(offset, |acc, (&n, &st)| acc.checked_add((n - 1).checked_mul(st)?))
                .ok_or("a tensor's extent overflows")?;
            let end = last
                .checked_add(1)
                .and_then(|e| e.checked_mul(dtype.size()))
                .ok_or("a tensor's extent overflows")?;
            if end > window {
                return Err(format!(
                    "a {dtype} tensor of shape {shape:?} (offset {offset}, strides {strides:?}) reads {end} bytes of storage {:?}, which holds {window}",
                    s.key
                ));
            }
        }
        self.count(1)?;
        self.tensors.push(TensorDef {
            storage: s.clone(),
            dtype,
            offset,
            shape,
            strides,
            dropped: Vec::new(),
        });
        Ok(Obj::Tensor(self.tensors.len() - 1))
    }
}

fn arity(a: &[Obj], min: usize, max: usize, what: &str) -> R<()> {
    if a.len() < min || a.len() > max {
        return Err(format!("{what} with {} arguments", a.len()));
    }
    Ok(())
}

fn nonneg(v: &Obj) -> Option<u64> {
    match v {
        Obj::Int(i) => u64::try_from(*i).ok(),
        Obj::Bool(b) => Some(u64::from(*b)),
        _ => None,
    }
}

fn int_tuple(v: &Obj) -> Option<Vec<u64>> {
    match v {
        Obj::Tuple(t) => t.iter().map(nonneg).collect(),
        _ => None,
    }
}

/// The refusal for a name outside the allowlist, with a hint for the usual cases.
pub(crate) fn not_allowed_message(module: &str, name: &str) -> String {
    let q = format!("{module}.{name}");
    let hint = if module.starts_with("torch.nn.modules")
        || module == "__main__"
        || module.starts_with("__torch__")
    {
        "; this is a whole-model save (torch.save(model)): convert model.state_dict() instead"
    } else if module.starts_with("torch.optim") {
        "; optimizer objects are not tensors: save the model's state_dict on its own"
    } else if module.starts_with("numpy") {
        "; numpy objects inside a checkpoint are not converted"
    } else if q.starts_with("torch._utils._rebuild_") {
        "; this kind of tensor (quantized, sparse, nested, meta or a subclass) has no safetensors form"
    } else {
        ""
    };
    format!("imports {q}, which is not on the converter's allowlist of tensor-building names{hint}")
}

/// Runs one pickle from the reader's position through both the symbolic machine (for the
/// policy) and the interpreter (for the values), in one pass over the instructions: the
/// pickle crate's own run loop, with the interpreter as its visitor.
pub(crate) fn run_pickle<S: Source>(reader: &mut Reader<S>, limits: &Limits, interp: &mut Interp) -> Trace {
    interp.begin();
    modelward_pickle::run_one_with(reader, limits, &mut modelward_pickle::NoInline, interp, 0)
}

impl modelward_pickle::Visitor for Interp {
    fn instruction(&mut self, ins: &Instruction<'_>) {
        self.step(ins);
    }
}

/// The converter's allowlist applied to the machine's trace: every import, call, BUILD and
/// write must be one a checkpoint of tensors makes. A second, independent check beside the
/// interpreter (which enforces the same list on its own model of the values).
pub(crate) fn trace_violations(t: &Trace) -> Vec<(u64, String)> {
    let a = &t.arena;
    let is_ordered_dict_call = |v: Value| match a.node(v) {
        Some(Node::Call(c)) => a
            .as_global(c.callee)
            .is_some_and(|g| g.module == "collections" && g.name == "OrderedDict"),
        _ => false,
    };
    let mut out = Vec::new();
    for ev in &t.events {
        match ev {
            Event::Import { global, offset, .. } => {
                if let Some(Node::Global(g)) = a.get(*global)
                    && allowed(&g.module, &g.name).is_none()
                {
                    out.push((*offset, not_allowed_message(&g.module, &g.name)));
                }
            }
            Event::Call { call, offset } => {
                let Some(Node::Call(c)) = a.get(*call) else {
                    continue;
                };
                if c.kind == modelward_pickle::CallKind::PersistentLoad {
                    continue;
                }
                match a.as_global(c.callee) {
                    Some(g) => {
                        let ok = allowed(&g.module, &g.name).is_some_and(Allowed::callable);
                        let kind_ok = matches!(
                            c.kind,
                            modelward_pickle::CallKind::Reduce | modelward_pickle::CallKind::NewObj
                        );
                        if !ok || !kind_ok {
                            out.push((*offset, format!("{} calls {}", c.kind.opcode(), g.qualified())));
                        }
                    }
                    None => out.push((
                        *offset,
                        format!("{} calls a value that is not an imported name", c.kind.opcode()),
                    )),
                }
            }
            Event::Build { target, offset, .. } => {
                if !is_ordered_dict_call(*target) {
                    out.push((*offset, "BUILD sets the state of an object".into()));
                }
            }
            Event::Mutate { target, op, offset } => {
                if !is_ordered_dict_call(*target) {
                    out.push((*offset, format!("{} writes into an object", op.name())));
                }
            }
            Event::SetAttr { offset, .. } => {
                out.push((*offset, "BUILD sets attributes of an imported object".into()))
            }
            Event::InjectSetState { offset, .. } => out.push((*offset, "BUILD installs __setstate__".into())),
            Event::Ext { offset, .. } => out.push((*offset, "uses the copyreg extension registry".into())),
            Event::Anomaly { kind, offset } => out.push((*offset, format!("malformed pickle: {kind:?}"))),
        }
    }
    match &t.end_reason {
        End::Stop => {}
        other => out.push((t.end, format!("the pickle does not end cleanly ({other:?})"))),
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use modelward_pickle::stream::SeekSource;

    fn run(data: &[u8], legacy: bool) -> (Interp, Option<Obj>, Trace) {
        let mut it = Interp::new(legacy);
        let mut r = Reader::new(
            SeekSource::new(std::io::Cursor::new(data), 0, data.len() as u64),
            0,
            Some(data.len() as u64),
            1 << 20,
        );
        let t = run_pickle(&mut r, &Limits::default(), &mut it);
        let v = it.take_result();
        (it, v, t)
    }

    #[test]
    fn refuses_names_outside_the_allowlist_even_unused() {
        let (it, v, t) = run(b"cos\nsystem\n0N.", false);
        assert!(v.is_none());
        assert!(it.refusal.unwrap().message.contains("imports os.system"));
        assert!(!trace_violations(&t).is_empty());
        let (it, _, _) = run(b"ctorch.nn.modules.linear\nLinear\n.", false);
        assert!(it.refusal.unwrap().message.contains("whole-model save"));
    }

    #[test]
    fn models_ordered_dicts_and_python_dict_semantics() {
        // OrderedDict(); d['a'] = 1; d['a'] = 2; d['b'] = 'x'
        let data = b"\x80\x02ccollections\nOrderedDict\n)R(X\x01\x00\x00\x00aK\x01X\x01\x00\x00\x00aK\x02X\x01\x00\x00\x00bX\x01\x00\x00\x00xu.";
        let (it, v, t) = run(data, false);
        assert!(it.refusal.is_none(), "{:?}", it.refusal);
        assert!(trace_violations(&t).is_empty());
        let Some(Obj::Cont(i)) = v else { panic!() };
        let Cont::Dict { items, ordered, .. } = &it.conts[i] else {
            panic!()
        };
        assert!(ordered);
        assert_eq!(items.len(), 2);
        assert_eq!(items[0].1, Obj::Int(2));
    }

    #[test]
    fn refuses_other_calls_and_opcodes() {
        // builtins.getattr is not allowed; NEWOBJ_EX is refused; a call of a call is refused.
        for data in [
            &b"cbuiltins\ngetattr\n."[..],
            b"\x80\x04ccollections\nOrderedDict\n)}\x92.",
            b"\x80\x02ccollections\nOrderedDict\n)R)R.",
        ] {
            let (it, v, _) = run(data, false);
            assert!(v.is_none() && it.refusal.is_some(), "{data:?}");
        }
    }

    use modelward_pickle::assemble::Assembler;

    /// `_rebuild_tensor_v2(persistent_load(('storage', FloatStorage, '0', 'cpu', numel)),
    /// offset, (size,), (1,), False, hooks)` then `tail`.
    fn tensor_pickle(
        numel: i32,
        offset: i32,
        size: i32,
        hook_item: bool,
        tail: fn(Assembler) -> Assembler,
    ) -> Vec<u8> {
        let a = Assembler::new()
            .proto(2)
            .global("torch._utils", "_rebuild_tensor_v2")
            .mark()
            .mark()
            .short_binunicode("storage")
            .global("torch", "FloatStorage")
            .short_binunicode("0")
            .short_binunicode("cpu")
            .int(numel)
            .tuple()
            .binpersid()
            .int(offset)
            .int(size)
            .tuple1()
            .int(1)
            .tuple1()
            .newfalse()
            .global("collections", "OrderedDict")
            .empty_tuple()
            .reduce();
        let a = if hook_item {
            a.int(1).global("builtins", "print").setitem()
        } else {
            a
        };
        tail(a.tuple().reduce()).stop().finish()
    }

    #[test]
    fn rebuilds_tensors_and_checks_their_extent() {
        let (it, v, t) = run(&tensor_pickle(6, 2, 4, false, |a| a), false);
        assert!(it.refusal.is_none(), "{:?}", it.refusal);
        assert!(trace_violations(&t).is_empty());
        assert_eq!(v, Some(Obj::Tensor(0)));
        let d = &it.tensors[0];
        assert_eq!(
            (d.dtype, d.offset, &d.shape[..], &d.strides[..]),
            (Dtype::F32, 2, &[4][..], &[1][..])
        );
        assert_eq!(d.storage.root_bytes(), Some(24));
        // One element past the storage.
        let (it, v, _) = run(&tensor_pickle(6, 3, 4, false, |a| a), false);
        assert!(v.is_none());
        assert!(it.refusal.unwrap().message.contains("reads 28 bytes"));
    }

    #[test]
    fn refuses_hooks_builds_on_tensors_and_wrong_persistent_ids() {
        let (it, _, _) = run(&tensor_pickle(6, 0, 4, true, |a| a), false);
        assert!(it.refusal.unwrap().message.contains("builtins.print"));
        let (it, _, t) = run(&tensor_pickle(6, 0, 4, false, |a| a.empty_dict().build()), false);
        assert!(
            it.refusal
                .unwrap()
                .message
                .contains("BUILD sets the state of a tensor")
        );
        assert!(!trace_violations(&t).is_empty());
        // The legacy format's persistent ids have six items.
        let (it, _, _) = run(&tensor_pickle(6, 0, 4, false, |a| a), true);
        assert!(it.refusal.unwrap().message.contains("has 5 items"));
        let module = Assembler::new()
            .proto(2)
            .short_binunicode("module")
            .global("torch.nn.modules.linear", "Linear")
            .tuple2()
            .binpersid()
            .stop()
            .finish();
        let (it, _, _) = run(&module, true);
        assert!(it.refusal.unwrap().message.contains("whole-model"));
        // An OrderedDict's attributes are set once; a second BUILD would call __setstate__.
        let twice = Assembler::new()
            .proto(2)
            .global("collections", "OrderedDict")
            .empty_tuple()
            .reduce()
            .empty_dict()
            .build()
            .empty_dict()
            .build()
            .stop()
            .finish();
        let (it, _, _) = run(&twice, false);
        assert!(it.refusal.is_some());
    }
}
