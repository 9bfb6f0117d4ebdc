//! safetensors, GGUF, chat templates and Hugging Face configs against real, benign files: the
//! ones `../shared/real/fetch_real.sh` fetches (skipped when absent, unless
//! `MODELWARD_REQUIRE_REAL=1`) and the committed fixtures made by the real writers
//! (`tests/fixtures/{safetensors,gguf}`, from `tests/fixtures/generate/gen_tensor_headers.py`).

use modelward_formats::io::Counting;
use modelward_formats::{gguf, hf, safetensors, template};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

#[path = "../../../tests/support/real_sets.rs"]
mod real_sets;

fn real_dir() -> Option<PathBuf> {
    real_sets::shared()
}

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures")
}

/// Files under `dir` whose extension is `ext`, sorted.
fn files(dir: &Path, ext: &str) -> Vec<PathBuf> {
    real_sets::files_with_extension(dir, ext)
}

/// Opens a file behind a byte counter.
fn open(p: &Path) -> (Counting<File>, Arc<AtomicU64>, u64) {
    let f = File::open(p).expect("open");
    let len = f.metadata().expect("metadata").len();
    let count = Arc::new(AtomicU64::new(0));
    (Counting::new(f, count.clone()), count, len)
}

fn gguf_problems(paths: &[PathBuf]) -> (Vec<String>, usize, usize) {
    let mut problems = Vec::new();
    let (mut templates, mut flagged) = (0, 0);
    for p in paths {
        let (mut r, count, len) = open(p);
        let rep = gguf::check(&mut r, len);
        eprintln!(
            "{}: v{} {} tensors, {} kvs, {} templates, read {} of {len} bytes",
            p.file_name().unwrap().to_string_lossy(),
            rep.version,
            rep.tensor_count,
            rep.kv_count,
            rep.chat_templates.len(),
            count.load(Ordering::Relaxed)
        );
        if !rep.facts.is_empty() {
            problems.push(format!("{}: {:?}", p.display(), rep.facts));
        }
        for (key, text, _) in &rep.chat_templates {
            templates += 1;
            let facts = template::analyse(text);
            if !facts.is_empty() {
                flagged += 1;
                problems.push(format!("{} {key}: {facts:?}", p.display()));
            }
        }
    }
    (problems, templates, flagged)
}

#[test]
fn real_chat_templates_and_ggufs_give_no_findings() {
    let Some(dir) = real_dir() else { return };
    let mut problems = Vec::new();
    let jinja = files(&dir, "jinja");
    let mut flagged = 0;
    for p in &jinja {
        let text = std::fs::read_to_string(p).expect("utf-8 template");
        let facts = template::analyse(&text);
        if !facts.is_empty() {
            flagged += 1;
            problems.push(format!("{}: {facts:?}", p.display()));
        }
    }
    let ggufs = files(&dir, "gguf");
    let (gp, templates, gflagged) = gguf_problems(&ggufs);
    problems.extend(gp);
    eprintln!(
        "{} .jinja templates ({flagged} with findings); {} GGUF files with {templates} templates ({gflagged} with findings)",
        jinja.len(),
        ggufs.len()
    );
    assert!(jinja.len() >= 50 && ggufs.len() >= 10, "real set incomplete");
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn payloads_hidden_in_real_templates_are_found_and_mutants_never_break_the_analyser() {
    let Some(dir) = real_dir() else { return };
    let payload =
        "{%- if messages | length > 999 -%}{{ lipsum.__globals__['os'].popen('id').read() }}{%- endif -%}";
    let mut problems = Vec::new();
    for p in files(&dir, "jinja") {
        let text = std::fs::read_to_string(&p).expect("utf-8 template");
        // In a rarely taken branch at the end, and inside the first block-level statement.
        let at_end = format!("{text}{payload}");
        let facts = template::analyse(&at_end);
        if !facts.iter().any(|f| f.rule == "TPL101") {
            problems.push(format!("{}: payload at end not found: {facts:?}", p.display()));
        }
        // Truncations: never a parser failure (a panic), whatever else.
        let cuts = [text.len() / 3, text.len() / 2, text.len() * 4 / 5];
        for cut in cuts {
            let mut c = cut;
            while !text.is_char_boundary(c) {
                c -= 1;
            }
            for f in template::analyse(&text[..c]) {
                if f.message.contains("parser failed") {
                    problems.push(format!("{} cut at {c}: {f:?}", p.display()));
                }
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn real_safetensors_are_clean_and_only_their_header_is_read() {
    let Some(dir) = real_dir() else { return };
    let paths = files(&dir, "safetensors");
    assert!(!paths.is_empty());
    for p in &paths {
        let (mut r, count, len) = open(p);
        let rep = safetensors::check(&mut r, len);
        let read = count.load(Ordering::Relaxed);
        eprintln!(
            "{}: {} tensors, header {} bytes, read {read} of {len} bytes",
            p.file_name().unwrap().to_string_lossy(),
            rep.tensors,
            rep.header_len
        );
        assert_eq!(rep.facts, [], "{}", p.display());
        assert!(rep.tensors > 0);
        assert!(read <= 8 + rep.header_len, "{}: read {read} bytes", p.display());
    }
}

#[test]
fn real_hf_configs_give_nothing_above_info() {
    let Some(dir) = real_dir() else { return };
    let mut problems = Vec::new();
    let mut n = 0;
    for p in files(&dir, "json") {
        let Ok(text) = std::fs::read_to_string(&p) else {
            continue;
        };
        n += 1;
        let rep = hf::check_json(&text);
        if !rep.facts.is_empty() || !rep.targets.is_empty() {
            problems.push(format!("{}: {:?} {:?}", p.display(), rep.facts, rep.targets));
        }
    }
    eprintln!("{n} JSON files");
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// The rule a `bad_<RULE>_*` fixture must give, or `None` for an `ok_*` one.
fn expected_rule(p: &Path) -> Option<String> {
    let name = p.file_name()?.to_str()?;
    let rest = name.strip_prefix("bad_")?;
    Some(rest.split('_').next()?.to_owned())
}

#[test]
fn writer_fixtures_give_their_expected_rules() {
    let root = fixtures();
    let st = files(&root.join("safetensors"), "safetensors");
    let gg = files(&root.join("gguf"), "gguf");
    assert!(
        st.len() >= 3 && gg.len() >= 3,
        "fixtures missing: {} {}",
        st.len(),
        gg.len()
    );
    let mut problems = Vec::new();
    for p in &st {
        let (mut r, _, len) = open(p);
        let rep = safetensors::check(&mut r, len);
        let got: Vec<&str> = rep.facts.iter().map(|f| f.rule).collect();
        match expected_rule(p) {
            None => {
                let head = std::fs::read(p).expect("read");
                if !safetensors::looks_like(&head[..head.len().min(4096)], len) || !got.is_empty() {
                    problems.push(format!("{}: {got:?}", p.display()));
                }
            }
            Some(rule) if !got.contains(&rule.as_str()) => {
                problems.push(format!("{}: wanted {rule}, got {got:?}", p.display()));
            }
            Some(_) => {}
        }
    }
    let mut templates = 0;
    for p in &gg {
        let head = std::fs::read(p).expect("read");
        let (mut r, _, len) = open(p);
        let rep = gguf::check(&mut r, len);
        let mut got: Vec<&str> = rep.facts.iter().map(|f| f.rule).collect();
        for (_, text, _) in &rep.chat_templates {
            templates += 1;
            got.extend(template::analyse(text).iter().map(|f| f.rule));
        }
        match expected_rule(p) {
            None => {
                if !gguf::looks_like(&head) || !got.is_empty() {
                    problems.push(format!("{}: {got:?}", p.display()));
                }
            }
            Some(rule) if !got.contains(&rule.as_str()) => {
                problems.push(format!("{}: wanted {rule}, got {got:?}", p.display()));
            }
            Some(_) => {}
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    assert!(templates >= 4, "{templates} templates");
}

/// Random byte mutations of the writer fixtures: the checks never panic and templates found in
/// mutated GGUFs are analysed without parser failures.
#[test]
fn mutated_fixtures_never_panic() {
    let root = fixtures();
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut paths = files(&root.join("safetensors"), "safetensors");
    paths.extend(files(&root.join("gguf"), "gguf"));
    for p in paths {
        let base = std::fs::read(&p).expect("read");
        for _ in 0..300 {
            let mut m = base.clone();
            for _ in 0..1 + next() % 4 {
                let i = (next() as usize) % m.len().clamp(1, 600).min(m.len());
                let v = next() as u8;
                match next() % 4 {
                    0 => m[i] = v,
                    1 => m[i] ^= 1 << (v % 8),
                    2 => m.truncate(i),
                    _ => m[i] = [0u8, 0xff, 0x7f, 0x80][(v % 4) as usize],
                }
                if m.is_empty() {
                    break;
                }
            }
            let len = m.len() as u64;
            let st = safetensors::check(&mut std::io::Cursor::new(&m), len);
            assert!(st.facts.len() < 200);
            let g = gguf::check(&mut std::io::Cursor::new(&m), len);
            for (_, text, _) in &g.chat_templates {
                for f in template::analyse(text) {
                    assert!(!f.message.contains("parser failed"), "{}: {f:?}", p.display());
                }
            }
        }
    }
}
