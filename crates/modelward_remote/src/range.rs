//! [`RangeReader`]: one `Read + Seek` over HTTP range requests, with a small block cache.

use crate::error::RemoteError;
use crate::http::{Client, Reply, TransferStats, read_body, status_error};
use crate::url;
use sha2::{Digest, Sha256};
use std::io::{self, Read, Seek, SeekFrom};
use std::sync::Arc;

/// Largest fetch, as a multiple of the block size, when reads run sequentially.
const MAX_GROWTH: u64 = 16;

/// Smallest first (tail) request: a zip reader looks for its end record in the last
/// 65,557 bytes (65,535 of comment + 22), so one request covers that search.
const MIN_TAIL: u64 = 66 << 10;

/// A remote file read through HTTP range requests.
///
/// The first request asks for the last block, at least 66 KiB (a zip reader starts with the
/// end record; the answer's `Content-Range` also gives the length when it was not known);
/// headers (safetensors, GGUF, npy, pickles) come with the first block. Later reads fetch the aligned block they need, growing the fetch while reads
/// continue sequentially; a few blocks are kept, least recently used dropped.
///
/// Redirects (to a CDN) are followed with the `Range` header kept, and the final URL is reused
/// for later blocks; if it stops working (an expired signature), the original URL is resolved
/// again. A server that ignores `Range` (200 with the whole body) gets the file downloaded
/// whole if it is at most [`crate::RemoteOptions::max_whole_download`] bytes, and is refused
/// ([`RemoteError::RangeUnsupported`]) otherwise.
///
/// Transport errors during reads are returned as `io::Error`s wrapping the [`RemoteError`],
/// and the first one is kept ([`RangeReader::failure`]).
pub struct RangeReader {
    client: Client,
    url: String,
    current: String,
    len: u64,
    pos: u64,
    block: u64,
    max_blocks: usize,
    blocks: Vec<Block>,
    whole: Option<Vec<u8>>,
    max_whole: u64,
    stats: Arc<TransferStats>,
    failure: Option<RemoteError>,
    tick: u64,
    last_fetch_end: u64,
    growth: u64,
    /// sha256 of the file's bytes from 0 up to `hashed_to`, fed as contiguous bytes arrive
    /// (one hasher, no bytes kept): complete when the whole file went through the reader.
    hasher: Sha256,
    hashed_to: u64,
}

struct Block {
    start: u64,
    data: Vec<u8>,
    used: u64,
}

impl Block {
    fn end(&self) -> u64 {
        self.start + self.data.len() as u64
    }
}

impl std::fmt::Debug for RangeReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RangeReader")
            .field("url", &url::redact(&self.url))
            .field("len", &self.len)
            .field("pos", &self.pos)
            .field("bytes", &self.stats.bytes())
            .field("requests", &self.stats.requests())
            .finish()
    }
}

/// What one range request brought.
enum Fetched {
    /// 206: `data` starts at `start`; `total` is the length the server announced.
    Part {
        start: u64,
        data: Vec<u8>,
        total: Option<u64>,
    },
    /// 200: the whole file.
    Whole(Vec<u8>),
    /// 416 with `bytes */0`: an empty file.
    Empty,
}

impl RangeReader {
    /// Opens `url`, fetching its last block. `len` is the size when known (from a listing);
    /// a known size of 0 sends no request at all.
    pub fn open(
        client: &Client,
        url: &str,
        len: Option<u64>,
        opts: &crate::RemoteOptions,
    ) -> Result<RangeReader, RemoteError> {
        RangeReader::open_with_stats(client, url, len, opts, Arc::new(TransferStats::default()))
    }

    /// [`RangeReader::open`], counting into `stats` (shared with other readers if wanted).
    pub fn open_with_stats(
        client: &Client,
        url: &str,
        len: Option<u64>,
        opts: &crate::RemoteOptions,
        stats: Arc<TransferStats>,
    ) -> Result<RangeReader, RemoteError> {
        let block = opts.block_size.max(512);
        let mut r = RangeReader {
            client: client.clone(),
            url: url.to_owned(),
            current: url.to_owned(),
            len: len.unwrap_or(0),
            pos: 0,
            block,
            max_blocks: opts.cache_blocks.max(2),
            blocks: Vec::new(),
            whole: None,
            max_whole: opts.max_whole_download,
            stats,
            failure: None,
            tick: 0,
            last_fetch_end: u64::MAX,
            growth: 1,
            hasher: Sha256::new(),
            hashed_to: 0,
        };
        if len == Some(0) {
            return Ok(r);
        }
        let tail = block.max(MIN_TAIL);
        let range = match len {
            Some(n) => format!("bytes={}-{}", n.saturating_sub(tail), n - 1),
            None => format!("bytes=-{tail}"),
        };
        match r.fetch(&range, len)? {
            Fetched::Part { start, data, total } => {
                r.len = match (total, len) {
                    (Some(t), _) => t,
                    (None, Some(n)) => n,
                    (None, None) => start + data.len() as u64,
                };
                r.insert(start, data);
            }
            Fetched::Whole(data) => {
                r.len = data.len() as u64;
                r.whole = Some(data);
            }
            Fetched::Empty => r.len = 0,
        }
        Ok(r)
    }

    /// The file's length.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether the file is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Response body bytes received so far (for every reader sharing the counter).
    pub fn bytes_transferred(&self) -> u64 {
        self.stats.bytes()
    }

    /// Requests sent so far (for every reader sharing the counter).
    pub fn requests(&self) -> u64 {
        self.stats.requests()
    }

    /// The shared counters.
    pub fn stats(&self) -> &Arc<TransferStats> {
        &self.stats
    }

    /// Whether the server ignored `Range` and the file was downloaded whole.
    pub fn downloaded_whole(&self) -> bool {
        self.whole.is_some()
    }

    /// sha256 of the whole file, when every byte of it was fetched (in whatever order the
    /// scan read it, as long as the pieces joined up while cached); `None` otherwise.
    pub fn whole_sha256(&self) -> Option<[u8; 32]> {
        if let Some(w) = &self.whole {
            return Some(Sha256::digest(w).into());
        }
        (self.hashed_to == self.len).then(|| self.hasher.clone().finalize().into())
    }

    /// The first error met while reading, if any: the scan of this file is incomplete.
    pub fn failure(&self) -> Option<&RemoteError> {
        self.failure.as_ref()
    }

    /// One range request (retrying body read failures; the client retries the rest), with
    /// the redirect target reused and re-resolved once if it stops answering.
    fn fetch(&mut self, range: &str, expect_len: Option<u64>) -> Result<Fetched, RemoteError> {
        let attempts = 3;
        let mut last = None;
        for _ in 0..attempts {
            match self.fetch_once(range, expect_len) {
                Err(e @ RemoteError::Transport { .. }) => last = Some(e),
                other => return other,
            }
        }
        Err(last.expect("at least one attempt"))
    }

    fn fetch_once(&mut self, range: &str, expect_len: Option<u64>) -> Result<Fetched, RemoteError> {
        let mut reply = self.client.get(&self.current, Some(range), &self.stats)?;
        if self.current != self.url && matches!(reply.status, 401 | 403 | 404 | 410) {
            // The CDN URL (signed, short-lived) expired: resolve the original again.
            self.current = self.url.clone();
            reply = self.client.get(&self.current, Some(range), &self.stats)?;
        }
        match reply.status {
            206 => {
                let (start, end, total) = reply
                    .header("content-range")
                    .and_then(parse_content_range)
                    .and_then(|(s, e, t)| Some((s, e?, t)))
                    .ok_or_else(|| self.protocol(&reply, "206 without a usable Content-Range"))?;
                if end < start || end - start >= self.block.saturating_mul(MAX_GROWTH * 4) {
                    return Err(self.protocol(&reply, "206 with an unexpected Content-Range"));
                }
                let want = end - start + 1;
                let data = read_body(&mut reply, want, &self.stats)?;
                if (data.len() as u64) < want {
                    return Err(RemoteError::Transport {
                        url: url::redact(&reply.url),
                        message: format!("the body ended after {} of {want} bytes", data.len()),
                    });
                }
                self.current = reply.url;
                Ok(Fetched::Part { start, data, total })
            }
            200 => {
                let announced = reply
                    .header("content-length")
                    .and_then(|v| v.trim().parse::<u64>().ok())
                    .or(expect_len);
                if announced.is_some_and(|n| n > self.max_whole) {
                    return Err(RemoteError::RangeUnsupported {
                        url: url::redact(&self.url),
                        size: announced,
                        limit: self.max_whole,
                    });
                }
                let data = match read_body(&mut reply, self.max_whole, &self.stats) {
                    Err(RemoteError::Protocol { .. }) => {
                        return Err(RemoteError::RangeUnsupported {
                            url: url::redact(&self.url),
                            size: None,
                            limit: self.max_whole,
                        });
                    }
                    other => other?,
                };
                self.current = reply.url;
                Ok(Fetched::Whole(data))
            }
            416 => {
                let total = reply
                    .header("content-range")
                    .and_then(parse_content_range)
                    .and_then(|(_, _, t)| t);
                if total == Some(0) {
                    Ok(Fetched::Empty)
                } else {
                    Err(self.protocol(&reply, "416 Range Not Satisfiable for a range inside the file"))
                }
            }
            _ => Err(status_error(reply, &self.stats, self.client.has_token())),
        }
    }

    fn protocol(&self, reply: &Reply, message: &str) -> RemoteError {
        RemoteError::Protocol {
            url: url::redact(&reply.url),
            message: message.to_owned(),
        }
    }

    fn insert(&mut self, start: u64, data: Vec<u8>) {
        self.tick += 1;
        self.blocks.push(Block {
            start,
            data,
            used: self.tick,
        });
        // Extend the running hash through every cached block that continues it.
        while let Some(b) = self
            .blocks
            .iter()
            .find(|b| b.start <= self.hashed_to && self.hashed_to < b.end())
        {
            let from = (self.hashed_to - b.start) as usize;
            self.hasher.update(&b.data[from..]);
            self.hashed_to = b.end();
        }
        while self.blocks.len() > self.max_blocks {
            let oldest = self
                .blocks
                .iter()
                .enumerate()
                .min_by_key(|(_, b)| b.used)
                .map(|(i, _)| i)
                .expect("non-empty");
            self.blocks.remove(oldest);
        }
    }

    /// The cached block holding `pos`, fetching it if needed.
    fn block_at(&mut self, pos: u64) -> Result<usize, RemoteError> {
        self.tick += 1;
        if let Some(i) = self.blocks.iter().position(|b| b.start <= pos && pos < b.end()) {
            self.blocks[i].used = self.tick;
            return Ok(i);
        }
        // Sequential reads fetch more each time; a jump starts again from one block.
        self.growth = if pos == self.last_fetch_end {
            (self.growth * 2).min(MAX_GROWTH)
        } else {
            1
        };
        let mut start = pos - pos % self.block;
        let mut end = (start + self.block * self.growth).min(self.len);
        for b in &self.blocks {
            if b.end() <= pos && b.end() > start {
                start = b.end();
            }
            if b.start > pos && b.start < end {
                end = b.start;
            }
        }
        match self.fetch(&format!("bytes={start}-{}", end - 1), Some(self.len))? {
            Fetched::Part { start, data, .. } => {
                if !(start <= pos && pos < start + data.len() as u64) {
                    return Err(RemoteError::Protocol {
                        url: url::redact(&self.current),
                        message: format!("the server sent a range that does not hold byte {pos}"),
                    });
                }
                self.last_fetch_end = start + data.len() as u64;
                self.insert(start, data);
                Ok(self.blocks.len() - 1)
            }
            Fetched::Whole(data) => {
                // The server stopped honouring Range; keep the whole body.
                self.len = data.len() as u64;
                self.whole = Some(data);
                self.blocks.clear();
                Err(RemoteError::Protocol {
                    url: url::redact(&self.url),
                    message: "retry from the whole body".into(),
                })
            }
            Fetched::Empty => Err(RemoteError::Protocol {
                url: url::redact(&self.url),
                message: "the file became empty while it was read".into(),
            }),
        }
    }
}

impl Read for RangeReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() || self.pos >= self.len {
            return Ok(0);
        }
        if let Some(whole) = &self.whole {
            let start = usize::try_from(self.pos).unwrap_or(usize::MAX).min(whole.len());
            let n = buf.len().min(whole.len() - start);
            buf[..n].copy_from_slice(&whole[start..start + n]);
            self.pos += n as u64;
            return Ok(n);
        }
        let i = match self.block_at(self.pos) {
            Ok(i) => i,
            Err(_) if self.whole.is_some() => return self.read(buf),
            Err(e) => {
                if self.failure.is_none() {
                    self.failure = Some(e.clone());
                }
                return Err(io::Error::other(e));
            }
        };
        let b = &self.blocks[i];
        let off = (self.pos - b.start) as usize;
        let n = buf.len().min(b.data.len() - off);
        buf[..n].copy_from_slice(&b.data[off..off + n]);
        self.pos += n as u64;
        Ok(n)
    }
}

impl Seek for RangeReader {
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
            None => Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "seek before the start of the file",
            )),
        }
    }

    fn stream_position(&mut self) -> io::Result<u64> {
        Ok(self.pos)
    }
}

/// `bytes a-b/total`, `bytes a-b/*` or `bytes */total` as `(a, Some(b), total)`.
fn parse_content_range(v: &str) -> Option<(u64, Option<u64>, Option<u64>)> {
    let rest = v.trim().strip_prefix("bytes")?.trim_start();
    let (span, total) = rest.split_once('/')?;
    let total = match total.trim() {
        "*" => None,
        t => Some(t.parse().ok()?),
    };
    if span.trim() == "*" {
        return Some((0, None, total));
    }
    let (a, b) = span.trim().split_once('-')?;
    Some((a.trim().parse().ok()?, Some(b.trim().parse().ok()?), total))
}

#[cfg(test)]
mod tests {
    use super::parse_content_range;

    #[test]
    fn content_range() {
        assert_eq!(
            parse_content_range("bytes 0-99/1000"),
            Some((0, Some(99), Some(1000)))
        );
        assert_eq!(parse_content_range("bytes 5-9/*"), Some((5, Some(9), None)));
        assert_eq!(parse_content_range("bytes */0"), Some((0, None, Some(0))));
        assert_eq!(parse_content_range("items 0-1/2"), None);
        assert_eq!(parse_content_range("bytes x-1/2"), None);
        assert_eq!(parse_content_range("bytes 0-1"), None);
    }
}
