//! A tolerant zip reader that sees what every real loader sees, and says where they differ.
//!
//! PyTorch reads zips with miniz: it takes offsets, sizes and methods from the central
//! directory, never checks CRCs and ignores the encryption flag bits. Python's zipfile refuses
//! much of that. Scanners built on a strict reader have been bypassed by the difference, so this
//! reader follows the central directory like miniz, corrects for data prepended to the archive
//! like zipfile, keeps every duplicate, walks the gaps between entries for local headers the
//! directory does not list, and reports every disagreement as a [`Fact`]. It reads the end
//! record, the directory, and local headers — never member data it is not asked for.

use crate::io::{ReadSeek, Window};
use modelward_diagnostics::Fact;
use std::collections::HashMap;
use std::io::{self, Read, SeekFrom};

const EOCD_SIG: &[u8; 4] = b"PK\x05\x06";
const LOCAL_SIG: &[u8; 4] = b"PK\x03\x04";
const CENTRAL_SIG: &[u8; 4] = b"PK\x01\x02";
const Z64_LOCATOR_SIG: &[u8; 4] = b"PK\x06\x07";
const Z64_EOCD_SIG: &[u8; 4] = b"PK\x06\x06";

/// Budgets for reading a zip's structure.
#[derive(Debug, Clone, Copy)]
pub struct ZipLimits {
    /// Most entries listed.
    pub max_members: u64,
    /// Largest central directory read.
    pub max_directory: u64,
    /// Most bytes read while sweeping gaps for hidden local headers.
    pub max_sweep: u64,
}

impl Default for ZipLimits {
    fn default() -> ZipLimits {
        ZipLimits {
            max_members: 100_000,
            max_directory: 256 << 20,
            max_sweep: 64 << 20,
        }
    }
}

/// Where an entry was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// Listed in the central directory.
    CentralDirectory,
    /// Found only as a local header.
    LocalOnly,
}

/// One member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZipEntry {
    /// Name as stored (lossy UTF-8).
    pub name: String,
    /// Compression method (0 stored, 8 deflate, ...), from the central directory.
    pub method: u16,
    /// General-purpose flags.
    pub flags: u16,
    /// Stored CRC-32.
    pub crc32: u32,
    /// Compressed size.
    pub compressed_size: u64,
    /// Uncompressed size as stored.
    pub uncompressed_size: u64,
    /// Absolute offset of the local header.
    pub header_offset: u64,
    /// Absolute offset of the data, when the local header was readable.
    pub data_offset: Option<u64>,
    /// Where it was found.
    pub origin: Origin,
    /// 1 for the first entry of this name, 2 for the second copy, ...
    pub copy: u32,
    /// Unix file mode from the central directory's external attributes (0 when absent).
    pub unix_mode: u32,
}

impl ZipEntry {
    /// The name shown in locations: the stored name, marked when it is a duplicate copy or a
    /// hidden entry.
    pub fn display_name(&self) -> String {
        let mut s = self.name.clone();
        if self.copy > 1 {
            s.push_str(&format!(" (copy {})", self.copy));
        }
        if self.origin == Origin::LocalOnly {
            s.push_str(&format!(" (hidden entry @{})", self.header_offset));
        }
        s
    }

    /// Whether the name is a directory.
    pub fn is_dir(&self) -> bool {
        self.name.ends_with('/')
    }

    /// What the member is when extracted: a zip written on Unix can hold symbolic links (mode
    /// `S_IFLNK`; the link target is the member's data, not read here) that extractors
    /// honouring modes (`unzip`, `shutil.unpack_archive` with some backends) create.
    pub fn member_kind(&self) -> crate::member_path::MemberKind {
        match self.unix_mode & 0o170000 {
            0o120000 => crate::member_path::MemberKind::Symlink("(the member's data)".into()),
            0o020000 | 0o060000 | 0o010000 => crate::member_path::MemberKind::Device,
            _ => crate::member_path::MemberKind::File,
        }
    }
}

/// The structure of a zip.
#[derive(Debug, Clone, Default)]
pub struct ZipListing {
    /// Entries in directory order, hidden local entries after them.
    pub entries: Vec<ZipEntry>,
    /// Anomalies.
    pub facts: Vec<Fact>,
    /// Bytes before the archive's first byte (self-extractors, polyglots).
    pub prefix: u64,
    /// Whether a central directory was found.
    pub has_directory: bool,
}

/// Why the zip could not be listed at all.
#[derive(Debug, thiserror::Error)]
pub enum ZipError {
    /// Reading failed.
    #[error("reading the zip failed: {0}")]
    Io(#[from] io::Error),
    /// Neither an end record nor a local header.
    #[error("no zip structure found")]
    NotZip,
}

fn u16le(b: &[u8], at: usize) -> u16 {
    b.get(at..at + 2).map_or(0, |s| u16::from_le_bytes([s[0], s[1]]))
}
fn u32le(b: &[u8], at: usize) -> u32 {
    b.get(at..at + 4)
        .map_or(0, |s| u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
}
fn u64le(b: &[u8], at: usize) -> u64 {
    b.get(at..at + 8).map_or(0, |s| {
        let mut a = [0u8; 8];
        a.copy_from_slice(s);
        u64::from_le_bytes(a)
    })
}

fn read_at<R: ReadSeek + ?Sized>(r: &mut R, at: u64, len: usize) -> io::Result<Vec<u8>> {
    r.seek(SeekFrom::Start(at))?;
    let mut buf = Vec::with_capacity(len.min(1 << 20));
    Read::take(&mut *r, len as u64).read_to_end(&mut buf)?;
    Ok(buf)
}

/// Finds the end-of-central-directory record: offset, and the record bytes.
fn find_eocd<R: ReadSeek + ?Sized>(r: &mut R, len: u64) -> io::Result<Option<(u64, Vec<u8>)>> {
    // Most archives have no comment: try the last 22 bytes before reading up to 64 KiB.
    if len >= 22 {
        let rec = read_at(r, len - 22, 22)?;
        if rec.get(..4) == Some(EOCD_SIG) && u16le(&rec, 20) == 0 {
            return Ok(Some((len - 22, rec)));
        }
    }
    let tail_len = len.min(22 + 65_535);
    let tail_start = len - tail_len;
    let tail = read_at(r, tail_start, tail_len as usize)?;
    if tail.len() < 22 {
        return Ok(None);
    }
    // Last signature first (a vectorised search: every file that does not end in a plain end
    // record goes through here). `end` bounds where a candidate may end: a record starting at
    // `i` needs 22 bytes, and after a rejected `i` the next candidate starts before it.
    let finder = memchr::memmem::FinderRev::new(EOCD_SIG);
    let mut end = tail.len() - 22 + EOCD_SIG.len();
    while let Some(i) = finder.rfind(&tail[..end]) {
        let comment = u16le(&tail, i + 20) as usize;
        if i + 22 + comment <= tail.len() {
            return Ok(Some((tail_start + i as u64, tail[i..i + 22].to_vec())));
        }
        end = i + EOCD_SIG.len() - 1;
    }
    Ok(None)
}

/// Whether the content ends with a zip end record (for polyglot detection on content that
/// does not start like a zip).
pub fn has_end_record<R: ReadSeek + ?Sized>(r: &mut R, len: u64) -> io::Result<bool> {
    Ok(len >= 22 && find_eocd(r, len)?.is_some())
}

struct LocalHeader {
    name: String,
    flags: u16,
    method: u16,
    crc32: u32,
    csize: u64,
    usize_: u64,
    data_offset: u64,
}

fn read_local<R: ReadSeek + ?Sized>(r: &mut R, at: u64, len: u64) -> io::Result<Option<LocalHeader>> {
    if at.checked_add(30).is_none_or(|e| e > len) {
        return Ok(None);
    }
    let h = read_at(r, at, 30)?;
    if h.len() < 30 || &h[..4] != LOCAL_SIG {
        return Ok(None);
    }
    let nlen = u16le(&h, 26) as u64;
    let xlen = u16le(&h, 28) as u64;
    let tail = read_at(r, at + 30, (nlen + xlen) as usize)?;
    let name = String::from_utf8_lossy(tail.get(..nlen as usize).unwrap_or(&tail)).into_owned();
    let extra = tail.get(nlen as usize..).unwrap_or_default();
    let mut csize = u64::from(u32le(&h, 18));
    let mut usize_ = u64::from(u32le(&h, 22));
    if let Some(z) = zip64_extra(extra) {
        if usize_ == 0xffff_ffff {
            usize_ = u64le(z, 0);
        }
        if csize == 0xffff_ffff {
            csize = u64le(z, 8);
        }
    }
    Ok(Some(LocalHeader {
        name,
        flags: u16le(&h, 6),
        method: u16le(&h, 8),
        crc32: u32le(&h, 14),
        csize,
        usize_,
        data_offset: at + 30 + nlen + xlen,
    }))
}

/// The zip64 extended-information extra field's payload.
fn zip64_extra(extra: &[u8]) -> Option<&[u8]> {
    let mut i = 0;
    while i + 4 <= extra.len() {
        let id = u16le(extra, i);
        let n = u16le(extra, i + 2) as usize;
        let body = extra.get(i + 4..i + 4 + n)?;
        if id == 0x0001 {
            return Some(body);
        }
        i += 4 + n;
    }
    None
}

/// Lists a zip occupying `[0, len)` of `r`.
pub fn list<R: ReadSeek + ?Sized>(r: &mut R, len: u64, limits: ZipLimits) -> Result<ZipListing, ZipError> {
    let mut out = ZipListing::default();
    let Some((eocd_pos, eocd)) = find_eocd(r, len)? else {
        // No directory: a truncated or streamed zip. Walk local headers from the start.
        let head = read_at(r, 0, 4)?;
        if head != LOCAL_SIG {
            return Err(ZipError::NotZip);
        }
        out.facts.push(
            Fact::new(
                "ARC108",
                "the zip has no end-of-central-directory record; entries were found by walking local headers",
            )
            .at(0),
        );
        let mut budget = limits.max_sweep;
        walk_local(r, 0, len, &mut out, &limits, &mut budget)?;
        number_copies(&mut out.entries);
        return Ok(out);
    };
    out.has_directory = true;
    let mut count = u64::from(u16le(&eocd, 10));
    let mut cd_size = u64::from(u32le(&eocd, 12));
    let mut cd_offset = u64::from(u32le(&eocd, 16));
    let mut cd_end = eocd_pos;
    // Zip64: a locator just before the end record points at the zip64 end record.
    if eocd_pos >= 20 {
        let loc = read_at(r, eocd_pos - 20, 20)?;
        if loc.get(..4) == Some(Z64_LOCATOR_SIG) {
            let z64_pos = u64le(&loc, 8);
            // The locator's offset is relative to the archive start; with a prefix, search back.
            let candidates = [z64_pos, eocd_pos.saturating_sub(20 + 56)];
            for pos in candidates {
                let rec = read_at(r, pos, 56)?;
                if rec.get(..4) == Some(Z64_EOCD_SIG) {
                    count = u64le(&rec, 32);
                    cd_size = u64le(&rec, 40);
                    cd_offset = u64le(&rec, 48);
                    cd_end = pos;
                    break;
                }
            }
        }
    }
    // Data prepended to the archive shifts every stored offset (zipfile's "concat").
    let cd_start = cd_end.saturating_sub(cd_size);
    let shift = cd_start.saturating_sub(cd_offset);
    if cd_start < cd_offset || cd_size > limits.max_directory {
        out.facts.push(
            Fact::new(
                "ARC108",
                format!("the central directory ({cd_size} bytes at {cd_offset}) does not fit the file"),
            )
            .at(eocd_pos),
        );
    }
    out.prefix = shift;
    if count > limits.max_members {
        out.facts.push(Fact::new(
            "ARC203",
            format!(
                "the directory lists {count} entries; only the first {} were read",
                limits.max_members
            ),
        ));
    }
    let cd = read_at(r, cd_start, cd_size.min(limits.max_directory) as usize)?;
    let mut i = 0usize;
    let mut listed = 0u64;
    while i + 46 <= cd.len() && listed < count.min(limits.max_members) {
        if &cd[i..i + 4] != CENTRAL_SIG {
            out.facts.push(
                Fact::new(
                    "ARC108",
                    "a central directory record is damaged; the rest of the directory was not read",
                )
                .at(cd_start + i as u64),
            );
            break;
        }
        let nlen = u16le(&cd, i + 28) as usize;
        let xlen = u16le(&cd, i + 30) as usize;
        let clen = u16le(&cd, i + 32) as usize;
        let name = String::from_utf8_lossy(cd.get(i + 46..i + 46 + nlen).unwrap_or_default()).into_owned();
        let extra = cd.get(i + 46 + nlen..i + 46 + nlen + xlen).unwrap_or_default();
        let mut usize_ = u64::from(u32le(&cd, i + 24));
        let mut csize = u64::from(u32le(&cd, i + 20));
        let mut lho = u64::from(u32le(&cd, i + 42));
        if let Some(z) = zip64_extra(extra) {
            let mut k = 0;
            if usize_ == 0xffff_ffff {
                usize_ = u64le(z, k);
                k += 8;
            }
            if csize == 0xffff_ffff {
                csize = u64le(z, k);
                k += 8;
            }
            if lho == 0xffff_ffff {
                lho = u64le(z, k);
            }
        }
        out.entries.push(ZipEntry {
            name,
            method: u16le(&cd, i + 10),
            flags: u16le(&cd, i + 8),
            crc32: u32le(&cd, i + 16),
            compressed_size: csize,
            uncompressed_size: usize_,
            header_offset: lho.saturating_add(shift),
            data_offset: None,
            origin: Origin::CentralDirectory,
            copy: 1,
            unix_mode: if cd[i + 5] == 3 {
                u32le(&cd, i + 38) >> 16
            } else {
                0
            },
        });
        listed += 1;
        i += 46 + nlen + xlen + clen;
    }
    if shift > 0 {
        out.facts.push(Fact::new("ARC106", format!("{shift} bytes precede the zip archive (self-extractor or polyglot); they were scanned as content of their own")).at(0));
    }
    // Resolve local headers and compare them with the directory.
    for e in &mut out.entries {
        match read_local(r, e.header_offset, len)? {
            Some(lh) => {
                if lh.name != e.name {
                    out.facts.push(
                        Fact::new(
                            "ARC103",
                            format!(
                                "local header names {:?} but the central directory names {:?}",
                                lh.name, e.name
                            ),
                        )
                        .at(e.header_offset),
                    );
                }
                if lh.method != e.method {
                    out.facts.push(
                        Fact::new(
                            "ARC103",
                            format!(
                                "{:?}: local header says method {} but the central directory says {}",
                                e.name, lh.method, e.method
                            ),
                        )
                        .at(e.header_offset),
                    );
                }
                e.data_offset = Some(lh.data_offset);
            }
            None => out.facts.push(
                Fact::new(
                    "ARC108",
                    format!("{:?}: no local header at offset {}", e.name, e.header_offset),
                )
                .at(e.header_offset),
            ),
        }
        if e.flags & 0x61 != 0 {
            out.facts.push(
                Fact::new("ARC102", format!("{:?} sets flag bits 0x{:04x} (encryption/patch) that PyTorch ignores and Python's zipfile refuses", e.name, e.flags & 0x61))
                    .at(e.header_offset),
            );
        }
    }
    // Sweep the gaps between known regions for local headers the directory does not list.
    let mut regions: Vec<(u64, u64)> = out
        .entries
        .iter()
        .filter_map(|e| {
            e.data_offset
                .map(|d| (e.header_offset, d.saturating_add(e.compressed_size)))
        })
        .collect();
    regions.sort_unstable();
    let mut gaps = Vec::new();
    let mut cursor = shift;
    for (start, end) in &regions {
        if *start > cursor {
            gaps.push((cursor, *start));
        }
        cursor = cursor.max(*end);
    }
    if cd_start > cursor {
        gaps.push((cursor, cd_start));
    }
    let known = out.entries.len();
    let mut budget = limits.max_sweep;
    for (a, b) in gaps {
        // A data descriptor after an entry is normal: up to 24 bytes.
        if b - a > 24 {
            walk_local(r, a, b, &mut out, &limits, &mut budget)?;
        }
    }
    for e in &out.entries[known..] {
        out.facts.push(
            Fact::new(
                "ARC105",
                format!(
                    "local header for {:?} is not listed in the central directory",
                    e.name
                ),
            )
            .at(e.header_offset),
        );
    }
    number_copies(&mut out.entries);
    let mut dups: HashMap<&str, u32> = HashMap::new();
    for e in &out.entries {
        *dups.entry(e.name.as_str()).or_default() += 1;
    }
    let mut reported: Vec<&str> = dups.iter().filter(|(_, n)| **n > 1).map(|(k, _)| *k).collect();
    reported.sort_unstable();
    let dup_facts: Vec<Fact> = reported
        .into_iter()
        .map(|n| {
            Fact::new(
                "ARC104",
                format!("{} entries are named {:?}; every copy was scanned", dups[n], n),
            )
        })
        .collect();
    out.facts.extend(dup_facts);
    Ok(out)
}

fn number_copies(entries: &mut [ZipEntry]) {
    let mut seen: HashMap<String, u32> = HashMap::new();
    for e in entries {
        let n = seen.entry(e.name.clone()).or_default();
        *n += 1;
        e.copy = *n;
    }
}

/// Walks `[start, end)` for local headers, following their sizes, and searching forward for the
/// next signature where a size is unknown or the bytes are not a header.
fn walk_local<R: ReadSeek + ?Sized>(
    r: &mut R,
    start: u64,
    end: u64,
    out: &mut ZipListing,
    limits: &ZipLimits,
    budget: &mut u64,
) -> io::Result<()> {
    let mut pos = start;
    while pos + 30 <= end && (out.entries.len() as u64) < limits.max_members {
        if let Some(lh) = read_local(r, pos, end)? {
            let data_end = lh.data_offset.saturating_add(lh.csize);
            let sized = !(lh.flags & 0x8 != 0 && lh.csize == 0) && data_end <= end;
            out.entries.push(ZipEntry {
                name: lh.name,
                method: lh.method,
                flags: lh.flags,
                crc32: lh.crc32,
                compressed_size: if sized {
                    lh.csize
                } else {
                    end - lh.data_offset.min(end)
                },
                uncompressed_size: lh.usize_,
                header_offset: pos,
                data_offset: Some(lh.data_offset),
                origin: Origin::LocalOnly,
                copy: 1,
                unix_mode: 0,
            });
            if sized {
                pos = data_end;
                continue;
            }
            pos = lh.data_offset;
        }
        // Search forward for the next local header signature.
        match find_sig(r, pos + 1, end, budget)? {
            Some(p) => pos = p,
            None => break,
        }
    }
    Ok(())
}

fn find_sig<R: ReadSeek + ?Sized>(
    r: &mut R,
    from: u64,
    end: u64,
    budget: &mut u64,
) -> io::Result<Option<u64>> {
    let mut pos = from;
    while pos + 4 <= end && *budget > 0 {
        let n = (end - pos).min(64 * 1024).min(*budget);
        let chunk = read_at(r, pos, n as usize)?;
        *budget = budget.saturating_sub(chunk.len() as u64);
        if let Some(i) = chunk.windows(4).position(|w| w == LOCAL_SIG) {
            return Ok(Some(pos + i as u64));
        }
        if chunk.len() < 4 {
            break;
        }
        pos += chunk.len() as u64 - 3;
    }
    Ok(None)
}

/// A reader over a member's stored data (still compressed), bounded to its size.
pub fn raw_member<'a, R: ReadSeek + ?Sized>(r: &'a mut R, e: &ZipEntry, len: u64) -> Option<Window<'a, R>> {
    let start = e.data_offset?;
    if start > len {
        return None;
    }
    let size = e.compressed_size.min(len - start);
    Some(Window::new(r, start, size))
}

/// Computes CRC-32 of everything read through it.
pub struct CrcReader<R> {
    inner: R,
    crc: flate2::Crc,
    /// Whether the inner reader reached its end.
    pub done: bool,
}

impl<R: Read> CrcReader<R> {
    /// Wraps a decompressed member stream.
    pub fn new(inner: R) -> CrcReader<R> {
        CrcReader {
            inner,
            crc: flate2::Crc::new(),
            done: false,
        }
    }

    /// CRC so far.
    pub fn crc32(&self) -> u32 {
        self.crc.sum()
    }
}

impl<R: Read> Read for CrcReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n == 0 && !buf.is_empty() {
            self.done = true;
        }
        self.crc.update(&buf[..n]);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    /// An end record for an empty archive with `comment` after it.
    fn eocd(comment: &[u8]) -> Vec<u8> {
        let mut v = EOCD_SIG.to_vec();
        v.extend_from_slice(&[0; 16]);
        v.extend_from_slice(&(comment.len() as u16).to_le_bytes());
        v.extend_from_slice(comment);
        v
    }

    fn found(data: &[u8]) -> Option<u64> {
        find_eocd(&mut Cursor::new(data), data.len() as u64)
            .expect("in memory")
            .map(|(at, rec)| {
                assert_eq!(rec.len(), 22);
                at
            })
    }

    #[test]
    fn end_record_is_found_behind_comments_and_decoys() {
        // Plain, at the very start, and after other data.
        assert_eq!(found(&eocd(b"")), Some(0));
        let mut v = vec![b'x'; 1000];
        v.extend(eocd(b""));
        assert_eq!(found(&v), Some(1000));
        // Behind a comment.
        let mut v = vec![b'x'; 100];
        v.extend(eocd(b"a comment"));
        assert_eq!(found(&v), Some(100));
        // A signature inside the comment whose own comment length runs past the end is skipped
        // for the real record before it.
        let mut decoy = EOCD_SIG.to_vec();
        decoy.extend_from_slice(&[0; 16]);
        decoy.extend_from_slice(&500u16.to_le_bytes());
        let mut v = vec![b'x'; 10];
        v.extend(eocd(&decoy));
        assert_eq!(found(&v), Some(10));
        // A signature in the last 21 bytes cannot start a record.
        let mut v = vec![b'x'; 100];
        v.extend_from_slice(EOCD_SIG);
        v.extend_from_slice(&[0; 10]);
        assert_eq!(found(&v), None);
        // Nothing, or too short to hold one.
        assert_eq!(found(&[b'x'; 70_000]), None);
        assert_eq!(found(&EOCD_SIG[..]), None);
        assert_eq!(found(b""), None);
        // Only the last 64 KiB + 22 bytes are searched (the longest comment).
        let mut v = eocd(b"");
        v.extend(vec![b'x'; 65_536]);
        assert_eq!(found(&v), None);
    }
}
