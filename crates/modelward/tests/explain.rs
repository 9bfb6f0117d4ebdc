//! `explain` finds the pickles through the scanner (issue 21, point 2): a container holding one
//! pickle (or one `data.pkl`) is explained without naming it; several are listed and all
//! explained unless one is named; what it marks is what `scan` reported.

use std::path::PathBuf;
use std::process::{Command, Output};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn modelward(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_modelward"))
        .args(args)
        .current_dir(repo())
        .output()
        .expect("run modelward")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn a_checkpoint_with_one_pickle_is_explained_without_naming_it() {
    let o = modelward(&["explain", "demo/malicious_checkpoint.pt"]);
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    let text = stdout(&o);
    assert!(
        text.starts_with("# Disassembly of demo/malicious_checkpoint.pt!malicious_checkpoint/data.pkl"),
        "{text}"
    );
    assert!(text.contains("system('echo modelward-fixture')"), "{text}");
    assert!(text.contains("critical PKL102"), "{text}");
}

#[test]
fn the_only_data_pkl_is_chosen_among_several_pickles() {
    // TorchScript archives hold data.pkl and constants.pkl.
    let o = modelward(&["explain", "tests/fixtures/torch/torchscript_tinynet.pt"]);
    assert_eq!(o.status.code(), Some(0));
    let text = stdout(&o);
    assert!(
        text.starts_with("# Disassembly of tests/fixtures/torch/torchscript_tinynet.pt!archive/data.pkl"),
        "{text}"
    );
    assert_eq!(text.matches("# Disassembly of").count(), 1, "{text}");
}

#[test]
fn several_pickles_are_listed_and_all_explained_unless_one_is_named() {
    let file = "tests/fixtures/torch/legacy_tar_format.pt";
    let o = modelward(&["explain", file]);
    assert_eq!(o.status.code(), Some(0));
    let text = stdout(&o);
    assert!(
        text.starts_with(&format!("# {file} holds 4 pickle streams")),
        "{text}"
    );
    for m in ["sys_info", "pickle", "tensors", "storages"] {
        assert!(text.contains(&format!("#   {file}!{m}\n")), "{m}: {text}");
        assert!(
            text.contains(&format!("# Disassembly of {file}!{m} ")),
            "{m}: {text}"
        );
    }
    let named = format!("{file}!pickle");
    let o = modelward(&["explain", &named]);
    let text = stdout(&o);
    assert_eq!(text.matches("# Disassembly of").count(), 1, "{text}");
    assert!(text.starts_with(&format!("# Disassembly of {named} ")), "{text}");
}

#[test]
fn a_member_that_is_not_there_is_refused_with_the_real_names() {
    let o = modelward(&["explain", "demo/malicious_checkpoint.pt!archive/data.pkl"]);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("demo/malicious_checkpoint.pt!malicious_checkpoint/data.pkl"),
        "{err}"
    );
}

#[test]
fn a_pickle_inside_a_compressed_tar_is_found_by_content() {
    let o = modelward(&["explain", "tests/fixtures/archives/model_bundle.tar.gz"]);
    assert_eq!(o.status.code(), Some(0));
    let text = stdout(&o);
    assert!(
        text.contains("model_bundle.tar.gz!toy-model/tokenizer_state.bin"),
        "{text}"
    );
    assert!(text.contains("!! dangerous"), "{text}");
}

#[test]
fn content_without_a_pickle_is_refused() {
    let o = modelward(&["explain", "demo/clean_array.npy"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("holds no pickle"));
}
