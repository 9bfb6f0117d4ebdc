//! The picklescan corpus and the project's fixtures, loaded for real in the sandbox: the
//! malicious samples show the calls they make; the benign ones show nothing but notes.

mod common;

use common::*;
use modelward_sandbox::{Loader, Outcome};
use std::path::PathBuf;

/// (file under the corpus, loader, rule that must fire, text its evidence must contain).
const MALICIOUS: &[(&str, Loader, &str, &str)] = &[
    // os.system, however it is reached
    (
        "tests/data/malicious2_v0.pkl",
        Loader::Pickle,
        "DYN101",
        "os.system(b'ls -la')",
    ),
    (
        "tests/data/malicious2_v3.pkl",
        Loader::Pickle,
        "DYN101",
        "os.system(b'ls -la')",
    ),
    (
        "tests/data/malicious2_v4.pkl",
        Loader::Pickle,
        "DYN101",
        "os.system(b'ls -la')",
    ),
    (
        "tests/data/malicious11.pkl",
        Loader::Pickle,
        "DYN101",
        "os.system(b'cat flag.txt')",
    ),
    (
        "tests/data/malicious-invalid-bytes.pkl",
        Loader::Pickle,
        "DYN101",
        "os.system(b'cat flag.txt')",
    ),
    (
        "tests/data/malicious12.pkl",
        Loader::Pickle,
        "DYN101",
        "os.system(b'echo pwned')",
    ),
    (
        "tests/data2/malicious23.pkl",
        Loader::Pickle,
        "DYN101",
        "os.system(b'ls')",
    ),
    (
        "tests/data2/keyerror-exploit.pkl",
        Loader::Pickle,
        "DYN101",
        "os.system(",
    ),
    (
        "tests/data2/type-confusion-exploit.pkl",
        Loader::Pickle,
        "DYN101",
        "os.system(",
    ),
    (
        "tests/data2/GHSA-46h3-79wf-xr6c.pkl",
        Loader::Pickle,
        "DYN101",
        "os.system(",
    ),
    (
        "tests/data2/GHSA-955r-x9j8-7rhh.pkl",
        Loader::Pickle,
        "DYN101",
        "os.system(",
    ),
    (
        "tests/data2/malicious21.pkl",
        Loader::Pickle,
        "DYN101",
        "os.system(b'curl https://webhook.invalid",
    ),
    (
        "tests/data2/GHSA-49gj-c84q-6qm9.pkl",
        Loader::Pickle,
        "DYN101",
        "os.system(b'whoami')",
    ),
    (
        "tests/data/pytorch_magic_bypass.pt",
        Loader::Torch,
        "DYN101",
        "os.system(b'echo pwned')",
    ),
    // subprocess and pty
    (
        "tests/data/malicious8.pkl",
        Loader::Pickle,
        "DYN101",
        "subprocess.Popen('ls', ['ls', '-l']",
    ),
    (
        "tests/data/malicious18.pkl",
        Loader::Pickle,
        "DYN101",
        "subprocess.Popen('/bin/sh'",
    ),
    (
        "tests/data2/GHSA-q77w-mwjj-7mqx.pkl",
        Loader::Pickle,
        "DYN101",
        "'whoami'",
    ),
    (
        "tests/data2/GHSA-jgw4-cr84-mqxg.bin",
        Loader::Pickle,
        "DYN101",
        "'whoami'",
    ),
    (
        "tests/data2/GHSA-vqmv-47xg-9wpr.pkl",
        Loader::Pickle,
        "DYN101",
        "os.fork()",
    ),
    // network
    (
        "tests/data/malicious7.pkl",
        Loader::Pickle,
        "DYN102",
        "socket.getaddrinfo('github.com', 80",
    ),
    (
        "tests/data2/urllib_request_urlopen.pkl",
        Loader::Pickle,
        "DYN102",
        "urllib.Request('https://example.invalid'",
    ),
    // eval / exec
    (
        "tests/data/malicious1_v0.pkl",
        Loader::Pickle,
        "DYN106",
        "print('456')",
    ),
    (
        "tests/data/malicious1_v3.pkl",
        Loader::Pickle,
        "DYN106",
        "print('456')",
    ),
    (
        "tests/data/malicious1_v4.pkl",
        Loader::Pickle,
        "DYN106",
        "print('456')",
    ),
    (
        "tests/data/malicious10.pkl",
        Loader::Pickle,
        "DYN106",
        "Injection running",
    ),
    (
        "tests/data/malicious1.zip",
        Loader::Torch,
        "DYN106",
        "print('456')",
    ),
    (
        "tests/data2/types_CodeType.pkl",
        Loader::Pickle,
        "DYN106",
        "code.__new__",
    ),
    // files, native code
    (
        "tests/data/malicious0.pkl",
        Loader::Pickle,
        "DYN105",
        "open('/etc/passwd')",
    ),
    (
        "tests/data2/io_FileIO.pkl",
        Loader::Pickle,
        "DYN105",
        "open('/etc/hosts')",
    ),
    (
        "tests/data2/logging_FileHandler.pkl",
        Loader::Pickle,
        "DYN104",
        "evil.log",
    ),
    (
        "tests/data2/GHSA-4675-36f9-wf6r.pkl",
        Loader::Pickle,
        "DYN107",
        "ctypes.dlopen",
    ),
];

const BENIGN_CORPUS: &[(&str, Loader)] = &[
    ("tests/data/benign0_v0.pkl", Loader::Pickle),
    ("tests/data/benign0_v3.pkl", Loader::Pickle),
    ("tests/data/benign0_v4.pkl", Loader::Pickle),
    ("tests/data/pytorch_model.bin", Loader::Torch),
    ("tests/data/new_pytorch_model.bin", Loader::Torch),
    ("tests/data2/int_array.npy", Loader::Numpy),
    ("tests/data2/int_arrays.npz", Loader::Numpy),
    ("tests/data2/object_array.npy", Loader::Numpy),
    ("tests/data2/object_arrays_compressed.npz", Loader::Numpy),
];

/// The project's own fixtures (written by real writers, `tests/fixtures/generate/`).
const BENIGN_FIXTURES: &[(&str, Loader)] = &[
    ("demo/clean_checkpoint.pt", Loader::Torch),
    ("demo/clean_array.npy", Loader::Numpy),
    ("tests/fixtures/numpy/object_strings.npy", Loader::Numpy),
    ("tests/fixtures/numpy/object_member.npz", Loader::Numpy),
];

const MALICIOUS_FIXTURES: &[(&str, Loader, &str, &str)] = &[
    (
        "demo/model.bin",
        Loader::Pickle,
        "DYN101",
        "os.system(b'echo modelward-fixture",
    ),
    (
        "demo/malicious_checkpoint.pt",
        Loader::Torch,
        "DYN101",
        "os.system(",
    ),
    (
        "tests/fixtures/numpy/object_os_system.npy",
        Loader::Numpy,
        "DYN101",
        "os.system(",
    ),
    (
        "tests/fixtures/numpy/object_os_system_member.npz",
        Loader::Numpy,
        "DYN101",
        "os.system(",
    ),
];

fn check_malicious(root: &std::path::Path, cases: &[(&str, Loader, &str, &str)]) {
    let Some(sb) = sandbox() else { return };
    let mut failures = Vec::new();
    for (rel, loader, rule, needle) in cases {
        let path: PathBuf = root.join(rel);
        let (_d, findings) = detonate(&sb, &path, *loader);
        let hit = findings
            .iter()
            .any(|f| f.rule == *rule && f.evidence.as_deref().unwrap_or("").contains(needle));
        if !hit {
            failures.push(format!(
                "{rel}: no {rule} with {needle:?}; got {:?}",
                rules(&findings)
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

fn check_benign(root: &std::path::Path, cases: &[(&str, Loader)]) {
    let Some(sb) = sandbox() else { return };
    let mut failures = Vec::new();
    for (rel, loader) in cases {
        let (d, findings) = detonate(&sb, &root.join(rel), *loader);
        let loud = behaviour_findings(&findings);
        if !loud.is_empty() || d.outcome != Outcome::Finished {
            failures.push(format!(
                "{rel}: {:?}, {:?}",
                d.outcome,
                loud.iter().map(|f| (&f.rule, &f.evidence)).collect::<Vec<_>>()
            ));
        }
        // A benign file loads: no loader error either (stand-ins stand in for what is missing).
        if findings.iter().any(|f| f.rule == "DYN204") {
            failures.push(format!("{rel}: the loader raised: {:?}", d.stderr));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn picklescan_malicious_samples_show_the_calls_they_make() {
    check_malicious(&corpus(), MALICIOUS);
}

#[test]
fn picklescan_benign_samples_show_nothing() {
    check_benign(&corpus(), BENIGN_CORPUS);
}

#[test]
fn project_malicious_fixtures_show_their_payload() {
    check_malicious(&repo(), MALICIOUS_FIXTURES);
}

#[test]
fn project_benign_fixtures_show_nothing() {
    check_benign(&repo(), BENIGN_FIXTURES);
}

#[test]
fn a_sample_that_exits_from_inside_the_load_is_a_crash_finding() {
    let Some(sb) = sandbox() else { return };
    let dir = tempfile::tempdir().unwrap();
    let p = write_sample(dir.path(), "exit.pkl", &exec_pickle("import os\nos._exit(3)"));
    let (d, f) = detonate(&sb, &p, Loader::Pickle);
    assert_eq!(d.outcome, Outcome::Exited(3));
    assert!(rules(&f).contains(&"DYN203"), "{f:#?}");
}

#[test]
fn a_flood_of_events_is_bounded_and_reported() {
    let Some(sb) = sandbox() else { return };
    let dir = tempfile::tempdir().unwrap();
    let code = "for i in range(100000):\n    open('/tmp/f%d' % i, 'w').close()";
    let p = write_sample(dir.path(), "flood.pkl", &exec_pickle(code));
    let (d, f) = detonate(&sb, &p, Loader::Pickle);
    assert!(
        d.events.len() <= options().events.max_events + 1,
        "{}",
        d.events.len()
    );
    assert!(rules(&f).contains(&"DYN205"), "{f:#?}");
    assert!(f.len() < 600, "{} findings", f.len());
}

/// Whether the sandbox's Python has `module`; `None` means skip (a failure when
/// `MODELWARD_REQUIRE_SANDBOX_PY=1`, which `.ci/run` sets after installing numpy and joblib).
fn with_module(sb: &modelward_sandbox::Sandbox, module: &str) -> Option<()> {
    let ok = std::process::Command::new(&sb.python().launcher)
        .args(["-c", &format!("import {module}")])
        .output()
        .is_ok_and(|o| o.status.success());
    if ok {
        return Some(());
    }
    if std::env::var("MODELWARD_REQUIRE_SANDBOX_PY").is_ok_and(|v| v == "1") {
        panic!(
            "MODELWARD_REQUIRE_SANDBOX_PY=1 but {} has no {module}",
            sb.python().launcher.display()
        );
    }
    eprintln!("skipping: {} has no {module}", sb.python().launcher.display());
    None
}

#[test]
fn joblib_files_go_through_the_real_joblib_load() {
    let Some(sb) = sandbox() else { return };
    let Some(()) = with_module(&sb, "joblib") else {
        return;
    };
    let root = repo();
    for rel in [
        "tests/fixtures/joblib/arrays_uncompressed.joblib",
        "tests/fixtures/joblib/object_array.joblib",
    ] {
        let (d, f) = detonate(&sb, &root.join(rel), Loader::Joblib);
        assert_eq!(d.outcome, Outcome::Finished, "{rel}");
        assert!(f.is_empty(), "{rel}: {f:#?}");
        assert!(
            !d.events.iter().any(|e| e.kind == "fallback"),
            "{rel}: {:?}",
            d.events
        );
    }
    let rel = "tests/fixtures/joblib/malicious_os_system.joblib";
    let (d, f) = detonate(&sb, &root.join(rel), Loader::Joblib);
    assert!(!d.events.iter().any(|e| e.kind == "fallback"), "{:?}", d.events);
    assert!(
        f.iter()
            .any(|x| x.rule == "DYN101" && x.evidence.as_deref().unwrap_or("").contains("os.system(")),
        "{f:#?}"
    );
}

#[test]
fn numpy_files_go_through_the_real_numpy_load() {
    let Some(sb) = sandbox() else { return };
    let Some(()) = with_module(&sb, "numpy") else {
        return;
    };
    let root = repo();
    for rel in [
        "tests/fixtures/numpy/object_strings.npy",
        "tests/fixtures/numpy/object_member.npz",
    ] {
        let (d, f) = detonate(&sb, &root.join(rel), Loader::Numpy);
        assert_eq!(d.outcome, Outcome::Finished, "{rel}");
        assert!(f.is_empty(), "{rel}: {f:#?}");
        assert!(
            !d.events.iter().any(|e| e.kind == "fallback"),
            "{rel}: {:?}",
            d.events
        );
    }
    for rel in [
        "tests/fixtures/numpy/object_os_system.npy",
        "tests/fixtures/numpy/object_os_system_member.npz",
    ] {
        let (d, f) = detonate(&sb, &root.join(rel), Loader::Numpy);
        assert!(
            !d.events.iter().any(|e| e.kind == "fallback"),
            "{rel}: {:?}",
            d.events
        );
        assert!(
            f.iter()
                .any(|x| x.rule == "DYN101" && x.evidence.as_deref().unwrap_or("").contains("os.system(")),
            "{rel}: {f:#?}"
        );
    }
}
