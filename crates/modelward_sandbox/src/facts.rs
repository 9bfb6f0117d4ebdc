//! Events and the process outcome as facts for the policy (`DYN…` rules in the catalog).

use crate::{Detonation, Outcome};
use modelward_diagnostics::Fact;

/// The rule for an event kind, and what the message says it tried.
fn rule_for(kind: &str) -> Option<(&'static str, &'static str)> {
    Some(match kind {
        "process" => ("DYN101", "tried to start a process"),
        "network" => ("DYN102", "tried to use the network"),
        "write" => ("DYN103", "tried to write outside the sandbox's private folders"),
        "write-private" => ("DYN104", "wrote in the sandbox's private /tmp or home"),
        "read" => ("DYN105", "tried to read a file that is not the model"),
        "code" => ("DYN106", "ran dynamic code"),
        "dlopen" => ("DYN107", "tried to load a native library"),
        "env" => ("DYN108", "read the environment"),
        "import" => ("DYN109", "imported a module that names a capability"),
        "signal" => ("DYN110", "tried to send a signal"),
        "tamper" => ("DYN111", "hooked the interpreter"),
        "limit" => ("DYN202", "hit a sandbox limit"),
        "error" => ("DYN204", "raised"),
        "unavailable" => ("DYN207", "was not attempted"),
        _ => return None,
    })
}

const SIGKILL: i32 = 9;
const SIGXCPU: i32 = 24;
const SIGXFSZ: i32 = 25;

/// One fact per distinct (rule, call), in the order first seen, with a count.
pub(crate) fn facts(d: &Detonation) -> Vec<Fact> {
    let mut seen: Vec<(&'static str, String, String, u64)> = Vec::new();
    let mut standins: Vec<String> = Vec::new();
    let mut truncated = d.dropped_events > 0;
    for e in &d.events {
        match e.kind.as_str() {
            "standin" => {
                if standins.len() < 20 {
                    standins.push(e.event.clone());
                }
                continue;
            }
            "truncated" => {
                truncated = true;
                continue;
            }
            _ => {}
        }
        let Some((rule, what)) = rule_for(&e.kind) else {
            continue;
        };
        let call = e.call();
        match seen.iter_mut().find(|(r, c, _, _)| *r == rule && *c == call) {
            Some(entry) => entry.3 += 1,
            None => {
                // Imports are named by the module, everything else by the call.
                let subject = match e.kind.as_str() {
                    "import" => e.args.join(", "),
                    _ => e.event.clone(),
                };
                seen.push((rule, call, format!("the load {what}: {subject}"), 1))
            }
        }
    }
    let mut out: Vec<Fact> = seen
        .into_iter()
        .map(|(rule, call, msg, n)| {
            let msg = if n > 1 { format!("{msg} ({n} times)") } else { msg };
            Fact::new(rule, msg).evidence(call)
        })
        .collect();
    if !standins.is_empty() {
        out.push(
            Fact::new(
                "DYN206",
                format!(
                    "{} framework names were replaced by recording stand-ins",
                    standins.len()
                ),
            )
            .evidence(standins.join(", ")),
        );
    }
    if truncated {
        out.push(Fact::new(
            "DYN205",
            format!(
                "events beyond the limit were dropped ({} lines)",
                d.dropped_events
            ),
        ));
    }
    let secs = d.elapsed.as_secs_f64();
    match d.outcome {
        Outcome::Finished => {}
        Outcome::TimedOut => out.push(Fact::new(
            "DYN201",
            format!("the load was still running after {secs:.1} s and the sandbox was killed"),
        )),
        Outcome::Signalled(SIGXCPU) => {
            out.push(Fact::new("DYN202", "the load used up its CPU-time limit (SIGXCPU)"))
        }
        Outcome::Signalled(SIGXFSZ) => {
            out.push(Fact::new("DYN202", "the load exceeded the file-size limit (SIGXFSZ)"))
        }
        Outcome::Signalled(SIGKILL) => out.push(Fact::new(
            "DYN203",
            "the loader was killed (SIGKILL) before the load finished: a hard limit or the kernel's OOM killer",
        )),
        Outcome::Signalled(sig) => out.push(Fact::new(
            "DYN203",
            format!("the loader died from signal {sig} before the load finished"),
        )),
        Outcome::Exited(code) => out.push(Fact::new(
            "DYN203",
            format!("the loader exited with code {code} from inside the load"),
        )),
    }
    out
}
