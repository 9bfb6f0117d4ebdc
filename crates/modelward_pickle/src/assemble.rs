//! Builds pickles opcode by opcode, so tests read like the attack they cover:
//!
//! ```
//! use modelward_pickle::assemble::Assembler;
//! let p = Assembler::new().proto(2).global("posix", "system").short_binunicode("id").tuple1().reduce().stop().finish();
//! assert_eq!(&p[..2], b"\x80\x02");
//! ```

use crate::opcode::Opcode;

/// A pickle under construction.
#[derive(Debug, Default, Clone)]
pub struct Assembler {
    out: Vec<u8>,
}

macro_rules! simple {
    ($($fn:ident => $op:ident),* $(,)?) => {
        $(
            #[doc = concat!("Emits `", stringify!($op), "`.")]
            #[must_use]
            pub fn $fn(self) -> Self { self.op(Opcode::$op) }
        )*
    };
}

impl Assembler {
    /// An empty pickle.
    pub fn new() -> Assembler {
        Assembler::default()
    }

    /// The bytes.
    pub fn finish(self) -> Vec<u8> {
        self.out
    }

    /// Emits an opcode with no argument.
    #[must_use]
    pub fn op(mut self, op: Opcode) -> Self {
        self.out.push(op.byte());
        self
    }

    /// Emits raw bytes.
    #[must_use]
    pub fn raw(mut self, bytes: &[u8]) -> Self {
        self.out.extend_from_slice(bytes);
        self
    }

    fn with(mut self, op: Opcode, arg: &[u8]) -> Self {
        self.out.push(op.byte());
        self.out.extend_from_slice(arg);
        self
    }

    simple! {
        mark => MARK, stop => STOP, pop => POP, pop_mark => POP_MARK, dup => DUP,
        none => NONE, newtrue => NEWTRUE, newfalse => NEWFALSE,
        tuple => TUPLE, tuple1 => TUPLE1, tuple2 => TUPLE2, tuple3 => TUPLE3, empty_tuple => EMPTY_TUPLE,
        list => LIST, empty_list => EMPTY_LIST, append => APPEND, appends => APPENDS,
        dict => DICT, empty_dict => EMPTY_DICT, setitem => SETITEM, setitems => SETITEMS,
        empty_set => EMPTY_SET, additems => ADDITEMS, frozenset => FROZENSET,
        reduce => REDUCE, build => BUILD, newobj => NEWOBJ, newobj_ex => NEWOBJ_EX, obj => OBJ,
        stack_global => STACK_GLOBAL, memoize => MEMOIZE, binpersid => BINPERSID,
        next_buffer => NEXT_BUFFER, readonly_buffer => READONLY_BUFFER,
    }

    /// `PROTO n`.
    #[must_use]
    pub fn proto(self, n: u8) -> Self {
        self.with(Opcode::PROTO, &[n])
    }

    /// `FRAME len`.
    #[must_use]
    pub fn frame(self, len: u64) -> Self {
        self.with(Opcode::FRAME, &len.to_le_bytes())
    }

    /// `GLOBAL module\nname\n`.
    #[must_use]
    pub fn global(self, module: &str, name: &str) -> Self {
        self.with(Opcode::GLOBAL, format!("{module}\n{name}\n").as_bytes())
    }

    /// `INST module\nname\n` (pops to the last MARK for arguments).
    #[must_use]
    pub fn inst(self, module: &str, name: &str) -> Self {
        self.with(Opcode::INST, format!("{module}\n{name}\n").as_bytes())
    }

    /// `SHORT_BINUNICODE`.
    #[must_use]
    pub fn short_binunicode(self, s: &str) -> Self {
        let mut a = vec![u8::try_from(s.len()).unwrap_or(u8::MAX)];
        a.extend_from_slice(s.as_bytes());
        self.with(Opcode::SHORT_BINUNICODE, &a)
    }

    /// `BINUNICODE`.
    #[must_use]
    pub fn binunicode(self, s: &str) -> Self {
        let mut a = (s.len() as u32).to_le_bytes().to_vec();
        a.extend_from_slice(s.as_bytes());
        self.with(Opcode::BINUNICODE, &a)
    }

    /// `BINUNICODE8`.
    #[must_use]
    pub fn binunicode8(self, s: &str) -> Self {
        let mut a = (s.len() as u64).to_le_bytes().to_vec();
        a.extend_from_slice(s.as_bytes());
        self.with(Opcode::BINUNICODE8, &a)
    }

    /// `UNICODE` with the text written raw (escape it yourself to test escapes).
    #[must_use]
    pub fn unicode_line(self, raw: &str) -> Self {
        self.with(Opcode::UNICODE, format!("{raw}\n").as_bytes())
    }

    /// `STRING 'text'` (the text is written as given between single quotes).
    #[must_use]
    pub fn string(self, quoted_body: &str) -> Self {
        self.with(Opcode::STRING, format!("'{quoted_body}'\n").as_bytes())
    }

    /// `SHORT_BINSTRING`.
    #[must_use]
    pub fn short_binstring(self, b: &[u8]) -> Self {
        let mut a = vec![u8::try_from(b.len()).unwrap_or(u8::MAX)];
        a.extend_from_slice(b);
        self.with(Opcode::SHORT_BINSTRING, &a)
    }

    /// `BINSTRING`.
    #[must_use]
    pub fn binstring(self, b: &[u8]) -> Self {
        let mut a = (b.len() as i32).to_le_bytes().to_vec();
        a.extend_from_slice(b);
        self.with(Opcode::BINSTRING, &a)
    }

    /// `SHORT_BINBYTES`.
    #[must_use]
    pub fn short_binbytes(self, b: &[u8]) -> Self {
        let mut a = vec![u8::try_from(b.len()).unwrap_or(u8::MAX)];
        a.extend_from_slice(b);
        self.with(Opcode::SHORT_BINBYTES, &a)
    }

    /// `BINBYTES`.
    #[must_use]
    pub fn binbytes(self, b: &[u8]) -> Self {
        let mut a = (b.len() as u32).to_le_bytes().to_vec();
        a.extend_from_slice(b);
        self.with(Opcode::BINBYTES, &a)
    }

    /// `BINBYTES8`.
    #[must_use]
    pub fn binbytes8(self, b: &[u8]) -> Self {
        let mut a = (b.len() as u64).to_le_bytes().to_vec();
        a.extend_from_slice(b);
        self.with(Opcode::BINBYTES8, &a)
    }

    /// `BYTEARRAY8`.
    #[must_use]
    pub fn bytearray8(self, b: &[u8]) -> Self {
        let mut a = (b.len() as u64).to_le_bytes().to_vec();
        a.extend_from_slice(b);
        self.with(Opcode::BYTEARRAY8, &a)
    }

    /// `BININT1`, `BININT2` or `BININT` depending on the value.
    #[must_use]
    pub fn int(self, v: i32) -> Self {
        match v {
            0..=0xff => self.with(Opcode::BININT1, &[v as u8]),
            0x100..=0xffff => self.with(Opcode::BININT2, &(v as u16).to_le_bytes()),
            _ => self.with(Opcode::BININT, &v.to_le_bytes()),
        }
    }

    /// `INT` as a text line (`00`/`01` are booleans).
    #[must_use]
    pub fn int_line(self, text: &str) -> Self {
        self.with(Opcode::INT, format!("{text}\n").as_bytes())
    }

    /// `LONG` as a text line.
    #[must_use]
    pub fn long_line(self, text: &str) -> Self {
        self.with(Opcode::LONG, format!("{text}\n").as_bytes())
    }

    /// `LONG1` with little-endian two's-complement bytes.
    #[must_use]
    pub fn long1(self, le: &[u8]) -> Self {
        let mut a = vec![u8::try_from(le.len()).unwrap_or(u8::MAX)];
        a.extend_from_slice(le);
        self.with(Opcode::LONG1, &a)
    }

    /// `LONG4`.
    #[must_use]
    pub fn long4(self, le: &[u8]) -> Self {
        let mut a = (le.len() as i32).to_le_bytes().to_vec();
        a.extend_from_slice(le);
        self.with(Opcode::LONG4, &a)
    }

    /// `FLOAT` as text.
    #[must_use]
    pub fn float_line(self, text: &str) -> Self {
        self.with(Opcode::FLOAT, format!("{text}\n").as_bytes())
    }

    /// `BINFLOAT`.
    #[must_use]
    pub fn binfloat(self, v: f64) -> Self {
        self.with(Opcode::BINFLOAT, &v.to_be_bytes())
    }

    /// `PUT n` (text).
    #[must_use]
    pub fn put(self, n: i64) -> Self {
        self.with(Opcode::PUT, format!("{n}\n").as_bytes())
    }

    /// `GET n` (text).
    #[must_use]
    pub fn get(self, n: i64) -> Self {
        self.with(Opcode::GET, format!("{n}\n").as_bytes())
    }

    /// `BINPUT n`.
    #[must_use]
    pub fn binput(self, n: u8) -> Self {
        self.with(Opcode::BINPUT, &[n])
    }

    /// `BINGET n`.
    #[must_use]
    pub fn binget(self, n: u8) -> Self {
        self.with(Opcode::BINGET, &[n])
    }

    /// `LONG_BINPUT n`.
    #[must_use]
    pub fn long_binput(self, n: u32) -> Self {
        self.with(Opcode::LONG_BINPUT, &n.to_le_bytes())
    }

    /// `LONG_BINGET n`.
    #[must_use]
    pub fn long_binget(self, n: u32) -> Self {
        self.with(Opcode::LONG_BINGET, &n.to_le_bytes())
    }

    /// `PERSID pid`.
    #[must_use]
    pub fn persid(self, pid: &str) -> Self {
        self.with(Opcode::PERSID, format!("{pid}\n").as_bytes())
    }

    /// `EXT1 code`.
    #[must_use]
    pub fn ext1(self, code: u8) -> Self {
        self.with(Opcode::EXT1, &[code])
    }

    /// `EXT2 code`.
    #[must_use]
    pub fn ext2(self, code: u16) -> Self {
        self.with(Opcode::EXT2, &code.to_le_bytes())
    }

    /// `EXT4 code`.
    #[must_use]
    pub fn ext4(self, code: i32) -> Self {
        self.with(Opcode::EXT4, &code.to_le_bytes())
    }

    /// `module.name(arg)` with protocol 2 opcodes: GLOBAL, SHORT_BINUNICODE, TUPLE1, REDUCE.
    #[must_use]
    pub fn call1(self, module: &str, name: &str, arg: &str) -> Self {
        self.global(module, name).short_binunicode(arg).tuple1().reduce()
    }
}
