//! The instruction decoder: every opcode and operand length over arbitrary bytes, both over the
//! whole input at once (`stream::instructions`, `disasm`) and through the windowed `Reader`
//! fed by a source that returns short reads, with a tiny inline budget so long operands are
//! skipped rather than held. Both views must agree on every instruction boundary.
#![no_main]

use libfuzzer_sys::fuzz_target;
use modelward_pickle::decode::Step;
use modelward_pickle::stream::{ReadSource, Reader};
use std::io::{self, Read};

/// A reader that hands out its bytes in short reads (sizes taken from the data itself), the
/// way a decompressor or a pipe would. (Not byte by byte: the Reader zero-fills a 256 KiB
/// chunk per read call, which would make every input take milliseconds.)
struct Trickle<'a> {
    data: &'a [u8],
    pos: usize,
}

impl Read for Trickle<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let rest = &self.data[self.pos..];
        let step = 1 + 97 * usize::from(rest.first().copied().unwrap_or(0) % 16);
        let n = step.min(rest.len()).min(buf.len());
        buf[..n].copy_from_slice(&rest[..n]);
        self.pos += n;
        Ok(n)
    }
}

fuzz_target!(|data: &[u8]| {
    // Whole input in memory.
    let mut whole = Vec::new();
    let mut end = 0u64;
    for ins in modelward_pickle::stream::instructions(data) {
        match ins {
            Ok(ins) => {
                assert!(ins.len > 0, "zero-length instruction at {}", ins.offset);
                assert_eq!(ins.offset, end, "instructions are not contiguous");
                end = end.saturating_add(ins.len);
                assert!(end <= data.len() as u64, "instruction past the end of the input");
                let _ = modelward_pickle::disasm::line(&ins, 0);
                whole.push((ins.offset, ins.op, ins.len));
            }
            Err(e) => {
                let _ = e.to_string();
                break;
            }
        }
    }
    let _ = modelward_pickle::disasm::disassemble(data);

    // The same bytes through the bounded window, a few bytes per read, operands over 16 bytes
    // skipped. Boundaries must match the in-memory view.
    let src = ReadSource(Trickle { data, pos: 0 });
    let mut reader = Reader::new(src, 0, Some(data.len() as u64), 16);
    let mut streamed = Vec::new();
    loop {
        let (item, len) = match reader.next_instruction() {
            Ok(Step::Ok(ins)) => ((ins.offset, ins.op, ins.len), ins.len),
            Ok(Step::NeedMore) | Ok(Step::Err(_)) | Err(_) => break,
        };
        streamed.push(item);
        match reader.advance(len) {
            Ok(n) if n == len => {}
            _ => break,
        }
        if streamed.len() > whole.len() {
            break;
        }
    }
    assert_eq!(
        whole, streamed,
        "windowed reader and in-memory decoder disagree on instruction boundaries"
    );
});
