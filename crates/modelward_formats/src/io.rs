//! Small I/O adapters: a window onto part of a seekable input, a byte counter, a bounded
//! decompressor.

use std::io::{self, Read, Seek, SeekFrom};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// Anything seekable modelward reads from.
pub trait ReadSeek: Read + Seek {}
impl<T: Read + Seek> ReadSeek for T {}

/// A `Read + Seek` view of `[start, start + len)` of a parent.
#[derive(Debug)]
pub struct Window<'a, R: ?Sized> {
    inner: &'a mut R,
    start: u64,
    len: u64,
    pos: u64,
}

impl<'a, R: ReadSeek + ?Sized> Window<'a, R> {
    /// A window onto `inner` (its position is changed as the window is read).
    pub fn new(inner: &'a mut R, start: u64, len: u64) -> Window<'a, R> {
        Window {
            inner,
            start,
            len,
            pos: 0,
        }
    }

    /// Length of the window.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether the window is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl<R: ReadSeek + ?Sized> Read for Window<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let room = self.len.saturating_sub(self.pos);
        if room == 0 {
            return Ok(0);
        }
        let n = buf.len().min(usize::try_from(room).unwrap_or(usize::MAX));
        self.inner.seek(SeekFrom::Start(self.start + self.pos))?;
        let got = self.inner.read(&mut buf[..n])?;
        self.pos += got as u64;
        Ok(got)
    }
}

impl<R: ReadSeek + ?Sized> Seek for Window<'_, R> {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let target = match to {
            SeekFrom::Start(p) => Some(p),
            SeekFrom::End(d) => self.len.checked_add_signed(d),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
        };
        match target {
            Some(p) => {
                self.pos = p;
                Ok(p)
            }
            None => Err(io::Error::new(io::ErrorKind::InvalidInput, "seek before start")),
        }
    }
}

/// Counts bytes read through it (shared, so nested readers add to one total).
#[derive(Debug)]
pub struct Counting<R> {
    inner: R,
    count: Arc<AtomicU64>,
}

impl<R> Counting<R> {
    /// Wraps `inner`; `count` receives every byte read.
    pub fn new(inner: R, count: Arc<AtomicU64>) -> Counting<R> {
        Counting { inner, count }
    }
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

impl<R: Seek> Seek for Counting<R> {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        self.inner.seek(to)
    }
}

/// Why a bounded decompressor stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BombKind {
    /// More output than the size budget.
    Size,
    /// Output larger than `ratio` times the input consumed (checked after the first MiB).
    Ratio,
}

/// Shared state of a [`Bounded`] reader, readable after the reader is gone.
#[derive(Debug, Default)]
pub struct BoundState {
    /// Bytes produced.
    pub produced: AtomicU64,
    /// Set when a budget stopped the stream (1 = size, 2 = ratio).
    pub tripped: AtomicU64,
}

impl BoundState {
    /// Which budget tripped, if any.
    pub fn bomb(&self) -> Option<BombKind> {
        match self.tripped.load(Ordering::Relaxed) {
            1 => Some(BombKind::Size),
            2 => Some(BombKind::Ratio),
            _ => None,
        }
    }
}

/// A decompressed stream that ends (as if at EOF) once it has produced `max` bytes or more than
/// `ratio` times what `consumed` says was read from the compressed input.
pub struct Bounded<R> {
    inner: R,
    max: u64,
    ratio: u64,
    consumed: Arc<AtomicU64>,
    state: Arc<BoundState>,
}

impl<R> Bounded<R> {
    /// Wraps a decompressor.
    pub fn new(
        inner: R,
        max: u64,
        ratio: u64,
        consumed: Arc<AtomicU64>,
        state: Arc<BoundState>,
    ) -> Bounded<R> {
        Bounded {
            inner,
            max,
            ratio,
            consumed,
            state,
        }
    }
}

impl<R: Read> Read for Bounded<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.state.tripped.load(Ordering::Relaxed) != 0 {
            return Ok(0);
        }
        let produced = self.state.produced.load(Ordering::Relaxed);
        if produced >= self.max {
            self.state.tripped.store(1, Ordering::Relaxed);
            return Ok(0);
        }
        let room = usize::try_from(self.max - produced).unwrap_or(usize::MAX);
        let n = buf.len().min(room);
        let got = self.inner.read(&mut buf[..n])?;
        let produced = produced + got as u64;
        self.state.produced.store(produced, Ordering::Relaxed);
        let consumed = self.consumed.load(Ordering::Relaxed).max(1);
        if produced > (1 << 20) && produced / consumed > self.ratio {
            self.state.tripped.store(2, Ordering::Relaxed);
        }
        Ok(got)
    }
}

/// Counts bytes pulled from a compressed input (for the ratio check).
pub struct Tally<R> {
    inner: R,
    count: Arc<AtomicU64>,
}

impl<R> Tally<R> {
    /// Wraps the compressed input.
    pub fn new(inner: R, count: Arc<AtomicU64>) -> Tally<R> {
        Tally { inner, count }
    }
}

impl<R: Read> Read for Tally<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}
