//! What [`crate::Scanner::scan`] accepts: a path, bytes, or any seekable source, each with the
//! name its report carries.

use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

/// A seekable source of content for [`Input::Reader`].
///
/// Any `Read + Seek` becomes one through [`Input::reader`]; a source that can fail part way
/// (a remote file over HTTP range requests) or that counts its own transfer implements the
/// two methods so that the scanner, not the caller, turns them into the report.
pub trait Source: Read + Seek {
    /// Why reading stopped part way, if it did. The scanner then adds an `MWD001` finding and
    /// never calls the file clean: what was not read was not judged.
    fn failure(&self) -> Option<String> {
        None
    }
    /// Bytes the source really fetched, when it counts them itself (a block cache over HTTP
    /// fetches more than the scanner reads). `None`: the bytes the scanner read are reported.
    fn bytes_fetched(&self) -> Option<u64> {
        None
    }
    /// The content's sha256 (lower-case hex), when the source saw every byte of it; the
    /// report's `sha256` (a remote file checked against the digest its host lists).
    fn sha256(&self) -> Option<String> {
        None
    }
    /// The sha256 the content's host lists for it (the Hub's LFS oid): the report's
    /// `hub_sha256`, and a `PRV004` finding when [`Source::sha256`] is known and differs.
    fn listed_sha256(&self) -> Option<String> {
        None
    }
}

/// Adapts any `Read + Seek` to [`Source`].
struct Plain<R>(R);

impl<R: Read> Read for Plain<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.0.read(buf)
    }
}

impl<R: Seek> Seek for Plain<R> {
    fn seek(&mut self, pos: SeekFrom) -> std::io::Result<u64> {
        self.0.seek(pos)
    }
}

impl<R: Read + Seek> Source for Plain<R> {}

/// One thing to scan, and the name its report is given.
pub enum Input<'a> {
    /// A file on disk. The scanner opens it, and does not when it is larger than
    /// [`crate::ScanLimits::max_file_size`].
    Path {
        /// Where to read it.
        path: &'a Path,
        /// The name in the report.
        display: String,
    },
    /// Content already in memory; `bytes_read` is its length.
    Bytes {
        /// The name in the report.
        name: String,
        /// The content.
        data: &'a [u8],
    },
    /// Any seekable source occupying `[0, len)` (a remote file, a cache blob, an upload).
    Reader {
        /// The name in the report.
        display: String,
        /// The content.
        reader: Box<dyn Source + 'a>,
        /// Its length in bytes.
        len: u64,
    },
    /// Something that could not even be opened (a remote file whose first request failed):
    /// reported with verdict `error` and an `MWD001` finding `message`.
    Unavailable {
        /// The name in the report.
        display: String,
        /// Its size, when known (else 0).
        size: u64,
        /// Bytes spent finding out.
        bytes_read: u64,
        /// The error, for the report's `error` field.
        error: String,
        /// The `MWD001` finding's message (what failed, e.g. `cannot fetch the file: ...`).
        message: String,
    },
}

impl<'a> Input<'a> {
    /// A file on disk, reported under its path as given.
    pub fn path(path: &'a Path) -> Input<'a> {
        Input::Path {
            path,
            display: path.display().to_string(),
        }
    }

    /// Bytes in memory, reported under `name`.
    pub fn bytes(name: impl Into<String>, data: &'a [u8]) -> Input<'a> {
        Input::Bytes {
            name: name.into(),
            data,
        }
    }

    /// Any `Read + Seek` of `len` bytes, reported under `display`.
    pub fn reader(display: impl Into<String>, reader: impl Read + Seek + 'a, len: u64) -> Input<'a> {
        Input::Reader {
            display: display.into(),
            reader: Box::new(Plain(reader)),
            len,
        }
    }

    /// A [`Source`] that reports its own failures and transfer, reported under `display`.
    pub fn source(display: impl Into<String>, source: impl Source + 'a, len: u64) -> Input<'a> {
        Input::Reader {
            display: display.into(),
            reader: Box::new(source),
            len,
        }
    }

    /// The name the report will carry.
    pub fn display(&self) -> &str {
        match self {
            Input::Path { display, .. }
            | Input::Reader { display, .. }
            | Input::Unavailable { display, .. } => display,
            Input::Bytes { name, .. } => name,
        }
    }
}

impl std::fmt::Debug for Input<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Input::Path { path, display } => write!(f, "Input::Path({display:?} at {})", path.display()),
            Input::Bytes { name, data } => write!(f, "Input::Bytes({name:?}, {} bytes)", data.len()),
            Input::Reader { display, len, .. } => write!(f, "Input::Reader({display:?}, {len} bytes)"),
            Input::Unavailable { display, error, .. } => {
                write!(f, "Input::Unavailable({display:?}: {error})")
            }
        }
    }
}

/// Anything [`crate::Scanner::scan_many`] can turn into an [`Input`], on the worker that
/// scans it (so opening a file or a connection happens in parallel too).
pub trait ToInput {
    /// The input to scan.
    fn to_input(&self) -> Input<'_>;
}

impl ToInput for crate::walk::Target {
    fn to_input(&self) -> Input<'_> {
        Input::Path {
            path: &self.path,
            display: self.display.clone(),
        }
    }
}
