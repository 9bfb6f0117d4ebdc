//! What loading a pickle would do, as a small Python program:
//!
//! ```text
//! from posix import system
//! _v0 = system('id')
//! result = _v0
//! ```
//!
//! Every import and call of the trace becomes a line, in the order the unpickler would run
//! them, with the byte offset it comes from. Nothing is executed to produce it.

use crate::machine::Event;
use crate::render::{RenderOptions, render_named};
use crate::stream::Trace;
use crate::value::{Node, NodeId, Value};
use std::collections::HashMap;

/// One line of the program.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    /// The Python text.
    pub text: String,
    /// Offset of the opcode that does it.
    pub offset: u64,
    /// The imported name this line imports or calls, fully qualified, for the caller to judge.
    pub subject: Option<String>,
}

/// Most lines produced (BUILDs of a large state dict would otherwise flood the output).
pub const MAX_LINES: usize = 2000;

fn ident(s: &str) -> String {
    let mut out: String = s
        .chars()
        .map(|c| if c.is_alphanumeric() || c == '_' { c } else { '_' })
        .collect();
    if out.chars().next().is_none_or(|c| c.is_ascii_digit()) {
        out.insert(0, '_');
    }
    out
}

/// The program for one pickle.
pub fn pseudocode(t: &Trace) -> Vec<Line> {
    let opts = RenderOptions {
        max_len: 300,
        ..RenderOptions::default()
    };
    let mut names: HashMap<NodeId, String> = HashMap::new();
    let mut imported: HashMap<String, String> = HashMap::new();
    let mut used: HashMap<String, usize> = HashMap::new();
    let mut lines = Vec::new();
    let mut var = 0usize;
    for ev in &t.events {
        if lines.len() >= MAX_LINES {
            lines.push(Line {
                text: "# … more lines omitted".into(),
                offset: t.end,
                subject: None,
            });
            break;
        }
        match ev {
            Event::Import { global, offset, .. } => {
                let Some(g) = t.arena.as_global(Value::Node(*global)) else {
                    continue;
                };
                let q = g.qualified();
                if let Some(n) = imported.get(&q) {
                    names.insert(*global, n.clone());
                    continue;
                }
                let first = g.name.split('.').next().unwrap_or(&g.name);
                let mut local = ident(first);
                let count = used.entry(local.clone()).or_default();
                *count += 1;
                let import = if *count > 1 {
                    local = format!("{local}_{count}");
                    format!("from {} import {} as {local}", g.module, first)
                } else {
                    format!("from {} import {}", g.module, first)
                };
                let rest = g.name.strip_prefix(first).unwrap_or_default();
                let expr = format!("{local}{rest}");
                names.insert(*global, expr.clone());
                imported.insert(q.clone(), expr);
                lines.push(Line {
                    text: import,
                    offset: *offset,
                    subject: Some(q),
                });
            }
            Event::Call { call, offset } => {
                let Some(Node::Call(c)) = t.arena.get(*call) else {
                    continue;
                };
                let subject = t.arena.as_global(c.callee).map(|g| g.qualified());
                let text = render_named(&t.arena, Value::Node(*call), opts, &names);
                let v = format!("_v{var}");
                var += 1;
                names.insert(*call, v.clone());
                lines.push(Line {
                    text: format!("{v} = {text}"),
                    offset: *offset,
                    subject,
                });
            }
            Event::SetAttr {
                target,
                state,
                offset,
            } => lines.push(Line {
                text: format!(
                    "{}.__dict__.update({})  # BUILD on an imported object",
                    render_named(&t.arena, *target, opts, &names),
                    render_named(&t.arena, *state, opts, &names)
                ),
                offset: *offset,
                subject: t.arena.as_global(*target).map(|g| g.qualified()),
            }),
            Event::InjectSetState {
                target,
                value,
                offset,
            } => lines.push(Line {
                text: format!(
                    "{}.__setstate__ = {}",
                    render_named(&t.arena, *target, opts, &names),
                    render_named(&t.arena, *value, opts, &names)
                ),
                offset: *offset,
                subject: t.arena.as_global(*value).map(|g| g.qualified()),
            }),
            Event::Build {
                target,
                state,
                offset,
            } => {
                if names.contains_key(&match target {
                    Value::Node(id) => *id,
                    _ => NodeId(u32::MAX),
                }) {
                    lines.push(Line {
                        text: format!(
                            "{}.__setstate__({})",
                            render_named(&t.arena, *target, opts, &names),
                            render_named(&t.arena, *state, opts, &names)
                        ),
                        offset: *offset,
                        subject: None,
                    });
                }
            }
            Event::Mutate { target, op, offset } => lines.push(Line {
                text: format!(
                    "{}  # {} writes into this object",
                    render_named(&t.arena, *target, opts, &names),
                    op.name()
                ),
                offset: *offset,
                subject: t.arena.as_global(*target).map(|g| g.qualified()),
            }),
            Event::Ext {
                code,
                offset,
                resolved,
            } => lines.push(Line {
                text: format!(
                    "# EXT {code}: copyreg extension registry{}",
                    if *resolved {
                        " (registered above)"
                    } else {
                        " (nothing registered)"
                    }
                ),
                offset: *offset,
                subject: None,
            }),
            Event::Anomaly { .. } => {}
        }
    }
    let end = match t.result {
        Some(Value::Node(id)) if names.contains_key(&id) => format!("result = {}", names[&id]),
        Some(v) => format!("result = {}", render_named(&t.arena, v, opts, &names)),
        None => "# the pickle does not reach STOP".to_owned(),
    };
    lines.push(Line {
        text: end,
        offset: t.end,
        subject: None,
    });
    lines
}
