//! The `serve` tests' harness: a `tradewarden serve` process on a free loopback port with a
//! configuration of known tokens, and an HTTP client that speaks to it.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tradewarden::api::auth::sha256;
use tradewarden::config::to_hex;

use super::{bin, write_config};

/// The admin token, given through `$TRADEWARDEN_ADMIN_TOKEN`.
pub const ADMIN: &str = "admin-secret-token";
/// An operator token (`[[api_tokens]]`).
pub const OPERATOR: &str = "operator-secret-token";
/// Expert 1's token.
pub const EXPERT1: &str = "expert-1-secret-token";
/// Expert 2's token.
pub const EXPERT2: &str = "expert-2-secret-token";

/// A configuration for `serve`: `common::write_config`'s experts and account, the operator
/// and expert tokens, and `extra` appended (more keys of its own tables).
pub fn serve_config(dir: &Path, db_url: &str, experts: i64, extra: &str) -> PathBuf {
    let path = write_config(dir, db_url, experts, 30);
    let mut text = std::fs::read_to_string(&path).unwrap();
    for (name, token, role, expert) in [
        ("ops", OPERATOR, "operator", None),
        ("producer-1", EXPERT1, "expert", Some(1)),
        ("producer-2", EXPERT2, "expert", Some(2)),
    ] {
        if expert.is_some_and(|e| e > experts) {
            continue;
        }
        text.push_str(&format!(
            "\n[[api_tokens]]\nname = \"{name}\"\ntoken_sha256 = \"{}\"\nrole = \"{role}\"\n",
            to_hex(&sha256(token.as_bytes()))
        ));
        if let Some(e) = expert {
            text.push_str(&format!("expert_id = {e}\n"));
        }
    }
    text.push('\n');
    text.push_str(extra);
    std::fs::write(&path, text).unwrap();
    path
}

/// A running `tradewarden serve`; killed when dropped if still running.
pub struct Server {
    child: Option<Child>,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// Its stderr (the log), for failure messages.
    pub log: PathBuf,
}

impl Server {
    /// Starts `serve --bind 127.0.0.1:0` on `config` with the admin token and `env`, and
    /// waits for its `listening on` line.
    pub fn start(config: &Path, env: &[(&str, &str)]) -> Server {
        Server::start_with(config, env, &[])
    }

    /// [`Server::start`] with global options before `serve` (`--log-level trace`).
    pub fn start_with(config: &Path, env: &[(&str, &str)], options: &[&str]) -> Server {
        let log = config.with_file_name(format!(
            "serve-{}.log",
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        ));
        let mut c = bin();
        c.arg("--config")
            .arg(config)
            .args(options)
            .args(["serve", "--bind", "127.0.0.1:0"])
            .env("TRADEWARDEN_ADMIN_TOKEN", ADMIN)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).unwrap());
        for (k, v) in env {
            c.env(k, v);
        }
        let mut child = c.spawn().expect("start tradewarden serve");
        let stdout = child.stdout.take().unwrap();
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).unwrap();
        let Some(base) = line.trim().strip_prefix("listening on ") else {
            let _ = child.wait();
            panic!(
                "serve did not start: {line:?}\n{}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
        };
        Server {
            base: base.to_string(),
            child: Some(child),
            log,
        }
    }

    /// The URL of `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Sends SIGTERM.
    pub fn sigterm(&self) {
        let pid = self.child.as_ref().unwrap().id().to_string();
        let ok = std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap();
        assert!(ok.success());
    }

    /// Waits (at most a minute) for the process to end.
    pub fn wait(mut self) -> ExitStatus {
        let mut child = self.child.take().unwrap();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                return status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("serve did not stop:\n{}", self.log_text());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// What it logged so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// An HTTP client (rustls with ring, as the Alpaca client has it; the tests speak plain
/// HTTP).
pub fn client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .timeout(Duration::from_secs(120))
        .build()
        .unwrap()
}

/// A response's status and JSON body (`null` when it is not JSON).
pub async fn answer(r: reqwest::Response) -> (u16, Value) {
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// A confident buy of expert `expert` for `symbol`, which the test configuration's
/// confident-buy ruleset orders.
pub fn buy(expert: i64, symbol: &str) -> Value {
    json!({
        "expert_id": expert,
        "symbol": symbol,
        "action": "BUY",
        "confidence": 80,
        "expected_profit_percent": 10,
        "price_at_date": "100.50",
        "risk_level": "MEDIUM",
        "time_horizon": "SHORT_TERM"
    })
}

/// A request with an optional bearer token.
pub struct Call<'a> {
    pub http: &'a reqwest::Client,
    pub server: &'a Server,
}

impl Call<'_> {
    pub async fn get(&self, path: &str, token: Option<&str>) -> (u16, Value) {
        let mut r = self.http.get(self.server.url(path));
        if let Some(t) = token {
            r = r.bearer_auth(t);
        }
        answer(r.send().await.unwrap()).await
    }

    pub async fn post(&self, path: &str, token: Option<&str>, body: &Value) -> (u16, Value) {
        let mut r = self.http.post(self.server.url(path)).json(body);
        if let Some(t) = token {
            r = r.bearer_auth(t);
        }
        answer(r.send().await.unwrap()).await
    }

    pub async fn post_raw(&self, path: &str, token: &str, body: Vec<u8>) -> (u16, Value) {
        let r = self
            .http
            .post(self.server.url(path))
            .bearer_auth(token)
            .header("content-type", "application/json")
            .body(body);
        answer(r.send().await.unwrap()).await
    }
}

/// The `code` of an error answer (`""` when it is none).
pub fn error_code(body: &Value) -> &str {
    body["error"]["code"].as_str().unwrap_or("")
}
