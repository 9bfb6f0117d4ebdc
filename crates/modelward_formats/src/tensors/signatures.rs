//! Known file signatures inside tensor bytes. Each signature is a magic plus structural checks
//! on the bytes after it, so that a random float tensor matches with probability far below
//! 2^-32 per offset (a 4-byte magic alone would give false hits in large tensors).

use memchr::memmem;

/// One signature found in a byte slice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hit {
    /// Offset in the slice (callers add the slice's file offset).
    pub offset: usize,
    /// What it is, e.g. `ELF executable`.
    pub kind: &'static str,
    /// The first bytes at the offset, in hex.
    pub preview: String,
}

/// Bytes shown in a hit's preview.
pub const PREVIEW: usize = 16;

/// Hex preview of up to [`PREVIEW`] bytes at `at`.
pub fn preview(data: &[u8], at: usize) -> String {
    data[at..data.len().min(at + PREVIEW)]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(" ")
}

fn u16le(d: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(d.get(at..at + 2)?.try_into().ok()?))
}

fn u32le(d: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(d.get(at..at + 4)?.try_into().ok()?))
}

fn elf(d: &[u8], at: usize) -> bool {
    // class 1|2, data 1|2, version 1, e_type 1..=4 (rel, exec, dyn, core).
    let h = &d[at..];
    h.len() >= 18 && matches!(h[4], 1 | 2) && matches!(h[5], 1 | 2) && h[6] == 1 && {
        let t = if h[5] == 1 {
            u16le(h, 16)
        } else {
            Some(u16::from_be_bytes([h[16], h[17]]))
        };
        matches!(t, Some(1..=4))
    }
}

fn pe(d: &[u8], at: usize) -> bool {
    // DOS header whose e_lfanew points at "PE\0\0" within the slice.
    let Some(lfanew) = u32le(d, at + 0x3c) else {
        return false;
    };
    let lfanew = lfanew as usize;
    (0x40..=0x1000).contains(&lfanew) && d.get(at + lfanew..at + lfanew + 4) == Some(b"PE\0\0")
}

fn macho(d: &[u8], at: usize) -> bool {
    // CPU type: x86 (7), x86_64, arm (12), arm64, ppc (18), ppc64 — little or big endian.
    let Some(le) = u32le(d, at + 4) else { return false };
    let be = le.swap_bytes();
    let known = |c: u32| matches!(c & 0x00ff_ffff, 7 | 12 | 18) && (c >> 24) <= 1;
    let kind = u32le(d, at + 12).unwrap_or(0);
    (known(le) || known(be)) && (matches!(kind, 1..=12) || matches!(kind.swap_bytes(), 1..=12))
}

fn zip(d: &[u8], at: usize) -> bool {
    // version needed <= 6.3, compression method stored/deflate/bzip2/lzma/zstd/xz, name length 1..=1024.
    let (Some(ver), Some(method), Some(name_len)) = (u16le(d, at + 4), u16le(d, at + 8), u16le(d, at + 26))
    else {
        return false;
    };
    ver <= 63 && matches!(method, 0 | 8 | 12 | 14 | 93 | 95) && (1..=1024).contains(&name_len)
}

fn gzip(d: &[u8], at: usize) -> bool {
    // deflate, reserved flag bits clear, XFL 0/2/4, known OS byte.
    let h = &d[at..];
    h.len() >= 10 && h[3] & 0xe0 == 0 && matches!(h[8], 0 | 2 | 4) && (h[9] <= 13 || h[9] == 255)
}

fn pickle(d: &[u8], at: usize) -> bool {
    let h = &d[at..];
    match h.get(1) {
        // protocol 4/5: FRAME with an 8-byte length below 4 GiB, then a known first opcode.
        Some(4 | 5) => {
            h.len() >= 12
                && h[2] == 0x95
                && h[7..11] == [0, 0, 0, 0]
                && matches!(
                    h[11],
                    b'}' | b']' | b')' | b'(' | 0x8c | b'c' | 0x93 | b'K' | b'J'
                )
        }
        // protocol 2/3: a GLOBAL `c<module>\n<name>\n` or an empty dict/list with a memo put.
        Some(2 | 3) => {
            if h.get(2) == Some(&b'c') {
                let rest = &h[3..h.len().min(3 + 64)];
                let Some(nl) = rest.iter().position(|&b| b == b'\n') else {
                    return false;
                };
                nl >= 2
                    && rest[..nl]
                        .iter()
                        .all(|&b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.')
            } else {
                h.len() >= 5
                    && matches!(h[2], b'}' | b']')
                    && h[3] == b'q'
                    && h[4] == 0
                    && matches!(h.get(5), Some(b'(' | b'X' | b'U' | 0x8c))
            }
        }
        _ => false,
    }
}

fn script(d: &[u8], at: usize) -> bool {
    // `#!/…` then at least 6 printable characters and a newline within 128 bytes.
    let rest = &d[at + 3..d.len().min(at + 128)];
    let Some(nl) = rest.iter().position(|&b| b == b'\n') else {
        return false;
    };
    nl >= 6 && rest[..nl].iter().all(|&b| (0x20..0x7f).contains(&b))
}

/// Every signature in `data`, in offset order, at most `max` of them.
pub fn scan(data: &[u8], max: usize) -> Vec<Hit> {
    type Check = fn(&[u8], usize) -> bool;
    const MAGICS: &[(&[u8], &str, Check)] = &[
        (b"\x7fELF", "ELF executable", elf),
        (b"MZ", "PE (Windows) executable", pe),
        (b"\xfe\xed\xfa\xce", "Mach-O executable", macho),
        (b"\xfe\xed\xfa\xcf", "Mach-O executable", macho),
        (b"\xce\xfa\xed\xfe", "Mach-O executable", macho),
        (b"\xcf\xfa\xed\xfe", "Mach-O executable", macho),
        (b"PK\x03\x04", "zip archive", zip),
        (b"7z\xbc\xaf\x27\x1c", "7z archive", |_, _| true),
        (b"\x1f\x8b\x08", "gzip stream", gzip),
        (b"\x80\x02", "pickle", pickle),
        (b"\x80\x03", "pickle", pickle),
        (b"\x80\x04", "pickle", pickle),
        (b"\x80\x05", "pickle", pickle),
        (b"#!/", "shebang script", script),
    ];
    const WORDS: &[&[u8]] = &[
        b"powershell",
        b"PowerShell",
        b"POWERSHELL",
        b"Invoke-Expression",
        b"-EncodedCommand",
        b"FromBase64String",
        b"p\0o\0w\0e\0r\0s\0h\0e\0l\0l\0",
    ];
    let mut hits = Vec::new();
    for (magic, kind, check) in MAGICS {
        for at in memmem::find_iter(data, magic) {
            if check(data, at) {
                hits.push(Hit {
                    offset: at,
                    kind,
                    preview: preview(data, at),
                });
                if hits.len() >= max {
                    break;
                }
            }
        }
    }
    for word in WORDS {
        for at in memmem::find_iter(data, word) {
            hits.push(Hit {
                offset: at,
                kind: "PowerShell command",
                preview: preview(data, at),
            });
            if hits.len() >= 2 * max {
                break;
            }
        }
    }
    hits.sort_by_key(|h| h.offset);
    hits.dedup_by_key(|h| h.offset);
    hits.truncate(max);
    hits
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Deterministic pseudo-random bytes (xorshift), to stand in for float noise.
    fn noise(n: usize, mut s: u64) -> Vec<u8> {
        (0..n)
            .map(|_| {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                (s >> 24) as u8
            })
            .collect()
    }

    fn planted(sig: &[u8]) -> Vec<Hit> {
        let mut d = noise(4096, 7);
        d[1000..1000 + sig.len()].copy_from_slice(sig);
        scan(&d, 8)
    }

    #[test]
    fn finds_each_kind_with_offset() {
        let mut elf = b"\x7fELF\x02\x01\x01\0\0\0\0\0\0\0\0\0\x02\0\x3e\0".to_vec();
        elf.extend([0u8; 8]);
        let h = planted(&elf);
        assert!(
            h.iter().any(|h| h.kind == "ELF executable" && h.offset == 1000),
            "{h:?}"
        );
        assert!(h[0].preview.starts_with("7f 45 4c 46"));
        let mut pe = vec![0u8; 0x90];
        pe[..2].copy_from_slice(b"MZ");
        pe[0x3c..0x40].copy_from_slice(&0x80u32.to_le_bytes());
        pe[0x80..0x84].copy_from_slice(b"PE\0\0");
        assert!(planted(&pe).iter().any(|h| h.kind.starts_with("PE")));
        let macho = b"\xcf\xfa\xed\xfe\x07\0\0\x01\x03\0\0\0\x02\0\0\0";
        assert!(planted(macho).iter().any(|h| h.kind.starts_with("Mach-O")));
        let zip = b"PK\x03\x04\x14\0\0\0\x08\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\x05\0\0\0";
        assert!(planted(zip).iter().any(|h| h.kind == "zip archive"));
        assert!(
            planted(b"7z\xbc\xaf\x27\x1c\0\x04")
                .iter()
                .any(|h| h.kind == "7z archive")
        );
        assert!(
            planted(b"\x1f\x8b\x08\0\0\0\0\0\0\x03")
                .iter()
                .any(|h| h.kind == "gzip stream")
        );
        assert!(
            planted(b"\x80\x04\x95\x10\0\0\0\0\0\0\0\x8c")
                .iter()
                .any(|h| h.kind == "pickle")
        );
        assert!(
            planted(b"\x80\x02cposix\nsystem\n")
                .iter()
                .any(|h| h.kind == "pickle")
        );
        assert!(
            planted(b"#!/bin/sh\ncurl x | sh\n")
                .iter()
                .any(|h| h.kind == "shebang script")
        );
        assert!(
            planted(b"powershell -nop -w hidden")
                .iter()
                .any(|h| h.kind == "PowerShell command")
        );
    }

    #[test]
    fn noise_and_bare_magics_give_nothing() {
        for seed in 1..40 {
            assert_eq!(scan(&noise(1 << 16, seed), 8), [], "seed {seed}");
        }
        // Magic bytes without the structure behind them.
        assert_eq!(planted(b"\x7fELF\x09\x09\x09"), []);
        assert_eq!(planted(b"MZ\0\0"), []);
        assert_eq!(planted(b"PK\x03\x04\xff\xff"), []);
        assert_eq!(planted(b"\x80\x02\x00\x00"), []);
        // Truncated at the very end never panics.
        for sig in [
            &b"\x7fELF"[..],
            b"MZ",
            b"PK\x03\x04",
            b"\x1f\x8b\x08",
            b"\x80\x04",
            b"#!/",
            b"\xcf\xfa\xed\xfe",
        ] {
            let _ = scan(sig, 8);
        }
    }

    #[test]
    fn hits_are_capped() {
        let d = b"#!/bin/sh -e\n".repeat(100);
        assert_eq!(scan(&d, 5).len(), 5);
    }
}
