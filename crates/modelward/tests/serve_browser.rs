//! The web page in a real headless chromium (Debian's `chromium` and `chromium-driver`) through
//! WebDriver: the list shows the scans, the filter narrows them, a detail page shows a finding.
//! Saves a screenshot (committed as docs/service-screenshot.png when
//! `MODELWARD_UPDATE_SCREENSHOT=1`). Skips locally when chromium is missing; fails in CI.

mod serve_support;

use fantoccini::{ClientBuilder, Locator};
use serve_support::*;
use std::process::{Command, Stdio};
use std::time::Duration;

const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const CHROMIUM: &str = "/usr/bin/chromium";

struct Driver(std::process::Child);
impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn web_page_lists_scans_and_shows_findings() {
    if !std::path::Path::new(CHROMEDRIVER).exists() || !std::path::Path::new(CHROMIUM).exists() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "chromium and chromium-driver are needed in CI (.ci/run installs them)"
        );
        eprintln!(
            "skipped: {CHROMIUM} / {CHROMEDRIVER} not installed (apt-get install chromium chromium-driver)"
        );
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), &[], &[]);
    let mut expected = Vec::new();
    for name in [
        "model.bin",
        "clean_checkpoint.pt",
        "custom_class.pkl",
        "malicious_checkpoint.pt",
        "clean_array.npy",
    ] {
        let bytes = std::fs::read(repo_root().join("demo").join(name)).unwrap();
        let id = upload(&server.base, name, &bytes, None).json()["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let job = wait_done(&server.base, &id, None);
        expected.push((name, id, job["verdict"].as_str().unwrap().to_owned()));
    }
    // A hostile name: shown as text, never as markup.
    let evil = "<img src=x onerror=alert(1)>.pkl";
    let bytes = std::fs::read(repo_root().join("demo/model.bin")).unwrap();
    let id = upload(&server.base, evil, &bytes, None).json()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    wait_done(&server.base, &id, None);

    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let _driver = Driver(
        Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let profile = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            serde_json::json!({
                "binary": CHROMIUM,
                "args": [
                    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                    "--disable-background-networking", "--disable-component-update", "--disable-sync",
                    "--window-size=1280,860", format!("--user-data-dir={}", profile.path().display())
                ]
            }),
        );
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        let mut client = None;
        for _ in 0..100 {
            match ClientBuilder::new(connector.clone())
                .capabilities(caps.clone())
                .connect(&format!("http://127.0.0.1:{port}"))
                .await
            {
                Ok(c) => {
                    client = Some(c);
                    break;
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
        let c = client.expect("chromedriver did not start");
        c.goto(&server.url("/")).await.unwrap();
        let rows = c.find_all(Locator::Css("tbody tr")).await.unwrap();
        assert_eq!(rows.len(), expected.len() + 1);
        let list = c.find(Locator::Css("main")).await.unwrap().text().await.unwrap();
        for (name, _, verdict) in &expected {
            assert!(list.contains(name), "{name} not listed: {list}");
            assert!(list.contains(verdict.as_str()));
        }
        assert!(list.contains(evil), "the hostile name is shown as text");
        assert!(
            c.find_all(Locator::Css("main img")).await.unwrap().is_empty(),
            "markup was injected"
        );
        let shot = c.screenshot().await.unwrap();

        // The filter.
        c.find(Locator::LinkText("malicious"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        let rows = c.find_all(Locator::Css("tbody tr")).await.unwrap();
        let n_mal = expected.iter().filter(|e| e.2 == "malicious").count() + 1;
        assert_eq!(rows.len(), n_mal);
        for r in rows {
            assert!(r.text().await.unwrap().contains("malicious"));
        }

        // A detail page: the finding with rule, severity, location, construct, why.
        let (_, id, _) = expected.iter().find(|e| e.0 == "model.bin").unwrap();
        c.find(Locator::Css(&format!("a[href='/scans/{id}']")))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        let detail = c.find(Locator::Css("main")).await.unwrap().text().await.unwrap();
        for needle in [
            "PKL102",
            "critical",
            "posix.system('echo modelward-fixture')",
            "Why:",
            "model.bin",
            "offset 2",
        ] {
            assert!(detail.contains(needle), "{needle} missing: {detail}");
        }
        let detail_shot = c.screenshot().await.unwrap();
        let out = std::env::temp_dir().join("modelward-service-screenshot.png");
        std::fs::write(&out, &shot).unwrap();
        std::fs::write(out.with_file_name("modelward-service-detail.png"), &detail_shot).unwrap();
        eprintln!("screenshots: {} and its -detail sibling", out.display());
        if std::env::var("MODELWARD_UPDATE_SCREENSHOT").as_deref() == Ok("1") {
            std::fs::write(repo_root().join("docs/service-screenshot.png"), &shot).unwrap();
        }
        c.close().await.unwrap();
    });
}
