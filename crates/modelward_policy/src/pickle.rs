//! Turns a pickle [`Trace`] into facts: which imports and calls matter, and why.

use crate::Policy;
use crate::globals::Judgement;
use modelward_diagnostics::{Fact, Severity};
use modelward_pickle::machine::{Anomaly, Event};
use modelward_pickle::{Arena, CallKind, End, Node, NodeId, Trace, Value, render};
use std::collections::{BTreeMap, HashMap};

/// What the container around a pickle says about it.
#[derive(Debug, Clone, Copy, Default)]
pub struct PickleContext {
    /// Inside a PyTorch container: persistent IDs are tensor storages and expected.
    pub torch: bool,
}

/// How a trace uses an imported name, weakest first. Only a name that is called, constructed,
/// given its state by BUILD, or handed to a call can run code at load time; a name that is only
/// stored as a value (a function kept as a model attribute) cannot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub enum Use {
    /// Only imported and stored as a value.
    #[default]
    Stored,
    /// Given directly as an argument to a call.
    Passed,
    /// BUILD sets the state of an instance of it, or of the object itself.
    Built,
    /// Instantiated (`NEWOBJ`, or by a reconstruction helper).
    Constructed,
    /// Called (`REDUCE`/`OBJ`/`INST`, or by a function that calls its argument).
    Called,
}

impl Use {
    fn verb(self) -> &'static str {
        match self {
            Use::Stored => "imports",
            Use::Passed => "passes",
            Use::Built => "sets the state of",
            Use::Constructed => "constructs",
            Use::Called => "calls",
        }
    }
}

struct NameUse {
    module: String,
    name: String,
    written: Option<String>,
    offset: u64,
    count: u64,
    /// Best call to show.
    call: Option<NodeId>,
    usage: Use,
    /// How the strongest use came about, when not directly (`called through functools.partial`).
    how: Option<String>,
}

/// The strongest use of each imported node, with how it came about and a call to show.
#[derive(Default)]
struct Uses {
    of: HashMap<NodeId, (Use, Option<String>, Option<NodeId>)>,
    /// Calls of a computed value reached through a trampoline: (offset, call, how).
    dynamic: Vec<(u64, NodeId, String)>,
}

impl Uses {
    fn mark(&mut self, id: NodeId, usage: Use, how: Option<String>, call: Option<NodeId>) {
        let e = self.of.entry(id).or_insert((Use::Stored, None, None));
        if usage > e.0 {
            *e = (usage, how, call.or(e.2));
        } else if e.2.is_none() {
            e.2 = call;
        }
    }
}

fn is_dunder_or_module_walk(name: &str) -> bool {
    let parts: Vec<&str> = name.split('.').collect();
    if parts
        .iter()
        .any(|p| p.starts_with("__") && p.ends_with("__") && p.len() > 4)
    {
        return true;
    }
    // `Outer.Inner` / `Class.method` are nested names; `os.system` inside a name walks a module.
    parts.len() > 1
        && parts[..parts.len() - 1]
            .iter()
            .any(|p| p.chars().next().is_some_and(|c| c.is_lowercase() || c == '_'))
}

fn class_like(name: &str) -> bool {
    name.rsplit('.')
        .next()
        .and_then(|l| l.trim_start_matches('_').chars().next())
        .is_some_and(|c| c.is_uppercase())
}

impl Policy {
    /// Facts about one pickle (and the pickles inline in its stream).
    pub fn pickle_facts(&self, trace: &Trace, ctx: PickleContext) -> Vec<Fact> {
        let mut facts = Vec::new();
        self.trace_facts(trace, ctx, &mut facts);
        for inner in &trace.inline {
            self.trace_facts(inner, ctx, &mut facts);
        }
        facts
    }

    fn trace_facts(&self, trace: &Trace, ctx: PickleContext, facts: &mut Vec<Fact>) {
        let arena = &trace.arena;
        let uses = self.uses(trace, ctx);
        // One entry per distinct name, in order of first appearance.
        let mut names: BTreeMap<String, NameUse> = BTreeMap::new();
        let mut order: Vec<String> = Vec::new();
        for ev in &trace.events {
            let Event::Import { global, offset, .. } = ev else {
                continue;
            };
            let Some(Node::Global(g)) = arena.get(*global) else {
                continue;
            };
            let key = g.qualified();
            let (usage, how, call) = uses.of.get(global).cloned().unwrap_or_default();
            match names.get_mut(&key) {
                Some(u) => {
                    u.count += 1;
                    if usage > u.usage {
                        u.usage = usage;
                        u.how = how;
                        u.call = call.or(u.call);
                    } else if u.call.is_none() {
                        u.call = call;
                    }
                }
                None => {
                    order.push(key.clone());
                    names.insert(
                        key,
                        NameUse {
                            module: g.module.clone(),
                            name: g.name.clone(),
                            written: g.written.clone(),
                            offset: *offset,
                            count: 1,
                            call,
                            usage,
                            how,
                        },
                    );
                }
            }
        }
        for key in &order {
            let u = &names[key];
            if let Some(f) = self.name_fact(arena, u) {
                facts.push(f);
            }
        }
        for (offset, call, how) in uses.dynamic {
            facts.push(
                Fact::new("PKL204", format!("calls the result of another call ({how})"))
                    .at(offset)
                    .evidence(render(arena, Value::Node(call))),
            );
        }
        self.event_facts(trace, ctx, facts);
        self.end_facts(trace, facts);
    }

    /// How the trace uses each imported name: directly (the callee of a call, the target of a
    /// BUILD) and through the argument roles the catalog gives reviewed functions (`calls-args`,
    /// `constructs-args`, `defers-args`), including arguments that come from the memo (the same
    /// node) or from another call's result.
    fn uses(&self, trace: &Trace, ctx: PickleContext) -> Uses {
        let arena = &trace.arena;
        let mut uses = Uses::default();
        for ev in &trace.events {
            match ev {
                Event::Call { call, offset } => {
                    let Some(Node::Call(c)) = arena.get(*call) else {
                        continue;
                    };
                    if c.kind == CallKind::PersistentLoad {
                        continue;
                    }
                    let direct = if c.kind.only_allocates() {
                        Use::Constructed
                    } else {
                        Use::Called
                    };
                    let callee =
                        global_id(arena, c.callee).or_else(|| torch_module_class(arena, c.callee, ctx));
                    if let Some(g) = callee {
                        uses.mark(g, direct, None, Some(*call));
                    }
                    // Calling a partial (anything that defers an argument) calls that argument.
                    if let Some(Node::Call(inner)) = arena.node(c.callee)
                        && let Some(q) = global_id(arena, inner.callee).and_then(|g| qualified(arena, g))
                        && let Some(entry) = self.globals().safe_entry(&q)
                    {
                        let how = format!("called through {q}");
                        for &i in &entry.defers_args {
                            if let Some(v) = arg(arena, inner.args, i) {
                                mark_value(arena, &mut uses, v, Use::Called, &how, *call, *offset);
                            }
                        }
                    }
                    let entry = callee
                        .and_then(|g| qualified(arena, g))
                        .and_then(|q| self.globals().safe_entry(&q).map(|e| (q, e)));
                    for (i, v) in args(arena, c.args).into_iter().enumerate() {
                        let (role, how) = match &entry {
                            Some((q, e)) if e.calls_args.contains(&i) => {
                                (Use::Called, format!("{q} calls its argument {i}"))
                            }
                            Some((q, e)) if e.constructs_args.contains(&i) => {
                                (Use::Constructed, format!("{q} instantiates its argument {i}"))
                            }
                            Some((_, e)) if e.defers_args.contains(&i) => continue,
                            _ => {
                                if let Some(g) = global_id(arena, v) {
                                    uses.mark(g, Use::Passed, None, Some(*call));
                                }
                                continue;
                            }
                        };
                        match torch_module_class(arena, v, ctx) {
                            Some(g) => uses.mark(g, role, Some(how.clone()), Some(*call)),
                            None => mark_value(arena, &mut uses, v, role, &how, *call, *offset),
                        }
                    }
                }
                Event::Build { target, .. } => {
                    if let Some(Node::Call(c)) = arena.node(*target)
                        && let Some(g) = global_id(arena, c.callee)
                    {
                        uses.mark(g, Use::Built, None, None);
                    }
                }
                Event::SetAttr { target, .. } | Event::Mutate { target, .. } => {
                    if let Some(g) = global_id(arena, *target) {
                        uses.mark(g, Use::Built, None, None);
                    }
                }
                Event::InjectSetState { value, .. } => {
                    if let Some(g) = global_id(arena, *value) {
                        uses.mark(g, Use::Called, Some("installed as __setstate__".into()), None);
                    }
                }
                _ => {}
            }
        }
        uses
    }

    fn name_fact(&self, arena: &Arena, u: &NameUse) -> Option<Fact> {
        let qualified = format!("{}.{}", u.module, u.name);
        let resolved = self.judge_global(&u.module, &u.name);
        let path = resolved.path.clone();
        let evidence = match u.call {
            Some(c) => render(arena, Value::Node(c)),
            None => format!("from {} import {}", u.module, u.name),
        };
        let times = if u.count > 1 {
            format!(" ({} times)", u.count)
        } else {
            String::new()
        };
        let written = match &u.written {
            Some(w) => format!(" (written as {w})"),
            None => String::new(),
        };
        let action = u.usage.verb();
        let how = match &u.how {
            Some(h) => format!(" ({h})"),
            None => String::new(),
        };
        match resolved.judgement {
            Judgement::Dangerous(entry) => {
                // Dangerous whatever the use: a stored reference is one trampoline away from a call.
                let rule = crate::intern_rule(entry.rule.as_deref().unwrap_or("PKL101"));
                let via = if path != qualified {
                    format!(" (reaches {path}: {})", resolved.via.describe())
                } else {
                    String::new()
                };
                Some(
                    Fact::new(rule, format!("{action} {qualified}{written}{via}{how}{times}"))
                        .at(u.offset)
                        .evidence(evidence)
                        .why(entry.reason.clone()),
                )
            }
            Judgement::Safe(entry) => {
                self.note_allow_hit(entry);
                None
            }
            Judgement::Unknown { ecosystem } => {
                if is_dunder_or_module_walk(&u.name) {
                    return Some(
                        Fact::new("PKL203", format!("{action} {qualified}{times}: the name walks through a module attribute or dunder"))
                            .at(u.offset)
                            .evidence(evidence),
                    );
                }
                if u.usage == Use::Stored {
                    return Some(
                        Fact::new(
                            "PKL205",
                            format!(
                                "imports {qualified}{written}{times} only to store it as a value (never called, constructed, given state or passed to a call); not on the reviewed list"
                            ),
                        )
                        .at(u.offset)
                        .evidence(evidence),
                    );
                }
                let function_call = u.usage == Use::Called && !class_like(&u.name);
                if function_call && ecosystem.is_none() {
                    Some(
                        Fact::new(
                            "PKL201",
                            format!("calls {qualified}{written}{how}{times}, a function on no reviewed list"),
                        )
                        .at(u.offset)
                        .evidence(evidence),
                    )
                } else {
                    let lib = match ecosystem {
                        Some(e) => format!(", an unreviewed member of {e}"),
                        None => String::new(),
                    };
                    Some(
                        Fact::new(
                            "PKL202",
                            format!(
                                "{action} {qualified}{written}{how}{times}{lib}; not on the reviewed list"
                            ),
                        )
                        .at(u.offset)
                        .evidence(evidence),
                    )
                }
            }
        }
    }

    fn event_facts(&self, trace: &Trace, ctx: PickleContext, facts: &mut Vec<Fact>) {
        let arena = &trace.arena;
        let mut persistent = 0u64;
        let mut first_persistent = None;
        let mut anomalies: BTreeMap<&'static str, (u64, u64, String)> = BTreeMap::new();
        let mut exts_seen = std::collections::HashSet::new();
        for ev in &trace.events {
            match ev {
                Event::Call { call, offset } => {
                    let Some(Node::Call(c)) = arena.get(*call) else {
                        continue;
                    };
                    match c.kind {
                        CallKind::PersistentLoad => {
                            persistent += 1;
                            first_persistent.get_or_insert((*offset, *call));
                        }
                        CallKind::InjectedSetState => {
                            facts.push(
                                Fact::new("PKL303", "BUILD calls an injected __setstate__")
                                    .at(*offset)
                                    .evidence(render(arena, Value::Node(*call))),
                            );
                        }
                        _ => {
                            if matches!(arena.node(c.callee), Some(Node::Call(_)))
                                && torch_module_class(arena, c.callee, ctx).is_none()
                            {
                                facts.push(
                                    Fact::new("PKL204", "calls the result of another call")
                                        .at(*offset)
                                        .evidence(render(arena, Value::Node(*call))),
                                );
                            }
                        }
                    }
                }
                Event::SetAttr {
                    target,
                    state,
                    offset,
                } => {
                    facts.push(
                        Fact::new(
                            "PKL302",
                            format!(
                                "BUILD sets attributes on the imported object {}",
                                render(arena, *target)
                            ),
                        )
                        .at(*offset)
                        .evidence(format!(
                            "{}.__dict__.update({})",
                            render(arena, *target),
                            render(arena, *state)
                        )),
                    );
                }
                Event::InjectSetState {
                    target,
                    value,
                    offset,
                } => {
                    facts.push(
                        Fact::new("PKL303", "BUILD installs __setstate__ on an object")
                            .at(*offset)
                            .evidence(format!(
                                "{}.__setstate__ = {}",
                                render(arena, *target),
                                render(arena, *value)
                            )),
                    );
                }
                Event::Mutate { target, op, offset } => {
                    if arena.as_global(*target).is_some() {
                        facts.push(
                            Fact::new(
                                "PKL304",
                                format!(
                                    "{} writes into the imported object {}",
                                    op.name(),
                                    render(arena, *target)
                                ),
                            )
                            .at(*offset)
                            .evidence(render(arena, *target)),
                        );
                    }
                }
                Event::Ext {
                    code,
                    resolved,
                    offset,
                } => {
                    if exts_seen.insert(*code) {
                        let what = if *resolved {
                            "registered earlier in the stream"
                        } else {
                            "registered by nothing in the file"
                        };
                        facts
                            .push(Fact::new("PKL305", format!("extension code {code} ({what})")).at(*offset));
                    }
                }
                Event::Import { .. } | Event::Build { .. } => {}
                Event::Anomaly { kind, offset } => {
                    let (key, text) = match kind {
                        Anomaly::NonConstantStackGlobal { module, name } => {
                            facts.push(
                                Fact::new("PKL301", "STACK_GLOBAL imports a name computed at load time")
                                    .at(*offset)
                                    .evidence(format!(
                                        "STACK_GLOBAL({}, {})",
                                        render(arena, *module),
                                        render(arena, *name)
                                    )),
                            );
                            continue;
                        }
                        Anomaly::Limit(k) => {
                            facts.push(
                                Fact::new(
                                    "PKL503",
                                    format!(
                                        "the pickle crossed the {} budget; the rest was not analysed",
                                        k.describe()
                                    ),
                                )
                                .at(*offset),
                            );
                            continue;
                        }
                        Anomaly::StackGlobalType { module, name } => (
                            "stack-global-type",
                            format!(
                                "STACK_GLOBAL operands are not strings: ({}, {})",
                                render(arena, *module),
                                render(arena, *name)
                            ),
                        ),
                        Anomaly::MissingMemo(i) => {
                            ("missing-memo", format!("memo key {i} read before it was written"))
                        }
                        Anomaly::NegativeMemoIndex(i) => {
                            ("negative-memo", format!("negative memo index {i}"))
                        }
                        Anomaly::StackUnderflow(op) => {
                            ("underflow", format!("{} pops an empty stack", op.name()))
                        }
                        Anomaly::NoMark(op) => ("no-mark", format!("{} without a MARK", op.name())),
                        Anomaly::BadProtocol(p) => ("protocol", format!("unknown protocol {p}")),
                        Anomaly::InvalidUtf8 => ("utf8", "a unicode string is not valid UTF-8".to_owned()),
                        Anomaly::OutOfBandBuffer => {
                            ("oob", "NEXT_BUFFER asks for an out-of-band buffer".to_owned())
                        }
                        Anomaly::UnresolvedExtension(c) => {
                            ("ext", format!("extension code {c} resolves to nothing"))
                        }
                    };
                    let e = anomalies.entry(key).or_insert((*offset, 0, text));
                    e.1 += 1;
                }
            }
        }
        if persistent > 0
            && !ctx.torch
            && let Some((off, call)) = first_persistent
        {
            facts.push(
                Fact::new(
                    "PKL306",
                    format!("{persistent} persistent_load reference(s) outside a PyTorch container"),
                )
                .at(off)
                .evidence(render(arena, Value::Node(call))),
            );
        }
        for (_, (off, n, text)) in anomalies {
            let times = if n > 1 {
                format!(" ({n} times)")
            } else {
                String::new()
            };
            facts.push(Fact::new("PKL501", format!("{text}{times}; the real unpickler raises here")).at(off));
        }
    }

    fn end_facts(&self, trace: &Trace, facts: &mut Vec<Fact>) {
        match &trace.end_reason {
            End::Stop | End::Limit(_) => {}
            End::Error(e) => {
                let mut f = Fact::new(
                    "PKL501",
                    format!(
                        "malformed pickle: {}; {} instruction(s) before it were analysed",
                        e.kind, trace.ops
                    ),
                )
                .at(e.offset);
                if trace.ops == 0 && trace.events.is_empty() {
                    // Nothing decodes before the break (a 1-byte `\x80`, spaCy's empty msgpack
                    // map): the unpickler raises before it can run anything.
                    f = f.severity(Severity::Low);
                }
                facts.push(f);
            }
            End::Eof => facts.push(
                Fact::new(
                    "PKL501",
                    format!(
                        "the pickle ends without STOP after {} instruction(s) (truncated)",
                        trace.ops
                    ),
                )
                .at(trace.end),
            ),
            End::Io(msg) => facts.push(
                Fact::new("MWD002", format!("reading the pickle failed: {msg}"))
                    .at(trace.end)
                    .severity(Severity::Medium),
            ),
        }
    }
}

/// The positional arguments of a call (its args tuple), or the single value.
fn args(arena: &Arena, v: Value) -> Vec<Value> {
    match arena.node(v) {
        Some(Node::Tuple(items)) => items.clone(),
        _ => vec![v],
    }
}

fn arg(arena: &Arena, v: Value, i: usize) -> Option<Value> {
    args(arena, v).get(i).copied()
}

fn global_id(arena: &Arena, v: Value) -> Option<NodeId> {
    match arena.node(v)? {
        Node::Global(_) => match v {
            Value::Node(id) => Some(id),
            _ => None,
        },
        Node::Ext {
            resolved: Some(id), ..
        } => Some(*id),
        _ => None,
    }
}

/// In a PyTorch container, legacy `torch.save(model)` stores each `nn.Module` subclass as the
/// persistent id `('module', cls, source_file, source)`, and torch's `persistent_load` returns
/// `cls` itself (after comparing the source). The class is the real callee of the NEWOBJ that
/// uses it: judge it, not "a call of a computed value".
fn torch_module_class(arena: &Arena, v: Value, ctx: PickleContext) -> Option<NodeId> {
    if !ctx.torch {
        return None;
    }
    let Some(Node::Call(c)) = arena.node(v) else {
        return None;
    };
    if c.kind != CallKind::PersistentLoad {
        return None;
    }
    let Some(Node::Tuple(items)) = arena.node(c.args) else {
        return None;
    };
    match (items.first().and_then(|t| arena.node(*t)), items.get(1)) {
        (Some(Node::Str { text, .. }), Some(cls)) if text == "module" && items.len() == 4 => {
            global_id(arena, *cls)
        }
        _ => None,
    }
}

fn qualified(arena: &Arena, id: NodeId) -> Option<String> {
    match arena.get(id)? {
        Node::Global(g) => Some(g.qualified()),
        _ => None,
    }
}

/// Marks what a trampoline does with one argument: an imported name is used so; a call's result
/// that is called is a dynamic call; the items of a tuple (the bases given to `type`) too.
fn mark_value(arena: &Arena, uses: &mut Uses, v: Value, role: Use, how: &str, call: NodeId, offset: u64) {
    if let Some(g) = global_id(arena, v) {
        uses.mark(g, role, Some(how.to_owned()), Some(call));
        return;
    }
    match arena.node(v) {
        Some(Node::Call(_)) if role == Use::Called => uses.dynamic.push((offset, call, how.to_owned())),
        Some(Node::Tuple(items)) => {
            for item in items {
                if let Some(g) = global_id(arena, *item) {
                    uses.mark(g, role, Some(how.to_owned()), Some(call));
                }
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use modelward_pickle::assemble::Assembler as A;
    use modelward_pickle::{Limits, NoInline, scan_stream};

    fn facts(p: &[u8], torch: bool) -> Vec<Fact> {
        let scan = scan_stream(p, 0, Some(p.len() as u64), &Limits::default(), &mut NoInline);
        Policy::builtin().pickle_facts(&scan.pickles[0], PickleContext { torch })
    }

    #[test]
    fn a_legacy_whole_model_checkpoint_judges_the_module_class_not_a_dynamic_call() {
        // Legacy `torch.save(model)`: the class comes from
        // `persistent_load(('module', cls, source_file, source))`.
        let p = A::new()
            .proto(2)
            .mark()
            .short_binunicode("module")
            .global("torch.nn.modules.linear", "Linear")
            .short_binunicode("linear.py")
            .short_binunicode("class Linear(Module): ...")
            .tuple()
            .binpersid()
            .empty_tuple()
            .newobj()
            .empty_dict()
            .build()
            .stop()
            .finish();
        let f = facts(&p, true);
        assert!(f.iter().all(|f| f.rule != "PKL204"), "{f:?}");
        assert!(f.iter().all(|f| f.rule != "PKL202"), "{f:?}");
        // A user class is judged as constructed (suspicious), never as a dynamic call.
        let p = A::new()
            .proto(2)
            .mark()
            .short_binunicode("module")
            .global("__main__", "TinyNet")
            .short_binunicode("train.py")
            .short_binunicode("class TinyNet(nn.Module): ...")
            .tuple()
            .binpersid()
            .empty_tuple()
            .newobj()
            .stop()
            .finish();
        let f = facts(&p, true);
        assert!(f.iter().all(|f| f.rule != "PKL204"), "{f:?}");
        assert!(
            f.iter()
                .any(|f| f.rule == "PKL202" && f.message.contains("constructs __main__.TinyNet")),
            "{f:?}"
        );
        // Outside a PyTorch container the persistent_load result stays a computed callee.
        assert!(facts(&p, false).iter().any(|f| f.rule == "PKL204"));
        // A dangerous class behind the persistent id is still critical.
        let p = A::new()
            .proto(2)
            .mark()
            .short_binunicode("module")
            .global("subprocess", "Popen")
            .short_binunicode("x.py")
            .short_binunicode("")
            .tuple()
            .binpersid()
            .short_binunicode("id")
            .tuple1()
            .reduce()
            .stop()
            .finish();
        assert!(facts(&p, true).iter().any(|f| f.rule == "PKL102"));
    }
}
