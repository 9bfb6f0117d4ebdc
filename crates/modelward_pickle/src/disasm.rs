//! A disassembly in the layout of `pickletools.dis`: offset, opcode, argument, MARK nesting.

use crate::decode::{Arg, BigInt, DecodeError, Instruction};
use crate::opcode::Opcode;
use std::fmt::Write as _;

/// One line of disassembly for an instruction at the given MARK depth.
pub fn line(ins: &Instruction<'_>, depth: usize) -> String {
    let mut s = String::new();
    let code = match ins.op.byte() {
        b @ 0x20..=0x7e => format!("{}", b as char),
        b => format!("\\x{b:02x}"),
    };
    // Offset, code and name stay in fixed columns whatever the MARK depth; the nesting shows
    // as the indentation of the argument column (pickletools indents the name instead, which
    // leaves the columns ragged).
    let _ = write!(s, "{:>8}: {:<4} {:<16}", ins.offset, code, ins.op.name());
    let arg = describe(&ins.arg);
    if !arg.is_empty() {
        s.push(' ');
        s.push_str(&"  ".repeat(depth.min(16)));
        s.push_str(&arg);
    }
    s.trim_end().to_owned()
}

/// The argument as `pickletools` would print it (strings quoted, long operands summarised).
pub fn describe(arg: &Arg<'_>) -> String {
    match arg {
        Arg::None => String::new(),
        Arg::Int(i) => i.to_string(),
        Arg::Bool(b) => {
            if *b {
                "True".into()
            } else {
                "False".into()
            }
        }
        Arg::BigInt(BigInt::Decimal(d)) => d.to_string(),
        Arg::BigInt(BigInt::Bytes(b)) => format!("<{}-byte integer>", b.len),
        Arg::Float(f) => f.to_string(),
        Arg::Bytes(b) => {
            let shown: String = b
                .data
                .iter()
                .take(48)
                .map(|&c| match c {
                    b'\\' => "\\\\".to_owned(),
                    b'\'' => "\\'".to_owned(),
                    0x20..=0x7e => (c as char).to_string(),
                    _ => format!("\\x{c:02x}"),
                })
                .collect();
            if b.len > 48 {
                format!("b'{shown}…' ({} bytes)", b.len)
            } else {
                format!("b'{shown}'")
            }
        }
        Arg::Text(t) => {
            let shown: String = t.text.chars().take(80).collect();
            let more = t.truncated || t.text.chars().count() > 80;
            format!(
                "{:?}{}",
                shown,
                if more {
                    format!("… ({} bytes)", t.len)
                } else {
                    String::new()
                }
            )
        }
        Arg::Global { module, name } => format!("'{module} {name}'"),
    }
}

/// Disassembles a whole byte slice; the error, if any, is the last line.
pub fn disassemble(data: &[u8]) -> Vec<String> {
    let mut depth = 0usize;
    let mut out = Vec::new();
    for item in crate::stream::instructions(data) {
        match item {
            Ok(ins) => {
                let closes = matches!(
                    ins.op,
                    Opcode::TUPLE
                        | Opcode::LIST
                        | Opcode::DICT
                        | Opcode::APPENDS
                        | Opcode::SETITEMS
                        | Opcode::ADDITEMS
                        | Opcode::FROZENSET
                        | Opcode::OBJ
                        | Opcode::INST
                        | Opcode::POP_MARK
                );
                if closes {
                    depth = depth.saturating_sub(1);
                }
                out.push(line(&ins, depth));
                if ins.op == Opcode::MARK {
                    depth += 1;
                }
                if ins.op == Opcode::STOP {
                    depth = 0;
                }
            }
            Err(DecodeError { offset, kind }) => out.push(format!("{offset:>8}: error: {kind}")),
        }
    }
    out
}
