//! The symbolic machine over a whole stream (several pickles back to back), then everything a
//! report would do with the result: render every value an event holds, and turn each trace
//! into policy facts.
//!
//! A second pass uses an inline hook that claims raw data or an inline pickle after some
//! BUILDs (decided from the BUILD's offset), the way joblib's hook does, to reach the skip and
//! nested-pickle paths of the stream driver.
#![no_main]

use libfuzzer_sys::fuzz_target;
use modelward_pickle::{
    Arena, Event, Inline, InlineHook, Limits, NoInline, Trace, Value, machine::Anomaly, render, scan_stream,
};
use modelward_policy::Policy;
use modelward_policy::pickle::PickleContext;
use std::sync::OnceLock;

static POLICY: OnceLock<Policy> = OnceLock::new();

fn show(arena: &Arena, v: Value) {
    let s = render(arena, v);
    // render's output is bounded whatever the value graph (RenderOptions::default().max_len
    // characters plus the ellipsis).
    assert!(
        s.chars().count() <= 401,
        "render produced {} chars",
        s.chars().count()
    );
}

fn render_trace(t: &Trace) {
    let a = &t.arena;
    for e in &t.events {
        match e {
            Event::Import { global, .. } => show(a, Value::Node(*global)),
            Event::Call { call, .. } => show(a, Value::Node(*call)),
            Event::Build { target, state, .. } | Event::SetAttr { target, state, .. } => {
                show(a, *target);
                show(a, *state);
            }
            Event::InjectSetState { target, value, .. } => {
                show(a, *target);
                show(a, *value);
            }
            Event::Mutate { target, .. } => show(a, *target),
            Event::Anomaly { kind, .. } => match kind {
                Anomaly::NonConstantStackGlobal { module, name }
                | Anomaly::StackGlobalType { module, name } => {
                    show(a, *module);
                    show(a, *name);
                }
                _ => {}
            },
            // Variants added later still build; they are covered by the Debug format below.
            #[allow(unreachable_patterns)]
            _ => {}
        }
        let _ = format!("{e:?}");
    }
    if let Some(r) = t.result {
        show(a, r);
    }
    for inner in &t.inline {
        render_trace(inner);
    }
}

/// Claims inline data after some BUILDs, chosen by the BUILD's offset.
struct Chaos;

impl InlineHook for Chaos {
    fn after_build(&mut self, _: &Arena, events: &[Event], _: Value, _: Value) -> Inline {
        let off = events
            .iter()
            .rev()
            .find_map(|e| match e {
                Event::Build { offset, .. } | Event::SetAttr { offset, .. } => Some(*offset),
                _ => None,
            })
            .unwrap_or(0);
        match off % 5 {
            0 => Inline::Skip {
                padded: false,
                len: off % 97,
            },
            1 => Inline::Skip {
                padded: true,
                len: off.wrapping_mul(0x9e37_79b9),
            },
            2 => Inline::Pickle { padded: off % 2 == 0 },
            _ => Inline::None,
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let policy = POLICY.get_or_init(Policy::builtin);
    let limits = Limits::default();
    let len = Some(data.len() as u64);

    let scan = scan_stream(data, 0, len, &limits, &mut NoInline);
    assert!(scan.bytes_read <= data.len() as u64);
    for t in &scan.pickles {
        assert!(
            t.start <= t.end && t.end <= data.len() as u64,
            "trace outside the input"
        );
        render_trace(t);
        // One policy pass (it dominates the cost): the context is chosen by the input.
        let torch = data.len() % 2 == 1;
        let _ = policy.pickle_facts(t, PickleContext { torch });
    }

    let scan = scan_stream(data, 0, len, &limits, &mut Chaos);
    for t in &scan.pickles {
        render_trace(t);
    }
});
