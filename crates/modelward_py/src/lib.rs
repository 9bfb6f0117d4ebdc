//! `modelward._native`: the Rust side of the Python package (`python/modelward/`).
//!
//! Deliberately small: it turns Python arguments into scanner inputs, runs the scan with the
//! GIL released, and hands back the report as the CLI's JSON document, which the pure-Python
//! `modelward.Report` wraps. One JSON shape for the CLI, CI and Python means one thing to
//! document and test (`docs/json-output.md`). Errors become the exceptions declared here,
//! carrying the Rust message.

use modelward_convert::{ConvertError as RustConvertError, Options as ConvertOptions};
use modelward_diagnostics::ScanReport;
use modelward_policy::{Config, Policy};
use modelward_remote::{RemoteOptions, RemoteTarget};
use modelward_scanner::Scanner;
use pyo3::create_exception;
use pyo3::exceptions::PyException;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyTuple};
use rayon::prelude::*;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

create_exception!(
    modelward,
    Error,
    PyException,
    "Base class of every error modelward raises."
);
create_exception!(
    modelward,
    ConfigError,
    Error,
    "A configuration file that cannot be read or is invalid."
);
create_exception!(
    modelward,
    ExplainError,
    Error,
    "A target `explain` cannot show (not a pickle, no such member, unreadable)."
);
create_exception!(
    modelward,
    ConvertError,
    Error,
    "A conversion that failed (unsupported or malformed input, I/O, verification)."
);
create_exception!(
    modelward,
    ConvertRefused,
    ConvertError,
    "A conversion refused because the input does more than build tensors."
);

/// One thing to scan.
enum Input<'a> {
    /// A file or directory.
    Local(PathBuf),
    /// `hf://…`, `https://…` (told apart from paths as the CLI does).
    Remote(String),
    /// Bytes held by Python (a `bytes` object, alive for the whole call).
    Bytes { name: String, data: &'a [u8] },
}

/// The one place this crate calls the scanner (`Scanner::scan`/`scan_many`, directly or
/// through `modelward_remote`): every input kind, as the CLI's `scan` command
/// does it (Hugging Face cache names, walk errors as error reports, remote sources through
/// `modelward_remote`, findings of disabled rules dropped).
fn scan_input(scanner: &Scanner, input: &Input<'_>, remote: &RemoteOptions) -> ScanReport {
    let started = Instant::now();
    let (mut files, transferred, requests) = match input {
        Input::Local(path) => {
            let (mut targets, errors) = modelward_scanner::walk::expand(std::slice::from_ref(path));
            for t in &mut targets {
                if let Some(name) = modelward_remote::cache_display_name(&t.path) {
                    t.display = name;
                }
            }
            let mut files = scanner.scan_many(&targets, |_| {});
            files.extend(
                errors
                    .into_iter()
                    .map(|(p, e)| modelward_scanner::error_report(p, e)),
            );
            (files, 0, 0)
        }
        Input::Remote(source) => {
            let scanned = RemoteTarget::parse(source)
                .and_then(|t| modelward_remote::scan_remote_with(scanner, &t, remote, &|_| {}));
            match scanned {
                Ok(r) => (r.files, r.transferred, r.requests),
                Err(e) => (
                    vec![modelward_scanner::error_report(source.clone(), e.to_string())],
                    0,
                    0,
                ),
            }
        }
        Input::Bytes { name, data } => (
            vec![scanner.scan(modelward_scanner::Input::bytes(name.clone(), data))],
            0,
            0,
        ),
    };
    files
        .iter_mut()
        .for_each(|f| f.findings.retain(|x| scanner.policy().enabled(&x.rule)));
    let mut report = ScanReport::new(
        env!("CARGO_PKG_VERSION"),
        files,
        started.elapsed().as_millis() as u64,
    );
    report.summary.bytes_transferred = transferred;
    report.summary.requests = requests;
    report
}

/// The configuration as the CLI finds it: the file given, else `modelward.toml` or
/// `[tool.modelward]` searched upwards from the first local path (or the current folder).
fn load_config(config: Option<&Path>, first_local: Option<&Path>) -> PyResult<Option<Config>> {
    let err = |e: modelward_policy::PolicyError| ConfigError::new_err(e.to_string());
    if let Some(p) = config {
        return match Config::load(p).map_err(err)? {
            Some(c) => Ok(Some(c)),
            None => Err(ConfigError::new_err(format!(
                "{} has no [tool.modelward] table",
                p.display()
            ))),
        };
    }
    Config::discover(first_local.unwrap_or(Path::new("."))).map_err(err)
}

fn to_json(report: &ScanReport) -> PyResult<String> {
    let mut out = Vec::new();
    modelward_report::json::write(report, &mut out).map_err(|e| Error::new_err(e.to_string()))?;
    String::from_utf8(out).map_err(|e| Error::new_err(e.to_string()))
}

/// What Python passed, before the bytes are borrowed.
enum Arg<'py> {
    Path(PathBuf),
    Bytes(String, Bound<'py, PyBytes>),
}

/// Scans each input (a path or URL string, or a `(name, bytes)` tuple) in parallel on the
/// Rust thread pool, with the GIL released. Returns one JSON report per input, in order, and
/// the configuration's `fail_on` (`None` when it sets none).
#[pyfunction]
#[pyo3(signature = (inputs, config=None))]
fn scan(
    py: Python<'_>,
    inputs: Vec<Bound<'_, PyAny>>,
    config: Option<PathBuf>,
) -> PyResult<(Vec<String>, Option<String>)> {
    let mut args = Vec::with_capacity(inputs.len());
    for obj in inputs {
        if let Ok(t) = obj.cast::<PyTuple>() {
            let name: String = t.get_item(0)?.extract()?;
            let data = t.get_item(1)?.cast_into::<PyBytes>()?;
            args.push(Arg::Bytes(name, data));
        } else {
            args.push(Arg::Path(obj.extract()?));
        }
    }
    // `args` owns the bytes objects for the whole call and `bytes` is immutable, so the
    // borrowed slices can be read with the GIL released.
    let inputs: Vec<Input<'_>> = args
        .iter()
        .map(|a| match a {
            Arg::Path(p) => match p.to_str() {
                Some(s) if RemoteTarget::is_remote(s) => Input::Remote(s.to_owned()),
                _ => Input::Local(p.clone()),
            },
            Arg::Bytes(name, data) => Input::Bytes {
                name: name.clone(),
                data: data.as_bytes(),
            },
        })
        .collect();
    let first_local = inputs.iter().find_map(|i| match i {
        Input::Local(p) => Some(p.as_path()),
        _ => None,
    });
    let config = load_config(config.as_deref(), first_local)?;
    let policy = match &config {
        Some(c) => Policy::with_config(c).map_err(|e| ConfigError::new_err(e.to_string()))?,
        None => Policy::builtin(),
    };
    let fail_on = config
        .as_ref()
        .and_then(|c| c.fail_on)
        .map(|s| s.as_str().to_owned());
    let scanner = Scanner::new(policy, modelward::limits_from(config.as_ref()));
    let remote = RemoteOptions::from_env();
    let reports: Vec<ScanReport> = py.detach(|| {
        inputs
            .par_iter()
            .map(|i| scan_input(&scanner, i, &remote))
            .collect()
    });
    let json = reports.iter().map(to_json).collect::<PyResult<Vec<_>>>()?;
    Ok((json, fail_on))
}

/// `modelward explain`'s output for `FILE` or `FILE!member`.
#[pyfunction]
fn explain(py: Python<'_>, target: String) -> PyResult<String> {
    let mut out = Vec::new();
    py.detach(|| modelward::explain_to(&target, &mut out))
        .map_err(|e| ExplainError::new_err(format!("{e:#}")))?;
    Ok(String::from_utf8_lossy(&out).into_owned())
}

/// Converts a PyTorch checkpoint or numpy file to safetensors; returns what was written as
/// JSON. Refusal raises `ConvertRefused` with `findings_json` (the findings) and `reasons`.
#[pyfunction]
#[pyo3(signature = (src, dst=None, verify=false, overwrite=false, name=None))]
fn convert(
    py: Python<'_>,
    src: PathBuf,
    dst: Option<PathBuf>,
    verify: bool,
    overwrite: bool,
    name: Option<String>,
) -> PyResult<String> {
    let opts = ConvertOptions {
        root_name: name,
        verify,
        overwrite,
    };
    let dst = dst.unwrap_or_else(|| modelward_convert::default_output(&src));
    match py.detach(|| modelward_convert::convert(&src, &dst, &opts)) {
        Ok(r) => {
            let tensors: Vec<_> = r
                .tensors
                .iter()
                .map(|t| {
                    serde_json::json!({
                        "name": t.name,
                        "dtype": t.dtype.safetensors(),
                        "shape": t.shape,
                    })
                })
                .collect();
            let dropped: Vec<_> = r
                .dropped
                .iter()
                .map(|d| serde_json::json!({"name": d.name, "what": d.what}))
                .collect();
            let verified = r.verified.as_ref().map(|v| {
                serde_json::json!({
                    "tensors": v.tensors,
                    "bytes": v.bytes,
                    "crc_mismatches": v.crc_mismatches,
                })
            });
            Ok(serde_json::json!({
                "input": r.input.to_string_lossy(),
                "output": r.output.to_string_lossy(),
                "format": r.format.name(),
                "tensors": tensors,
                "metadata": r.metadata,
                "dropped": dropped,
                "notes": r.notes,
                "header_bytes": r.header_bytes,
                "data_bytes": r.data_bytes,
                "verified": verified,
            })
            .to_string())
        }
        Err(RustConvertError::Refused {
            path,
            findings,
            reasons,
        }) => {
            let message = RustConvertError::Refused {
                path,
                findings: findings.clone(),
                reasons: reasons.clone(),
            }
            .to_string();
            let err = ConvertRefused::new_err(message);
            let value = err.value(py);
            let findings = serde_json::to_string(&findings).map_err(|e| Error::new_err(e.to_string()))?;
            value.setattr("findings_json", findings)?;
            value.setattr("reasons", reasons)?;
            Err(err)
        }
        Err(e) => Err(ConvertError::new_err(e.to_string())),
    }
}

/// Whether the converter would accept `path`: its pickle only rebuilds tensors and plain
/// containers (the rule `modelward convert` uses). The torch guard passes `weights_only=True`
/// then.
#[pyfunction]
fn tensors_only(py: Python<'_>, path: PathBuf) -> bool {
    py.detach(|| modelward_convert::Plan::open(&path, &ConvertOptions::default()).is_ok())
}

/// The command line: `modelward._cli` calls this with `sys.argv`; returns the exit status.
#[pyfunction]
fn main(py: Python<'_>, argv: Vec<OsString>) -> u8 {
    let code = py.detach(|| modelward::run_cli(argv));
    // `ExitCode` has no stable accessor for its value; it compares by value.
    (0..=u8::MAX).find(|&n| ExitCode::from(n) == code).unwrap_or(2)
}

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add("Error", py.get_type::<Error>())?;
    m.add("ConfigError", py.get_type::<ConfigError>())?;
    m.add("ExplainError", py.get_type::<ExplainError>())?;
    m.add("ConvertError", py.get_type::<ConvertError>())?;
    m.add("ConvertRefused", py.get_type::<ConvertRefused>())?;
    m.add_function(wrap_pyfunction!(scan, m)?)?;
    m.add_function(wrap_pyfunction!(explain, m)?)?;
    m.add_function(wrap_pyfunction!(convert, m)?)?;
    m.add_function(wrap_pyfunction!(tensors_only, m)?)?;
    m.add_function(wrap_pyfunction!(main, m)?)?;
    Ok(())
}
