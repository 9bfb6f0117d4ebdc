//! Escape attempts: each must fail inside the sandbox, be recorded, and leave the host as it
//! was (checked from outside after the run). Real bubblewrap, real python3.

mod common;

use common::*;
use modelward_sandbox::{Loader, Options, Outcome};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::time::Duration;

fn unique(tag: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("modelward-escape-{tag}-{}-{nanos}", std::process::id())
}

fn host_home() -> PathBuf {
    PathBuf::from(std::env::var("HOME").expect("HOME is set"))
}

fn has(findings: &[modelward_diagnostics::Finding], rule: &str, needle: &str) -> bool {
    findings
        .iter()
        .any(|f| f.rule == rule && f.evidence.as_deref().unwrap_or("").contains(needle))
}

/// Processes whose command line mentions `needle` (the sample's host folder is on bwrap's
/// command line, so a survivor of the sandbox would show here).
fn processes_mentioning(needle: &str) -> Vec<String> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().filter(|s| s.chars().all(|c| c.is_ascii_digit())) else {
            continue;
        };
        if let Ok(cmd) = std::fs::read(entry.path().join("cmdline"))
            && String::from_utf8_lossy(&cmd).contains(needle)
        {
            out.push(pid.to_owned());
        }
    }
    out
}

fn run_code(
    code: &str,
) -> Option<(
    modelward_sandbox::Detonation,
    Vec<modelward_diagnostics::Finding>,
    tempfile::TempDir,
)> {
    run_code_with(code, &options())
}

fn run_code_with(
    code: &str,
    opts: &Options,
) -> Option<(
    modelward_sandbox::Detonation,
    Vec<modelward_diagnostics::Finding>,
    tempfile::TempDir,
)> {
    let sb = sandbox()?;
    let dir = tempfile::tempdir().unwrap();
    let p = write_sample(dir.path(), "payload.pkl", &exec_pickle(code));
    let (d, f) = detonate_with(&sb, &p, Loader::Pickle, opts);
    let left = processes_mentioning(&dir.path().display().to_string());
    assert!(left.is_empty(), "sandbox processes survived the run: {left:?}");
    Some((d, f, dir))
}

#[test]
fn a_write_to_the_hosts_tmp_lands_in_the_private_tmp_and_is_recorded() {
    let target = Path::new("/tmp").join(unique("tmp"));
    let code = format!("open({:?}, 'w').write('escaped')", target.display().to_string());
    let Some((d, f, _dir)) = run_code(&code) else {
        return;
    };
    assert_eq!(d.outcome, Outcome::Finished);
    assert!(has(&f, "DYN104", &target.display().to_string()), "{f:#?}");
    assert!(!target.exists(), "{} appeared on the host", target.display());
}

#[test]
fn a_write_to_the_hosts_home_fails_and_is_recorded() {
    let target = host_home().join(unique("home"));
    let code = format!("open({:?}, 'w').write('escaped')", target.display().to_string());
    let Some((d, f, _dir)) = run_code(&code) else {
        return;
    };
    assert!(has(&f, "DYN103", &target.display().to_string()), "{f:#?}");
    assert!(
        d.events.iter().any(|e| e.kind == "error"),
        "the write should have raised: {:?}",
        d.events
    );
    assert!(!target.exists(), "{} appeared on the host", target.display());
}

#[test]
fn persistence_through_a_pth_file_in_site_packages_fails_and_is_recorded() {
    let Some(sb) = sandbox() else { return };
    // The interpreter's own folders are visible (read-only): a .pth there would run at every
    // Python start on the host.
    let site = sb
        .python()
        .sys_path
        .iter()
        .rev()
        .find(|p| Path::new(p).is_dir())
        .cloned()
        .expect("a sys.path folder");
    let target = Path::new(&site).join(format!("{}.pth", unique("pth")));
    let code = format!("open({:?}, 'w').write('import os')", target.display().to_string());
    let Some((_d, f, _dir)) = run_code(&code) else {
        return;
    };
    assert!(has(&f, "DYN103", &target.display().to_string()), "{f:#?}");
    assert!(!target.exists(), "{} appeared on the host", target.display());
}

#[test]
fn a_connection_to_a_host_listener_fails_and_is_recorded() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    let code = format!(
        "import socket\ns = socket.create_connection(('127.0.0.1', {port}), timeout=3)\ns.sendall(b'stolen')"
    );
    let Some((d, f, _dir)) = run_code(&code) else {
        return;
    };
    assert!(has(&f, "DYN102", &port.to_string()), "{f:#?}");
    // Refused by the seccomp filter at socket(), before the (empty) network namespace matters.
    assert!(
        d.events
            .iter()
            .any(|e| e.kind == "error" && e.event == "PermissionError"),
        "{:?}",
        d.events
    );
    match listener.accept() {
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
        Ok((_, peer)) => panic!("the listener saw a connection from {peer}"),
        Err(e) => panic!("accept failed: {e}"),
    }
}

#[test]
fn a_secret_in_the_hosts_home_cannot_be_read_and_the_attempt_is_recorded() {
    let secret_path = host_home().join(unique("secret"));
    let secret = format!("modelward-secret-{}", std::process::id());
    std::fs::write(&secret_path, &secret).unwrap();
    let code = format!(
        "import sys\nsys.stderr.write(open({:?}).read())",
        secret_path.display().to_string()
    );
    let result = run_code(&code);
    std::fs::remove_file(&secret_path).ok();
    let Some((d, f, _dir)) = result else { return };
    assert!(has(&f, "DYN105", &secret_path.display().to_string()), "{f:#?}");
    assert!(
        !d.stderr.contains(&secret),
        "the secret reached the sandbox's output"
    );
    assert!(
        !d.events
            .iter()
            .any(|e| e.args.iter().any(|a| a.contains(&secret))),
        "the secret reached an event"
    );
    assert!(
        d.events
            .iter()
            .any(|e| e.kind == "error" && e.event == "FileNotFoundError"),
        "{:?}",
        d.events
    );
}

#[test]
fn a_fork_bomb_stops_at_its_first_fork_and_is_recorded() {
    let code = "import os\nwhile True:\n    os.fork()";
    let Some((d, f, _dir)) = run_code(code) else {
        return;
    };
    assert_eq!(d.outcome, Outcome::Finished);
    assert!(has(&f, "DYN101", "os.fork"), "{f:#?}");
    assert!(
        d.events
            .iter()
            .any(|e| e.kind == "error" && e.event == "PermissionError"),
        "{:?}",
        d.events
    );
}

#[test]
fn a_command_is_recorded_but_never_runs() {
    let marker = unique("cmd");
    // If the shell ran, it would write into the private /tmp, and the sample would print it.
    let code = format!(
        "import os, sys\nr = os.system('echo {marker} > /tmp/m')\nsys.stderr.write('system returned %r\\n' % r)\nsys.stderr.write('written: %r\\n' % os.path.exists('/tmp/m'))"
    );
    let Some((d, f, _dir)) = run_code(&code) else {
        return;
    };
    assert!(has(&f, "DYN101", &marker), "{f:#?}");
    assert!(d.stderr.contains("written: False"), "{}", d.stderr);
    assert!(!d.stderr.contains("system returned 0"), "{}", d.stderr);
}

#[test]
fn allocating_50_gb_hits_the_address_space_limit_and_is_recorded() {
    let code = "x = bytearray(50 * 1024 ** 3)";
    let Some((d, f, _dir)) = run_code(code) else {
        return;
    };
    assert_eq!(d.outcome, Outcome::Finished);
    assert!(rules(&f).contains(&"DYN202"), "{f:#?}");
}

#[test]
fn sleeping_forever_is_killed_by_the_wall_clock_and_is_recorded() {
    let opts = Options {
        timeout: Duration::from_secs(2),
        ..options()
    };
    let code = "import time\ntime.sleep(10 ** 6)";
    let Some((d, f, _dir)) = run_code_with(code, &opts) else {
        return;
    };
    assert_eq!(d.outcome, Outcome::TimedOut);
    assert!(rules(&f).contains(&"DYN201"), "{f:#?}");
    // run_code_with checked that no process of the sandbox survived the kill.
}

#[test]
fn burning_cpu_is_stopped_by_the_cpu_limit_and_is_recorded() {
    let opts = Options {
        cpu_seconds: 1,
        timeout: Duration::from_secs(20),
        ..options()
    };
    let code = "while True:\n    pass";
    let Some((d, f, _dir)) = run_code_with(code, &opts) else {
        return;
    };
    assert_eq!(d.outcome, Outcome::Signalled(24), "{:?}", d.events);
    assert!(rules(&f).contains(&"DYN202"), "{f:#?}");
}

#[test]
fn signals_to_the_parent_and_to_host_processes_reach_nothing_and_are_recorded() {
    // A host process the sample names by its host PID.
    let mut victim = std::process::Command::new("sleep").arg("60").spawn().unwrap();
    let vpid = victim.id();
    let code = format!(
        "import os, sys\n\
         for pid in (os.getppid(), 1, -1, {vpid}):\n\
         \x20   try:\n\
         \x20       os.kill(pid, 9)\n\
         \x20   except OSError as e:\n\
         \x20       sys.stderr.write('kill %d: %s\\n' % (pid, e))\n\
         sys.stderr.write('still here\\n')"
    );
    let result = run_code(&code);
    let victim_alive = victim.try_wait().unwrap().is_none();
    victim.kill().ok();
    victim.wait().ok();
    let Some((d, f, _dir)) = result else { return };
    assert!(
        victim_alive,
        "the host process {vpid} was killed from the sandbox"
    );
    assert_eq!(d.outcome, Outcome::Finished, "{}", d.stderr);
    assert!(d.stderr.contains("still here"), "{}", d.stderr);
    assert!(has(&f, "DYN110", &vpid.to_string()), "{f:#?}");
    assert!(has(&f, "DYN110", "os.kill(1, 9)"), "{f:#?}");
    // This test process (the parent of bwrap) is alive by being here.
}

#[test]
fn the_environment_holds_nothing_of_the_host() {
    let code = "import os, sys\nsys.stderr.write('ENV=' + repr(sorted(os.environ)) + '\\n')";
    let Some((_d, f, _dir)) = run_code(code) else {
        return;
    };
    let d = _d;
    let line = d
        .stderr
        .lines()
        .find(|l| l.starts_with("ENV="))
        .unwrap_or_else(|| panic!("{}", d.stderr));
    // bubblewrap sets PWD for --chdir; everything else is ours.
    assert_eq!(line, "ENV=['HOME', 'LANG', 'PATH', 'PWD', 'TMPDIR']");
    assert!(has(&f, "DYN108", "'*'"), "{f:#?}");
}

#[test]
fn the_seccomp_filter_refuses_namespaces_mounts_and_ptrace_but_allows_threads() {
    // exec() from the unpickler runs with a locals snapshot: no closures over names it sets.
    let code = "import ctypes, sys, threading\n\
        libc = ctypes.CDLL(None, use_errno=True)\n\
        r = libc.unshare(0x10000000)\n\
        sys.stderr.write('unshare=%d errno=%d\\n' % (r, ctypes.get_errno()))\n\
        r = libc.mount(b'none', b'/tmp', b'tmpfs', 0, None)\n\
        sys.stderr.write('mount=%d errno=%d\\n' % (r, ctypes.get_errno()))\n\
        r = libc.ptrace(16, 1, None, None)\n\
        sys.stderr.write('ptrace=%d errno=%d\\n' % (r, ctypes.get_errno()))\n\
        r = libc.personality(0xffffffff)\n\
        sys.stderr.write('personality=%d errno=%d\\n' % (r, ctypes.get_errno()))\n\
        t = threading.Thread(target=sys.stderr.write, args=('thread ran\\n',))\n\
        t.start(); t.join()";
    let Some((d, f, _dir)) = run_code(code) else {
        return;
    };
    // personality() is harmless and allowed without the filter: it shows the filter is on.
    for name in ["unshare", "mount", "ptrace", "personality"] {
        assert!(
            d.stderr.contains(&format!("{name}=-1 errno=1\n")),
            "{name}: {}",
            d.stderr
        );
    }
    assert!(d.stderr.contains("thread ran"), "{}", d.stderr);
    assert!(rules(&f).contains(&"DYN107"), "{f:#?}");
}

#[test]
fn the_sandbox_sees_only_the_sample_the_loader_and_the_interpreter() {
    let code = "import os, sys\n\
        sys.stderr.write('ROOT=%r\\n' % sorted(os.listdir('/')))\n\
        sys.stderr.write('SANDBOX=%r\\n' % sorted(os.listdir('/sandbox')))\n\
        sys.stderr.write('HOME=%r\\n' % sorted(os.listdir(os.environ['HOME'])))\n\
        sys.stderr.write('SSH=%r\\n' % os.path.exists(os.path.expanduser('~/.ssh')))";
    let Some((d, _f, _dir)) = run_code(code) else {
        return;
    };
    assert!(
        d.stderr.contains("SANDBOX=['loader.py', 'model.bin']"),
        "{}",
        d.stderr
    );
    assert!(d.stderr.contains("HOME=[]"), "{}", d.stderr);
    assert!(d.stderr.contains("SSH=False"), "{}", d.stderr);
    let root = d
        .stderr
        .lines()
        .find(|l| l.starts_with("ROOT="))
        .unwrap_or_default();
    for hidden in ["'var'", "'opt'", "'srv'", "'mnt'", "'work'"] {
        assert!(!root.contains(hidden), "{hidden} is visible: {root}");
    }
}
