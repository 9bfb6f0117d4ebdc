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

struct NameUse {
    module: String,
    name: String,
    written: Option<String>,
    offset: u64,
    count: u64,
    /// Best call to show: a real call beats a `__new__`.
    call: Option<NodeId>,
    called_as_function: bool,
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
        // Which calls each imported name receives.
        let mut calls_of: HashMap<NodeId, Vec<NodeId>> = HashMap::new();
        for ev in &trace.events {
            if let Event::Call { call, .. } = ev
                && let Some(Node::Call(c)) = arena.get(*call)
                && let Some(g) = global_id(arena, c.callee)
            {
                calls_of.entry(g).or_default().push(*call);
            }
        }
        // One entry per distinct name, in order of first appearance.
        let mut uses: BTreeMap<String, NameUse> = BTreeMap::new();
        let mut order: Vec<String> = Vec::new();
        for ev in &trace.events {
            let Event::Import { global, offset, .. } = ev else {
                continue;
            };
            let Some(Node::Global(g)) = arena.get(*global) else {
                continue;
            };
            let key = g.qualified();
            let calls = calls_of.get(global).map(Vec::as_slice).unwrap_or(&[]);
            let best = calls
                .iter()
                .copied()
                .find(|c| matches!(arena.get(*c), Some(Node::Call(k)) if !k.kind.only_allocates()))
                .or_else(|| calls.first().copied());
            let called_fn = calls
                .iter()
                .any(|c| matches!(arena.get(*c), Some(Node::Call(k)) if !k.kind.only_allocates()));
            match uses.get_mut(&key) {
                Some(u) => {
                    u.count += 1;
                    if u.call.is_none() || (called_fn && !u.called_as_function) {
                        u.call = best.or(u.call);
                    }
                    u.called_as_function |= called_fn;
                }
                None => {
                    order.push(key.clone());
                    uses.insert(
                        key,
                        NameUse {
                            module: g.module.clone(),
                            name: g.name.clone(),
                            written: g.written.clone(),
                            offset: *offset,
                            count: 1,
                            call: best,
                            called_as_function: called_fn,
                        },
                    );
                }
            }
        }
        for key in &order {
            let u = &uses[key];
            if let Some(f) = self.name_fact(arena, u) {
                facts.push(f);
            }
        }
        self.event_facts(trace, ctx, facts);
        self.end_facts(trace, facts);
    }

    fn name_fact(&self, arena: &Arena, u: &NameUse) -> Option<Fact> {
        let qualified = format!("{}.{}", u.module, u.name);
        let (judgement, path) = self.globals().judge_path(&u.module, &u.name);
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
        let action = if u.called_as_function {
            "calls"
        } else if u.call.is_some() {
            "constructs"
        } else {
            "imports"
        };
        match judgement {
            Judgement::Dangerous(entry) => {
                let rule = crate::intern_rule(entry.rule.as_deref().unwrap_or("PKL101"));
                let via = if path != qualified {
                    format!(" (reaches {path} through attributes)")
                } else {
                    String::new()
                };
                Some(
                    Fact::new(rule, format!("{action} {qualified}{written}{via}{times}"))
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
                let function_call = u.called_as_function && !class_like(&u.name);
                if function_call && ecosystem.is_none() {
                    Some(
                        Fact::new(
                            "PKL201",
                            format!("calls {qualified}{written}{times}, a function on no reviewed list"),
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
                            format!("{action} {qualified}{written}{times}{lib}; not on the reviewed list"),
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
                            if matches!(arena.node(c.callee), Some(Node::Call(_))) {
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
            End::Error(e) => facts.push(
                Fact::new(
                    "PKL501",
                    format!(
                        "malformed pickle: {}; {} instruction(s) before it were analysed",
                        e.kind, trace.ops
                    ),
                )
                .at(e.offset),
            ),
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
