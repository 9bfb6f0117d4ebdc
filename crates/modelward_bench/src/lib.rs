//! Inputs for modelward's benchmarks (`cargo bench -p modelward_bench`).
//!
//! The benches build their large inputs in memory, byte for byte as Python's `pickle` module
//! (and a plain stored-zip writer) would write them, so nothing large is committed:
//!
//! - [`float_list_p2`]: `pickle.dumps([i / 7 for i in range(n)], protocol=2)`.
//! - [`str_dict_p4`]: `pickle.dumps({f"k{i:07d}": f"word{i}" for i in range(n)}, protocol=4)`,
//!   framed like CPython's pickler does.
//! - [`stored_zip`]: a zip of `n` stored members, the shape of a checkpoint with many tensors.
//!
//! The unit tests pin the pickles to CPython's exact output (length and hash), so a throughput
//! number always refers to a real pickle layout.
#![forbid(unsafe_code)]

use modelward_pickle::assemble::Assembler;

/// CPython's `Pickler._BATCHSIZE`: items per `APPENDS` / `SETITEMS`.
const BATCH: usize = 1000;
/// CPython's `_Framer._FRAME_SIZE_TARGET`.
const FRAME_TARGET: usize = 64 * 1024;
/// CPython's `_Framer._FRAME_SIZE_MIN`.
const FRAME_MIN: usize = 4;

/// The value at index `i` of the float list.
fn float_at(i: usize) -> f64 {
    i as f64 / 7.0
}

/// `pickle.dumps([i / 7 for i in range(n)], protocol=2)`: `EMPTY_LIST BINPUT 0`, then
/// `MARK BINFLOAT×1000 APPENDS` batches, as CPython's C pickler writes it (a one-item list
/// gets a lone `APPEND`; a last short batch still gets `MARK ... APPENDS`).
pub fn float_list_p2(n: usize) -> Vec<u8> {
    let mut a = Assembler::new().proto(2).empty_list().binput(0);
    if n == 1 {
        a = a.binfloat(float_at(0)).append();
    } else {
        for start in (0..n).step_by(BATCH) {
            a = a.mark();
            for j in start..(start + BATCH).min(n) {
                a = a.binfloat(float_at(j));
            }
            a = a.appends();
        }
    }
    a.stop().finish()
}

fn key_at(i: usize) -> String {
    format!("k{i:07}")
}

fn value_at(i: usize) -> String {
    format!("word{i}")
}

/// CPython's protocol-4 framer: opcodes go into the current frame, which is closed (written
/// after a `FRAME` header) before saving an object once it holds at least 64 KiB.
struct Framer {
    out: Vec<u8>,
    frame: Vec<u8>,
}

impl Framer {
    fn new(out: Vec<u8>) -> Framer {
        Framer {
            out,
            frame: Vec::new(),
        }
    }

    /// `commit_frame()`, called at the start of every `save()`.
    fn before_save(&mut self) {
        if self.frame.len() >= FRAME_TARGET {
            self.flush();
        }
    }

    fn flush(&mut self) {
        if self.frame.len() >= FRAME_MIN {
            let header = Assembler::new().frame(self.frame.len() as u64).finish();
            self.out.extend_from_slice(&header);
        }
        self.out.append(&mut self.frame);
    }

    fn write(&mut self, bytes: Vec<u8>) {
        self.frame.extend_from_slice(&bytes);
    }

    fn finish(mut self) -> Vec<u8> {
        self.flush();
        self.out
    }
}

/// `pickle.dumps({f"k{i:07d}": f"word{i}" for i in range(n)}, protocol=4)`: every string a
/// memoized `SHORT_BINUNICODE`, `MARK ... SETITEMS` batches of 1000, 64 KiB frames, as
/// CPython's C pickler writes it.
pub fn str_dict_p4(n: usize) -> Vec<u8> {
    let mut f = Framer::new(Assembler::new().proto(4).finish());
    f.before_save();
    f.write(Assembler::new().empty_dict().memoize().finish());
    let save = |f: &mut Framer, s: String| {
        f.before_save();
        f.write(Assembler::new().short_binunicode(&s).memoize().finish());
    };
    if n == 1 {
        save(&mut f, key_at(0));
        save(&mut f, value_at(0));
        f.write(Assembler::new().setitem().finish());
    } else {
        for start in (0..n).step_by(BATCH) {
            f.write(Assembler::new().mark().finish());
            for j in start..(start + BATCH).min(n) {
                save(&mut f, key_at(j));
                save(&mut f, value_at(j));
            }
            f.write(Assembler::new().setitems().finish());
        }
        // CPython's `batch_dict_exact` loops while the last batch was full: an empty one closes
        // a dict whose size is a multiple of the batch size.
        if n.is_multiple_of(BATCH) {
            f.write(Assembler::new().mark().setitems().finish());
        }
    }
    f.write(Assembler::new().stop().finish());
    f.finish()
}

/// CRC-32 (IEEE), bitwise: only for building test archives.
fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// A zip of `n` stored members named `archive/data/{i}`, each `member_len` bytes, with a
/// central directory and end record: the shape of a PyTorch checkpoint with `n` tensors.
pub fn stored_zip(n: usize, member_len: usize) -> Vec<u8> {
    let mut out = Vec::new();
    let mut central = Vec::new();
    for i in 0..n {
        let name = format!("archive/data/{i}");
        let data: Vec<u8> = (0..member_len).map(|k| (k.wrapping_mul(31) ^ i) as u8).collect();
        let crc = crc32(&data);
        let offset = out.len() as u32;
        let (name_len, size) = (name.len() as u16, data.len() as u32);
        // local file header
        out.extend_from_slice(b"PK\x03\x04");
        out.extend_from_slice(&20u16.to_le_bytes()); // version needed
        out.extend_from_slice(&0u16.to_le_bytes()); // flags
        out.extend_from_slice(&0u16.to_le_bytes()); // method: stored
        out.extend_from_slice(&0u32.to_le_bytes()); // time, date
        out.extend_from_slice(&crc.to_le_bytes());
        out.extend_from_slice(&size.to_le_bytes());
        out.extend_from_slice(&size.to_le_bytes());
        out.extend_from_slice(&name_len.to_le_bytes());
        out.extend_from_slice(&0u16.to_le_bytes()); // extra length
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(&data);
        // central directory entry
        central.extend_from_slice(b"PK\x01\x02");
        central.extend_from_slice(&20u16.to_le_bytes()); // version made by
        central.extend_from_slice(&20u16.to_le_bytes()); // version needed
        central.extend_from_slice(&0u16.to_le_bytes()); // flags
        central.extend_from_slice(&0u16.to_le_bytes()); // method
        central.extend_from_slice(&0u32.to_le_bytes()); // time, date
        central.extend_from_slice(&crc.to_le_bytes());
        central.extend_from_slice(&size.to_le_bytes());
        central.extend_from_slice(&size.to_le_bytes());
        central.extend_from_slice(&name_len.to_le_bytes());
        central.extend_from_slice(&[0; 8]); // extra, comment, disk, internal attributes
        central.extend_from_slice(&0u32.to_le_bytes()); // external attributes
        central.extend_from_slice(&offset.to_le_bytes());
        central.extend_from_slice(name.as_bytes());
    }
    let cd_offset = out.len() as u32;
    let cd_size = central.len() as u32;
    out.extend_from_slice(&central);
    let entries = u16::try_from(n).unwrap_or(u16::MAX);
    out.extend_from_slice(b"PK\x05\x06");
    out.extend_from_slice(&[0; 4]); // disk numbers
    out.extend_from_slice(&entries.to_le_bytes());
    out.extend_from_slice(&entries.to_le_bytes());
    out.extend_from_slice(&cd_size.to_le_bytes());
    out.extend_from_slice(&cd_offset.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes()); // comment length
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use modelward_pickle::{End, Limits, NoInline, scan_stream};

    /// FNV-1a 64, to compare with CPython's output without storing it.
    fn fnv(data: &[u8]) -> u64 {
        data.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
            (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
        })
    }

    // Expected values from CPython 3.11 (`pickle.dumps` as documented on each builder).
    #[test]
    fn float_list_matches_cpython() {
        let small = float_list_p2(3);
        assert_eq!(&small[..6], b"\x80\x02]q\x00(");
        let p = float_list_p2(1001);
        assert_eq!((p.len(), fnv(&p)), (FLOAT_1001_LEN, FLOAT_1001_FNV));
    }

    #[test]
    fn str_dict_matches_cpython() {
        let p = str_dict_p4(20_000);
        assert_eq!((p.len(), fnv(&p)), (DICT_20000_LEN, DICT_20000_FNV));
        let p = str_dict_p4(1);
        assert_eq!((p.len(), fnv(&p)), (DICT_1_LEN, DICT_1_FNV));
    }

    #[test]
    fn pickles_scan_to_stop() {
        for p in [float_list_p2(2500), str_dict_p4(2500)] {
            let scan = scan_stream(&p[..], 0, Some(p.len() as u64), &Limits::default(), &mut NoInline);
            assert_eq!(scan.pickles.len(), 1);
            assert_eq!(scan.pickles[0].end_reason, End::Stop);
            assert_eq!(scan.pickles[0].end, p.len() as u64);
        }
    }

    #[test]
    fn zip_is_well_formed() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
        let z = stored_zip(3, 10);
        assert_eq!(&z[z.len() - 22..z.len() - 18], b"PK\x05\x06");
    }

    const FLOAT_1001_LEN: usize = 9019;
    const FLOAT_1001_FNV: u64 = 0xd22f4d52c175b0f8;
    const DICT_20000_LEN: usize = 449000;
    const DICT_20000_FNV: u64 = 0xabd35cffa267bb70;
    const DICT_1_LEN: usize = 34;
    const DICT_1_FNV: u64 = 0x093e07d20cdf1f49;
}
