//! Reading a safetensors header back (pure Rust, strict) and checking a written file against
//! its source.

use crate::copy::{self, CHUNK};
use crate::dtype::Dtype;
use crate::plan::MAX_HEADER;
use crate::{ConvertError, Plan};
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

/// One tensor of a safetensors header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TensorEntry {
    /// Element type.
    pub dtype: Dtype,
    /// Shape.
    pub shape: Vec<u64>,
    /// Byte range in the data section.
    pub data_offsets: (u64, u64),
}

/// A safetensors header, validated like the reference reader: known dtypes, sizes that match
/// shapes, offsets that tile the data section exactly, string metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SafetensorsHeader {
    /// Tensors by name.
    pub tensors: BTreeMap<String, TensorEntry>,
    /// `__metadata__`.
    pub metadata: BTreeMap<String, String>,
    /// Offset of the data section in the file.
    pub data_start: u64,
    /// Length of the data section.
    pub data_len: u64,
}

fn bad(path: &Path, m: impl Into<String>) -> ConvertError {
    ConvertError::Verify {
        path: path.display().to_string(),
        message: m.into(),
    }
}

/// Reads and validates a safetensors file's header.
pub fn read_header(path: &Path) -> Result<SafetensorsHeader, ConvertError> {
    let io = |e| ConvertError::Io {
        path: path.display().to_string(),
        source: e,
    };
    let mut f = File::open(path).map_err(io)?;
    let len = f.metadata().map_err(io)?.len();
    // The scanner's safetensors parser first: it sees what serde_json hides (a key given twice
    // keeps only its last value there) and checks the header as the reference loader does.
    if let Some(f0) = modelward_formats::safetensors::check(&mut f, len).facts.first() {
        return Err(bad(path, format!("{}: {}", f0.rule, f0.message)));
    }
    f.seek(SeekFrom::Start(0)).map_err(io)?;
    let mut n = [0u8; 8];
    f.read_exact(&mut n).map_err(io)?;
    let n = u64::from_le_bytes(n);
    if n > MAX_HEADER || n.checked_add(8).is_none_or(|e| e > len) {
        return Err(bad(path, format!("header length {n} does not fit the file")));
    }
    let mut text = vec![0u8; n as usize];
    f.read_exact(&mut text).map_err(io)?;
    let json: serde_json::Value =
        serde_json::from_slice(&text).map_err(|e| bad(path, format!("header is not JSON: {e}")))?;
    let serde_json::Value::Object(map) = json else {
        return Err(bad(path, "header is not a JSON object"));
    };
    let mut tensors = BTreeMap::new();
    let mut metadata = BTreeMap::new();
    for (k, v) in map {
        if k == "__metadata__" {
            let serde_json::Value::Object(m) = v else {
                return Err(bad(path, "__metadata__ is not an object"));
            };
            for (mk, mv) in m {
                let serde_json::Value::String(s) = mv else {
                    return Err(bad(path, format!("__metadata__[{mk:?}] is not a string")));
                };
                metadata.insert(mk, s);
            }
            continue;
        }
        let dtype = v["dtype"]
            .as_str()
            .and_then(Dtype::from_safetensors)
            .ok_or_else(|| bad(path, format!("{k}: unknown dtype {}", v["dtype"])))?;
        let shape: Vec<u64> = v["shape"]
            .as_array()
            .and_then(|a| a.iter().map(serde_json::Value::as_u64).collect())
            .ok_or_else(|| bad(path, format!("{k}: shape is not a list of ints")))?;
        let offs: Vec<u64> = v["data_offsets"]
            .as_array()
            .and_then(|a| a.iter().map(serde_json::Value::as_u64).collect())
            .ok_or_else(|| bad(path, format!("{k}: data_offsets is not two ints")))?;
        let [a, b] = offs[..] else {
            return Err(bad(path, format!("{k}: data_offsets is not two ints")));
        };
        let size = shape
            .iter()
            .try_fold(dtype.size(), |acc, &d| acc.checked_mul(d))
            .ok_or_else(|| bad(path, format!("{k}: size overflows")))?;
        if b < a || b - a != size {
            return Err(bad(
                path,
                format!("{k}: data_offsets [{a}, {b}] do not hold {size} bytes"),
            ));
        }
        tensors.insert(
            k,
            TensorEntry {
                dtype,
                shape,
                data_offsets: (a, b),
            },
        );
    }
    let mut ranges: Vec<(u64, u64)> = tensors.values().map(|t| t.data_offsets).collect();
    ranges.sort_unstable();
    let mut at = 0;
    for (a, b) in ranges {
        if a != at {
            return Err(bad(
                path,
                format!("data offsets leave a gap or overlap at byte {at}"),
            ));
        }
        at = b;
    }
    let data_start = 8 + n;
    if data_start + at != len {
        return Err(bad(
            path,
            format!(
                "tensors cover {at} bytes of data but the file holds {}",
                len - data_start
            ),
        ));
    }
    Ok(SafetensorsHeader {
        tensors,
        metadata,
        data_start,
        data_len: at,
    })
}

/// What verification checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyReport {
    /// Tensors compared.
    pub tensors: usize,
    /// Bytes compared.
    pub bytes: u64,
    /// Source zip records whose bytes do not match their recorded CRC-32 (the output still
    /// equals the source; the source itself was damaged or edited).
    pub crc_mismatches: Vec<String>,
}

pub(crate) fn verify(plan: &Plan, path: &Path, shown: &Path) -> Result<VerifyReport, ConvertError> {
    let h = read_header(path).map_err(|e| match e {
        ConvertError::Verify { message, .. } => bad(shown, message),
        other => other,
    })?;
    if h.metadata != plan.metadata {
        return Err(bad(shown, "__metadata__ differs from the source's string values"));
    }
    if h.tensors.len() != plan.tensors.len() {
        return Err(bad(
            shown,
            format!(
                "{} tensors in the file, {} in the source",
                h.tensors.len(),
                plan.tensors.len()
            ),
        ));
    }
    for t in &plan.tensors {
        let e = h
            .tensors
            .get(&t.name)
            .ok_or_else(|| bad(shown, format!("{} is missing", t.name)))?;
        if e.dtype != t.dtype || e.shape != t.shape {
            return Err(bad(
                shown,
                format!(
                    "{}: {} {:?} in the file, {} {:?} in the source",
                    t.name, e.dtype, e.shape, t.dtype, t.shape
                ),
            ));
        }
    }
    let (mut src, ats, _scratch, mut crc_mismatches) = plan.open_sources(path)?;
    let io = |e| ConvertError::Io {
        path: shown.display().to_string(),
        source: e,
    };
    // Every stored record whole, against the CRC-32 the zip directory gives it.
    for (r, at) in plan.regions.iter().zip(&ats) {
        if let (Some(want), crate::plan::RegionSrc::Input(_)) = (r.crc32, &r.src) {
            let f = &mut src.files[at.file];
            f.seek(SeekFrom::Start(at.start)).map_err(io)?;
            let mut c = modelward_formats::zip::CrcReader::new(Read::by_ref(f).take(at.len));
            std::io::copy(&mut c, &mut std::io::sink()).map_err(io)?;
            if c.crc32() != want {
                crc_mismatches.push(crate::crc_message(&r.label, want, c.crc32()));
            }
        }
    }
    let mut out = File::open(path).map_err(io)?;
    let mut got = Vec::with_capacity(CHUNK);
    let mut buf = Vec::with_capacity(CHUNK);
    let mut bytes = 0u64;
    for t in &plan.tensors {
        let e = &h.tensors[&t.name];
        out.seek(SeekFrom::Start(h.data_start + e.data_offsets.0))
            .map_err(io)?;
        let mut pos = 0u64;
        let mut mismatch: Option<u64> = None;
        copy::emit_naive(&mut src, ats[t.region], t, &mut buf, &mut |want| {
            got.resize(want.len(), 0);
            out.read_exact(&mut got)?;
            if mismatch.is_none() && got != want {
                let i = got.iter().zip(want).position(|(a, b)| a != b).unwrap_or(0);
                mismatch = Some(pos + i as u64);
            }
            pos += want.len() as u64;
            Ok(())
        })
        .map_err(io)?;
        if let Some(at) = mismatch {
            return Err(bad(
                shown,
                format!(
                    "{}: byte {at} (element {}) differs from the source",
                    t.name,
                    at / t.dtype.size()
                ),
            ));
        }
        if pos != e.data_offsets.1 - e.data_offsets.0 {
            return Err(bad(shown, format!("{}: the source gave {pos} bytes", t.name)));
        }
        bytes += pos;
    }
    Ok(VerifyReport {
        tensors: plan.tensors.len(),
        bytes,
        crc_mismatches,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(header: &str, data: &[u8]) -> tempfile::NamedTempFile {
        use std::io::Write;
        let mut f = tempfile::NamedTempFile::new().expect("temp");
        f.write_all(&(header.len() as u64).to_le_bytes()).expect("write");
        f.write_all(header.as_bytes()).expect("write");
        f.write_all(data).expect("write");
        f
    }

    #[test]
    fn a_key_given_twice_is_refused() {
        let t = r#""dtype":"U8","shape":[2],"data_offsets":[0,2]"#;
        let ok = file(&format!("{{\"a\":{{{t}}}}}"), &[1, 2]);
        assert!(read_header(ok.path()).is_ok());
        // serde_json keeps the last "a" and would accept this; the reference loader refuses it.
        let twice = file(&format!("{{\"a\":{{{t}}},\"a\":{{{t}}}}}"), &[1, 2]);
        let err = read_header(twice.path())
            .expect_err("duplicate key accepted")
            .to_string();
        assert!(err.contains("SFT"), "{err}");
    }
}
