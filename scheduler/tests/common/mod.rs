//! The scheduler binary on its own Redis, for API and startup tests.

#![allow(dead_code)]

pub mod smtp;

use std::{path::PathBuf, time::Duration};

use serde_json::Value;
use sluice_testkit::{Process, TestRedis, free_port, wait_for};

pub const TOKEN: &str = "api-token-0123";

pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_sluice-scheduler"))
}

/// Writes a config for a scheduler on `redis` (one server, or a cluster with
/// `SLUICE_TEST_REDIS=cluster`), plus `extra` TOML; returns (path, API base URL).
pub fn config(redis: &TestRedis, extra: &str) -> (PathBuf, String) {
    let (path, api, _) = config_with_ops(&redis.config_body(), extra);
    (path, api)
}

/// Like [`config`] for any `[redis]` section body, also returning the operations listener's
/// base URL (metrics, health).
pub fn config_with_ops(redis_body: &str, extra: &str) -> (PathBuf, String, String) {
    let api = free_port();
    let ops = free_port();
    let path = std::env::temp_dir().join(format!("sluice-sched-{}-{api}.toml", std::process::id()));
    let text = sluice_testkit::config_toml_for(redis_body, api, ops, TOKEN, extra);
    std::fs::write(&path, text).unwrap();
    (path, format!("http://127.0.0.1:{api}"), format!("http://127.0.0.1:{ops}"))
}

pub struct Api {
    pub redis: TestRedis,
    pub base: String,
    /// Base URL of the operations listener (metrics, health).
    pub ops: String,
    pub process: Process,
    http: reqwest::Client,
}

impl Api {
    pub async fn start(extra: &str) -> Api {
        let redis = TestRedis::start();
        let (path, base, ops) = config_with_ops(&redis.config_body(), extra);
        let process = Process::spawn("scheduler", &bin(), &["--config", path.to_str().unwrap()], &[]);
        let api = Api { redis, base, ops, process, http: reqwest::Client::new() };
        api.wait_healthy().await;
        api
    }

    /// The scheduler's Prometheus text.
    pub async fn metrics(&self) -> String {
        self.http.get(format!("{}/metrics", self.ops)).send().await.unwrap().text().await.unwrap()
    }

    pub async fn wait_healthy(&self) {
        let url = format!("{}/healthz", self.base);
        wait_for("scheduler API", Duration::from_secs(20), || {
            let (http, url) = (self.http.clone(), url.clone());
            async move { http.get(&url).send().await.ok().filter(|r| r.status().is_success()).map(|_| ()) }
        })
        .await;
    }

    pub async fn request(&self, method: &str, path: &str, token: Option<&str>, body: Option<String>) -> (u16, Value) {
        self.request_bytes(method, path, token, body.map(String::into_bytes)).await
    }

    /// [`Api::request`] with a body that need not be UTF-8.
    pub async fn request_bytes(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Vec<u8>>,
    ) -> (u16, Value) {
        let mut req = self.http.request(method.parse().unwrap(), format!("{}{path}", self.base));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.header("content-type", "application/json").body(b);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
    }

    pub async fn call(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        self.request(method, path, Some(TOKEN), body.map(|b| b.to_string())).await
    }

    /// Every campaign key in Redis: a rejected request must leave none behind.
    pub fn campaign_keys(&self) -> Vec<String> {
        let mut conn = self.redis.conn();
        let mut keys: Vec<String> = redis::cmd("KEYS").arg("sluice:{c:*").query(&mut conn).unwrap();
        let listed: Vec<String> = redis::cmd("ZRANGE").arg("sluice:campaigns").arg(0).arg(-1).query(&mut conn).unwrap();
        keys.extend(listed);
        keys
    }
}
