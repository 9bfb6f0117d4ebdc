//! Moving tensor bytes from the source to the output with bounded memory: contiguous runs in
//! fixed-size chunks; strided views gathered a chunk of output at a time, reading the source in
//! offset order with nearby reads merged (so a transposed matrix costs one pass over its
//! storage, not one per row); big-endian sources swapped chunk by chunk.

use crate::dtype::swap_in_place;
use crate::plan::TensorPlan;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};

/// Bytes moved per chunk (a multiple of every element size).
pub const CHUNK: usize = 4 << 20;
/// Runs at least this long are copied straight through.
const DIRECT: u64 = 64 << 10;
/// Sorted reads closer than this are merged into one read.
const GAP: u64 = 4 << 10;
/// Longest merged read.
const WINDOW: u64 = 1 << 20;

/// The files tensors are read from: the input, and scratch files holding decompressed members.
#[derive(Debug)]
pub(crate) struct Sources {
    pub files: Vec<File>,
    /// Bytes per chunk handed to the sink ([`CHUNK`]; smaller in tests).
    pub chunk: usize,
    offs: Vec<u64>,
    order: Vec<u32>,
    scratch: Vec<u8>,
}

/// A region resolved to a file and the offset of its first byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct At {
    pub file: usize,
    pub start: u64,
    pub len: u64,
}

impl Sources {
    pub fn new(files: Vec<File>) -> Sources {
        Sources {
            files,
            chunk: CHUNK,
            offs: Vec::new(),
            order: Vec::new(),
            scratch: Vec::new(),
        }
    }

    /// Reads exactly `buf.len()` bytes at `off` of a file.
    pub fn read_direct(&mut self, file: usize, off: u64, buf: &mut [u8]) -> io::Result<()> {
        let f = &mut self.files[file];
        f.seek(SeekFrom::Start(off))?;
        f.read_exact(buf)
    }

    /// Fills `out` with the `run`-byte pieces at the queued offsets (`out[i*run..]` from
    /// `offs[i]`), reading in offset order and merging nearby reads; clears the queue.
    fn fetch_queued(&mut self, file: usize, run: u64, out: &mut Vec<u8>) -> io::Result<()> {
        let n = self.offs.len();
        let run_us = run as usize;
        out.clear();
        out.resize(n * run_us, 0);
        self.order.clear();
        self.order.extend(0..n as u32);
        let offs = &self.offs;
        self.order.sort_unstable_by_key(|&i| offs[i as usize]);
        let mut j = 0;
        while j < n {
            let lo = self.offs[self.order[j] as usize];
            let mut hi = lo + run;
            let mut k = j + 1;
            while k < n {
                let o = self.offs[self.order[k] as usize];
                let end = hi.max(o + run);
                if o > hi + GAP || end - lo > WINDOW {
                    break;
                }
                hi = end;
                k += 1;
            }
            self.scratch.resize((hi - lo) as usize, 0);
            let f = &mut self.files[file];
            f.seek(SeekFrom::Start(lo))?;
            f.read_exact(&mut self.scratch)?;
            for &i in &self.order[j..k] {
                let i = i as usize;
                let at = (self.offs[i] - lo) as usize;
                out[i * run_us..(i + 1) * run_us].copy_from_slice(&self.scratch[at..at + run_us]);
            }
            j = k;
        }
        self.offs.clear();
        Ok(())
    }
}

/// Emits a tensor's bytes in C order, little-endian, in chunks of at most [`CHUNK`] bytes.
/// Trailing dimensions that are contiguous in the source are read as one run; the rest is
/// walked with an odometer.
pub(crate) fn emit(
    src: &mut Sources,
    at: At,
    t: &TensorPlan,
    buf: &mut Vec<u8>,
    sink: &mut dyn FnMut(&[u8]) -> io::Result<()>,
) -> io::Result<()> {
    let es = t.dtype.size();
    let unit = t.dtype.swap_unit();
    if t.numel() == 0 {
        return Ok(());
    }
    check_extent(at, t)?;
    let base = at.start + t.byte_offset;
    // Drop size-1 dimensions (their stride is meaningless), strides in bytes.
    let dims: Vec<(u64, u64)> = t
        .shape
        .iter()
        .zip(&t.strides)
        .filter(|(n, _)| **n != 1)
        .map(|(&n, &s)| (n, s * es))
        .collect();
    let mut run = es;
    let mut k = dims.len();
    while k > 0 && dims[k - 1].1 == run {
        run *= dims[k - 1].0;
        k -= 1;
    }
    let outer = &dims[..k];
    let chunk = src.chunk as u64;
    let per_chunk = (chunk / run).max(1) as usize;
    let mut idx = vec![0u64; outer.len()];
    let mut pos = base;
    loop {
        if run >= DIRECT {
            let mut done = 0u64;
            while done < run {
                let n = (run - done).min(chunk) as usize;
                buf.resize(n, 0);
                src.read_direct(at.file, pos + done, buf)?;
                swap_if(buf, t.swap, unit);
                sink(buf)?;
                done += n as u64;
            }
        } else {
            src.offs.push(pos);
            if src.offs.len() >= per_chunk {
                src.fetch_queued(at.file, run, buf)?;
                swap_if(buf, t.swap, unit);
                sink(buf)?;
            }
        }
        // Next outer index.
        let mut d = outer.len();
        loop {
            if d == 0 {
                if !src.offs.is_empty() {
                    src.fetch_queued(at.file, run, buf)?;
                    swap_if(buf, t.swap, unit);
                    sink(buf)?;
                }
                return Ok(());
            }
            d -= 1;
            idx[d] += 1;
            pos += outer[d].1;
            if idx[d] < outer[d].0 {
                break;
            }
            pos -= outer[d].1 * outer[d].0;
            idx[d] = 0;
        }
    }
}

/// The same bytes as [`emit`], computed the slow and obvious way (every element's offset from
/// its full index and the strides, no merging of dimensions) for verification; C-contiguous
/// tensors are one range.
pub(crate) fn emit_naive(
    src: &mut Sources,
    at: At,
    t: &TensorPlan,
    buf: &mut Vec<u8>,
    sink: &mut dyn FnMut(&[u8]) -> io::Result<()>,
) -> io::Result<()> {
    let es = t.dtype.size();
    let unit = t.dtype.swap_unit();
    let numel = t.numel();
    if numel == 0 {
        return Ok(());
    }
    check_extent(at, t)?;
    let base = at.start + t.byte_offset;
    let chunk = src.chunk as u64;
    if t.is_c_contiguous() {
        let total = numel * es;
        let mut done = 0u64;
        while done < total {
            let n = (total - done).min(chunk) as usize;
            buf.resize(n, 0);
            src.read_direct(at.file, base + done, buf)?;
            swap_if(buf, t.swap, unit);
            sink(buf)?;
            done += n as u64;
        }
        return Ok(());
    }
    let per_chunk = (chunk / es).max(1) as usize;
    let mut idx = vec![0u64; t.shape.len()];
    for _ in 0..numel {
        let off: u64 = idx.iter().zip(&t.strides).map(|(i, s)| i * s).sum::<u64>() * es;
        src.offs.push(base + off);
        if src.offs.len() >= per_chunk {
            src.fetch_queued(at.file, es, buf)?;
            swap_if(buf, t.swap, unit);
            sink(buf)?;
        }
        for d in (0..idx.len()).rev() {
            idx[d] += 1;
            if idx[d] < t.shape[d] {
                break;
            }
            idx[d] = 0;
        }
    }
    if !src.offs.is_empty() {
        src.fetch_queued(at.file, es, buf)?;
        swap_if(buf, t.swap, unit);
        sink(buf)?;
    }
    Ok(())
}

fn swap_if(buf: &mut [u8], swap: bool, unit: usize) {
    if swap {
        swap_in_place(buf, unit);
    }
}

fn check_extent(at: At, t: &TensorPlan) -> io::Result<()> {
    let (_, end) = t.extent();
    if end > at.len {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{} reads {end} bytes of a source region of {}", t.name, at.len),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dtype::Dtype;
    use std::io::Write;

    fn plan(shape: &[u64], strides: &[u64], off: u64, dtype: Dtype, swap: bool) -> TensorPlan {
        TensorPlan {
            name: "t".into(),
            dtype,
            shape: shape.into(),
            strides: strides.into(),
            region: 0,
            byte_offset: off,
            swap,
            begin: 0,
            end: 0,
        }
    }

    fn collect(f: &mut Sources, t: &TensorPlan, naive: bool) -> Vec<u8> {
        let at = At {
            file: 0,
            start: 3,
            len: 300_000 - 3,
        };
        let mut out = Vec::new();
        let mut buf = Vec::new();
        let mut sink = |b: &[u8]| {
            out.extend_from_slice(b);
            Ok(())
        };
        if naive {
            emit_naive(f, at, t, &mut buf, &mut sink).unwrap();
        } else {
            emit(f, at, t, &mut buf, &mut sink).unwrap();
        }
        out
    }

    /// Element by element from the bytes in memory.
    fn oracle(data: &[u8], t: &TensorPlan) -> Vec<u8> {
        let es = t.dtype.size() as usize;
        let mut out = Vec::new();
        let mut idx = vec![0u64; t.shape.len()];
        for _ in 0..t.numel() {
            let off: u64 = idx.iter().zip(&t.strides).map(|(i, s)| i * s).sum();
            let at = 3 + t.byte_offset as usize + off as usize * es;
            let mut e = data[at..at + es].to_vec();
            if t.swap {
                swap_in_place(&mut e, t.dtype.swap_unit());
            }
            out.extend(e);
            for d in (0..idx.len()).rev() {
                idx[d] += 1;
                if idx[d] < t.shape[d] {
                    break;
                }
                idx[d] = 0;
            }
        }
        out
    }

    #[test]
    fn strided_views_match_an_element_by_element_gather() {
        let mut tmp = tempfile::tempfile().unwrap();
        let data: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect();
        tmp.write_all(&data).unwrap();
        let mut src = Sources::new(vec![tmp]);
        let cases = [
            plan(&[4, 5], &[5, 1], 8, Dtype::F32, false),
            plan(&[4, 5], &[1, 4], 4, Dtype::F32, false),
            plan(&[3, 1, 4], &[8, 99, 2], 0, Dtype::F16, true),
            plan(&[2, 3, 4], &[1, 2, 6], 16, Dtype::C64, true),
            plan(&[6], &[0], 12, Dtype::I64, false),
            plan(&[0, 3], &[3, 1], 0, Dtype::F32, false),
            plan(&[], &[], 10, Dtype::U8, false),
            // A transposed 200x300 matrix: reads merged across rows.
            plan(&[300, 200], &[1, 300], 0, Dtype::F32, true),
            // Long contiguous rows with gaps between them (the direct path).
            plan(&[2, 20_000], &[30_000, 1], 5, Dtype::F16, false),
            // Sparse: every 4099th element.
            plan(&[70], &[4099], 1, Dtype::U8, false),
        ];
        for (t, chunk) in cases.iter().flat_map(|t| [(t, CHUNK), (t, 4096)]) {
            // The default chunk, and a small one so tensors span many chunks.
            src.chunk = chunk;
            let want = oracle(&data, t);
            let a = collect(&mut src, t, false);
            let b = collect(&mut src, t, true);
            assert_eq!(a.len() as u64, t.nbytes());
            assert!(a == want, "{t:?}");
            assert!(b == want, "{t:?}");
        }
        // Out of bounds is an error, not a panic.
        let bad = plan(&[80_000], &[1], 0, Dtype::F32, false);
        let mut buf = Vec::new();
        let at = At {
            file: 0,
            start: 0,
            len: 300_000,
        };
        assert!(emit(&mut src, at, &bad, &mut buf, &mut |_| Ok(())).is_err());
    }
}
