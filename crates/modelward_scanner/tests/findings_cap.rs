//! `max-findings-per-rule` is the one cap of every format: with 3, each format's repeated
//! findings are cut to 3 listed plus one that counts the rest, whichever parser found them.
//! Each input is checked first with the default cap, to show it really repeats its rule.

mod common;

use modelward_diagnostics::FileReport;
use modelward_scanner::ScanLimits;

fn capped(cap: usize) -> ScanLimits {
    ScanLimits {
        max_findings_per_rule: cap,
        ..ScanLimits::default()
    }
}

fn count(r: &FileReport, rule: &str) -> usize {
    r.findings.iter().filter(|f| f.rule == rule).count()
}

/// `data` repeats `rule` more than 4 times uncapped; with a cap of 3 it is listed 3 times and
/// summarised once, and the verdict does not move.
fn assert_capped(what: &str, data: &[u8], rule: &str) {
    let all = common::scan(data);
    assert!(
        count(&all, rule) > 4,
        "{what}: only {} {rule} findings uncapped: {:?}",
        count(&all, rule),
        common::rules(&all)
    );
    let r = common::scan_with(capped(3), data);
    assert_eq!(count(&r, rule), 4, "{what}: {:?}", common::rules(&r));
    let summaries: Vec<&str> = r
        .findings
        .iter()
        .filter(|f| f.rule == rule && f.message.contains("not listed"))
        .map(|f| f.message.as_str())
        .collect();
    assert_eq!(summaries.len(), 1, "{what}: {summaries:?}");
    assert!(
        summaries[0].contains("at most 3 per rule"),
        "{what}: {}",
        summaries[0]
    );
    assert_eq!(r.verdict, all.verdict, "{what}");
}

fn varint(mut v: u64, out: &mut Vec<u8>) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn field(n: u64, data: &[u8], out: &mut Vec<u8>) {
    varint(n << 3 | 2, out);
    varint(data.len() as u64, out);
    out.extend_from_slice(data);
}

fn gguf_with_template(template: &str) -> Vec<u8> {
    let mut g = b"GGUF".to_vec();
    g.extend_from_slice(&3u32.to_le_bytes());
    g.extend_from_slice(&0u64.to_le_bytes()); // tensors
    g.extend_from_slice(&1u64.to_le_bytes()); // kvs
    let key = b"tokenizer.chat_template";
    g.extend_from_slice(&(key.len() as u64).to_le_bytes());
    g.extend_from_slice(key);
    g.extend_from_slice(&8u32.to_le_bytes()); // string
    g.extend_from_slice(&(template.len() as u64).to_le_bytes());
    g.extend_from_slice(template.as_bytes());
    g
}

const SSTI: &str = "{{ cycler.__init__.__globals__.os.popen('id').read() }}";

#[test]
fn pickle() {
    let mut p = Vec::new();
    // Ten globals on no reviewed list, each called.
    for i in 0..10 {
        p.extend_from_slice(format!("cmylib{i}\nrun\n(S'x'\ntR0").as_bytes());
    }
    p.extend_from_slice(b"N.");
    let all = common::scan(&p);
    let rule = all
        .findings
        .iter()
        .map(|f| f.rule.clone())
        .find(|r| count(&all, r) > 4)
        .unwrap_or_else(|| panic!("no repeated rule: {:?}", common::rules(&all)));
    assert_capped("pickle", &p, &rule);
}

#[test]
fn safetensors() {
    let mut h = String::from("{");
    for i in 0..20 {
        h.push_str(&format!(
            "\"t{i}\":{{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,2]}},"
        ));
    }
    h.pop();
    h.push('}');
    let mut f = (h.len() as u64).to_le_bytes().to_vec();
    f.extend_from_slice(h.as_bytes());
    f.extend_from_slice(&[0, 0]);
    assert_capped("safetensors", &f, "SFT107");
}

#[test]
fn gguf_chat_template() {
    let t = SSTI.repeat(20);
    assert_capped("gguf", &gguf_with_template(&t), "TPL101");
}

#[test]
fn jinja_text() {
    assert_capped("jinja", SSTI.repeat(20).as_bytes(), "TPL101");
}

#[test]
fn hf_json_config() {
    let mut j = String::from("{\"chat_template\": \"");
    j.push_str(&SSTI.repeat(20).replace('\'', "\\u0027"));
    j.push_str("\"}");
    assert_capped("tokenizer_config.json", j.as_bytes(), "TPL101");
}

#[test]
fn keras_config() {
    let layer = r#"{"module": "mylib", "class_name": "X", "config": {}}"#;
    let config = format!(
        r#"{{"class_name": "Sequential", "config": {{"name": "seq", "layers": [{}]}}}}"#,
        vec![layer; 20].join(",")
    );
    let zip = common::zip(&[
        common::Member::stored("metadata.json", br#"{"keras_version": "3.6.0"}"#),
        common::Member::stored("config.json", config.as_bytes()),
    ]);
    let all = common::scan(&zip);
    let rule = all
        .findings
        .iter()
        .map(|f| f.rule.clone())
        .find(|r| count(&all, r) > 4)
        .unwrap_or_else(|| panic!("no repeated rule: {:?}", common::rules(&all)));
    assert_capped("keras", &zip, &rule);
}

#[test]
fn onnx_custom_ops() {
    let mut graph = Vec::new();
    for i in 0..20 {
        let mut node = Vec::new();
        field(4, format!("Op{i}").as_bytes(), &mut node);
        field(7, b"com.example.custom", &mut node);
        field(1, &node, &mut graph);
    }
    let mut model = vec![0x08, 0x08]; // ir_version 8
    field(7, &graph, &mut model);
    let mut opset = Vec::new();
    field(1, b"com.example.custom", &mut opset);
    opset.extend_from_slice(&[0x10, 0x01]);
    field(8, &opset, &mut model);
    let all = common::scan(&model);
    assert_eq!(all.format, "onnx", "{all:#?}");
    assert_capped("onnx", &model, "ONX101");
}

#[test]
fn tensorflow_unknown_ops() {
    let mut graph = Vec::new();
    for i in 0..20 {
        let mut node = Vec::new();
        field(1, format!("n{i}").as_bytes(), &mut node);
        field(2, format!("NotAnOp{i}").as_bytes(), &mut node);
        field(1, &node, &mut graph);
    }
    let mut meta = Vec::new();
    field(2, &graph, &mut meta);
    let mut saved = vec![0x08, 0x01];
    field(2, &meta, &mut saved);
    let all = common::scan(&saved);
    assert_eq!(all.format, "tensorflow-savedmodel", "{all:#?}");
    assert_capped("savedmodel", &saved, "TFM104");
}

#[test]
fn zip_members() {
    // The engine's own facts: members whose names leave the extraction folder.
    let names: Vec<String> = (0..10).map(|i| format!("../x{i}.txt")).collect();
    let members: Vec<common::Member<'_>> = names
        .iter()
        .map(|n| common::Member::stored(n, b"hello"))
        .collect();
    assert_capped("zip", &common::zip(&members), "ARC204");
}

/// The cap reaches the parsers: above their standalone defaults (16 for templates and
/// safetensors headers), a larger cap lists more.
#[test]
fn a_larger_cap_reaches_the_parsers() {
    let t = gguf_with_template(&SSTI.repeat(40));
    let r = common::scan_with(capped(200), &t);
    assert!(count(&r, "TPL101") >= 40, "{:?}", common::rules(&r));
    assert!(!r.findings.iter().any(|f| f.message.contains("not listed")));
    let mut h = String::from("{");
    for i in 0..40 {
        h.push_str(&format!(
            "\"t{i}\":{{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,2]}},"
        ));
    }
    h.pop();
    h.push('}');
    let mut f = (h.len() as u64).to_le_bytes().to_vec();
    f.extend_from_slice(h.as_bytes());
    f.extend_from_slice(&[0, 0]);
    let r = common::scan_with(capped(200), &f);
    assert_eq!(count(&r, "SFT107"), 40, "{:?}", common::rules(&r));
}
