//! Decompressors for every single-stream wrapper modelward opens, all pure Rust.
//!
//! Callers wrap the result in [`crate::io::Bounded`]: a decompressor never decides how much it
//! may produce.

use crate::sniff::Format;
use std::io::{self, Read};

/// Memory the LZMA/xz decoders may use for their dictionary (KiB).
const LZMA_MEM_LIMIT_KB: u32 = 256 * 1024;

fn other(e: impl std::fmt::Display) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e.to_string())
}

/// A decompressing reader for a compression format.
pub fn decoder<'a, R: Read + 'a>(format: Format, input: R) -> io::Result<Box<dyn Read + 'a>> {
    Ok(match format {
        Format::Gzip => Box::new(flate2::read::MultiGzDecoder::new(input)),
        Format::Zlib => Box::new(flate2::read::ZlibDecoder::new(input)),
        Format::Bzip2 => Box::new(bzip2::read::MultiBzDecoder::new(input)),
        Format::Xz => Box::new(lzma_rust2::XzReader::new_mem_limit(
            input,
            true,
            LZMA_MEM_LIMIT_KB,
        )),
        Format::Lzma => {
            Box::new(lzma_rust2::LzmaReader::new_mem_limit(input, LZMA_MEM_LIMIT_KB, None).map_err(other)?)
        }
        Format::Zstd => Box::new(ruzstd::decoding::StreamingDecoder::new(input).map_err(other)?),
        Format::Lz4 => Box::new(lz4_flex::frame::FrameDecoder::new(input)),
        _ => {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                format!("{format} is not a compression format"),
            ));
        }
    })
}

/// A decompressing reader for a zip member's method, or `None` when the method is not supported.
pub fn zip_method<'a, R: Read + 'a>(method: u16, input: R) -> Option<io::Result<Box<dyn Read + 'a>>> {
    Some(match method {
        0 => Ok(Box::new(input)),
        8 => Ok(Box::new(flate2::read::DeflateDecoder::new(input))),
        12 => Ok(Box::new(bzip2::read::BzDecoder::new(input))),
        93 => ruzstd::decoding::StreamingDecoder::new(input)
            .map(|d| Box::new(d) as Box<dyn Read>)
            .map_err(other),
        95 => Ok(Box::new(lzma_rust2::XzReader::new_mem_limit(
            input,
            true,
            LZMA_MEM_LIMIT_KB,
        ))),
        _ => return None,
    })
}

/// The name of a zip compression method.
pub fn zip_method_name(method: u16) -> &'static str {
    match method {
        0 => "stored",
        8 => "deflate",
        9 => "deflate64",
        12 => "bzip2",
        14 => "lzma",
        93 => "zstd",
        95 => "xz",
        99 => "AES-encrypted",
        _ => "unknown",
    }
}
