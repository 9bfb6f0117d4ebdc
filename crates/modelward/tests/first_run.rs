//! The command line as a newcomer meets it (issue 21): errors on stderr in every format, a
//! missing path is an error of the command, honest counts, a line per named file, the reason
//! for the exit code, progress only on a terminal, and the cosmetics found on the way.

#[path = "../../modelward_remote/tests/support/mod.rs"]
mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use support::{Content, Repo, Server, TestFile};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn cmd(args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_modelward"));
    c.args(args).current_dir(repo()).env("NO_COLOR", "1");
    c
}

fn run(args: &[&str]) -> Output {
    cmd(args).output().expect("run modelward")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A fresh directory under the system temp dir, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        let p = std::env::temp_dir().join(format!("modelward-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).expect("mkdir");
        TempDir(p)
    }
    fn path(&self) -> &Path {
        &self.0
    }
    fn str(&self) -> &str {
        self.0.to_str().expect("utf8")
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

const MISSING_LINE: &str = "error: does/not/exist: no such file or directory; check the path";

#[test]
fn a_missing_path_is_an_error_of_the_command_on_stderr_in_every_format() {
    // Text: the error on stderr, the path not counted as a file, exit 2 and why.
    let o = run(&["scan", "does/not/exist", "demo/clean_array.npy"]);
    assert_eq!(o.status.code(), Some(2), "{}", stdout(&o));
    assert!(stderr(&o).contains(MISSING_LINE), "{}", stderr(&o));
    assert_eq!(stderr(&o).lines().filter(|l| l.starts_with("error:")).count(), 1);
    let text = stdout(&o);
    assert!(
        text.contains(
            "Summary: 1 model file judged: 0 malicious, 0 suspicious, 1 clean; 1 path not scanned (error)"
        ),
        "{text}"
    );
    assert!(text.contains("1 path not scanned: exit 2"), "{text}");
    // The other path was still scanned.
    assert!(text.contains("demo/clean_array.npy  CLEAN"), "{text}");

    // JSON written to a file: stderr still says it, the document lists it apart from files.
    let dir = TempDir::new("missing");
    let out = dir.path().join("report.json");
    for format in ["json", "sarif", "github"] {
        let o = run(&[
            "scan",
            "--format",
            format,
            "-o",
            out.to_str().expect("utf8"),
            "does/not/exist",
            "demo/clean_array.npy",
        ]);
        assert_eq!(o.status.code(), Some(2), "{format}");
        assert!(o.stdout.is_empty(), "{format}: the report goes to the file");
        assert!(stderr(&o).contains(MISSING_LINE), "{format}: {}", stderr(&o));
        let written = std::fs::read_to_string(&out).expect("report");
        match format {
            "json" => {
                let doc: serde_json::Value = serde_json::from_str(&written).expect("json");
                assert_eq!(doc["summary"]["files"], 1, "{doc}");
                assert_eq!(doc["errors"][0]["source"], "does/not/exist", "{doc}");
                assert!(
                    doc["errors"][0]["error"]
                        .as_str()
                        .is_some_and(|e| e.starts_with("no such file or directory")),
                    "{doc}"
                );
            }
            "sarif" => {
                let doc: serde_json::Value = serde_json::from_str(&written).expect("sarif");
                let inv = &doc["runs"][0]["invocations"][0];
                assert_eq!(inv["executionSuccessful"], false, "{inv}");
                assert!(
                    inv["toolExecutionNotifications"][0]["message"]["text"]
                        .as_str()
                        .is_some_and(|t| t.starts_with("does/not/exist: no such file")),
                    "{inv}"
                );
            }
            _ => assert!(
                written.contains("::error title=modelward: path not scanned::does/not/exist: no such file"),
                "{written}"
            ),
        }
    }
    // Only missing paths: nothing judged, still exit 2.
    let o = run(&["scan", "--format", "json", "does/not/exist"]);
    assert_eq!(o.status.code(), Some(2));
    let doc: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    assert_eq!(doc["summary"]["files"], 0);
    assert!(stderr(&o).contains(MISSING_LINE), "{}", stderr(&o));
}

/// A loopback Hub with a gated repository (401 without a token) and a public one.
fn gated_hub() -> Server {
    let files = || {
        vec![
            TestFile::new(
                "malicious_checkpoint.pt",
                Content::bytes(support::read_fixture("demo/malicious_checkpoint.pt")),
                true,
            ),
            TestFile::new("config.json", support::config_json(), false),
        ]
    };
    let mut gated = Repo::new("models", "acme/private", files());
    gated.gated = true;
    Server::builder()
        .repo(gated)
        .repo(Repo::new("models", "acme/public", files()))
        .start()
}

fn remote(server: &Server, hf_home: &Path, args: &[&str]) -> Output {
    cmd(args)
        .env("HF_ENDPOINT", &server.hub)
        .env("HF_HOME", hf_home)
        .env_remove("HF_TOKEN")
        .env_remove("HUGGING_FACE_HUB_TOKEN")
        .env_remove("HF_TOKEN_PATH")
        .env_remove("HF_HUB_OFFLINE")
        .output()
        .expect("run modelward")
}

#[test]
fn a_repository_that_answers_401_is_an_error_on_stderr_with_the_fix() {
    let server = gated_hub();
    let home = TempDir::new("hfhome");
    for format in ["text", "json"] {
        let o = remote(
            &server,
            home.path(),
            &["scan", "--format", format, "hf://acme/private"],
        );
        assert_eq!(o.status.code(), Some(2), "{format}: {}", stdout(&o));
        let err = stderr(&o);
        let line = err
            .lines()
            .find(|l| l.starts_with("error: hf://acme/private: "))
            .unwrap_or_else(|| panic!("{format}: no error line on stderr: {err}"));
        assert!(line.contains("401") && line.contains("HF_TOKEN"), "{line}");
        if format == "json" {
            let doc: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
            assert_eq!(doc["summary"]["files"], 0, "not counted as a file: {doc}");
            assert_eq!(doc["errors"][0]["source"], "hf://acme/private");
        } else {
            assert!(
                stdout(&o).contains("1 path not scanned: exit 2"),
                "{}",
                stdout(&o)
            );
        }
    }
    // One file of it by URL: that file cannot be judged, and stderr says so.
    let url = format!("{}/acme/private/resolve/main/config.json", server.hub);
    let o = remote(&server, home.path(), &["scan", "--format", "json", &url]);
    assert_eq!(o.status.code(), Some(2));
    let err = stderr(&o);
    assert!(
        err.lines()
            .any(|l| l.starts_with("error: hf://acme/private@main/config.json: ")
                && l.ends_with("nothing in it was judged")),
        "{err}"
    );
    // A public repository next to it is still scanned, and its verdicts count.
    let o = remote(
        &server,
        home.path(),
        &["scan", "hf://acme/private", "hf://acme/public"],
    );
    assert_eq!(o.status.code(), Some(2));
    let text = stdout(&o);
    assert!(
        text.contains("hf://acme/public@main/malicious_checkpoint.pt  MALICIOUS"),
        "{text}"
    );
    assert!(text.contains("1 path not scanned, 1 malicious: exit 2"), "{text}");
}

#[test]
fn text_with_nothing_model_related_is_skipped_and_the_summary_says_what_was_judged() {
    let o = run(&["scan", "-v", "demo"]);
    assert_eq!(o.status.code(), Some(1));
    let text = stdout(&o);
    assert!(text.contains("demo/README.md  SKIPPED  [text]"), "{text}");
    assert!(text.contains("demo/.gitattributes  SKIPPED  [text]"), "{text}");
    assert!(
        text.contains(
            "Summary: 5 model files judged: 2 malicious, 1 suspicious, 2 clean; 2 other files skipped (nothing model-related)"
        ),
        "{text}"
    );
    let o = run(&["scan", "--format", "json", "demo"]);
    let doc: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    assert_eq!(doc["summary"]["files"], 7);
    assert_eq!(doc["summary"]["skipped"], 2);
    assert_eq!(doc["summary"]["clean"], 2);

    // What loaders read is judged even when it is text: Hugging Face configs, chat templates,
    // Python sources, YAML with Python tags, Hydra configs. A 0-byte file is skipped.
    let dir = TempDir::new("textrule");
    let write = |name: &str, body: &str| std::fs::write(dir.path().join(name), body).expect("write");
    write("config.json", r#"{"auto_map": {"AutoModel": "modeling.Net"}}"#);
    write(
        "tokenizer_config.json",
        r#"{"chat_template": "{% for m in messages %}{{ m.content }}{% endfor %}"}"#,
    );
    write(
        "modeling.py",
        "import torch\n\nclass Net(torch.nn.Module):\n    pass\n",
    );
    write("tags.yaml", "a: !!python/object/apply:os.system [\"id\"]\n");
    write(
        "hydra.yaml",
        "model:\n  _target_: torch.nn.Linear\n  in_features: 3\n",
    );
    write(
        "chat.jinja",
        "{% for m in messages %}{{ m.content }}{% endfor %}\n",
    );
    write("README.md", "# A model\n\nSome words about it.\n");
    write(".gitattributes", "*.pt filter=lfs diff=lfs merge=lfs -text\n");
    write("empty.bin", "");
    let o = run(&["scan", "--format", "json", dir.str()]);
    let doc: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    let verdict = |name: &str| {
        doc["files"]
            .as_array()
            .expect("files")
            .iter()
            .find(|f| {
                f["path"]
                    .as_str()
                    .is_some_and(|p| p.ends_with(&format!("/{name}")))
            })
            .map(|f| {
                (
                    f["verdict"].as_str().unwrap_or("").to_owned(),
                    f["format"].as_str().unwrap_or("").to_owned(),
                )
            })
            .unwrap_or_else(|| panic!("{name} not in {doc}"))
    };
    for judged in [
        "config.json",
        "tokenizer_config.json",
        "modeling.py",
        "tags.yaml",
        "hydra.yaml",
        "chat.jinja",
    ] {
        assert_ne!(verdict(judged).0, "skipped", "{judged} must be judged: {doc}");
    }
    assert_eq!(verdict("tags.yaml").0, "malicious");
    assert_eq!(verdict("hydra.yaml").1, "yaml-config");
    for skipped in ["README.md", ".gitattributes", "empty.bin"] {
        assert_eq!(verdict(skipped).0, "skipped", "{skipped}: {doc}");
    }
    assert_eq!(doc["summary"]["skipped"], 3, "{doc}");
}

#[test]
fn a_file_named_on_the_command_line_gets_its_verdict_a_folder_stays_terse() {
    let o = run(&["scan", "demo/clean_checkpoint.pt"]);
    assert_eq!(o.status.code(), Some(0));
    let text = stdout(&o);
    assert!(
        text.starts_with("demo/clean_checkpoint.pt  CLEAN  [pytorch-zip]  read 2.2 KB of 2.2 KB\n"),
        "{text}"
    );
    // Several named files: one line each, whatever their verdict; a skipped one too.
    let o = run(&["scan", "demo/clean_array.npy", "demo/README.md", "demo/model.bin"]);
    let text = stdout(&o);
    for line in [
        "demo/clean_array.npy  CLEAN  [npy]",
        "demo/README.md  SKIPPED  [text]",
        "demo/model.bin  MALICIOUS  [pickle]",
    ] {
        assert!(text.contains(line), "{line}: {text}");
    }
    // The folder: only what has something to say.
    let o = run(&["scan", "demo"]);
    let text = stdout(&o);
    assert!(!text.contains("CLEAN"), "{text}");
    assert!(!text.contains("SKIPPED"), "{text}");
    assert!(text.contains("demo/model.bin  MALICIOUS"), "{text}");
}

#[test]
fn the_summary_says_why_the_exit_code_is_what_it_is() {
    let o = run(&["scan"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stdout(&o).ends_with("2 malicious: exit 1 (--fail-on high)\n"),
        "{}",
        stdout(&o)
    );
    let o = run(&["scan", "--fail-on", "medium", "demo"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stdout(&o).contains("2 malicious, 1 suspicious: exit 1 (--fail-on medium)"),
        "{}",
        stdout(&o)
    );
    let o = run(&["scan", "demo/custom_class.pkl"]);
    assert_eq!(o.status.code(), Some(0));
    assert!(
        stdout(&o).ends_with("No finding reaches --fail-on high: exit 0\n"),
        "{}",
        stdout(&o)
    );
    let o = run(&["scan", "--fail-on", "never", "demo"]);
    assert_eq!(o.status.code(), Some(0));
    assert!(
        stdout(&o).contains("No finding reaches --fail-on never: exit 0"),
        "{}",
        stdout(&o)
    );
}

/// `script` (util-linux) runs a command on a pseudo-terminal; missing is a failure on CI.
fn have_script() -> bool {
    let ok = Command::new("script")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "`script` (util-linux) is needed for the progress tests on CI"
        );
        eprintln!("skipping: `script` (util-linux) is not installed");
    }
    ok
}

/// Runs modelward with stderr on a pseudo-terminal and stdout to `out`; returns what the
/// terminal showed.
fn on_a_terminal(args: &str, out: &Path) -> String {
    let line = format!(
        "{} {args} > {}",
        env!("CARGO_BIN_EXE_modelward"),
        out.to_str().expect("utf8")
    );
    let o = Command::new("script")
        .args(["-qfec", &line, "/dev/null"])
        .current_dir(repo())
        .env("NO_COLOR", "1")
        .env("TERM", "xterm")
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run script");
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn progress_shows_on_a_terminal_and_never_in_the_report_or_a_pipe() {
    if !have_script() {
        return;
    }
    let dir = TempDir::new("progress");
    let out = dir.path().join("report.json");
    let shown = on_a_terminal("scan --format json tests/fixtures", &out);
    // Files done (of how many), bytes read and a file name, drawn on the terminal.
    assert!(shown.contains(" files · "), "{shown:?}");
    assert!(shown.contains(" read · tests/fixtures/"), "{shown:?}");
    let report = std::fs::read_to_string(&out).expect("report");
    let doc: serde_json::Value = serde_json::from_str(&report).expect("the report is clean JSON");
    assert!(doc["summary"]["files"].as_u64().is_some_and(|n| n > 100));
    assert!(
        !report.contains(" files · ") && !report.contains('\x1b'),
        "progress leaked"
    );

    // --no-progress on a terminal, and stderr that is not a terminal: nothing.
    let shown = on_a_terminal("scan --no-progress --format sarif tests/fixtures", &out);
    assert!(!shown.contains(" files · "), "{shown:?}");
    let o = run(&["scan", "--format", "json", "tests/fixtures"]);
    assert!(!stderr(&o).contains(" files · "), "{}", stderr(&o));
    assert!(!stdout(&o).contains(" files · "));
}

#[test]
fn on_a_terminal_the_text_report_carries_the_error_once() {
    if !have_script() {
        return;
    }
    let line = format!(
        "{} scan does/not/exist demo/model.bin",
        env!("CARGO_BIN_EXE_modelward")
    );
    let o = Command::new("script")
        .args(["-qfec", &line, "/dev/null"])
        .current_dir(repo())
        .env("NO_COLOR", "1")
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run script");
    assert_eq!(o.status.code(), Some(2));
    let shown = String::from_utf8_lossy(&o.stdout);
    assert_eq!(shown.matches(MISSING_LINE).count(), 1, "{shown}");
    assert!(
        shown.contains("1 path not scanned, 1 malicious: exit 2"),
        "{shown}"
    );
}

#[test]
fn rule_documentation_has_no_doubled_blank_line() {
    let o = run(&["rule", "PKL102"]);
    let text = stdout(&o);
    assert!(text.contains("## Names reported under this rule\n\n- "), "{text}");
    assert!(!text.contains("\n\n\n"), "{text}");
}

#[test]
fn disassembly_columns_stay_aligned_inside_marks() {
    let o = run(&[
        "explain",
        "tests/fixtures/torch/state_dict_zip.pt!state_dict_zip/data.pkl",
    ]);
    let text = stdout(&o);
    let lines: Vec<&str> = text
        .lines()
        .filter(|l| l.len() > 10 && l.as_bytes()[8] == b':' && l[..8].trim().parse::<u64>().is_ok())
        .collect();
    assert!(lines.len() > 20, "{text}");
    // `offset: code name argument`: the name always starts in column 15 and the argument (when
    // there is one) after the 16-wide name column; MARK nesting indents the argument.
    for l in &lines {
        assert_ne!(l.as_bytes()[15], b' ', "{l}");
        assert_eq!(l.as_bytes()[14], b' ', "{l}");
    }
    assert!(text.contains("      20: q    BINPUT             1\n"), "{text}");
    assert!(
        text.contains("      59: X    BINUNICODE             \"storage\"\n"),
        "{text}"
    );
}
