//! A real headless Chromium driven over WebDriver (Debian's `chromium` and `chromium-driver`):
//! a test's own ChromeDriver on a free port, one session, a fresh profile, the browser's
//! language set, no network beyond what the test serves. A missing browser is a loud failure.

use std::time::Duration;

use serde_json::{Value, json};

use crate::{Process, free_port, wait_for};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

pub struct Browser {
    base: String,
    http: reqwest::Client,
    _driver: Process,
    profile: std::path::PathBuf,
}

impl Browser {
    /// Starts ChromeDriver and a headless Chromium whose `Accept-Language` is `language`.
    pub async fn start(language: &str) -> Browser {
        for bin in [CHROMIUM, CHROMEDRIVER] {
            assert!(std::path::Path::new(bin).exists(), "{bin} is missing: apt-get install chromium chromium-driver");
        }
        let port = free_port();
        let driver = Process::spawn("chromedriver", CHROMEDRIVER.as_ref(), &[&format!("--port={port}")], &[]);
        let base = format!("http://127.0.0.1:{port}");
        let http = reqwest::Client::new();
        wait_for("chromedriver", Duration::from_secs(20), || {
            let (http, url) = (http.clone(), format!("{base}/status"));
            async move { http.get(url).send().await.ok().filter(|r| r.status().is_success()).map(|_| ()) }
        })
        .await;
        let profile = std::env::temp_dir().join(format!("sluice-chromium-{}-{port}", std::process::id()));
        let args = [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            &format!("--user-data-dir={}", profile.display()),
            &format!("--lang={language}"),
        ];
        let capabilities = json!({"capabilities": {"alwaysMatch": {"browserName": "chrome", "goog:chromeOptions": {
            "binary": CHROMIUM, "args": args, "prefs": {"intl.accept_languages": language}}}}});
        let session: Value =
            http.post(format!("{base}/session")).json(&capabilities).send().await.unwrap().json().await.unwrap();
        let id = session["value"]["sessionId"].as_str().unwrap_or_else(|| panic!("no session: {session}")).to_string();
        Browser { base: format!("{base}/session/{id}"), http, _driver: driver, profile }
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if let Some(b) = body {
            req = req.json(&b);
        }
        let reply: Value = req.send().await.unwrap().json().await.unwrap();
        assert!(reply["value"]["error"].is_null(), "webdriver {path}: {reply}");
        reply["value"].clone()
    }

    pub async fn goto(&self, url: &str) {
        self.call(reqwest::Method::POST, "/url", Some(json!({"url": url}))).await;
    }

    /// Evaluates `script` (a function body) in the page and returns its value.
    pub async fn eval(&self, script: &str) -> Value {
        self.call(reqwest::Method::POST, "/execute/sync", Some(json!({"script": script, "args": []}))).await
    }

    /// The page's visible text.
    pub async fn text(&self) -> String {
        self.eval("return document.body.innerText").await.as_str().unwrap_or_default().to_string()
    }

    /// Clicks the first element matching `css` and waits for the page it leads to.
    pub async fn click(&self, css: &str) {
        let found =
            self.call(reqwest::Method::POST, "/element", Some(json!({"using": "css selector", "value": css}))).await;
        let element =
            found.as_object().and_then(|o| o.values().next()).and_then(Value::as_str).expect("an element").to_string();
        self.call(reqwest::Method::POST, &format!("/element/{element}/click"), Some(json!({}))).await;
    }
}

impl Drop for Browser {
    /// Ends the session (ChromeDriver then closes Chromium) with a plain blocking request, then
    /// removes the profile; the driver process is killed after.
    fn drop(&mut self) {
        use std::io::{Read, Write};
        let Some(rest) = self.base.strip_prefix("http://") else { return };
        let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
        if let Ok(mut tcp) = std::net::TcpStream::connect(host) {
            let _ = tcp.set_read_timeout(Some(Duration::from_secs(10)));
            let request = format!("DELETE /{path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
            if tcp.write_all(request.as_bytes()).is_ok() {
                let _ = tcp.read_to_end(&mut Vec::new());
            }
        }
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}
