//! A Python pickle decoder and symbolic machine that never executes anything.
//!
//! - [`decode`]: every opcode of protocols 0-5, one instruction at a time, with offsets,
//!   zero-copy over a byte window, lenient about where it stops.
//! - [`machine`]: the unpickler's stack, memo and marks, run symbolically; it records every
//!   import and call the real unpickler would make as an [`Event`].
//! - [`stream`]: several pickles per stream, bounded memory whatever the file size, raw data
//!   between pickles stepped over on request.
//! - [`render`]: symbolic values as Python-like text for evidence.
//! - [`assemble`]: build pickles opcode by opcode (tests, fuzz seeds, documentation).
//!
//! This crate knows nothing about policy: which names are dangerous is decided elsewhere.
//!
//! ```
//! use modelward_pickle::{Limits, NoInline, scan_stream, Event};
//! let data: &[u8] = b"cos\nsystem\n(S'id'\ntR.";
//! let scan = scan_stream(data, 0, Some(data.len() as u64), &Limits::default(), &mut NoInline);
//! let trace = &scan.pickles[0];
//! let imports: Vec<String> = trace.events.iter().filter_map(|e| match e {
//!     Event::Import { global, .. } => trace.arena.as_global(modelward_pickle::Value::Node(*global)).map(|g| g.qualified()),
//!     _ => None,
//! }).collect();
//! assert_eq!(imports, ["os.system"]);
//! ```
#![forbid(unsafe_code)]

pub mod assemble;
pub mod compat;
pub mod decode;
pub mod disasm;
pub mod limits;
pub mod machine;
pub mod opcode;
pub mod pseudocode;
pub mod render;
pub mod sniff;
pub mod stream;
pub mod value;

pub use decode::{Arg, DecodeError, DecodeErrorKind, Instruction};
pub use limits::{LimitKind, Limits};
pub use machine::{Anomaly, Event, Flow, Machine};
pub use opcode::Opcode;
pub use render::{RenderOptions, render, render_with};
pub use sniff::looks_like_pickle;
pub use stream::{
    End, Inline, InlineHook, NoInline, NoVisitor, ReadSource, Reader, SeekSource, Source, StreamScan, Trace,
    Visitor, run_one, run_one_with, scan_stream,
};
pub use value::{Arena, BytesKind, Call, CallKind, Global, Node, NodeId, Value};
