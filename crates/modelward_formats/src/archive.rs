//! tar and 7z, through their crates, visited entry by entry.

use std::io::{self, Read, Seek};

/// What a visitor wants after an entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Visit the next entry.
    Continue,
    /// Stop visiting.
    Stop,
}

/// A member as the visitor sees it.
#[derive(Debug, Clone)]
pub struct Member {
    /// Name as stored.
    pub name: String,
    /// Size the archive declares.
    pub size: u64,
}

/// Visits every regular file of a tar stream. Links, devices and directories are not content.
pub fn tar_entries<R: Read>(
    input: R,
    mut visit: impl FnMut(&Member, &mut dyn Read) -> Next,
) -> io::Result<()> {
    let mut archive = tar::Archive::new(input);
    for entry in archive.entries()? {
        let mut entry = entry?;
        let kind = entry.header().entry_type();
        if !(kind.is_file() || kind.is_contiguous() || kind == tar::EntryType::GNUSparse) {
            continue;
        }
        let name = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let member = Member {
            name,
            size: entry.size(),
        };
        if visit(&member, &mut entry) == Next::Stop {
            break;
        }
    }
    Ok(())
}

/// Visits every file of a 7z archive (decoding solid blocks as it goes).
pub fn sevenz_entries<R: Read + Seek>(
    input: R,
    mut visit: impl FnMut(&Member, &mut dyn Read) -> Next,
) -> io::Result<()> {
    let mut reader = sevenz_rust2::ArchiveReader::new_with_memory_limit(
        input,
        sevenz_rust2::Password::empty(),
        256 * 1024,
    )
    .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
    reader
        .for_each_entries(|entry, r| {
            if entry.is_directory || !entry.has_stream {
                return Ok(true);
            }
            let member = Member {
                name: entry.name.clone(),
                size: entry.size,
            };
            Ok(visit(&member, r) == Next::Continue)
        })
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))
}
