//! Reading pickles from a byte stream with a bounded window: several pickles back to back,
//! operands larger than the window skipped rather than held, raw data between pickles
//! (joblib arrays, torch storages) stepped over on request.

use crate::decode::{DecodeError, Instruction, MAX_LINE, MAX_LONG_LINE, Step, decode_one};
use crate::limits::{LimitKind, Limits};
use crate::machine::{Event, Flow, Machine};
use crate::value::{Arena, Value};
use std::io::{self, Read, Seek, SeekFrom};

/// A forward-only byte source. `skip` may seek instead of reading.
pub trait Source: Read {
    /// Skips `n` bytes; returns how many were skipped (fewer at end of input).
    fn skip(&mut self, n: u64) -> io::Result<u64> {
        let mut left = n;
        let mut scratch = [0u8; 8192];
        while left > 0 {
            let want = scratch.len().min(usize::try_from(left).unwrap_or(usize::MAX));
            match self.read(&mut scratch[..want]) {
                Ok(0) => break,
                Ok(got) => left -= got as u64,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(n - left)
    }
}

impl Source for &[u8] {
    fn skip(&mut self, n: u64) -> io::Result<u64> {
        let k = usize::try_from(n).unwrap_or(usize::MAX).min(self.len());
        *self = &self[k..];
        Ok(k as u64)
    }
}

/// A [`Read`] that can only skip by reading (decompressors).
#[derive(Debug)]
pub struct ReadSource<R>(pub R);

impl<R: Read> Read for ReadSource<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.read(buf)
    }
}

impl<R: Read> Source for ReadSource<R> {}

/// A [`Read`] + [`Seek`] that skips by seeking, never reading what it skips.
#[derive(Debug)]
pub struct SeekSource<R> {
    inner: R,
    /// Absolute end of the input, to clamp seeks.
    end: u64,
    pos: u64,
}

impl<R: Read + Seek> SeekSource<R> {
    /// Wraps `inner`, positioned at `pos`, with the input ending at `end`.
    pub fn new(inner: R, pos: u64, end: u64) -> SeekSource<R> {
        SeekSource { inner, end, pos }
    }

    /// The wrapped reader.
    pub fn into_inner(self) -> R {
        self.inner
    }
}

impl<R: Read + Seek> Read for SeekSource<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let room = self.end.saturating_sub(self.pos);
        let n = buf.len().min(usize::try_from(room).unwrap_or(usize::MAX));
        let got = self.inner.read(&mut buf[..n])?;
        self.pos += got as u64;
        Ok(got)
    }
}

impl<R: Read + Seek> Source for SeekSource<R> {
    fn skip(&mut self, n: u64) -> io::Result<u64> {
        let k = n.min(self.end.saturating_sub(self.pos));
        self.inner
            .seek(SeekFrom::Current(i64::try_from(k).unwrap_or(i64::MAX)))?;
        self.pos += k;
        Ok(k)
    }
}

const CHUNK: usize = 256 * 1024;
/// Bytes kept ahead of the decoder so any line-based argument fits.
const LOOKAHEAD: usize = 2 * MAX_LINE + 64;

/// A window over a [`Source`]: decodes instructions, refilling and skipping as needed.
#[derive(Debug)]
pub struct Reader<S> {
    src: S,
    buf: Vec<u8>,
    pos: usize,
    /// Absolute offset of `buf[0]`.
    base: u64,
    /// Absolute end of input when known.
    end: u64,
    eof: bool,
    max_inline: usize,
    bytes_read: u64,
}

impl<S: Source> Reader<S> {
    /// A reader whose first byte is at absolute offset `start`; `len` is the input length from
    /// there, when known.
    pub fn new(src: S, start: u64, len: Option<u64>, max_inline: usize) -> Reader<S> {
        Reader {
            src,
            buf: Vec::new(),
            pos: 0,
            base: start,
            end: len.map_or(u64::MAX, |l| start.saturating_add(l)),
            eof: false,
            max_inline,
            bytes_read: 0,
        }
    }

    /// Absolute offset of the next byte.
    pub fn position(&self) -> u64 {
        self.base + self.pos as u64
    }

    /// Bytes pulled from the source (skips by seeking are not counted).
    pub fn bytes_read(&self) -> u64 {
        self.bytes_read
    }

    /// Gives the source back.
    pub fn into_source(self) -> S {
        self.src
    }

    fn ensure(&mut self, n: usize) -> io::Result<()> {
        if self.buf.len() - self.pos >= n || self.eof {
            return Ok(());
        }
        if self.pos > 0 {
            self.buf.drain(..self.pos);
            self.base += self.pos as u64;
            self.pos = 0;
        }
        // Fill past what is needed so that sources returning a few bytes per read (decompressors)
        // refill rarely; read through a reused scratch buffer, never zero-filling per call.
        let target = n.saturating_add(CHUNK);
        let mut scratch = [0u8; 64 * 1024];
        while self.buf.len() < target && !self.eof {
            let want = scratch.len().min(target - self.buf.len());
            let got = loop {
                match self.src.read(&mut scratch[..want]) {
                    Ok(g) => break g,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(e),
                }
            };
            self.buf.extend_from_slice(&scratch[..got]);
            self.bytes_read += got as u64;
            if got == 0 {
                self.eof = true;
                self.end = self.end.min(self.base + self.buf.len() as u64);
            }
        }
        Ok(())
    }

    /// Up to `n` bytes at the current position, without consuming them.
    pub fn peek(&mut self, n: usize) -> io::Result<&[u8]> {
        self.ensure(n)?;
        let end = (self.pos + n).min(self.buf.len());
        Ok(&self.buf[self.pos..end])
    }

    /// Whether the input is exhausted.
    pub fn at_end(&mut self) -> io::Result<bool> {
        self.ensure(1)?;
        Ok(self.pos >= self.buf.len())
    }

    /// Decodes the next instruction (not consumed until [`Reader::advance`]).
    pub fn next_instruction(&mut self) -> io::Result<Step<'_>> {
        self.ensure(LOOKAHEAD)?;
        // Grow the window (doubling, up to a long text line) while the instruction needs more.
        let mut want = self.max_inline + LOOKAHEAD;
        loop {
            let input_end = self.end;
            if !matches!(
                decode_one(&self.buf, self.pos, self.base, input_end, self.max_inline),
                Step::NeedMore
            ) {
                break;
            }
            let had = self.buf.len() - self.pos;
            if self.eof || had >= MAX_LONG_LINE + LOOKAHEAD {
                break;
            }
            self.ensure(want.max(had + 1))?;
            if self.buf.len() - self.pos == had {
                break;
            }
            want = want.saturating_mul(2).min(MAX_LONG_LINE + LOOKAHEAD);
        }
        let input_end = self.end;
        Ok(decode_one(
            &self.buf,
            self.pos,
            self.base,
            input_end,
            self.max_inline,
        ))
    }

    /// Moves past `n` bytes (an instruction's length, or raw data); returns how many were
    /// really there.
    pub fn advance(&mut self, n: u64) -> io::Result<u64> {
        let in_buf = (self.buf.len() - self.pos) as u64;
        if n <= in_buf {
            self.pos += n as usize;
            return Ok(n);
        }
        let rest = n - in_buf;
        self.base += self.buf.len() as u64;
        self.buf.clear();
        self.pos = 0;
        let skipped = self.src.skip(rest)?;
        self.base += skipped;
        if skipped < rest {
            self.eof = true;
        }
        Ok(in_buf + skipped)
    }

    /// Consumes everything left; returns how many bytes that was.
    pub fn drain(&mut self) -> io::Result<u64> {
        self.advance(u64::MAX)
    }
}

/// Why a pickle ended.
#[derive(Debug, Clone, PartialEq)]
pub enum End {
    /// STOP.
    Stop,
    /// Malformed bytes; everything before was analysed.
    Error(DecodeError),
    /// The input ended without STOP.
    Eof,
    /// A budget was crossed.
    Limit(LimitKind),
    /// The source failed.
    Io(String),
}

/// One pickle, analysed.
#[derive(Debug, Clone)]
pub struct Trace {
    /// Offset of its first opcode.
    pub start: u64,
    /// Offset just past its last decoded instruction.
    pub end: u64,
    /// Highest protocol announced.
    pub protocol: u8,
    /// Instructions executed.
    pub ops: u64,
    /// Values.
    pub arena: Arena,
    /// What the unpickler would do.
    pub events: Vec<Event>,
    /// What `load` would return (when it reached STOP).
    pub result: Option<Value>,
    /// How it ended.
    pub end_reason: End,
    /// Pickles embedded inline in this one's stream (joblib object arrays).
    pub inline: Vec<Trace>,
}

/// What raw data follows a BUILD (formats that interleave data with the pickle stream).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Inline {
    /// Nothing: opcodes continue.
    None,
    /// Raw bytes follow; step over them. `padded`: first a length byte and that many padding
    /// bytes (joblib's alignment).
    Skip {
        /// Alignment padding precedes the data.
        padded: bool,
        /// Data length.
        len: u64,
    },
    /// A complete pickle follows inline; analyse it, then continue.
    Pickle {
        /// Alignment padding precedes the pickle.
        padded: bool,
    },
}

/// Tells the driver about raw data a format embeds after a BUILD.
pub trait InlineHook {
    /// Called after every BUILD with the values so far.
    fn after_build(&mut self, arena: &Arena, events: &[Event], target: Value, state: Value) -> Inline;
}

/// The hook for plain pickles: nothing is ever inline.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoInline;

impl InlineHook for NoInline {
    fn after_build(&mut self, _: &Arena, _: &[Event], _: Value, _: Value) -> Inline {
        Inline::None
    }
}

fn skip_padding<S: Source>(reader: &mut Reader<S>) -> io::Result<bool> {
    let Some(&p) = reader.peek(1)?.first() else {
        return Ok(false);
    };
    let want = 1 + u64::from(p);
    Ok(reader.advance(want)? == want)
}

/// Sees every instruction of a run, in order, beside the symbolic machine: the one way for
/// other interpreters (the converter's strict one) to share this run loop instead of copying
/// it.
pub trait Visitor {
    /// Called for each decoded instruction before the machine executes it.
    fn instruction(&mut self, ins: &Instruction<'_>);
}

/// The visitor that sees nothing.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoVisitor;

impl Visitor for NoVisitor {
    fn instruction(&mut self, _: &Instruction<'_>) {}
}

/// Runs one pickle from the reader's position.
pub fn run_one<S: Source>(
    reader: &mut Reader<S>,
    limits: &Limits,
    hook: &mut dyn InlineHook,
    depth: u32,
) -> Trace {
    run_one_with(reader, limits, hook, &mut NoVisitor, depth)
}

/// [`run_one`], showing every instruction to `visitor` as well (inline pickles included).
pub fn run_one_with<S: Source>(
    reader: &mut Reader<S>,
    limits: &Limits,
    hook: &mut dyn InlineHook,
    visitor: &mut dyn Visitor,
    depth: u32,
) -> Trace {
    let start = reader.position();
    let mut m = Machine::new(limits);
    let mut inline = Vec::new();
    let mut result = None;
    let end_reason = loop {
        let step = match reader.next_instruction() {
            Ok(s) => s,
            Err(e) => break End::Io(e.to_string()),
        };
        let (flow, len) = match step {
            Step::Ok(ins) => {
                let len = ins.len;
                visitor.instruction(&ins);
                (m.step(&ins), len)
            }
            Step::NeedMore => break End::Eof,
            Step::Err(e) => break End::Error(e),
        };
        match reader.advance(len) {
            Ok(n) if n == len => {}
            Ok(_) => break End::Eof,
            Err(e) => break End::Io(e.to_string()),
        }
        match flow {
            Flow::Continue => {}
            Flow::Stop(v) => {
                result = Some(v);
                break End::Stop;
            }
            Flow::Halt(kind) => break End::Limit(kind),
            Flow::Built { target, state } => match hook.after_build(m.arena(), m.events(), target, state) {
                Inline::None => {}
                Inline::Skip { padded, len: n } => {
                    if padded && !skip_padding(reader).unwrap_or(false) {
                        break End::Eof;
                    }
                    match reader.advance(n) {
                        Ok(k) if k == n => {}
                        Ok(_) => break End::Eof,
                        Err(e) => break End::Io(e.to_string()),
                    }
                }
                Inline::Pickle { padded } => {
                    if padded && !skip_padding(reader).unwrap_or(false) {
                        break End::Eof;
                    }
                    if depth >= limits.max_nested_depth {
                        break End::Limit(LimitKind::Ops);
                    }
                    let t = run_one_with(reader, limits, hook, visitor, depth + 1);
                    let ok = t.end_reason == End::Stop;
                    inline.push(t);
                    if !ok {
                        break End::Eof;
                    }
                }
            },
        }
    };
    let protocol = m.protocol();
    let ops = m.ops();
    let (arena, events) = m.finish();
    Trace {
        start,
        end: reader.position(),
        protocol,
        ops,
        arena,
        events,
        result,
        end_reason,
        inline,
    }
}

/// Every pickle in a stream, and what follows the last one.
#[derive(Debug, Clone)]
pub struct StreamScan {
    /// The pickles, in order.
    pub pickles: Vec<Trace>,
    /// Bytes after the last pickle that are no pickle: (offset, length).
    pub trailing: Option<(u64, u64)>,
    /// Bytes pulled from the source.
    pub bytes_read: u64,
}

/// Most pickles read back to back from one stream.
pub const MAX_PICKLES_PER_STREAM: usize = 1024;

/// Analyses every pickle in a stream: after each STOP, if what follows looks like another
/// pickle it is analysed too; otherwise the rest is reported as trailing data.
pub fn scan_stream<S: Source>(
    src: S,
    start: u64,
    len: Option<u64>,
    limits: &Limits,
    hook: &mut dyn InlineHook,
) -> StreamScan {
    let mut reader = Reader::new(src, start, len, limits.max_inline);
    let mut pickles = Vec::new();
    let mut trailing = None;
    loop {
        let t = run_one(&mut reader, limits, hook, 0);
        let stopped = t.end_reason == End::Stop;
        pickles.push(t);
        if !stopped || reader.at_end().unwrap_or(true) {
            break;
        }
        let more = reader
            .peek(4096)
            .map(crate::sniff::looks_like_pickle)
            .unwrap_or(false);
        if !more || pickles.len() >= MAX_PICKLES_PER_STREAM {
            let at = reader.position();
            let n = reader.drain().unwrap_or(0);
            trailing = Some((at, n));
            break;
        }
    }
    StreamScan {
        pickles,
        trailing,
        bytes_read: reader.bytes_read(),
    }
}

/// Decodes every instruction of a byte slice (for disassembly): stops at the first error.
pub fn instructions(data: &[u8]) -> impl Iterator<Item = Result<Instruction<'_>, DecodeError>> {
    let mut pos = 0usize;
    let mut done = false;
    std::iter::from_fn(move || {
        if done || pos >= data.len() {
            return None;
        }
        match decode_one(data, pos, 0, data.len() as u64, data.len()) {
            Step::Ok(ins) => {
                pos = pos.saturating_add(usize::try_from(ins.len).unwrap_or(usize::MAX));
                Some(Ok(ins))
            }
            Step::Err(e) => {
                done = true;
                Some(Err(e))
            }
            Step::NeedMore => None,
        }
    })
}
