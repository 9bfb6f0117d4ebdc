//! tar and 7z, through their crates, visited entry by entry.

use crate::member_path::{self, MemberKind};
use modelward_diagnostics::Fact;
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
    /// What it is (a file, a link, a device).
    pub kind: MemberKind,
    /// Whether it has content to scan (links and devices do not; they are visited for their
    /// path findings only, with an empty reader).
    pub content: bool,
    /// Findings about its path or kind (the one member-path check of every archive type).
    pub path_facts: Vec<Fact>,
}

impl Member {
    fn new(name: String, size: u64, kind: MemberKind, content: bool) -> Member {
        let path_facts = member_path::check(&name, &kind);
        Member {
            name,
            size,
            kind,
            content,
            path_facts,
        }
    }
}

/// Visits every regular file of a tar stream, and every link, device and FIFO (with
/// `content == false` and an empty reader, for their path findings). Directories are skipped
/// after their path is checked like any other member's.
pub fn tar_entries<R: Read>(
    input: R,
    mut visit: impl FnMut(&Member, &mut dyn Read) -> Next,
) -> io::Result<()> {
    let mut archive = tar::Archive::new(input);
    for entry in archive.entries()? {
        let mut entry = entry?;
        let kind = entry.header().entry_type();
        let name = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let target = || {
            entry
                .link_name_bytes()
                .map(|b| String::from_utf8_lossy(&b).into_owned())
                .unwrap_or_default()
        };
        let member_kind = match kind {
            tar::EntryType::Symlink => MemberKind::Symlink(target()),
            tar::EntryType::Link => MemberKind::Hardlink(target()),
            tar::EntryType::Char | tar::EntryType::Block | tar::EntryType::Fifo => MemberKind::Device,
            _ => MemberKind::File,
        };
        let content = kind.is_file() || kind.is_contiguous() || kind == tar::EntryType::GNUSparse;
        if !content && member_kind == MemberKind::File {
            // A directory or a metadata record: only a path that leaves the folder matters.
            let member = Member::new(name, 0, member_kind, false);
            if !member.path_facts.is_empty() && visit(&member, &mut io::empty()) == Next::Stop {
                break;
            }
            continue;
        }
        let member = Member::new(name, entry.size(), member_kind, content);
        let next = if content {
            visit(&member, &mut entry)
        } else {
            visit(&member, &mut io::empty())
        };
        if next == Next::Stop {
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
            let member = Member::new(entry.name.clone(), entry.size, MemberKind::File, true);
            Ok(visit(&member, r) == Next::Continue)
        })
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))
}
