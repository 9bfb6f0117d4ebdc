//! A second opinion from a sandbox: load a model file with its real loader inside bubblewrap
//! and record what the load tries to do (`modelward detonate`, `scan --detonate`).
//!
//! This is the one place modelward runs what it scans, on purpose and contained:
//! - [`Sandbox::discover`] finds `bwrap` and the user's `python3` and asks the interpreter
//!   where it lives (its prefixes and `sys.path`), so only those folders are shown, read-only;
//! - [`Sandbox::detonate`] runs `python/loader.py` (embedded) in new user, PID, network, IPC,
//!   UTS and mount namespaces with a seccomp filter ([`seccomp`]), rlimits and a wall-clock
//!   kill; the loader installs an audit hook, arms it, and loads the sample;
//! - the loader's events come back as JSON lines ([`events`]), bounded, and become `DYN…`
//!   findings ([`Detonation::findings`]) that a caller adds to the static report. They can only
//!   add: nothing seen (or not seen) here clears a file.
//!
//! What is isolated and what is not is in `docs/sandbox.md`.
#![forbid(unsafe_code)]

pub mod events;
mod facts;
pub mod python;
pub mod seccomp;

pub use events::{Event, EventLimits};
pub use python::PythonInfo;

use command_fds::{CommandFdExt, FdMapping};
use modelward_diagnostics::{Finding, Location, Source};
use modelward_policy::Policy;
use std::io::{Seek, Write};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The loader script, run inside the sandbox.
pub const LOADER_PY: &str = include_str!("../python/loader.py");

/// Where things are inside the sandbox.
const SANDBOX_DIR: &str = "/sandbox";
const SANDBOX_HOME: &str = "/home/sandbox";
/// The most the address-space limit grows to for a large file.
const MAX_ADDRESS_SPACE: u64 = 64 << 30;

/// Errors: the sandbox could not be set up or started (never a finding about the file).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SandboxError {
    /// bubblewrap is not on `PATH`.
    #[error(
        "sandbox not available: bwrap was not found on PATH (install bubblewrap, e.g. `apt-get install bubblewrap`)"
    )]
    NoBwrap,
    /// No usable Python.
    #[error("sandbox not available: {0}")]
    Python(String),
    /// The seccomp program could not be built.
    #[error("seccomp filter: {0}")]
    Seccomp(String),
    /// bubblewrap or the loader failed before the sample was touched.
    #[error("the sandbox did not start: {0}")]
    Start(String),
    /// The file to load is not there.
    #[error("{path}: {message}")]
    Sample {
        /// The file.
        path: String,
        /// What is wrong.
        message: String,
    },
    /// Temporary files, pipes, spawning.
    #[error("sandbox i/o: {0}")]
    Io(#[from] std::io::Error),
}

/// Which real loader opens the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Loader {
    /// `pickle.load` (with recording stand-ins for classes that are not importable), every
    /// pickle of the stream in turn.
    Pickle,
    /// `torch.load(weights_only=False)`; without torch, the checkpoint's pickles with stand-ins.
    Torch,
    /// `joblib.load`; without joblib, plain pickle.
    Joblib,
    /// `numpy.load(allow_pickle=True)` (every member of an `.npz`); without numpy, the
    /// object arrays' pickles.
    Numpy,
    /// `keras.models.load_model(safe_mode=False)`; nothing without keras.
    Keras,
    /// `pandas.read_pickle`; without pandas, plain pickle.
    Pandas,
}

impl Loader {
    /// Every loader.
    pub const ALL: [Loader; 6] = [
        Loader::Pickle,
        Loader::Torch,
        Loader::Joblib,
        Loader::Numpy,
        Loader::Keras,
        Loader::Pandas,
    ];

    /// The name the loader script knows it by.
    pub fn as_str(self) -> &'static str {
        match self {
            Loader::Pickle => "pickle",
            Loader::Torch => "torch",
            Loader::Joblib => "joblib",
            Loader::Numpy => "numpy",
            Loader::Keras => "keras",
            Loader::Pandas => "pandas",
        }
    }

    /// Parses [`Loader::as_str`].
    pub fn parse(s: &str) -> Option<Loader> {
        Loader::ALL.into_iter().find(|l| l.as_str() == s)
    }

    /// The loader for a format the static scan recognised by content (`FileReport::format`);
    /// `None` for formats no loader runs code from (safetensors, GGUF, text) or that are
    /// containers of other files (tar, 7z, compressed streams).
    pub fn for_format(format: &str) -> Option<Loader> {
        Some(match format {
            "pickle" => Loader::Pickle,
            "pytorch-zip" | "pytorch-legacy" | "torchscript" | "zip" => Loader::Torch,
            "joblib" | "joblib-zfile" => Loader::Joblib,
            "npy" | "npz" => Loader::Numpy,
            "keras" | "hdf5" => Loader::Keras,
            _ => return None,
        })
    }
}

/// Limits of one detonation.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// Wall clock, after which the whole sandbox is killed.
    pub timeout: Duration,
    /// `RLIMIT_CPU`, seconds.
    pub cpu_seconds: u64,
    /// `RLIMIT_AS`, bytes; raised for large files to three times their size plus 2 GiB (at
    /// most 64 GiB), since the loader holds the file in memory.
    pub address_space: u64,
    /// `RLIMIT_FSIZE`, bytes.
    pub file_size: u64,
    /// Size of each private tmpfs (`/tmp`, the home), bytes.
    pub tmpfs_size: u64,
    /// What is kept of the event channel.
    pub events: EventLimits,
    /// Characters of one rendered argument.
    pub max_arg_chars: usize,
    /// Bytes of the sandbox's stderr kept (the sample's own output goes there).
    pub max_stderr: usize,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            timeout: Duration::from_secs(30),
            cpu_seconds: 30,
            address_space: 4 << 30,
            file_size: 64 << 20,
            tmpfs_size: 64 << 20,
            events: EventLimits {
                max_events: 500,
                max_line: 4096,
                max_bytes: 512 << 10,
            },
            max_arg_chars: 300,
            max_stderr: 16 << 10,
        }
    }
}

/// How the sandboxed process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The loader reported the end of the load (whatever the load did).
    Finished,
    /// It exited with this code without reporting the end (`os._exit` in the sample).
    Exited(i32),
    /// A signal ended it (`SIGXCPU`: the CPU limit; `SIGSEGV`: a native crash).
    Signalled(i32),
    /// The wall clock ran out and the sandbox was killed.
    TimedOut,
}

/// What one detonation saw.
#[derive(Debug, Clone)]
pub struct Detonation {
    /// The loader that ran.
    pub loader: Loader,
    /// Events in order (bounded by [`Options::events`]).
    pub events: Vec<Event>,
    /// Event lines dropped by the bounds.
    pub dropped_events: u64,
    /// How it ended.
    pub outcome: Outcome,
    /// Wall time of the whole detonation, sandbox start to exit.
    pub elapsed: Duration,
    /// The head of the sandbox's stderr (the sample's stdout and stderr, tracebacks).
    pub stderr: String,
}

impl Detonation {
    /// Findings for the file at `path`, marked dynamic, severities from the catalog.
    pub fn findings(&self, policy: &Policy, path: &str) -> Vec<Finding> {
        let base = Location::file(path);
        facts::facts(self)
            .into_iter()
            .filter_map(|f| policy.finding(f, &base))
            .map(|mut f| {
                f.source = Source::Dynamic;
                f
            })
            .collect()
    }

    /// The events worth showing a person, one line each (`process  os.system('id')`).
    pub fn behaviour(&self) -> Vec<String> {
        self.events
            .iter()
            .filter(|e| !matches!(e.kind.as_str(), "done"))
            .map(|e| format!("{:<13} {}", e.kind, e.call()))
            .collect()
    }
}

/// bubblewrap and the Python it runs.
#[derive(Debug, Clone)]
pub struct Sandbox {
    bwrap: PathBuf,
    python: PythonInfo,
}

impl Sandbox {
    /// Finds `bwrap` and `python3` on `PATH` (`MODELWARD_PYTHON` names another interpreter).
    pub fn discover() -> Result<Sandbox, SandboxError> {
        let bwrap = python::which("bwrap").ok_or(SandboxError::NoBwrap)?;
        let name = std::env::var("MODELWARD_PYTHON").unwrap_or_else(|_| "python3".into());
        let py = python::which(&name)
            .ok_or_else(|| SandboxError::Python(format!("{name} was not found on PATH (install python3)")))?;
        Ok(Sandbox {
            bwrap,
            python: python::probe(&py)?,
        })
    }

    /// The interpreter the loader runs in.
    pub fn python(&self) -> &PythonInfo {
        &self.python
    }

    /// The bubblewrap binary.
    pub fn bwrap(&self) -> &Path {
        &self.bwrap
    }

    /// Loads `sample` with `loader` inside the sandbox and reports what happened.
    pub fn detonate(
        &self,
        sample: &Path,
        loader: Loader,
        opts: &Options,
    ) -> Result<Detonation, SandboxError> {
        let sample_err = |m: String| SandboxError::Sample {
            path: sample.display().to_string(),
            message: m,
        };
        let meta = std::fs::metadata(sample).map_err(|e| sample_err(e.to_string()))?;
        if !meta.is_file() {
            return Err(sample_err("not a regular file".into()));
        }
        let sample = std::fs::canonicalize(sample).map_err(|e| sample_err(e.to_string()))?;
        // A private folder for the loader script (0700 from tempfile).
        let work = tempfile::Builder::new().prefix("modelward-sandbox-").tempdir()?;
        let loader_path = work.path().join("loader.py");
        std::fs::write(&loader_path, LOADER_PY)?;
        let inner_sample = format!("{SANDBOX_DIR}/{}", inner_name(&sample, loader));
        // Loaders hold the whole file in memory, so the address-space limit grows with the
        // file's real size (never with what its contents claim): a big benign checkpoint must
        // not look like a memory bomb.
        let opts = &Options {
            address_space: opts
                .address_space
                .max(meta.len().saturating_mul(3).saturating_add(2 << 30))
                .min(MAX_ADDRESS_SPACE.max(opts.address_space)),
            ..*opts
        };
        let config = self.loader_config(loader, &inner_sample, opts);
        let args = self.arguments(&sample, &inner_sample, &loader_path, opts, &config);

        let deny = program_file(&seccomp::deny_program()?)?;
        let nosys = program_file(&seccomp::nosys_program()?)?;
        let mut cmd = Command::new(&self.bwrap);
        cmd.args(&args)
            .env_clear()
            .env("PATH", "/usr/bin:/bin")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        cmd.fd_mappings(vec![
            FdMapping {
                parent_fd: deny.into(),
                child_fd: 3,
            },
            FdMapping {
                parent_fd: nosys.into(),
                child_fd: 4,
            },
        ])
        .map_err(|e| SandboxError::Start(e.to_string()))?;

        let started = Instant::now();
        let mut child = cmd.spawn()?;
        let stdout = child.stdout.take();
        let stderr = child.stderr.take();
        let limits = opts.events;
        let max_stderr = opts.max_stderr;
        let ev_thread =
            std::thread::spawn(move || stdout.map(|s| events::collect(s, limits)).unwrap_or_default());
        let err_thread =
            std::thread::spawn(move || stderr.map(|s| events::head(s, max_stderr)).unwrap_or_default());

        let deadline = started + opts.timeout;
        let mut timed_out = false;
        let status = loop {
            if let Some(st) = child.try_wait()? {
                break st;
            }
            if Instant::now() >= deadline {
                // SIGKILL to bwrap; --die-with-parent takes the namespace's init with it, and
                // the kernel kills everything left in the PID namespace.
                timed_out = true;
                let _ = child.kill();
                break child.wait()?;
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        let collected = ev_thread.join().unwrap_or_default();
        let stderr = err_thread.join().unwrap_or_default();
        let elapsed = started.elapsed();
        let stderr = String::from_utf8_lossy(&stderr).into_owned();
        let has = |kind: &str| collected.events.iter().any(|e| e.kind == kind);
        // The exit status decides, not the loader's `done` line alone: a sample can write a
        // fake `done` and then leave.
        let outcome = if timed_out {
            Outcome::TimedOut
        } else if let Some(sig) = status.signal() {
            Outcome::Signalled(sig)
        } else {
            match status.code() {
                // bubblewrap reports a child killed by a signal as 128 + the signal.
                Some(c) if c > 128 => Outcome::Signalled(c - 128),
                Some(0) if has("done") => Outcome::Finished,
                Some(c) => Outcome::Exited(c),
                None => Outcome::Exited(-1),
            }
        };
        if !has("start") && !timed_out {
            // Nothing of the sample ran: bubblewrap or the interpreter failed to start.
            return Err(SandboxError::Start(format!(
                "{} (exit {:?})",
                stderr.trim().lines().last().unwrap_or("no message"),
                status.code()
            )));
        }
        Ok(Detonation {
            loader,
            events: collected.events,
            dropped_events: collected.dropped,
            outcome,
            elapsed,
            stderr,
        })
    }

    fn loader_config(&self, loader: Loader, inner_sample: &str, opts: &Options) -> String {
        let mut quiet: Vec<String> = self
            .python
            .read_only_roots()
            .iter()
            .map(|p| p.display().to_string())
            .collect();
        quiet.extend(
            [
                "/usr",
                "/lib",
                "/lib64",
                "/lib32",
                "/bin",
                "/sbin",
                "/etc/ld.so.cache",
                "/etc/localtime",
                "/proc/self",
                "/proc/thread-self",
                "/proc/cpuinfo",
                "/proc/meminfo",
                "/sys/devices/system/cpu",
                "/sys/fs/cgroup",
                "/dev/null",
                "/dev/zero",
                "/dev/urandom",
                "/dev/random",
                SANDBOX_DIR,
            ]
            .map(String::from),
        );
        serde_json::json!({
            "loader": loader.as_str(),
            "sample": inner_sample,
            "sys_path": self.python.sys_path,
            "quiet_reads": quiet,
            "private_dirs": ["/tmp", SANDBOX_HOME],
            "limits": {
                "address_space": opts.address_space,
                "cpu_seconds": opts.cpu_seconds,
                "file_size": opts.file_size,
            },
            "max_events": opts.events.max_events,
            "max_line": opts.events.max_line,
            "max_arg_chars": opts.max_arg_chars,
        })
        .to_string()
    }

    /// The bubblewrap command line (without the program).
    fn arguments(
        &self,
        sample: &Path,
        inner_sample: &str,
        loader_path: &Path,
        opts: &Options,
        config: &str,
    ) -> Vec<String> {
        let mut a: Vec<String> = [
            "--unshare-user",
            "--unshare-pid",
            "--unshare-net",
            "--unshare-ipc",
            "--unshare-uts",
            "--unshare-cgroup-try",
            "--disable-userns",
            "--die-with-parent",
            "--new-session",
            "--hostname",
            "modelward-sandbox",
            "--clearenv",
            "--setenv",
            "PATH",
            "/usr/local/bin:/usr/bin:/bin",
            "--setenv",
            "HOME",
            SANDBOX_HOME,
            "--setenv",
            "TMPDIR",
            "/tmp",
            "--setenv",
            "LANG",
            "C.UTF-8",
            "--ro-bind",
            "/usr",
            "/usr",
        ]
        .map(String::from)
        .to_vec();
        let mut push = |xs: &[&str]| a.extend(xs.iter().map(|s| s.to_string()));
        // Merged-/usr systems have symlinks here; older ones real folders.
        for d in ["/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"] {
            match std::fs::read_link(d) {
                Ok(target) => push(&["--symlink", &target.display().to_string(), d]),
                Err(_) if Path::new(d).is_dir() => push(&["--ro-bind", d, d]),
                Err(_) => {}
            }
        }
        // The few /etc files the dynamic linker and time functions read; no passwd, no hosts.
        for f in [
            "/etc/ld.so.cache",
            "/etc/ld.so.conf",
            "/etc/ld.so.conf.d",
            "/etc/localtime",
            "/etc/alternatives",
        ] {
            push(&["--ro-bind-try", f, f]);
        }
        // The private tmpfs mounts first: an interpreter that lives under /tmp (a throw-away
        // virtualenv) is bound on top of them, not hidden by them.
        let size = opts.tmpfs_size.to_string();
        push(&["--proc", "/proc", "--dev", "/dev"]);
        push(&["--size", &size, "--tmpfs", "/tmp"]);
        push(&["--size", &size, "--tmpfs", SANDBOX_HOME]);
        let home = std::env::var_os("HOME").map(PathBuf::from);
        for root in self.python.read_only_roots() {
            // Never the whole root, the user's home or a folder holding it (a sys.path entry
            // of `~` would otherwise show every key in it).
            let holds_home = home.as_ref().is_some_and(|h| h.starts_with(&root));
            if root == Path::new("/") || holds_home || root.starts_with("/usr") {
                continue;
            }
            let r = root.display().to_string();
            push(&["--ro-bind", &r, &r]);
        }
        let loader = loader_path.display().to_string();
        let inner_loader = format!("{SANDBOX_DIR}/loader.py");
        push(&["--ro-bind", &loader, &inner_loader]);
        let s = sample.display().to_string();
        push(&["--ro-bind", &s, inner_sample]);
        push(&["--remount-ro", "/", "--chdir", SANDBOX_HOME]);
        push(&["--add-seccomp-fd", "3", "--add-seccomp-fd", "4"]);
        let py = self.python.launcher.display().to_string();
        push(&["--", &py, "-I", "-B", &inner_loader, config]);
        a
    }
}

/// The sample's fixed name inside the sandbox; Keras picks its reader by extension, so that
/// one is kept.
fn inner_name(sample: &Path, loader: Loader) -> String {
    let ext = sample.extension().and_then(|e| e.to_str()).unwrap_or("");
    match (loader, ext) {
        (Loader::Keras, "keras" | "h5" | "hdf5") => format!("model.{ext}"),
        (Loader::Keras, _) => "model.keras".into(),
        _ => "model.bin".into(),
    }
}

fn program_file(program: &seccompiler::BpfProgram) -> Result<std::fs::File, SandboxError> {
    let mut f = tempfile::tempfile()?;
    f.write_all(&seccomp::to_bytes(program))?;
    f.rewind()?;
    Ok(f)
}
