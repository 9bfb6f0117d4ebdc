//! numpy `.npy` headers. Object arrays are a pickle after the header; numeric arrays are never
//! read past it.

use crate::pylit::{self, Lit};
use modelward_diagnostics::Fact;

/// The most header bytes read (numpy itself refuses headers over 10,000 bytes by default).
pub const MAX_HEADER: u64 = 1 << 20;

/// A parsed header.
#[derive(Debug, Clone, PartialEq)]
pub struct NpyHeader {
    /// Format version (major, minor).
    pub version: (u8, u8),
    /// Offset of the array data (or the pickle, for object arrays).
    pub data_offset: u64,
    /// The dtype description as written.
    pub descr: String,
    /// Whether the dtype holds Python objects (then a pickle follows).
    pub has_object: bool,
    /// Element count, when the shape is readable.
    pub count: Option<u128>,
    /// Bytes per element, for fixed-size dtypes.
    pub itemsize: Option<u64>,
}

/// Bytes needed before the header text: magic, version, length.
pub fn preamble_len(head: &[u8]) -> Option<(u8, u8, u64, u64)> {
    if head.len() < 10 || !head.starts_with(b"\x93NUMPY") {
        return None;
    }
    let (major, minor) = (head[6], head[7]);
    match major {
        1 => Some((
            major,
            minor,
            u64::from(u16::from_le_bytes([head[8], head[9]])),
            10,
        )),
        2 | 3 if head.len() >= 12 => Some((
            major,
            minor,
            u64::from(u32::from_le_bytes([head[8], head[9], head[10], head[11]])),
            12,
        )),
        _ => None,
    }
}

/// Parses a header from the file's first bytes (`head` must hold the whole header).
pub fn parse(head: &[u8]) -> Result<NpyHeader, Fact> {
    let (major, minor, hlen, pre) =
        preamble_len(head).ok_or_else(|| Fact::new("NPY101", "unknown .npy format version").at(6))?;
    if hlen > MAX_HEADER {
        return Err(Fact::new("NPY101", format!("the .npy header claims {hlen} bytes")).at(8));
    }
    let text = head.get(pre as usize..(pre + hlen) as usize).ok_or_else(|| {
        Fact::new(
            "NPY101",
            format!("the .npy header ({hlen} bytes) runs past the end of the file"),
        )
        .at(pre)
    })?;
    let text = String::from_utf8_lossy(text);
    let lit = pylit::parse(text.trim_end_matches(['\n', ' ', '\0']))
        .ok_or_else(|| Fact::new("NPY101", "the .npy header is not a Python dict literal").at(pre))?;
    let descr_lit = lit
        .get("descr")
        .ok_or_else(|| Fact::new("NPY101", "the .npy header has no 'descr'").at(pre))?;
    let has_object = descr_has_object(descr_lit);
    let descr = match descr_lit {
        Lit::Str(s) => s.clone(),
        other => format!("{other:?}"),
    };
    let count = match lit.get("shape") {
        Some(Lit::Tuple(dims)) => dims.iter().try_fold(1u128, |acc, d| match d {
            Lit::Int(n) if *n >= 0 => acc.checked_mul(*n as u128),
            _ => None,
        }),
        _ => None,
    };
    let itemsize = match descr_lit {
        Lit::Str(s) => itemsize(s),
        _ => None,
    };
    Ok(NpyHeader {
        version: (major, minor),
        data_offset: pre + hlen,
        descr,
        has_object,
        count,
        itemsize,
    })
}

fn descr_has_object(d: &Lit) -> bool {
    match d {
        Lit::Str(s) => s.trim_start_matches(['<', '>', '|', '=']).starts_with('O'),
        Lit::List(items) | Lit::Tuple(items) => items.iter().any(descr_has_object),
        _ => false,
    }
}

/// Bytes per element of a simple dtype string (`<f8` → 8, `<U10` → 40).
pub fn itemsize(descr: &str) -> Option<u64> {
    let s = descr.trim_start_matches(['<', '>', '|', '=']);
    let kind = s.chars().next()?;
    let digits: String = s[kind.len_utf8()..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    let n: u64 = if digits.is_empty() {
        match kind {
            '?' | 'b' | 'B' => 1,
            'e' | 'h' | 'H' => 2,
            'f' | 'i' | 'I' | 'l' | 'L' => 4,
            'd' | 'q' | 'Q' | 'g' => 8,
            _ => return None,
        }
    } else {
        digits.parse().ok()?
    };
    Some(match kind {
        'U' => n.checked_mul(4)?,
        'O' => return None,
        _ => n,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn npy(header: &str) -> Vec<u8> {
        let mut v = b"\x93NUMPY\x01\x00".to_vec();
        v.extend_from_slice(&(header.len() as u16).to_le_bytes());
        v.extend_from_slice(header.as_bytes());
        v
    }

    #[test]
    fn numeric_object_and_python2_headers() {
        let h = parse(&npy(
            "{'descr': '<f8', 'fortran_order': False, 'shape': (3, 4), }\n",
        ))
        .unwrap();
        assert_eq!((h.has_object, h.count, h.itemsize), (false, Some(12), Some(8)));
        let h = parse(&npy(
            "{'descr': '|O', 'fortran_order': False, 'shape': (2L,), }\n",
        ))
        .unwrap();
        assert!(h.has_object);
        let h = parse(&npy(
            "{'descr': [('a', '<i4'), ('b', '|O')], 'fortran_order': False, 'shape': (2,), }\n",
        ))
        .unwrap();
        assert!(h.has_object);
        assert!(parse(&npy("{'descr': __import__('os'), }")).is_err());
        assert_eq!(itemsize("<U10"), Some(40));
    }
}
