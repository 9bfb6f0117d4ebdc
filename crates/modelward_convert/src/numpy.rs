//! numpy `.npy` arrays and `.npz` archives of them. Only numeric arrays are converted; object
//! arrays are pickles and are refused.

use crate::dtype::npy_dtype;
use crate::plan::{Region, RegionSrc, TensorPlan};
use crate::{Judge, Loaded, SourceFormat};
use modelward_formats::npy;
use modelward_formats::pylit::{self, Lit};
use modelward_formats::zip::{self, ZipEntry, ZipListing};
use modelward_formats::{Format, compress, sniff};
use modelward_pickle::{Limits, NoInline, scan_stream};
use modelward_policy::PickleContext;
use std::collections::{BTreeMap, HashSet};
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};

/// Most header bytes read (numpy's own limit is far lower).
const MAX_HEAD: u64 = npy::MAX_HEADER + 12;
/// Most bytes of an object array's pickle analysed for the refusal message.
const MAX_OBJECT_PICKLE: u64 = 64 << 20;

/// A parsed `.npy` header.
struct Header {
    data_offset: u64,
    descr: String,
    has_object: bool,
    shape: Vec<u64>,
    fortran: bool,
}

fn header(head: &[u8]) -> Result<Header, String> {
    let h = npy::parse(head).map_err(|f| f.message)?;
    let (_, _, hlen, pre) = npy::preamble_len(head).ok_or("not a .npy header")?;
    let text = head
        .get(pre as usize..(pre + hlen) as usize)
        .ok_or("the .npy header is cut short")?;
    let text = String::from_utf8_lossy(text);
    let lit =
        pylit::parse(text.trim_end_matches(['\n', ' ', '\0'])).ok_or("the .npy header is not a literal")?;
    let shape = match lit.get("shape") {
        Some(Lit::Tuple(dims)) => dims
            .iter()
            .map(|d| match d {
                Lit::Int(n) => u64::try_from(*n).map_err(|_| "a negative dimension".to_owned()),
                _ => Err("a dimension that is not an int".to_owned()),
            })
            .collect::<Result<Vec<u64>, String>>()?,
        _ => return Err("the .npy header has no shape tuple".into()),
    };
    let fortran = match lit.get("fortran_order") {
        Some(Lit::Bool(b)) => *b,
        None => false,
        Some(_) => return Err("fortran_order is not a bool".into()),
    };
    Ok(Header {
        data_offset: h.data_offset,
        descr: h.descr,
        has_object: h.has_object,
        shape,
        fortran,
    })
}

/// Reads the first bytes of a stream: enough for any header.
fn read_head(r: impl Read) -> std::io::Result<Vec<u8>> {
    let mut head = Vec::new();
    r.take(MAX_HEAD).read_to_end(&mut head)?;
    Ok(head)
}

/// A tensor over an array's data (C or Fortran order).
fn tensor(
    name: &str,
    h: &Header,
    region: usize,
    region_len: u64,
    judge: &mut Judge<'_>,
) -> Result<TensorPlan, crate::ConvertError> {
    let (dtype, big) = npy_dtype(&h.descr).map_err(|m| judge.unsupported(format!("{name}: {m}")))?;
    let numel = h
        .shape
        .iter()
        .try_fold(1u64, |a, &d| a.checked_mul(d))
        .ok_or_else(|| judge.malformed(format!("{name}: the shape overflows")))?;
    let nbytes = numel
        .checked_mul(dtype.size())
        .ok_or_else(|| judge.malformed(format!("{name}: the size overflows")))?;
    if h.data_offset.checked_add(nbytes).is_none_or(|e| e > region_len) {
        return Err(judge.malformed(format!(
            "{name}: the array needs {nbytes} bytes after its header but the data is shorter"
        )));
    }
    let mut strides = vec![0u64; h.shape.len()];
    let mut acc = 1u64;
    let mut set = |(s, &n): (&mut u64, &u64)| {
        *s = acc;
        acc *= n.max(1);
    };
    if h.fortran {
        strides.iter_mut().zip(&h.shape).for_each(&mut set);
    } else {
        strides.iter_mut().zip(&h.shape).rev().for_each(&mut set);
    }
    Ok(TensorPlan {
        name: name.to_owned(),
        dtype,
        shape: h.shape.clone(),
        strides,
        region,
        byte_offset: h.data_offset,
        swap: big,
        begin: 0,
        end: 0,
    })
}

/// Analyses an object array's pickle so the refusal shows what it would do.
fn object_array(judge: &mut Judge<'_>, name: &str, member: Option<&str>, r: impl Read, data_offset: u64) {
    let mut r = r.take(data_offset + MAX_OBJECT_PICKLE);
    let mut skip = vec![0u8; data_offset as usize];
    if r.read_exact(&mut skip).is_ok() {
        let scan = scan_stream(
            modelward_pickle::ReadSource(r),
            data_offset,
            None,
            &Limits::default(),
            &mut NoInline,
        );
        for t in &scan.pickles {
            judge.pickle(t, member, PickleContext::default());
        }
    }
    judge.reason(format!(
        "{name} is an object array: its elements are a pickle of Python objects, not numbers"
    ));
}

/// A `.npy` file.
pub(crate) fn load_npy(
    file: &mut File,
    len: u64,
    judge: &mut Judge<'_>,
    root_name: &str,
) -> Result<Loaded, crate::ConvertError> {
    file.seek(SeekFrom::Start(0)).map_err(|e| judge.io(e))?;
    let head = read_head(&mut *file).map_err(|e| judge.io(e))?;
    let h = header(&head).map_err(|m| judge.malformed(m))?;
    if h.has_object {
        file.seek(SeekFrom::Start(0)).map_err(|e| judge.io(e))?;
        object_array(judge, root_name, None, &mut *file, h.data_offset);
        return judge.refused();
    }
    let regions = vec![Region {
        label: "array data".into(),
        src: RegionSrc::Input(0),
        len,
        crc32: None,
    }];
    let t = tensor(root_name, &h, 0, len, judge)?;
    let mut notes = Vec::new();
    if h.fortran {
        notes.push(format!(
            "{root_name} is stored in Fortran order: written in C order"
        ));
    }
    if t.swap {
        notes.push(format!("{root_name} is big-endian: byte-swapped"));
    }
    Ok(Loaded {
        format: SourceFormat::Npy,
        regions,
        tensors: vec![t],
        metadata: BTreeMap::new(),
        dropped: Vec::new(),
        notes,
    })
}

fn open_member<'a>(file: &'a mut File, len: u64, e: &ZipEntry) -> Result<Box<dyn Read + 'a>, String> {
    let raw = zip::raw_member(file, e, len).ok_or_else(|| format!("{} lies outside the file", e.name))?;
    compress::zip_method(e.method, raw)
        .ok_or_else(|| format!("{} uses compression method {}", e.name, e.method))?
        .map_err(|err| format!("{}: {err}", e.name))
}

/// A `.npz` archive: every `name.npy` member becomes tensor `name`.
pub(crate) fn load_npz(
    file: &mut File,
    len: u64,
    listing: &ZipListing,
    judge: &mut Judge<'_>,
) -> Result<Loaded, crate::ConvertError> {
    let mut regions = Vec::new();
    let mut tensors = Vec::new();
    let mut notes = Vec::new();
    let mut names = HashSet::new();
    for e in listing.entries.iter().filter(|e| !e.is_dir()) {
        let Some(name) = e.name.strip_suffix(".npy") else {
            notes.push(format!(
                "{} is not a .npy member; numpy.load ignores it and so does the converter",
                e.name
            ));
            continue;
        };
        let head = {
            let r = open_member(file, len, e).map_err(|m| judge.malformed(m))?;
            read_head(r).map_err(|err| judge.io(err))?
        };
        if sniff(&head) != Format::Npy {
            return Err(judge.unsupported(format!("{} is not a .npy array", e.name)));
        }
        let h = header(&head).map_err(|m| judge.malformed(format!("{}: {m}", e.name)))?;
        if h.has_object {
            let r = open_member(file, len, e).map_err(|m| judge.malformed(m))?;
            object_array(judge, &e.name, Some(&e.name), r, h.data_offset);
            continue;
        }
        let Some(data_offset) = e.data_offset else {
            return Err(judge.malformed(format!("{} has no readable local header", e.name)));
        };
        let region = if e.method == 0 {
            if data_offset
                .checked_add(e.compressed_size)
                .is_none_or(|end| end > len)
            {
                return Err(judge.malformed(format!("{} runs past the end of the file", e.name)));
            }
            Region {
                label: e.name.clone(),
                src: RegionSrc::Input(data_offset),
                len: e.compressed_size,
                crc32: crate::torch::crc_of(e),
            }
        } else {
            Region {
                label: e.name.clone(),
                src: RegionSrc::Member(e.clone()),
                len: e.uncompressed_size,
                crc32: crate::torch::crc_of(e),
            }
        };
        if !names.insert(name.to_owned()) {
            return Err(judge.malformed(format!("two members are named {}", e.name)));
        }
        let t = tensor(name, &h, regions.len(), region.len, judge)?;
        if h.fortran {
            notes.push(format!("{name} is stored in Fortran order: written in C order"));
        }
        if t.swap {
            notes.push(format!("{name} is big-endian: byte-swapped"));
        }
        regions.push(region);
        tensors.push(t);
    }
    judge.check()?;
    if tensors.is_empty() {
        return Err(judge.unsupported("the .npz archive holds no numeric arrays"));
    }
    if names.contains("__metadata__") {
        return Err(judge.unsupported("an array is named __metadata__, which safetensors reserves"));
    }
    Ok(Loaded {
        format: SourceFormat::Npz,
        regions,
        tensors,
        metadata: BTreeMap::new(),
        dropped: Vec::new(),
        notes,
    })
}
