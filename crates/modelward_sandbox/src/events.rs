//! The loader's events: JSON lines read from the sandbox, bounded in count and bytes whatever
//! the sample writes.

use serde::{Deserialize, Serialize};
use std::io::Read;

/// One thing the load did, as the loader's audit hook saw it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// What it is: `process`, `network`, `write`, `write-private`, `read`, `code`, `dlopen`,
    /// `env`, `import`, `signal`, `tamper`, `global`, `standin`, `fallback`, `unavailable`,
    /// `start`, `result`, `error`, `limit`, `truncated`, `done`.
    pub kind: String,
    /// The audit event or loader step, e.g. `os.system`, `socket.connect`, `open`.
    pub event: String,
    /// The event's arguments, rendered by the loader (bounded, never by calling the sample's
    /// code).
    #[serde(default)]
    pub args: Vec<String>,
}

impl Event {
    /// `os.system('echo hi')`.
    pub fn call(&self) -> String {
        format!("{}({})", self.event, self.args.join(", "))
    }
}

/// Bounds on what is kept from the sandbox's output.
#[derive(Debug, Clone, Copy)]
pub struct EventLimits {
    /// Events kept.
    pub max_events: usize,
    /// Bytes of one event line kept (longer lines are dropped and counted).
    pub max_line: usize,
    /// Bytes of event lines kept in total.
    pub max_bytes: usize,
}

/// What was read from the event channel.
#[derive(Debug, Default)]
pub struct Collected {
    /// Parsed events, in order.
    pub events: Vec<Event>,
    /// Lines dropped: over a limit, or not an event.
    pub dropped: u64,
}

/// Reads the whole channel (until the sandbox closes it), keeping what the limits allow and
/// draining the rest so the sandbox never blocks on a full pipe.
pub fn collect(mut r: impl Read, limits: EventLimits) -> Collected {
    let mut out = Collected::default();
    let mut kept_bytes = 0usize;
    let mut line: Vec<u8> = Vec::new();
    let mut overlong = false;
    let mut buf = [0u8; 8192];
    let mut finish = |line: &mut Vec<u8>, overlong: &mut bool, out: &mut Collected| {
        if *overlong {
            out.dropped += 1;
        } else if !line.is_empty() {
            kept_bytes += line.len();
            let parsed = (out.events.len() < limits.max_events && kept_bytes <= limits.max_bytes)
                .then(|| serde_json::from_slice::<Event>(line).ok())
                .flatten();
            match parsed {
                Some(e) => out.events.push(e),
                None => out.dropped += 1,
            }
        }
        line.clear();
        *overlong = false;
    };
    loop {
        let n = match r.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => break,
        };
        for &b in &buf[..n] {
            if b == b'\n' {
                finish(&mut line, &mut overlong, &mut out);
            } else if line.len() < limits.max_line {
                line.push(b);
            } else {
                overlong = true;
            }
        }
    }
    finish(&mut line, &mut overlong, &mut out);
    out
}

/// Keeps the first `max` bytes of a stream and drains the rest.
pub fn head(mut r: impl Read, max: usize) -> Vec<u8> {
    let mut kept = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        match r.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                let room = max.saturating_sub(kept.len());
                kept.extend_from_slice(&buf[..n.min(room)]);
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => break,
        }
    }
    kept
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: EventLimits = EventLimits {
        max_events: 2,
        max_line: 100,
        max_bytes: 1000,
    };

    #[test]
    fn keeps_what_the_limits_allow_and_counts_the_rest() {
        let mut input = String::new();
        input.push_str(r#"{"kind":"process","event":"os.system","args":["'id'"]}"#);
        input.push('\n');
        input.push_str(&"x".repeat(500));
        input.push('\n');
        input.push_str("not json\n");
        input.push_str(r#"{"kind":"done","event":"exit","args":[]}"#);
        input.push('\n');
        input.push_str(r#"{"kind":"done","event":"exit","args":[]}"#);
        let c = collect(input.as_bytes(), LIMITS);
        assert_eq!(c.events.len(), 2);
        assert_eq!(c.events[0].call(), "os.system('id')");
        assert_eq!(c.dropped, 3);
    }

    #[test]
    fn head_drains_everything() {
        let data = vec![b'a'; 100_000];
        assert_eq!(head(&data[..], 10).len(), 10);
    }
}
