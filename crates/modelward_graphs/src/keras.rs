//! Keras model configs: the `config.json` of a `.keras` zip, the `model_config` and
//! `training_config` attributes of a legacy `.h5` file, and (through
//! [`crate::tensorflow::check_keras_metadata`]) the layer metadata of a Keras SavedModel.
//!
//! A Keras config is a tree of serialized objects (`{"module", "class_name", "config",
//! "registered_name"}` in Keras 3, `{"class_name", "config"}` in Keras 2). Loading it imports
//! modules and calls functions named in it, and a `Lambda` layer carries Python bytecode. The
//! walk here visits every object in the tree (nested models, `TimeDistributed`/`Bidirectional`
//! wrappers, compile and training configs) and reports:
//!
//! - `KRS101`/`KRS102`: Lambda bytecode (Keras 3 `__lambda__`, Keras 2 `function_type: lambda`),
//!   decoded with [`crate::marshal`]; `KRS102` when it uses names such as `os` or `eval`.
//! - `KRS103`/`KRS104`: `module` (and Keras 2 Lambda `module` + `function`) resolving outside
//!   Keras' namespaces: a dangerous target (CVE-2025-1550 family), or just foreign code.
//! - `KRS105`: gadget layers `TFSMLayer` (loads a SavedModel from a path, CVE-2026-1462) and
//!   `TorchModuleWrapper` (a `torch.load` of embedded bytes, CVE-2025-49655).
//! - `KRS106`: lookup layers whose vocabulary is a path (file read / SSRF, CVE-2025-12058).
//! - `KRS107`/`KRS108`: `get_file` (CVE-2025-8747) and `enable_unsafe_deserialization`
//!   (CVE-2025-9906) named anywhere.
//! - `KRS109`: HDF5 external links and external raw data files (CVE-2026-1669).
//! - `KRS110`: a config that is not JSON, or HDF5 metadata that could not be read.

use crate::marshal::{self, CodeSummary};
use base64::Engine as _;
use modelward_diagnostics::Fact;
use modelward_formats::io::ReadSeek;
use serde_json::{Map, Value};
use std::io::{self, Read as _, SeekFrom};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};

/// Largest config (JSON text) parsed; larger ones are reported as not scanned.
pub const MAX_CONFIG_BYTES: usize = 16 << 20;
/// Most findings of one kind reported per config (the rest are counted in the last one).
pub const MAX_FACTS_PER_RULE: usize = 50;
/// Largest base64 payload decoded for a Lambda or a `TorchModuleWrapper`.
pub const MAX_EMBEDDED_B64: usize = 8 << 20;
/// Most bytes the HDF5 reader may pull from the input (metadata, attributes, heaps).
pub const MAX_H5_READ_BYTES: u64 = 64 << 20;
/// Largest single read the HDF5 reader may ask for.
pub const MAX_H5_REQUEST: usize = 16 << 20;
/// Most HDF5 groups and datasets visited looking for external links and files.
pub const MAX_H5_OBJECTS: usize = 20_000;
/// HDF5 signature; it may sit at 0, 512, 1024, 2048, ... (after a user block).
pub const HDF5_MAGIC: &[u8; 8] = b"\x89HDF\r\n\x1a\n";

/// Package roots that are Keras itself or Keras' own libraries.
#[rustfmt::skip]
const KERAS_ROOTS: &[&str] = &[
    "keras", "tf_keras", "keras_hub", "keras_nlp", "keras_cv", "keras_rs",
];

/// Modules whose every function is a way to run code, touch files or the network.
#[rustfmt::skip]
const DANGEROUS_MODULES: &[&str] = &[
    "os", "posix", "nt", "subprocess", "sys", "importlib", "runpy", "shutil", "socket", "pickle",
    "_pickle", "marshal", "dill", "cloudpickle", "ctypes", "pty", "code", "codeop", "pdb", "bdb",
    "webbrowser", "requests", "urllib", "urllib2", "urllib3", "http", "httpx", "ftplib", "smtplib",
    "telnetlib", "tempfile", "multiprocessing", "asyncio", "signal", "platform", "pathlib", "io",
    "glob", "types", "operator", "functools", "__builtin__", "commands", "popen2", "timeit",
    "cProfile", "profile", "trace", "pydoc", "pkgutil", "zipimport", "torch", "joblib",
];

/// Names that, imported from anywhere, run code or reach files.
#[rustfmt::skip]
const DANGEROUS_NAMES: &[&str] = &[
    "eval", "exec", "execfile", "compile", "__import__", "import_module", "getattr", "setattr",
    "delattr", "globals", "locals", "vars", "open", "input", "breakpoint", "system", "popen",
    "Popen", "spawn", "spawnl", "spawnv", "spawnve", "execv", "execve", "execl", "execvp", "call",
    "check_call", "check_output", "run", "getoutput", "getstatusoutput", "load", "loads",
    "read_file", "write_file", "py_function", "numpy_function", "py_func", "load_op_library",
    "load_library", "rmtree", "remove", "unlink", "urlopen", "urlretrieve", "get_file",
    "enable_unsafe_deserialization",
];

/// Names in Lambda bytecode that mean more than tensor arithmetic.
#[rustfmt::skip]
const DANGEROUS_CODE_NAMES: &[&str] = &[
    "os", "posix", "nt", "subprocess", "system", "popen", "Popen", "spawnl", "spawnv", "execv",
    "execve", "execl", "execlp", "execvp", "fork", "eval", "exec", "compile", "__import__",
    "import_module", "importlib", "builtins", "__builtins__", "getattr", "setattr", "globals",
    "open", "socket", "urllib", "urlopen", "urlretrieve", "requests", "shutil", "rmtree", "pty",
    "ctypes", "pickle", "marshal", "runpy", "run_path", "run_module", "sys", "check_output",
    "check_call", "webbrowser", "get_file", "read_file", "write_file", "py_function",
    "load_op_library", "enable_unsafe_deserialization",
];

/// Lookup layers that read their vocabulary from a path when it is given as a string.
#[rustfmt::skip]
const LOOKUP_LAYERS: &[&str] = &[
    "StringLookup", "IntegerLookup", "IndexLookup", "TextVectorization",
];

/// Whether the member names of a zip are those of a Keras 3 `.keras` file (`config.json` and
/// `metadata.json` at the top; `model.weights.h5` usually beside them).
pub fn looks_like_keras_zip(member_names: &[&str]) -> bool {
    let has = |n: &str| member_names.iter().any(|m| m.trim_start_matches("./") == n);
    has("config.json") && has("metadata.json")
}

pub use modelward_formats::graph_sniff::looks_like_hdf5;

/// Checks a Keras model config (JSON text) and returns what it found.
pub fn check_config(json: &str) -> Vec<Fact> {
    check_config_capped(json, MAX_FACTS_PER_RULE)
}

/// [`check_config`] with at most `cap` facts per rule (the scanner passes
/// `max-findings-per-rule`).
pub fn check_config_capped(json: &str, cap: usize) -> Vec<Fact> {
    let mut w = Walker::new(cap);
    w.config(json, "");
    w.finish()
}

/// Decoded `TorchModuleWrapper` payloads of a config (what `torch.load` would read), for a
/// scanner to examine as a PyTorch file. At most [`MAX_EMBEDDED_B64`] bytes of base64 each.
pub fn torch_module_payloads(json: &str) -> Vec<Vec<u8>> {
    if json.len() > MAX_CONFIG_BYTES {
        return Vec::new();
    }
    let Ok(v) = serde_json::from_str::<Value>(json) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    collect_torch(&v, &mut out);
    out
}

fn collect_torch(v: &Value, out: &mut Vec<Vec<u8>>) {
    match v {
        Value::Object(m) => {
            if m.get("class_name").and_then(Value::as_str) == Some("TorchModuleWrapper")
                && let Some(b) = m
                    .get("config")
                    .and_then(|c| c.get("module"))
                    .and_then(Value::as_str)
                    .and_then(b64)
            {
                out.push(b);
            }
            m.values().for_each(|c| collect_torch(c, out));
        }
        Value::Array(a) => a.iter().for_each(|c| collect_torch(c, out)),
        _ => {}
    }
}

fn b64(s: &str) -> Option<Vec<u8>> {
    if s.len() > MAX_EMBEDDED_B64 {
        return None;
    }
    let clean: String = s.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    let engines = [
        base64::engine::general_purpose::STANDARD,
        base64::engine::general_purpose::URL_SAFE,
    ];
    for e in engines {
        if let Ok(b) = e
            .decode(clean.trim_end_matches('='))
            .or_else(|_| e.decode(&clean))
        {
            return Some(b);
        }
    }
    let indifferent = base64::engine::GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        base64::engine::GeneralPurposeConfig::new()
            .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent)
            .with_decode_allow_trailing_bits(true),
    );
    indifferent.decode(&clean).ok()
}

struct Walker {
    /// Capped per rule by the one collector.
    facts: modelward_diagnostics::FactCollector,
    /// Layer names from the root to the object being visited.
    path: Vec<String>,
    /// An HDF5 `model_config`: Keras 2 objects carry no `module`, so a class name Keras does
    /// not know is resolved through `custom_objects` or a registered package.
    h5: bool,
}

/// Names Keras resolves by itself (`keras_classes.txt`).
fn keras_known(name: &str) -> bool {
    static KNOWN: std::sync::OnceLock<std::collections::HashSet<&'static str>> = std::sync::OnceLock::new();
    KNOWN
        .get_or_init(|| {
            include_str!("keras_classes.txt")
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.starts_with('#'))
                .collect()
        })
        .contains(name)
}

impl Walker {
    fn new(cap: usize) -> Walker {
        Walker {
            facts: modelward_diagnostics::FactCollector::new(cap),
            path: Vec::new(),
            h5: false,
        }
    }

    fn push(&mut self, f: Fact) {
        self.facts.push(f);
    }

    fn finish(self) -> Vec<Fact> {
        self.facts.finish()
    }

    fn here(&self) -> String {
        if self.path.is_empty() {
            "the model".to_owned()
        } else {
            format!("layer '{}'", self.path.join("/"))
        }
    }

    /// Parses and walks one config; `what` names it in messages (`model_config`, ...).
    fn config(&mut self, json: &str, what: &str) {
        let label = if what.is_empty() {
            "config".to_owned()
        } else {
            what.to_owned()
        };
        if json.len() > MAX_CONFIG_BYTES {
            self.push(
                Fact::new(
                    "MWD002",
                    format!(
                        "Keras {label} not scanned: {} bytes is over the limit",
                        json.len()
                    ),
                )
                .evidence(format!("limit {MAX_CONFIG_BYTES} bytes")),
            );
            return;
        }
        match serde_json::from_str::<Value>(json) {
            Ok(v) => self.value(&v, None),
            Err(e) => self.push(
                Fact::new("KRS110", format!("Keras {label} is not valid JSON")).evidence(e.to_string()),
            ),
        }
    }

    fn value(&mut self, v: &Value, key: Option<&str>) {
        match v {
            Value::Object(m) => self.object(m),
            Value::Array(a) => {
                if let Some(code) = code_triple(a) {
                    // `[code, defaults, closure]` from `func_dump`: a Keras 2 Lambda function, or
                    // any function Keras serialized as bytecode.
                    let flavour = format!("{} [code, defaults, closure]", key.unwrap_or("function"));
                    self.lambda(Some(code), &flavour);
                    return;
                }
                a.iter().for_each(|c| self.value(c, key));
            }
            Value::String(s) => self.string(s, key),
            _ => {}
        }
    }

    fn string(&mut self, s: &str, key: Option<&str>) {
        let last = s.rsplit(['.', '>', ':']).next().unwrap_or(s);
        let key = key.unwrap_or("value");
        if last == "enable_unsafe_deserialization" {
            let f = Fact::new(
                "KRS108",
                format!("{} names enable_unsafe_deserialization", self.here()),
            )
            .evidence(format!("{key}: {}", clip(s)));
            self.push(f);
        } else if last == "get_file" {
            let f = Fact::new("KRS107", format!("{} names keras get_file", self.here()))
                .evidence(format!("{key}: {}", clip(s)));
            self.push(f);
        }
    }

    fn object(&mut self, m: &Map<String, Value>) {
        let class = m.get("class_name").and_then(Value::as_str);
        let config = m.get("config").and_then(Value::as_object);
        // A string `config` (a Keras 3 `function` object, a custom layer saved by name) is
        // the only name the object has: the path goes one level down to it.
        let name = config
            .and_then(|c| c.get("name"))
            .and_then(Value::as_str)
            .or_else(|| m.get("name").and_then(Value::as_str))
            .or_else(|| m.get("config").and_then(Value::as_str));
        let pushed = match (class, name) {
            (Some(c), Some(n)) if !c.starts_with("__") => {
                self.path.push(clip_to(n, 80));
                true
            }
            _ => false,
        };
        if let Some(class) = class {
            self.serialized(m, class, config);
            if self.h5
                && m.get("module").is_none_or(Value::is_null)
                && !class.starts_with("__")
                && !keras_known(class)
            {
                let f = Fact::new(
                    "KRS104",
                    format!(
                        "{} is a {class}, not a Keras class: Keras resolves it through custom_objects or a registered package",
                        self.here()
                    ),
                )
                .evidence(format!("class_name={}", quote(&clip(class))));
                self.push(f);
            }
        }
        // A `__lambda__` was reported whole by `serialized`.
        if class != Some("__lambda__") {
            for (k, v) in m {
                self.value(v, Some(k));
            }
        }
        if pushed {
            self.path.pop();
        }
    }

    fn serialized(&mut self, m: &Map<String, Value>, class: &str, config: Option<&Map<String, Value>>) {
        let module = m.get("module").and_then(Value::as_str);
        let registered = m.get("registered_name").and_then(Value::as_str);
        match class {
            "__lambda__" => {
                // Lambda layers write `config.code`; any other serialized lambda (an activation,
                // a loss) writes `config.value` = `[code, defaults, closure]` or the code alone.
                let code = config.and_then(|c| match (c.get("code"), c.get("value")) {
                    (Some(Value::String(s)), _) | (_, Some(Value::String(s))) => Some(s.as_str()),
                    (_, Some(Value::Array(a))) => a.first().and_then(Value::as_str),
                    _ => None,
                });
                self.lambda(code, "Keras 3 __lambda__");
            }
            "Lambda" => {
                if let Some(c) = config {
                    self.keras2_lambda(c);
                }
            }
            "TFSMLayer" => {
                let path = config
                    .and_then(|c| c.get("filepath"))
                    .map_or_else(|| "?".to_owned(), render_short);
                let f = Fact::new(
                    "KRS105",
                    format!(
                        "{} is a TFSMLayer: loading it loads a SavedModel from a path",
                        self.here()
                    ),
                )
                .evidence(format!("TFSMLayer(filepath={path})"));
                self.push(f);
            }
            "TorchModuleWrapper" => {
                let payload = config.and_then(|c| c.get("module")).and_then(Value::as_str);
                let what = match payload.and_then(b64) {
                    Some(b) => format!("{} bytes of torch.save data, starting {}", b.len(), head_hex(&b)),
                    None => "no decodable module payload".to_owned(),
                };
                let f = Fact::new(
                    "KRS105",
                    format!(
                        "{} is a TorchModuleWrapper: loading it runs torch.load(weights_only=False) on embedded bytes",
                        self.here()
                    ),
                )
                .evidence(what);
                self.push(f);
            }
            c if LOOKUP_LAYERS.contains(&c) => {
                if let Some(Value::String(p)) = config.and_then(|c| c.get("vocabulary")) {
                    let f = Fact::new(
                        "KRS106",
                        format!("{} ({c}) reads its vocabulary from a path", self.here()),
                    )
                    .evidence(format!("vocabulary={}", quote(p)));
                    self.push(f);
                }
            }
            _ => {}
        }
        // What the loader resolves: Keras 3 `function` objects name the function in `config`.
        let target = if class == "function" {
            m.get("config").and_then(Value::as_str).unwrap_or(class)
        } else {
            class
        };
        if let Some(module) = module {
            self.module_ref(module, target, registered);
        }
    }

    /// Keras 2 Lambda: `function` (and `output_shape`, `mask`) as `[base64, defaults, closure]`
    /// with `*_type: "lambda"`, or a function name with `*_type: "function"` and a module.
    fn keras2_lambda(&mut self, c: &Map<String, Value>) {
        for key in ["function", "output_shape", "mask"] {
            let ty = c.get(&format!("{key}_type")).and_then(Value::as_str);
            match c.get(key) {
                // A decodable `[code, defaults, closure]` is reported by the generic walk.
                Some(Value::Array(a)) if ty.is_none_or(|t| t == "lambda") && code_triple(a).is_none() => {
                    if let Some(Value::String(code)) = a.first() {
                        self.lambda(Some(code), "Keras 2 lambda");
                    }
                }
                Some(Value::String(code)) if ty == Some("lambda") => {
                    self.lambda(Some(code), "Keras 2 lambda");
                }
                // No type, or one Keras does not write: whatever Keras would do with it, the
                // layer runs a function of the file's choosing. Marshal bytes as base64 are
                // decoded; anything else (source text, a name) is reported with what it uses.
                Some(Value::String(code))
                    if key == "function" && ty.is_none_or(|t| t != "lambda" && t != "function") =>
                {
                    if b64(code).is_some_and(|b| marshal::summarize(&b).co_name.is_some()) {
                        self.lambda(Some(code), "Keras 2 lambda (no function_type)");
                    } else {
                        let uses: Vec<&str> = DANGEROUS_CODE_NAMES
                            .iter()
                            .copied()
                            .filter(|n| code.contains(n))
                            .collect();
                        let (rule, msg) = if uses.is_empty() {
                            ("KRS101", "Lambda layer's function is given as text".to_owned())
                        } else {
                            (
                                "KRS102",
                                format!("Lambda layer's function text uses {}", uses.join(", ")),
                            )
                        };
                        let f = Fact::new(rule, format!("{}: {msg}", self.here()))
                            .evidence(format!("function = {}", quote(&clip(code))));
                        self.push(f);
                    }
                }
                Some(Value::Object(o))
                    if key == "function"
                        && o.get("class_name").and_then(Value::as_str) != Some("__lambda__") =>
                {
                    let f = Fact::new(
                        "KRS101",
                        format!(
                            "{}: Lambda layer's function is a serialized object Keras deserializes and calls",
                            self.here()
                        ),
                    )
                    .evidence(format!("function = {}", render_short(&Value::Object(o.clone()))));
                    self.push(f);
                }
                None if key == "function" => {
                    let f = Fact::new(
                        "KRS101",
                        format!("{} holds a Lambda without a function", self.here()),
                    )
                    .evidence("Keras 2 Lambda config".to_owned());
                    self.push(f);
                }
                Some(Value::String(func)) if ty == Some("function") => {
                    let module_key = if key == "function" {
                        "module".to_owned()
                    } else {
                        format!("{key}_module")
                    };
                    let module = c.get(&module_key).and_then(Value::as_str);
                    let target = match module {
                        Some(m) => format!("{m}.{func}"),
                        None => func.clone(),
                    };
                    let dangerous = module.is_some_and(is_dangerous_module)
                        || DANGEROUS_NAMES.contains(&func.as_str())
                        || module.is_some_and(|m| {
                            matches!(
                                global_policy().resolve(m, func).judgement,
                                modelward_policy::Judgement::Dangerous(_)
                            )
                        });
                    let keras_own =
                        module.is_some_and(|m| KERAS_ROOTS.contains(&m.split('.').next().unwrap_or(m)));
                    let (rule, msg) = if dangerous {
                        ("KRS103", "Lambda function resolves to a dangerous callable")
                    } else if keras_own {
                        continue;
                    } else {
                        (
                            "KRS104",
                            "Lambda layer calls a function from outside Keras by name",
                        )
                    };
                    let f = Fact::new(rule, format!("{}: {msg}", self.here()))
                        .evidence(format!("{key} = {target} (Keras 2 function_type=function)"));
                    self.push(f);
                }
                _ => {}
            }
        }
    }

    fn lambda(&mut self, code: Option<&str>, flavour: &str) {
        let Some(code) = code else {
            let f = Fact::new("KRS101", format!("{} holds a Lambda without code", self.here()))
                .evidence(flavour.to_owned());
            self.push(f);
            return;
        };
        let Some(bytes) = b64(code) else {
            let f = Fact::new(
                "KRS101",
                format!("{} holds Lambda bytecode that is not valid base64", self.here()),
            )
            .evidence(format!("{flavour}: {} characters", code.len()));
            self.push(f);
            return;
        };
        let sum = marshal::summarize(&bytes);
        let hits = dangerous_in(&sum);
        let evidence = format!("{flavour}: {}", describe(&sum, bytes.len()));
        let f = if hits.is_empty() {
            Fact::new(
                "KRS101",
                format!(
                    "{} holds Python bytecode (a Lambda) that runs when the model is loaded",
                    self.here()
                ),
            )
        } else {
            Fact::new(
                "KRS102",
                format!(
                    "{} holds Lambda bytecode that uses {}",
                    self.here(),
                    hits.join(", ")
                ),
            )
        };
        self.push(f.evidence(evidence));
    }

    fn module_ref(&mut self, module: &str, target: &str, registered: Option<&str>) {
        let root = module.split('.').next().unwrap_or(module);
        let full = format!("{module}.{target}");
        let ev = match registered {
            Some(r) if r != target => {
                format!("module={module} class_name/config={target} registered_name={r}")
            }
            _ => format!("module={module} name={target}"),
        };
        // What Keras imports (`importlib.import_module(module)`, then the attribute) is judged
        // by the same policy as a pickle global: dangerous there is critical here, whatever the
        // namespace (CVE-2025-1550, -8747, -9906, -12058).
        let resolved = global_policy().resolve(module, target);
        if let modelward_policy::Judgement::Dangerous(entry) = &resolved.judgement {
            let via = if resolved.path != full {
                format!(" ({}: {})", resolved.path, resolved.via.describe())
            } else {
                String::new()
            };
            let f = Fact::new(
                "KRS103",
                format!(
                    "{} resolves {full}{via}: importing and calling it runs code or touches the system",
                    self.here()
                ),
            )
            .evidence(ev)
            .why(entry.reason.clone());
            self.push(f);
            return;
        }
        let dangerous_target = DANGEROUS_NAMES.contains(&target);
        if KERAS_ROOTS.contains(&root)
            || (root == "tensorflow"
                && (module.starts_with("tensorflow.keras") || module.starts_with("tensorflow.python.keras")))
        {
            // Keras' own namespaces; get_file and enable_unsafe_deserialization are caught by
            // the string check, other names are Keras' to resolve.
            return;
        }
        if module == "builtins" && target != "function" && !dangerous_target && registered == Some("function")
        {
            // Keras 3 writes `module: builtins` for every plain Python function it serializes;
            // the function itself is looked up in the custom objects.
            return;
        }
        if dangerous_target || (module != "builtins" && is_dangerous_module(module)) {
            let f = Fact::new(
                "KRS103",
                format!(
                    "{} resolves {full}: importing it runs code or touches the system",
                    self.here()
                ),
            )
            .evidence(ev);
            self.push(f);
        } else {
            let f = Fact::new(
                "KRS104",
                format!("{} needs {full} from outside Keras", self.here()),
            )
            .evidence(ev);
            self.push(f);
        }
    }
}

/// The built-in global-name policy (the catalog of `modelward_policy`), for what a config makes
/// Keras import.
fn global_policy() -> &'static modelward_policy::GlobalPolicy {
    static P: std::sync::OnceLock<modelward_policy::GlobalPolicy> = std::sync::OnceLock::new();
    P.get_or_init(modelward_policy::GlobalPolicy::builtin)
}

/// The base64 code of `[code, defaults, closure]` when it decodes to a marshalled code object.
fn code_triple(a: &[Value]) -> Option<&str> {
    if a.len() != 3 {
        return None;
    }
    let code = a.first()?.as_str()?;
    if code.len() < 16 {
        return None;
    }
    let bytes = b64(code)?;
    (bytes.first().map(|b| b & 0x7f) == Some(b'c')).then_some(code)
}

fn is_dangerous_module(module: &str) -> bool {
    let root = module.split('.').next().unwrap_or(module);
    DANGEROUS_MODULES.contains(&root) || module == "builtins"
}

fn dangerous_in(sum: &CodeSummary) -> Vec<String> {
    let mut hits: Vec<String> = Vec::new();
    for n in &sum.names {
        if DANGEROUS_CODE_NAMES.contains(&n.as_str()) && !hits.contains(n) {
            hits.push(n.clone());
        }
    }
    for c in &sum.consts {
        let lower = c.to_ascii_lowercase();
        for needle in [
            "import os",
            "os.system",
            "subprocess",
            "__import__",
            "/bin/sh",
            "/bin/bash",
            "curl ",
            "wget ",
        ] {
            if lower.contains(needle) && !hits.iter().any(|h| h == needle.trim()) {
                hits.push(needle.trim().to_owned());
            }
        }
    }
    hits
}

/// One line describing decoded bytecode.
pub(crate) fn describe(sum: &CodeSummary, len: usize) -> String {
    let mut s = format!(
        "code {} from {}",
        sum.co_name.as_deref().map_or_else(|| "?".to_owned(), quote),
        sum.co_filename.as_deref().map_or_else(|| "?".to_owned(), quote)
    );
    if let Some(l) = sum.layout {
        s.push_str(&format!(" (CPython {l} marshal, {len} bytes)"));
    } else {
        s.push_str(&format!(" ({len} bytes, layout not recognised)"));
    }
    s.push_str(&format!("; names [{}]", sum.names.join(", ")));
    s.push_str(&format!("; consts [{}]", sum.consts.join(", ")));
    if sum.nested > 0 {
        s.push_str(&format!("; {} nested code objects", sum.nested));
    }
    if sum.truncated {
        s.push_str("; partly read");
    }
    clip_to(&s, 1500)
}

fn quote(s: &str) -> String {
    format!("'{}'", clip_to(s, 200).replace('\'', "\\'"))
}

fn clip(s: &str) -> String {
    clip_to(s, 200)
}

fn clip_to(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_owned()
    } else {
        let mut t: String = s.chars().take(n).collect();
        t.push('…');
        t
    }
}

fn render_short(v: &Value) -> String {
    match v {
        Value::String(s) => quote(s),
        other => clip(&other.to_string()),
    }
}

fn head_hex(b: &[u8]) -> String {
    let head: String = b
        .iter()
        .take(8)
        .map(|x| {
            if x.is_ascii_graphic() {
                char::from(*x).to_string()
            } else {
                format!("\\x{x:02x}")
            }
        })
        .collect();
    format!("b'{head}'")
}

// ------------------------------------------------------------------------------------------
// HDF5
// ------------------------------------------------------------------------------------------

type Reply = mpsc::SyncSender<Result<Vec<u8>, String>>;

/// What the HDF5 worker found.
#[derive(Default)]
struct H5Report {
    /// `(attribute name, text)` of `model_config` / `training_config`.
    configs: Vec<(String, String)>,
    /// External links: `(link owner path, file name)`.
    links: Vec<String>,
    /// External raw data files: `(dataset path, file name)`.
    external_files: Vec<(String, String)>,
    /// Why the file could not be read completely.
    error: Option<String>,
    /// The object walk stopped at [`MAX_H5_OBJECTS`].
    objects_capped: bool,
}

/// Reads the Keras attributes of an HDF5 file (`model_config`, `training_config` on the root
/// group) in pure Rust and checks them as configs; reports external links and external raw data
/// files anywhere in the file. Reads only metadata, never the weights.
pub fn check_h5(r: &mut dyn ReadSeek, len: u64) -> Vec<Fact> {
    check_h5_capped(r, len, MAX_FACTS_PER_RULE)
}

/// [`check_h5`] with at most `cap` facts per rule from the configs (the scanner passes
/// `max-findings-per-rule`); links and external files are listed up to
/// [`MAX_FACTS_PER_RULE`] each, which bounds what the HDF5 walk collects.
pub fn check_h5_capped(r: &mut dyn ReadSeek, len: u64, cap: usize) -> Vec<Fact> {
    let (tx, rx) = mpsc::channel::<(u64, usize, Reply)>();
    let mut served = 0u64;
    let mut budget_hit = false;
    // hdf5-reader wants a `'static + Send + Sync` storage; the input is a borrowed reader. The
    // reader runs on a scoped thread and asks this thread for each byte range it needs.
    let outcome = std::thread::scope(|s| {
        let worker = match std::thread::Builder::new()
            .name("modelward-hdf5".into())
            .spawn_scoped(s, move || h5_worker(len, tx))
        {
            Ok(w) => w,
            Err(e) => return Err(format!("could not start the HDF5 reader: {e}")),
        };
        for (offset, n, reply) in rx {
            let res = if n > MAX_H5_REQUEST || served.saturating_add(n as u64) > MAX_H5_READ_BYTES {
                budget_hit = true;
                Err(format!(
                    "read of {n} bytes at {offset} is over the metadata budget"
                ))
            } else {
                served += n as u64;
                read_at(r, offset, n).map_err(|e| e.to_string())
            };
            let _ = reply.send(res);
        }
        worker.join().map_err(|_| "hdf5-reader panicked".to_owned())
    });
    let mut facts = Vec::new();
    let rep = match outcome {
        Ok(rep) => rep,
        Err(why) => {
            facts.push(
                Fact::new(
                    "MWD002",
                    "the HDF5 reader stopped on this file; its Keras attributes were not checked",
                )
                .evidence(why),
            );
            return facts;
        }
    };
    let mut w = Walker::new(cap);
    w.h5 = true;
    for (name, text) in &rep.configs {
        w.config(text, name);
    }
    facts.extend(w.finish());
    for l in rep.links.iter().take(MAX_FACTS_PER_RULE) {
        facts.push(
            Fact::new(
                "KRS109",
                "HDF5 external link: loading follows it into another file",
            )
            .evidence(l.clone()),
        );
    }
    for (ds, file) in rep.external_files.iter().take(MAX_FACTS_PER_RULE) {
        facts.push(
            Fact::new(
                "KRS109",
                format!("HDF5 dataset '{ds}' keeps its data in an external file"),
            )
            .evidence(format!("external file {}", quote(file))),
        );
    }
    if budget_hit || rep.objects_capped {
        facts.push(
            Fact::new("MWD002", "part of the HDF5 file's metadata was not read (budget)").evidence(format!(
                "read {served} bytes (limit {MAX_H5_READ_BYTES}); objects capped: {}",
                rep.objects_capped
            )),
        );
    } else if let Some(e) = rep.error {
        facts.push(Fact::new("KRS110", "the HDF5 file could not be read completely").evidence(e));
    }
    facts
}

fn read_at(r: &mut dyn ReadSeek, offset: u64, n: usize) -> io::Result<Vec<u8>> {
    r.seek(SeekFrom::Start(offset))?;
    let mut buf = Vec::new();
    let got = io::Read::take(&mut *r, n as u64).read_to_end(&mut buf)?;
    if got != n {
        return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "short read"));
    }
    Ok(buf)
}

struct LinkRecorder(Arc<Mutex<Vec<String>>>);

impl hdf5_reader::ExternalLinkResolver for LinkRecorder {
    fn resolve_external_link(
        &self,
        filename: &str,
    ) -> hdf5_reader::error::Result<Option<hdf5_reader::Hdf5File>> {
        if let Ok(mut v) = self.0.lock()
            && v.len() < MAX_FACTS_PER_RULE
            && !v.iter().any(|x| x == filename)
        {
            v.push(filename.to_owned());
        }
        Ok(None)
    }
}

fn h5_worker(len: u64, tx: mpsc::Sender<(u64, usize, Reply)>) -> H5Report {
    use hdf5_reader::{Hdf5File, OpenOptions, RangeRequestStorage};
    let storage = RangeRequestStorage::new(len, move |offset, n| {
        let (rtx, rrx) = mpsc::sync_channel(1);
        tx.send((offset, n, rtx))
            .map_err(|_| hdf5_reader::error::Error::Other("reader gone".into()))?;
        rrx.recv()
            .map_err(|_| hdf5_reader::error::Error::Other("reader gone".into()))?
            .map_err(hdf5_reader::error::Error::Other)
    });
    let links = Arc::new(Mutex::new(Vec::new()));
    let options = OpenOptions::default()
        .with_chunk_cache_bytes(0)
        .with_max_read_bytes(MAX_H5_REQUEST)
        .with_max_chunk_bytes(MAX_H5_REQUEST)
        .with_max_object_header_bytes(4 << 20)
        .with_external_link_resolver(Arc::new(LinkRecorder(links.clone())));
    let mut rep = H5Report::default();
    let file = match Hdf5File::from_storage_with_options(Arc::new(storage), options) {
        Ok(f) => f,
        Err(e) => {
            rep.error = Some(e.to_string());
            return rep;
        }
    };
    let root = match file.root_group() {
        Ok(g) => g,
        Err(e) => {
            rep.error = Some(e.to_string());
            return rep;
        }
    };
    for name in ["model_config", "training_config"] {
        if let Ok(a) = root.attribute(name) {
            match a.read_string() {
                Ok(s) => rep.configs.push((name.to_owned(), s)),
                Err(e) => rep.error = Some(format!("attribute {name}: {e}")),
            }
        }
    }
    // Walk groups and datasets for external links and external raw data files.
    let mut stack = vec![(root, String::new())];
    let mut visited = 0usize;
    let sb = file.superblock();
    let (osz, lsz) = (sb.offset_size, sb.length_size);
    let mut seen_addrs = std::collections::HashSet::new();
    while let Some((g, path)) = stack.pop() {
        if !seen_addrs.insert(g.address()) {
            continue;
        }
        visited += 1;
        if visited > MAX_H5_OBJECTS {
            rep.objects_capped = true;
            break;
        }
        let (groups, datasets) = match g.members() {
            Ok(m) => m,
            Err(e) => {
                rep.error.get_or_insert_with(|| format!("group '{path}': {e}"));
                continue;
            }
        };
        for d in datasets {
            visited += 1;
            if visited > MAX_H5_OBJECTS {
                rep.objects_capped = true;
                break;
            }
            let Ok(h) = file.get_or_parse_header(d.address()) else {
                continue;
            };
            for m in &h.messages {
                if let hdf5_reader::messages::HdfMessage::ExternalFiles(ef) = m {
                    let names = external_file_names(file.storage(), ef, osz, lsz);
                    for n in names {
                        if rep.external_files.len() < MAX_FACTS_PER_RULE {
                            rep.external_files.push((format!("{path}/{}", d.name()), n));
                        }
                    }
                }
            }
        }
        for c in groups {
            let p = format!("{path}/{}", c.name());
            stack.push((c, p));
        }
    }
    if let Ok(l) = links.lock() {
        rep.links = l.clone();
    }
    rep
}

fn external_file_names(
    storage: &dyn hdf5_reader::Storage,
    ef: &hdf5_reader::messages::external_files::ExternalFilesMessage,
    osz: u8,
    lsz: u8,
) -> Vec<String> {
    let Ok(heap) = hdf5_reader::local_heap::LocalHeap::parse_at_storage(storage, ef.heap_address, osz, lsz)
    else {
        return vec!["<unreadable name>".to_owned()];
    };
    ef.slots
        .iter()
        .take(8)
        .map(|s| {
            heap.get_string_storage(s.name_offset, storage)
                .unwrap_or_else(|_| "<unreadable name>".to_owned())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hdf5_signature_is_found_after_a_user_block() {
        let mut b = vec![0u8; 1024 + 8];
        assert!(!looks_like_hdf5(&b));
        b[1024..].copy_from_slice(HDF5_MAGIC);
        assert!(looks_like_hdf5(&b));
        assert!(looks_like_hdf5(HDF5_MAGIC));
        assert!(!looks_like_hdf5(&b[..1030]));
    }

    #[test]
    fn keras_zip_needs_config_and_metadata() {
        assert!(looks_like_keras_zip(&[
            "metadata.json",
            "config.json",
            "model.weights.h5"
        ]));
        assert!(!looks_like_keras_zip(&["config.json", "model.safetensors"]));
        assert!(!looks_like_keras_zip(&["sub/config.json", "sub/metadata.json"]));
    }

    #[test]
    fn base64_with_newlines_and_without_padding_decodes() {
        assert_eq!(b64("aGVs\nbG8=\n").as_deref(), Some(&b"hello"[..]));
        assert_eq!(b64("aGVsbG8").as_deref(), Some(&b"hello"[..]));
        assert!(b64("***").is_none());
    }
}

#[cfg(test)]
mod config_tests {
    use super::*;

    fn rules(json: &str) -> Vec<&'static str> {
        check_config(json).iter().map(|f| f.rule).collect()
    }

    #[test]
    fn keras2_lambda_by_name_is_judged_by_its_module() {
        let cfg = |module: &str, func: &str| {
            format!(
                r#"{{"class_name": "Sequential", "config": {{"name": "s", "layers": [{{"class_name": "Lambda",
                "config": {{"name": "l", "function": "{func}", "function_type": "function", "module": "{module}"}}}}]}}}}"#
            )
        };
        assert_eq!(rules(&cfg("os", "system")), ["KRS103"]);
        assert_eq!(rules(&cfg("__main__", "my_fn")), ["KRS104"]);
        assert!(rules(&cfg("keras.activations", "relu")).is_empty());
    }

    #[test]
    fn plain_functions_keras_writes_under_builtins_are_not_reported() {
        let ok = r#"{"module": "builtins", "class_name": "function", "config": "my_activation", "registered_name": "function"}"#;
        assert!(rules(ok).is_empty());
        let bad = r#"{"module": "builtins", "class_name": "function", "config": "exec", "registered_name": "function"}"#;
        assert_eq!(rules(bad), ["KRS103"]);
        let other = r#"{"module": "builtins", "class_name": "print", "config": {}}"#;
        assert_eq!(rules(other), ["KRS104"]);
        let registered = r#"{"module": null, "class_name": "MyLayer", "config": {"name": "x"}, "registered_name": "Pkg>MyLayer"}"#;
        assert!(rules(registered).is_empty());
    }

    #[test]
    fn an_object_whose_config_is_a_string_is_named_by_it_in_the_layer_path() {
        let cfg = r#"{"class_name": "Sequential", "config": {"name": "seq", "layers": [
            {"module": "builtins", "class_name": "function", "config": "exec", "registered_name": "function"}]}}"#;
        let f = check_config(cfg);
        assert_eq!(f.len(), 1, "{f:?}");
        assert!(f[0].message.contains("layer 'seq/exec'"), "{}", f[0].message);
    }

    #[test]
    fn what_keras_would_import_is_judged_by_the_global_policy() {
        let obj = |module: &str, class: &str, registered: &str| {
            format!(
                r#"{{"module": "{module}", "class_name": "{class}", "config": {{"name": "x"}}, "registered_name": "{registered}"}}"#
            )
        };
        // Dangerous anywhere, also under Keras' own namespace and through a private path.
        for (m, c) in [
            ("subprocess", "Popen"),
            ("keras.src.utils.file_utils", "get_file"),
            (
                "keras.src.saving.serialization_lib",
                "enable_unsafe_deserialization",
            ),
            ("hydra.utils", "instantiate"),
            ("datasets.utils.py_utils", "FunctionType"),
        ] {
            let facts = check_config(&obj(m, c, c));
            assert!(
                facts.iter().any(|f| f.rule == "KRS103" && f.why.is_some()),
                "{m}.{c}: {facts:?}"
            );
        }
        // Keras' own layers stay quiet; an unreviewed foreign class stays medium.
        assert!(rules(&obj("keras.layers", "Dense", "Dense")).is_empty());
        assert_eq!(rules(&obj("mylib.layers", "Custom", "mylib>Custom")), ["KRS104"]);
    }

    #[test]
    fn an_hdf5_config_class_keras_does_not_know_is_suspicious() {
        let cfg = r#"{"class_name": "Sequential", "config": {"name": "s", "layers": [
            {"class_name": "Dense", "config": {"name": "d", "kernel_initializer": {"class_name": "GlorotUniform", "config": {}}}},
            {"class_name": "MyAttention", "config": {"name": "att"}}]}}"#;
        let mut w = Walker::new(MAX_FACTS_PER_RULE);
        w.h5 = true;
        w.config(cfg, "model_config");
        let facts = w.finish();
        assert_eq!(facts.len(), 1, "{facts:?}");
        assert!(facts[0].rule == "KRS104" && facts[0].message.contains("MyAttention"));
        // The same config in a .keras file is judged by its module keys instead.
        assert!(rules(cfg).is_empty());
    }

    #[test]
    fn a_keras2_lambda_is_found_whatever_the_form_of_its_function() {
        let lambda = |function: &str| {
            format!(
                r#"{{"class_name": "Sequential", "config": {{"name": "s", "layers": [{{"class_name": "Lambda",
                "config": {{"name": "l", "function": {function}}}}}]}}}}"#
            )
        };
        // Source text without a function_type, naming os.
        assert_eq!(
            rules(&lambda(r#""lambda x: __import__('os').system('id')""#)),
            ["KRS102"]
        );
        // Harmless-looking source text is still code.
        assert_eq!(rules(&lambda(r#""lambda x: x * 2""#)), ["KRS101"]);
        // A serialized object Keras deserializes and calls.
        assert_eq!(
            rules(&lambda(r#"{"class_name": "MyFn", "config": {}}"#)),
            ["KRS101"]
        );
        // No function at all.
        let none = r#"{"class_name": "Lambda", "config": {"name": "l"}}"#;
        assert_eq!(rules(none), ["KRS101"]);
        // A plain Dense layer with a string field is not a Lambda.
        let dense = r#"{"class_name": "Dense", "config": {"name": "d", "activation": "relu"}}"#;
        assert!(rules(dense).is_empty());
    }

    #[test]
    fn lists_that_are_not_bytecode_are_left_alone() {
        assert!(rules(r#"{"value": ["aGVsbG8gd29ybGQgaGVsbG8=", null, null]}"#).is_empty());
        assert!(rules(r#"{"batch_shape": [null, 4], "names": ["a", "b", "c"]}"#).is_empty());
    }

    #[test]
    fn lambda_without_decodable_code_is_still_reported() {
        let cfg = r#"{"class_name": "Lambda", "config": {"name": "l", "function": ["!!!not base64!!!", null, null], "function_type": "lambda"}}"#;
        let f = check_config(cfg);
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].rule, "KRS101");
        let cfg = r#"{"class_name": "__lambda__", "config": {}}"#;
        assert_eq!(rules(cfg), ["KRS101"]);
    }

    #[test]
    fn broken_deep_and_huge_configs_give_a_fact_not_a_panic() {
        assert_eq!(rules("{"), ["KRS110"]);
        let deep = "[".repeat(100_000);
        assert_eq!(rules(&deep), ["KRS110"]);
        let nested = format!("{}{}", "[".repeat(120), "]".repeat(120));
        assert!(rules(&nested).is_empty());
        let huge = format!("\"{}\"", "a".repeat(MAX_CONFIG_BYTES));
        assert_eq!(rules(&huge), ["MWD002"]);
    }

    #[test]
    fn repeated_findings_are_capped() {
        let layer = r#"{"module": "mylib", "class_name": "X", "config": {}}"#;
        let many = format!("[{}]", vec![layer; MAX_FACTS_PER_RULE + 20].join(","));
        let f = check_config(&many);
        // The cap, then the one summary fact of the collector.
        assert_eq!(f.len(), MAX_FACTS_PER_RULE + 1);
        assert!(f.last().unwrap().message.contains("20 more"));
    }

    #[test]
    fn a_short_or_unreadable_hdf5_input_gives_a_fact() {
        let mut c = std::io::Cursor::new(HDF5_MAGIC.to_vec());
        let f = check_h5(&mut c, 8);
        assert_eq!(f.len(), 1, "{f:?}");
        assert_eq!(f[0].rule, "KRS110");
        // A length larger than the input: reads fail, nothing panics.
        let mut c = std::io::Cursor::new(HDF5_MAGIC.to_vec());
        assert!(!check_h5(&mut c, 1 << 40).is_empty());
    }
}
