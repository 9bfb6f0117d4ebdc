//! The 68 opcodes of pickle protocols 0-5, as CPython's `pickletools` lists them.

/// How an opcode's argument is encoded in the stream (pickletools' `ArgumentDescriptor`s).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArgKind {
    /// No argument.
    None,
    /// `decimalnl_short`: a decimal integer line (`INT` also takes `00`/`01` for booleans).
    DecimalShort,
    /// `decimalnl_long`: a decimal integer line, optionally ending in `L`.
    DecimalLong,
    /// `floatnl`: a float written as a line of text.
    FloatLine,
    /// `stringnl`: a quoted Python 2 `repr` line with escapes.
    QuotedLine,
    /// `stringnl_noescape`: a raw line (PERSID).
    RawLine,
    /// `stringnl_noescape_pair`: two raw lines, module then name (GLOBAL, INST).
    LinePair,
    /// `unicodestringnl`: a raw-unicode-escape line.
    UnicodeLine,
    /// 1-byte unsigned integer.
    U1,
    /// 2-byte little-endian unsigned integer.
    U2,
    /// 4-byte little-endian signed integer.
    I4,
    /// 4-byte little-endian unsigned integer.
    U4,
    /// 8-byte little-endian unsigned integer.
    U8,
    /// 8-byte big-endian IEEE double.
    F8,
    /// Length-prefixed little-endian two's-complement integer, 1-byte length.
    Long1,
    /// Length-prefixed little-endian two's-complement integer, 4-byte signed length.
    Long4,
    /// Length-prefixed byte string (length width in bytes: 1, 4 signed, 4, 8).
    Counted(CountWidth),
}

/// Width and signedness of a length prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CountWidth {
    /// 1 byte.
    One,
    /// 4 bytes, signed (BINSTRING: negative lengths are an error).
    FourSigned,
    /// 4 bytes, unsigned.
    Four,
    /// 8 bytes.
    Eight,
}

macro_rules! opcodes {
    ($( $name:ident = $byte:literal, $arg:expr, $proto:literal; )*) => {
        /// A pickle opcode.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[allow(non_camel_case_types, clippy::upper_case_acronyms)]
        #[allow(missing_docs)]
        pub enum Opcode { $( $name, )* }

        impl Opcode {
            /// Every opcode, in pickletools order.
            pub const ALL: &'static [Opcode] = &[ $( Opcode::$name, )* ];

            /// The opcode for a byte, if it is one.
            pub fn from_byte(b: u8) -> Option<Opcode> {
                match b { $( $byte => Some(Opcode::$name), )* _ => None }
            }

            /// The byte that encodes this opcode.
            pub fn byte(self) -> u8 {
                match self { $( Opcode::$name => $byte, )* }
            }

            /// The name pickletools prints.
            pub fn name(self) -> &'static str {
                match self { $( Opcode::$name => stringify!($name), )* }
            }

            /// How the argument is encoded.
            pub fn arg_kind(self) -> ArgKind {
                match self { $( Opcode::$name => $arg, )* }
            }

            /// The protocol that introduced the opcode.
            pub fn protocol(self) -> u8 {
                match self { $( Opcode::$name => $proto, )* }
            }
        }
    };
}

use ArgKind as A;
use CountWidth as W;

opcodes! {
    // protocol 0
    INT = b'I', A::DecimalShort, 0;
    LONG = b'L', A::DecimalLong, 0;
    STRING = b'S', A::QuotedLine, 0;
    NONE = b'N', A::None, 0;
    UNICODE = b'V', A::UnicodeLine, 0;
    FLOAT = b'F', A::FloatLine, 0;
    APPEND = b'a', A::None, 0;
    LIST = b'l', A::None, 0;
    TUPLE = b't', A::None, 0;
    DICT = b'd', A::None, 0;
    SETITEM = b's', A::None, 0;
    POP = b'0', A::None, 0;
    DUP = b'2', A::None, 0;
    MARK = b'(', A::None, 0;
    GET = b'g', A::DecimalShort, 0;
    PUT = b'p', A::DecimalShort, 0;
    GLOBAL = b'c', A::LinePair, 0;
    REDUCE = b'R', A::None, 0;
    BUILD = b'b', A::None, 0;
    INST = b'i', A::LinePair, 0;
    STOP = b'.', A::None, 0;
    PERSID = b'P', A::RawLine, 0;
    // protocol 1
    BININT = b'J', A::I4, 1;
    BININT1 = b'K', A::U1, 1;
    BININT2 = b'M', A::U2, 1;
    BINSTRING = b'T', A::Counted(W::FourSigned), 1;
    SHORT_BINSTRING = b'U', A::Counted(W::One), 1;
    BINUNICODE = b'X', A::Counted(W::Four), 1;
    BINFLOAT = b'G', A::F8, 1;
    EMPTY_LIST = b']', A::None, 1;
    APPENDS = b'e', A::None, 1;
    EMPTY_TUPLE = b')', A::None, 1;
    EMPTY_DICT = b'}', A::None, 1;
    SETITEMS = b'u', A::None, 1;
    POP_MARK = b'1', A::None, 1;
    BINGET = b'h', A::U1, 1;
    LONG_BINGET = b'j', A::U4, 1;
    BINPUT = b'q', A::U1, 1;
    LONG_BINPUT = b'r', A::U4, 1;
    OBJ = b'o', A::None, 1;
    BINPERSID = b'Q', A::None, 1;
    // protocol 2
    PROTO = 0x80, A::U1, 2;
    NEWOBJ = 0x81, A::None, 2;
    EXT1 = 0x82, A::U1, 2;
    EXT2 = 0x83, A::U2, 2;
    EXT4 = 0x84, A::I4, 2;
    TUPLE1 = 0x85, A::None, 2;
    TUPLE2 = 0x86, A::None, 2;
    TUPLE3 = 0x87, A::None, 2;
    NEWTRUE = 0x88, A::None, 2;
    NEWFALSE = 0x89, A::None, 2;
    LONG1 = 0x8a, A::Long1, 2;
    LONG4 = 0x8b, A::Long4, 2;
    // protocol 3
    BINBYTES = b'B', A::Counted(W::Four), 3;
    SHORT_BINBYTES = b'C', A::Counted(W::One), 3;
    // protocol 4
    SHORT_BINUNICODE = 0x8c, A::Counted(W::One), 4;
    BINUNICODE8 = 0x8d, A::Counted(W::Eight), 4;
    BINBYTES8 = 0x8e, A::Counted(W::Eight), 4;
    EMPTY_SET = 0x8f, A::None, 4;
    ADDITEMS = 0x90, A::None, 4;
    FROZENSET = 0x91, A::None, 4;
    NEWOBJ_EX = 0x92, A::None, 4;
    STACK_GLOBAL = 0x93, A::None, 4;
    MEMOIZE = 0x94, A::None, 4;
    FRAME = 0x95, A::U8, 4;
    // protocol 5
    BYTEARRAY8 = 0x96, A::Counted(W::Eight), 5;
    NEXT_BUFFER = 0x97, A::None, 5;
    READONLY_BUFFER = 0x98, A::None, 5;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_68_opcodes_round_trip_through_their_byte() {
        assert_eq!(Opcode::ALL.len(), 68);
        let mut seen = std::collections::HashSet::new();
        for &op in Opcode::ALL {
            assert!(seen.insert(op.byte()), "duplicate byte for {}", op.name());
            assert_eq!(Opcode::from_byte(op.byte()), Some(op));
        }
        assert_eq!(Opcode::from_byte(0xff), None);
        assert_eq!(Opcode::from_byte(b'x'), None);
    }
}
