//! One check for the member paths of every archive a loader extracts (zip, tar, 7z): a path that
//! leaves the extraction folder, and tar's links and device files, are arbitrary file writes on
//! the victim's machine (NeMo `.nemo`, TorchServe `.mar`, Keras `get_file`, MLflow bundles).

use modelward_diagnostics::Fact;

/// What an archive member is, as far as extraction goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MemberKind {
    /// A regular file or directory.
    File,
    /// A symbolic link to `target`.
    Symlink(String),
    /// A hard link to `target`.
    Hardlink(String),
    /// A character or block device, or a FIFO.
    Device,
}

/// Why a path leaves the folder it is extracted into, if it does. Both separators count
/// (Windows extractors and Python's `zipfile` on Windows treat `\` as one), and so do drive
/// letters and UNC prefixes.
pub fn escapes(path: &str) -> Option<&'static str> {
    if path.starts_with('/') || path.starts_with('\\') {
        return Some("is absolute");
    }
    let b = path.as_bytes();
    if b.len() >= 2 && b[0].is_ascii_alphabetic() && b[1] == b':' {
        return Some("starts with a drive letter");
    }
    // Normalised depth: `a/../../x` climbs out even though it starts inside.
    let mut depth: i64 = 0;
    for part in path.split(['/', '\\']) {
        match part {
            "" | "." => {}
            ".." => {
                depth -= 1;
                if depth < 0 {
                    return Some("climbs out with ..");
                }
            }
            _ => depth += 1,
        }
    }
    None
}

/// The findings for one member (`ARC204` for a path that leaves the folder, `ARC205` for a link
/// or device member). The member's path is always shown.
pub fn check(name: &str, kind: &MemberKind) -> Vec<Fact> {
    let mut out = Vec::new();
    if let Some(why) = escapes(name) {
        out.push(
            Fact::new(
                "ARC204",
                format!("member name {name:?} {why}: extracting it writes outside the target folder"),
            )
            .evidence(name.to_owned()),
        );
    } else if name.contains('\\') {
        out.push(
            Fact::new(
                "ARC204",
                format!("member name {name:?} uses backslashes, which Windows extractors treat as folder separators"),
            )
            .evidence(name.to_owned())
            .severity(modelward_diagnostics::Severity::Medium),
        );
    }
    let (what, target) = match kind {
        MemberKind::File => return out,
        MemberKind::Symlink(t) => ("a symbolic link", Some(t)),
        MemberKind::Hardlink(t) => ("a hard link", Some(t)),
        MemberKind::Device => ("a device or FIFO", None),
    };
    let to = match target {
        Some(t) => {
            let leaves = escapes(t).map(|w| format!(", which {w}")).unwrap_or_default();
            format!(" to {t:?}{leaves}")
        }
        None => String::new(),
    };
    out.push(
        Fact::new(
            "ARC205",
            format!("member {name:?} is {what}{to}: extracting it lets later members or the loader write or read outside the folder"),
        )
        .evidence(name.to_owned()),
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_way_out_is_found_and_ordinary_paths_are_not() {
        for p in [
            "../evil.pkl",
            "a/../../evil.pkl",
            "/etc/cron.d/x",
            "\\\\server\\share\\x",
            "C:\\Users\\x\\.bashrc",
            "c:/x",
            "..\\..\\evil.pkl",
            "a\\..\\..\\x",
        ] {
            assert!(escapes(p).is_some(), "{p}");
            assert_eq!(check(p, &MemberKind::File)[0].rule, "ARC204", "{p}");
        }
        for p in [
            "model/weights.bin",
            "a/../b",
            "./x",
            "archive/data/0",
            "..a/b",
            "a..b",
            "ab:c",
        ] {
            assert!(escapes(p).is_none(), "{p}");
            assert!(check(p, &MemberKind::File).is_empty(), "{p}");
        }
        let f = &check("dir\\x", &MemberKind::File)[0];
        assert_eq!(f.severity, Some(modelward_diagnostics::Severity::Medium));
    }

    #[test]
    fn links_and_devices_are_reported_with_their_target() {
        let f = check(
            "model/cfg",
            &MemberKind::Symlink("/root/.ssh/authorized_keys".into()),
        );
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].rule, "ARC205");
        assert!(f[0].message.contains("/root/.ssh/authorized_keys") && f[0].message.contains("absolute"));
        assert_eq!(check("h", &MemberKind::Hardlink("x".into()))[0].rule, "ARC205");
        assert_eq!(check("dev", &MemberKind::Device)[0].rule, "ARC205");
    }
}
