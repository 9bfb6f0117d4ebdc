//! The symbolic machine, opcode family by opcode family, on pickles built with the assembler.

use modelward_pickle::assemble::Assembler as A;
use modelward_pickle::machine::{Anomaly, Event};
use modelward_pickle::{
    CallKind, End, Limits, NoInline, Node, Opcode, StreamScan, Trace, Value, render, scan_stream,
};

fn scan(data: &[u8]) -> StreamScan {
    scan_stream(
        data,
        0,
        Some(data.len() as u64),
        &Limits::default(),
        &mut NoInline,
    )
}

fn one(data: &[u8]) -> Trace {
    let mut s = scan(data);
    assert!(!s.pickles.is_empty());
    s.pickles.remove(0)
}

fn imports(t: &Trace) -> Vec<String> {
    t.events
        .iter()
        .filter_map(|e| match e {
            Event::Import { global, .. } => t.arena.as_global(Value::Node(*global)).map(|g| g.qualified()),
            _ => None,
        })
        .collect()
}

fn calls(t: &Trace) -> Vec<String> {
    t.events
        .iter()
        .filter_map(|e| match e {
            Event::Call { call, .. } => Some(render(&t.arena, Value::Node(*call))),
            _ => None,
        })
        .collect()
}

fn anomalies(t: &Trace) -> Vec<&Anomaly> {
    t.events
        .iter()
        .filter_map(|e| match e {
            Event::Anomaly { kind, .. } => Some(kind),
            _ => None,
        })
        .collect()
}

fn result(t: &Trace) -> String {
    render(&t.arena, t.result.expect("reached STOP"))
}

#[test]
fn every_one_of_the_68_opcodes_decodes_and_runs() {
    // One pickle that uses every opcode at least once, with a well-formed stack throughout.
    let p = A::new()
        .proto(5)
        .frame(0)
        .mark()
        .int_line("01")
        .long_line("12345678901234567890123L")
        .string("py2")
        .none()
        .unicode_line("u")
        .float_line("1.5")
        .empty_list()
        .int(1)
        .append()
        .mark()
        .list()
        .mark()
        .tuple()
        .mark()
        .dict()
        .empty_dict()
        .short_binunicode("k")
        .int(2)
        .setitem()
        .int(3)
        .pop()
        .int(4)
        .dup()
        .pop()
        .put(0)
        .get(0)
        .global("collections", "OrderedDict")
        .empty_tuple()
        .reduce()
        .empty_dict()
        .build()
        .mark()
        .inst("collections", "OrderedDict")
        .persid("0")
        .int(70000)
        .int(300)
        .int(-5)
        .binstring(b"b")
        .short_binstring(b"s")
        .binunicode("x")
        .binfloat(2.5)
        .empty_list()
        .mark()
        .int(1)
        .appends()
        .empty_tuple()
        .empty_dict()
        .mark()
        .short_binunicode("a")
        .int(1)
        .setitems()
        .mark()
        .int(9)
        .pop_mark()
        .binget(0)
        .long_binget(0)
        .binput(1)
        .long_binput(2)
        .mark()
        .global("collections", "OrderedDict")
        .obj()
        .short_binunicode("pid")
        .binpersid()
        .global("collections", "OrderedDict")
        .empty_tuple()
        .newobj()
        .global("copyreg", "add_extension")
        .short_binunicode("collections")
        .short_binunicode("OrderedDict")
        .int(1)
        .tuple3()
        .reduce()
        .ext1(1)
        .ext2(1)
        .ext4(1)
        .int(1)
        .tuple1()
        .int(1)
        .int(2)
        .tuple2()
        .newtrue()
        .newfalse()
        .long1(&[1, 2])
        .long4(&[1, 2, 3])
        .binbytes(b"bb")
        .short_binbytes(b"sb")
        .binunicode8("u8")
        .binbytes8(b"b8")
        .empty_set()
        .mark()
        .int(1)
        .additems()
        .mark()
        .int(1)
        .frozenset()
        .global("collections", "OrderedDict")
        .empty_tuple()
        .empty_dict()
        .newobj_ex()
        .short_binunicode("collections")
        .short_binunicode("OrderedDict")
        .stack_global()
        .memoize()
        .bytearray8(b"ba")
        .next_buffer()
        .readonly_buffer()
        .tuple()
        .stop()
        .finish();
    let seen: std::collections::HashSet<Opcode> = modelward_pickle::stream::instructions(&p)
        .map(|i| i.expect("decodes").op)
        .collect();
    for op in Opcode::ALL {
        assert!(seen.contains(op), "{} not exercised", op.name());
    }
    let t = one(&p);
    assert_eq!(t.end_reason, End::Stop);
    // The only anomaly is NEXT_BUFFER without out-of-band buffers.
    assert_eq!(anomalies(&t), vec![&Anomaly::OutOfBandBuffer]);
    assert_eq!(t.protocol, 5);
}

#[test]
fn globals_from_every_string_opcode_and_the_memo_resolve() {
    // GLOBAL
    assert_eq!(
        imports(&one(&A::new().global("os", "system").stop().finish())),
        ["os.system"]
    );
    // STACK_GLOBAL from unicode opcodes
    let p = A::new()
        .proto(4)
        .short_binunicode("os")
        .short_binunicode("system")
        .stack_global()
        .stop()
        .finish();
    assert_eq!(imports(&one(&p)), ["os.system"]);
    // ... from protocol 0 STRING opcodes (GHSA-9gvj-pp9x-gcfr)
    let p = A::new()
        .proto(4)
        .string("os")
        .string("system")
        .stack_global()
        .stop()
        .finish();
    assert_eq!(imports(&one(&p)), ["os.system"]);
    // ... from BINUNICODE8 and BINSTRING
    let p = A::new()
        .proto(4)
        .binunicode8("os")
        .binstring(b"system")
        .stack_global()
        .stop()
        .finish();
    assert_eq!(imports(&one(&p)), ["os.system"]);
    // ... from the memo, past decoys (picklescan issue #22)
    let p = A::new()
        .proto(4)
        .short_binunicode("os")
        .binput(7)
        .pop()
        .short_binunicode("system")
        .long_binput(300)
        .pop()
        .short_binunicode("torch")
        .short_binunicode("LongStorage")
        .pop()
        .pop()
        .binget(7)
        .long_binget(300)
        .stack_global()
        .stop()
        .finish();
    assert_eq!(imports(&one(&p)), ["os.system"]);
    // UNICODE with raw-unicode-escape
    let p = A::new()
        .proto(4)
        .unicode_line("\\u0070osix")
        .unicode_line("system")
        .stack_global()
        .stop()
        .finish();
    assert_eq!(imports(&one(&p)), ["posix.system"]);
}

#[test]
fn python2_names_are_mapped_only_below_protocol_3() {
    assert_eq!(
        imports(&one(&A::new().global("__builtin__", "eval").stop().finish())),
        ["builtins.eval"]
    );
    assert_eq!(
        imports(&one(&A::new()
            .proto(2)
            .global("copy_reg", "_reconstructor")
            .stop()
            .finish())),
        ["copyreg._reconstructor"]
    );
    assert_eq!(
        imports(&one(&A::new()
            .proto(3)
            .global("__builtin__", "eval")
            .stop()
            .finish())),
        ["__builtin__.eval"]
    );
}

#[test]
fn every_kind_of_call_is_recorded_even_when_its_result_is_popped() {
    let p = A::new()
        .proto(2)
        .global("os", "system")
        .short_binunicode("id")
        .tuple1()
        .reduce()
        .pop()
        .none()
        .stop()
        .finish();
    let t = one(&p);
    assert_eq!(calls(&t), ["os.system('id')"]);
    assert_eq!(result(&t), "None");
    // INST
    let t = one(&A::new().mark().string("id").inst("os", "system").stop().finish());
    assert_eq!(calls(&t), ["os.system('id')"]);
    // OBJ
    let t = one(&A::new()
        .mark()
        .global("os", "system")
        .string("id")
        .obj()
        .stop()
        .finish());
    assert_eq!(calls(&t), ["os.system('id')"]);
    // NEWOBJ / NEWOBJ_EX
    let t = one(&A::new()
        .proto(4)
        .global("m", "C")
        .empty_tuple()
        .newobj()
        .stop()
        .finish());
    assert_eq!(calls(&t), ["m.C.__new__(m.C)"]);
    let t = one(&A::new()
        .proto(4)
        .global("m", "C")
        .empty_tuple()
        .empty_dict()
        .short_binunicode("k")
        .int(1)
        .setitem()
        .newobj_ex()
        .stop()
        .finish());
    assert_eq!(calls(&t), ["m.C.__new__(m.C, k=1)"]);
    // persistent loads (PERSID, BINPERSID), with the call kind recorded
    let t = one(&A::new().persid("storage").stop().finish());
    let Some(Event::Call { call, .. }) = t.events.first() else {
        panic!()
    };
    assert!(matches!(t.arena.get(*call), Some(Node::Call(c)) if c.kind == CallKind::PersistentLoad));
}

#[test]
fn build_on_globals_and_injected_setstate_are_seen() {
    // BUILD on a module attribute: setattr on an imported object
    let t = one(&A::new()
        .proto(2)
        .global("torch._utils", "_rebuild_tensor")
        .empty_dict()
        .build()
        .stop()
        .finish());
    assert!(t.events.iter().any(|e| matches!(e, Event::SetAttr { .. })));
    // Namespace + {'__setstate__': os.system}, then BUILD 'id' calls os.system('id')
    let p = A::new()
        .proto(2)
        .global("types", "SimpleNamespace")
        .empty_tuple()
        .reduce()
        .empty_dict()
        .short_binunicode("__setstate__")
        .global("os", "system")
        .setitem()
        .build()
        .short_binunicode("id")
        .build()
        .stop()
        .finish();
    let t = one(&p);
    assert!(t.events.iter().any(|e| matches!(e, Event::InjectSetState { .. })));
    assert!(
        calls(&t).contains(&"os.system(('id',))".to_owned())
            || calls(&t).iter().any(|c| c.starts_with("os.system(")),
        "{:?}",
        calls(&t)
    );
    // A plain BUILD on an instance is neither
    let t = one(&A::new()
        .proto(2)
        .global("collections", "OrderedDict")
        .empty_tuple()
        .reduce()
        .empty_dict()
        .build()
        .stop()
        .finish());
    assert!(
        !t.events
            .iter()
            .any(|e| matches!(e, Event::SetAttr { .. } | Event::InjectSetState { .. }))
    );
}

#[test]
fn extension_codes_resolve_through_add_extension() {
    let p = A::new()
        .proto(2)
        .global("copyreg", "add_extension")
        .short_binunicode("posix")
        .short_binunicode("system")
        .int(0xf0)
        .tuple3()
        .reduce()
        .pop()
        .ext1(0xf0)
        .short_binunicode("id")
        .tuple1()
        .reduce()
        .stop()
        .finish();
    let t = one(&p);
    assert_eq!(imports(&t), ["copyreg.add_extension", "posix.system"]);
    assert!(calls(&t).contains(&"posix.system('id')".to_owned()));
    // Unregistered: an anomaly, no import
    let t = one(&A::new().proto(2).ext2(7).stop().finish());
    assert!(anomalies(&t).contains(&&Anomaly::UnresolvedExtension(7)));
}

#[test]
fn computed_and_non_string_stack_global_operands_are_anomalies() {
    // _codecs.encode('bf', 'rot13') == 'os': resolved, and flagged as computed
    let p = A::new()
        .proto(4)
        .global("_codecs", "encode")
        .short_binunicode("bf")
        .short_binunicode("rot13")
        .tuple2()
        .reduce()
        .short_binunicode("system")
        .stack_global()
        .stop()
        .finish();
    let t = one(&p);
    assert!(imports(&t).contains(&"os.system".to_owned()));
    assert!(
        anomalies(&t)
            .iter()
            .any(|a| matches!(a, Anomaly::NonConstantStackGlobal { .. }))
    );
    // A missing memo key: anomaly, and the machine goes on (keyerror-exploit)
    let t = one(&A::new()
        .proto(4)
        .binget(9)
        .short_binunicode("os")
        .stack_global()
        .stop()
        .finish());
    assert!(anomalies(&t).contains(&&Anomaly::MissingMemo(9)));
    // An int operand (type-confusion-exploit)
    let t = one(&A::new()
        .proto(4)
        .int(42)
        .short_binunicode("os")
        .stack_global()
        .stop()
        .finish());
    assert!(
        anomalies(&t)
            .iter()
            .any(|a| matches!(a, Anomaly::StackGlobalType { .. }))
    );
}

#[test]
fn several_pickles_trailing_bytes_and_breaks() {
    let mut p = A::new().proto(2).empty_list().stop().finish();
    p.extend(A::new().proto(2).global("requests.api", "get").stop().finish());
    p.extend_from_slice(b"\x00\x01junk");
    let s = scan(&p);
    assert_eq!(s.pickles.len(), 2);
    assert_eq!(imports(&s.pickles[1]), ["requests.api.get"]);
    assert_eq!(s.trailing.map(|t| t.1), Some(6));
    // A payload then an invalid opcode: everything before the break is kept
    let mut p = A::new()
        .proto(2)
        .global("os", "system")
        .short_binunicode("id")
        .tuple1()
        .reduce()
        .finish();
    p.push(0xff);
    let t = one(&p);
    assert_eq!(calls(&t), ["os.system('id')"]);
    assert!(matches!(t.end_reason, End::Error(_)));
    // No STOP at all
    let t = one(&A::new().proto(2).global("os", "system").finish());
    assert_eq!(t.end_reason, End::Eof);
    assert_eq!(imports(&t), ["os.system"]);
}

#[test]
fn lying_lengths_cycles_and_depth_are_bounded() {
    // BINBYTES8 that claims 2^60 bytes: a truncation error, no allocation
    let mut p = vec![0x80, 4, 0x8e];
    p.extend_from_slice(&(1u64 << 60).to_le_bytes());
    let t = one(&p);
    assert!(matches!(t.end_reason, End::Error(_)));
    // A list appended to itself, then rendered: bounded output
    let p = A::new()
        .proto(2)
        .empty_list()
        .binput(0)
        .binget(0)
        .append()
        .stop()
        .finish();
    let t = one(&p);
    assert!(result(&t).len() < 1000);
    // A million nested MARKs cross the mark budget instead of exhausting memory
    let mut p = vec![0x80, 2];
    p.extend(std::iter::repeat_n(b'(', 1_000_000));
    let t = one(&p);
    assert!(matches!(t.end_reason, End::Limit(_)));
    // A million nested lists (EMPTY_LIST, APPEND chains) stay within budget and finish
    let mut p = vec![0x80, 2, b']'];
    for _ in 0..100_000 {
        p.extend_from_slice(b"]");
        p.extend_from_slice(b"a");
    }
    p.push(b'.');
    let t = one(&p);
    assert_eq!(t.end_reason, End::Stop);
}

#[test]
fn the_op_budget_stops_a_pickle_with_an_anomaly() {
    let mut p = vec![0x80, 2];
    for _ in 0..1_000_000 {
        p.extend_from_slice(b"N0");
    }
    p.push(b'.');
    let limits = Limits {
        max_ops: 100_000,
        ..Limits::default()
    };
    let s = scan_stream(&p[..], 0, Some(p.len() as u64), &limits, &mut NoInline);
    assert!(matches!(
        s.pickles[0].end_reason,
        End::Limit(modelward_pickle::LimitKind::Ops)
    ));
    // The same pickle within the default budget: 2,000,002 instructions run to STOP
    let s = scan(&p);
    assert_eq!(s.pickles[0].end_reason, End::Stop);
    assert_eq!(s.pickles[0].ops, 2_000_002);
}
