//! Pickle streams: every pickle of a stream (several back to back; PyTorch's legacy five and
//! its tar records; joblib's inline arrays) judged by the policy, then the pickles hidden in
//! their constants.

use super::{Engine, Hint};
use crate::nested;
use modelward_diagnostics::{Fact, Location};
use modelward_formats::joblib::JoblibHook;
use modelward_formats::torch::{self, Legacy, StreamLayout};
use modelward_formats::{Format, SNIFF_LEN};
use modelward_pickle::machine::Event;
use modelward_pickle::stream::MAX_PICKLES_PER_STREAM;
use modelward_pickle::{End, Node, Reader, Source, Trace, Value, looks_like_pickle, run_one};
use modelward_policy::PickleContext;

pub(super) fn scan<S: Source>(
    cx: &mut Engine<'_>,
    src: S,
    len: Option<u64>,
    loc: &Location,
    depth: u32,
    hint: Hint,
) -> Format {
    let limits = cx.limits();
    let mut reader = Reader::new(src, 0, len, limits.pickle.max_inline);
    let mut hook = JoblibHook::default();
    let mut traces: Vec<Trace> = Vec::new();
    let mut trailing = None;
    let mut legacy = Legacy::No;
    let mut expected: Option<u64> = None;
    loop {
        let t = run_one(&mut reader, &limits.pickle, &mut hook, 0);
        let stopped = t.end_reason == End::Stop;
        if hint.layout != StreamLayout::Pickles && stopped {
            // Step over the raw record that follows each pickle of PyTorch's tar members.
            match expected {
                None => {
                    expected = Some(match t.result {
                        Some(Value::Int(n)) if n >= 0 => n as u64,
                        _ => 0,
                    })
                }
                Some(_) => {
                    let storage_type = t
                        .result
                        .and_then(|v| t.arena.items(v).get(2).copied())
                        .and_then(|v| t.arena.as_global(v))
                        .map(|g| g.name.clone());
                    let next = reader.peek(8).map(<[u8]>::to_vec).unwrap_or_default();
                    let raw = torch::tar_record_len(hint.layout, storage_type.as_deref(), &next);
                    match raw {
                        Some(n) if reader.advance(n).unwrap_or(0) == n => {}
                        _ => {
                            traces.push(t);
                            cx.fact(
                                Fact::new(
                                    "PKL501",
                                    "a PyTorch tar record does not have the size its header gives",
                                )
                                .at(reader.position()),
                                loc,
                            );
                            break;
                        }
                    }
                }
            }
            let done = expected.is_some_and(|n| traces.len() as u64 >= n);
            traces.push(t);
            if done || reader.at_end().unwrap_or(true) {
                break;
            }
            continue;
        }
        traces.push(t);
        if traces.len() == 2 {
            legacy = torch::legacy(&traces[0], traces.get(1));
        }
        if legacy != Legacy::No && traces.len() == 5 {
            // What follows is raw tensor storage, read by size and never unpickled.
            break;
        }
        if !stopped || reader.at_end().unwrap_or(true) || cx.over_time(loc) {
            break;
        }
        let more = reader.peek(SNIFF_LEN).map(looks_like_pickle).unwrap_or(false);
        if !more || traces.len() >= MAX_PICKLES_PER_STREAM {
            let at = reader.position();
            trailing = Some((at, reader.drain().unwrap_or(0)));
            break;
        }
    }
    let ctx = PickleContext {
        torch: hint.torch || legacy != Legacy::No,
    };
    if ctx.torch {
        super::deep::record_storages(cx, loc, &traces);
    }
    let mark = cx.mark();
    if legacy == Legacy::BadMagic {
        cx.fact(
            Fact::new(
                "TRC101",
                "legacy PyTorch file whose first pickle is not the literal magic number",
            )
            .at(traces[0].start)
            .evidence(
                traces[0]
                    .result
                    .map(|v| modelward_pickle::render(&traces[0].arena, v))
                    .unwrap_or_default(),
            ),
            loc,
        );
    }
    for t in &traces {
        let facts = cx.policy().pickle_facts(t, ctx);
        cx.facts(facts, loc);
        nested_pickles(cx, t, loc, depth, hint);
    }
    cx.facts(std::mem::take(&mut hook.facts), loc);
    if let Some((at, n)) = trailing
        && n > 0
    {
        cx.fact(
            Fact::new(
                "PKL502",
                format!("{n} bytes follow the last pickle and are not a pickle"),
            )
            .at(at),
            loc,
        );
    }
    // A tensor storage that merely starts like a pickle is noise unless it is a well-formed one.
    if hint.storage
        && !traces
            .iter()
            .all(|t| t.end_reason == End::Stop && !t.events.is_empty())
    {
        cx.truncate(mark);
        return Format::TensorData;
    }
    let format = if legacy != Legacy::No {
        Format::PytorchLegacy
    } else if hook.arrays > 0 {
        Format::Joblib
    } else {
        Format::Pickle
    };
    // Pickles hidden in constants are shown inside the one that holds them.
    if hint.nested == 0 {
        cx.found_pickles(loc, ctx.torch, traces);
    }
    format
}

fn nested_pickles(cx: &mut Engine<'_>, t: &Trace, loc: &Location, depth: u32, hint: Hint) {
    let limits = cx.limits();
    if hint.nested >= limits.pickle.max_nested_depth {
        return;
    }
    for c in nested::candidates(&t.arena, limits.max_nested) {
        let fed = t.events.iter().any(|e| match e {
            Event::Call { call, .. } => match t.arena.get(*call) {
                Some(Node::Call(call)) => t.arena.items(call.args).contains(&Value::Node(c.node)),
                _ => false,
            },
            _ => false,
        });
        let well_formed = {
            let mut probe = Reader::new(
                &c.data[..],
                0,
                Some(c.data.len() as u64),
                limits.pickle.max_inline,
            );
            run_one(&mut probe, &limits.pickle, &mut modelward_pickle::NoInline, 0).end_reason == End::Stop
        };
        if !(fed || well_formed) {
            continue;
        }
        let name = format!("{} constant @{}", c.encoding, c.offset);
        let nloc = loc.member(name);
        cx.fact(
            Fact::new(
                "PKL401",
                format!(
                    "a {} constant of {} bytes is a pickle{}",
                    c.encoding,
                    c.data.len(),
                    if fed { " passed to a call" } else { "" }
                ),
            )
            .at(c.offset),
            loc,
        );
        let data: &[u8] = &c.data;
        scan(
            cx,
            data,
            Some(data.len() as u64),
            &nloc,
            depth,
            Hint {
                nested: hint.nested + 1,
                ..Hint::default()
            },
        );
    }
}
