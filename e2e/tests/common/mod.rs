//! A whole Sluice on loopback for one test: its own redis-server, an in-process scriptable
//! SMTP sink, the real scheduler and worker binaries, and an API client.

#![allow(dead_code)]

use std::{path::PathBuf, time::Duration};

use serde_json::Value;
use sluice_testkit::{Process, TestRedis, bin_path, config_toml_for, free_port, smtp_sink::SmtpSink, wait_for};

pub const TOKEN: &str = "test-token-0123";

/// Schedulers in tests look for work every 20 ms (set by environment, so a test's own
/// `[scheduler]` section can still be used).
const FAST_TICK: (&str, &str) = ("SLUICE__SCHEDULER__TICK", "20ms");

pub struct Stack {
    pub redis: TestRedis,
    pub sink: SmtpSink,
    pub config: PathBuf,
    pub api: String,
    /// Base URL of the scheduler's public listener (unsubscribe links).
    pub public: String,
    /// `public.secret` of this run (links are sealed with it).
    pub secret: String,
    pub scheduler: Process,
    pub workers: Vec<Process>,
    /// `/metrics` URL of the scheduler, then of each worker.
    pub metrics: Vec<String>,
    /// Environment every worker started later gets (e.g. its own Redis user).
    worker_env: Vec<(String, String)>,
    http: reqwest::Client,
}

/// Extra TOML appended to the base config (limits, retry schedule, worker settings).
pub async fn start(extra_toml: &str, workers: usize) -> Stack {
    start_with(extra_toml, workers, false).await
}

pub async fn start_with(extra_toml: &str, workers: usize, keep_messages: bool) -> Stack {
    start_on(TestRedis::start(), extra_toml, workers, keep_messages).await
}

/// A stack on a Redis the caller started (e.g. with AOF, to restart it mid-test).
pub async fn start_on(redis: impl Into<TestRedis>, extra_toml: &str, workers: usize, keep_messages: bool) -> Stack {
    start_full(redis, SmtpSink::start(keep_messages).await, extra_toml, workers).await
}

/// A stack around a sink the caller started. A sink with a certificate is used over TLS
/// (STARTTLS or implicit, as the sink speaks) as `localhost`, trusting that certificate.
pub async fn start_full(redis: impl Into<TestRedis>, sink: SmtpSink, extra_toml: &str, workers: usize) -> Stack {
    start_roles(redis, sink, extra_toml, workers, &[], &[]).await
}

/// [`start_full`] with extra environment for the scheduler and for every worker (each role's
/// own Redis user, say).
pub async fn start_roles(
    redis: impl Into<TestRedis>,
    sink: SmtpSink,
    extra_toml: &str,
    workers: usize,
    scheduler_env: &[(&str, &str)],
    worker_env: &[(&str, &str)],
) -> Stack {
    let redis = redis.into();
    let api_port = free_port();
    let config = std::env::temp_dir().join(format!("sluice-test-{}-{api_port}.toml", std::process::id()));
    let scheduler_metrics = free_port();
    let relay_tls = match &sink.ca_pem {
        Some(pem) => {
            let ca = std::env::temp_dir().join(format!("sluice-test-ca-{}-{api_port}.pem", std::process::id()));
            std::fs::write(&ca, pem).unwrap();
            let mode = if sink.implicit_tls { "tls" } else { "starttls" };
            format!("host = \"localhost\"\ntls = \"{mode}\"\nca_file = \"{}\"", ca.display())
        }
        None => "host = \"127.0.0.1\"".to_string(),
    };
    let public_port = free_port();
    let public = format!("http://127.0.0.1:{public_port}");
    // A link secret made for this run.
    let secret: String = format!("{:032x}{:032x}", rand::random::<u128>(), rand::random::<u128>());
    // A test of direct MX delivery brings its own [smtp] section and DNS; no relay then.
    let relay_section = if extra_toml.contains("mode = \"mx\"") {
        String::new()
    } else {
        format!("[[smtp.relays]]\nport = {}\n{relay_tls}\n", sink.port())
    };
    let relay = format!(
        "[public]\nlisten = \"127.0.0.1:{public_port}\"\nbase_url = \"{public}\"\nsecret = \"{secret}\"\n\n\
         {relay_section}\n{extra_toml}"
    );
    let text = config_toml_for(&redis.config_body(), api_port, scheduler_metrics, TOKEN, &relay);
    std::fs::write(&config, text).unwrap();
    let cfg = config.to_str().unwrap().to_string();
    let mut env = vec![FAST_TICK];
    env.extend_from_slice(scheduler_env);
    let scheduler = Process::spawn("scheduler", &bin_path("sluice-scheduler"), &["--config", &cfg], &env);
    let mut stack = Stack {
        redis,
        sink,
        config,
        api: format!("http://127.0.0.1:{api_port}"),
        public,
        secret,
        scheduler,
        workers: Vec::new(),
        metrics: vec![format!("http://127.0.0.1:{scheduler_metrics}/metrics")],
        worker_env: worker_env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        http: reqwest::Client::new(),
    };
    for _ in 0..workers {
        stack.add_worker();
    }
    stack.wait_api().await;
    stack
}

impl Stack {
    /// Starts one more scheduler (own name, API and metrics ports, extra environment), and
    /// points the client at its API. Returns the process.
    pub async fn add_scheduler_with(&mut self, name: &str, extra_env: &[(&str, &str)]) -> Process {
        let api_port = free_port();
        let listen = format!("127.0.0.1:{api_port}");
        let metrics = format!("127.0.0.1:{}", free_port());
        let public = format!("127.0.0.1:{}", free_port());
        let cfg = self.config.to_str().unwrap().to_string();
        let mut env = vec![
            FAST_TICK,
            ("SLUICE__PUBLIC__LISTEN", public.as_str()),
            ("SLUICE__SCHEDULER__NAME", name),
            ("SLUICE__API__LISTEN", listen.as_str()),
            ("SLUICE__METRICS__LISTEN", metrics.as_str()),
        ];
        env.extend_from_slice(extra_env);
        let process = Process::spawn(name, &bin_path("sluice-scheduler"), &["--config", &cfg], &env);
        self.api = format!("http://{listen}");
        self.wait_api().await;
        process
    }

    /// Starts one more worker with its own stable name and metrics port.
    pub fn add_worker(&mut self) -> usize {
        self.add_worker_with(&[])
    }

    /// Starts one more worker with extra environment (e.g. `FAILPOINTS`).
    pub fn add_worker_with(&mut self, extra_env: &[(&str, &str)]) -> usize {
        let n = self.workers.len();
        let name = format!("worker-{n}");
        let metrics = format!("127.0.0.1:{}", free_port());
        let cfg = self.config.to_str().unwrap().to_string();
        let mut env = vec![("SLUICE__WORKER__NAME", name.as_str()), ("SLUICE__METRICS__LISTEN", metrics.as_str())];
        env.extend(self.worker_env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        env.extend_from_slice(extra_env);
        self.workers.push(Process::spawn(&name, &bin_path("sluice-worker"), &["--config", &cfg], &env));
        self.metrics.push(format!("http://{metrics}/metrics"));
        n
    }

    /// Replaces `from` with `to` in the config file and restarts every worker on it, each
    /// draining first, as an operator changing a limit would.
    pub fn reconfigure_workers(&mut self, from: &str, to: &str) {
        let text = std::fs::read_to_string(&self.config).unwrap();
        assert!(text.contains(from), "{from:?} is not in the config");
        std::fs::write(&self.config, text.replace(from, to)).unwrap();
        let running = self
            .workers
            .iter_mut()
            .filter_map(|w| w.is_running().then(|| tokio::task::block_in_place(|| w.terminate())))
            .count();
        for _ in 0..running {
            self.add_worker();
        }
    }

    /// Waits for the scheduler's API; on timeout the panic carries every process's log.
    async fn wait_api(&self) {
        let url = format!("{}/healthz", self.api);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        while tokio::time::Instant::now() < deadline {
            if self.http.get(&url).send().await.is_ok_and(|r| r.status().is_success()) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the scheduler API did not come up within 20 s\n{}", self.logs());
    }

    pub async fn call(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let req = self.http.request(method.parse().unwrap(), format!("{}{path}", self.api)).bearer_auth(TOKEN);
        let req = match body {
            Some(b) => req.json(&b),
            None => req,
        };
        let resp = req.send().await.expect("API reachable");
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
    }

    /// A call with extra headers; returns status, response headers and body.
    pub async fn call_with(
        &self,
        method: &str,
        path: &str,
        body: Option<Value>,
        headers: &[(&str, &str)],
    ) -> (u16, reqwest::header::HeaderMap, Value) {
        let mut req = self.http.request(method.parse().unwrap(), format!("{}{path}", self.api)).bearer_auth(TOKEN);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.expect("API reachable");
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let text = resp.text().await.unwrap();
        (status, headers, serde_json::from_str(&text).unwrap_or(Value::String(text)))
    }

    /// Polls a message until its status is `status`; returns its last view.
    /// Sends one transactional message to `to` and waits until it is sent.
    pub async fn send_one_message(&self, to: &str) {
        let body = serde_json::json!({"from": "a@shop.example", "to": to, "subject": "s", "text": "t"});
        let (status, msg) = self.call("POST", "/v1/messages", Some(body)).await;
        assert_eq!(status, 202, "{msg}");
        self.wait_message(msg["id"].as_str().unwrap(), "sent", Duration::from_secs(10)).await;
    }

    pub async fn wait_message(&self, id: &str, status: &str, deadline: Duration) -> Value {
        let start = tokio::time::Instant::now();
        loop {
            let (_, m) = self.call("GET", &format!("/v1/messages/{id}"), None).await;
            if m["status"] == status {
                return m;
            }
            if start.elapsed() > deadline {
                panic!("message {id} not {status} after {deadline:?}: {m}\n{}", self.logs());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub async fn post_raw(&self, path: &str, body: String) -> (u16, Value) {
        let resp = self.http.post(format!("{}{path}", self.api)).bearer_auth(TOKEN).body(body).send().await.unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    /// The campaign's view. A 503 says "retry later" (storage briefly out of reach, as every
    /// pooled connection can be under load on a Sentinel deployment): a poller does, for up to
    /// 5 s.
    pub async fn campaign(&self, id: &str) -> Value {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        loop {
            let (status, body) = self.call("GET", &format!("/v1/campaigns/{id}"), None).await;
            if status == 503 && tokio::time::Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
            assert_eq!(status, 200, "{body}");
            return body;
        }
    }

    /// Polls until the campaign reaches `status`; returns its last view.
    pub async fn wait_status(&self, id: &str, status: &str, deadline: Duration) -> Value {
        let start = tokio::time::Instant::now();
        loop {
            let (_, c) = self.call("GET", &format!("/v1/campaigns/{id}"), None).await;
            if c["status"] == status {
                return c;
            }
            if start.elapsed() > deadline {
                panic!("campaign {id} not {status} after {deadline:?}: {c}\n{}", self.logs());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Polls until the sink has accepted at least `n` messages.
    pub async fn wait_accepted(&self, n: u64) {
        wait_for("deliveries", Duration::from_secs(30), || async { (self.sink.state.accepted() >= n).then_some(()) })
            .await;
    }

    /// Jobs handed to workers and not yet acked, over the streams of `d0.example` to
    /// `d{domains - 1}.example`.
    pub fn pending_jobs(&self, domains: usize) -> u64 {
        let mut conn = self.redis.conn();
        (0..domains)
            .map(|d| {
                let summary: Vec<redis::Value> = redis::cmd("XPENDING")
                    .arg(format!("sluice:{{d:d{d}.example}}:q"))
                    .arg("workers")
                    .query(&mut conn)
                    .unwrap_or_default();
                summary.first().and_then(|v| redis::from_redis_value_ref::<u64>(v).ok()).unwrap_or(0)
            })
            .sum()
    }

    /// How many messages the sink accepted for each of `addresses`, as (never, more than once).
    pub fn losses_and_duplicates(&self, addresses: impl Iterator<Item = String>) -> (Vec<String>, usize) {
        let delivered = self.sink.state.delivered.lock().unwrap();
        let mut lost = Vec::new();
        let mut dups = 0;
        for a in addresses {
            match delivered.get(&a).copied().unwrap_or(0) {
                0 => lost.push(a),
                1 => {}
                k => dups += k as usize - 1,
            }
        }
        (lost, dups)
    }

    /// The Prometheus text a process serves (0 = scheduler, 1.. = workers); a worker just
    /// started may not listen yet, so connection errors are retried for a while.
    pub async fn scrape(&self, i: usize) -> String {
        wait_for(&format!("metrics of process {i}"), Duration::from_secs(10), || async {
            self.http.get(&self.metrics[i]).send().await.ok()?.text().await.ok()
        })
        .await
    }

    /// The `data` of the first `kind` event (deferred, bounced...) of `address` in campaign `id`.
    pub fn event_data(&self, id: &str, kind: &str, address: &str) -> String {
        let events: Vec<(String, std::collections::HashMap<String, String>)> = redis::cmd("XRANGE")
            .arg(format!("sluice:{{c:{id}}}:events"))
            .arg("-")
            .arg("+")
            .query(&mut self.redis.conn())
            .unwrap();
        let found = events.iter().map(|(_, f)| f).find(|f| f["type"] == kind && f["r"] == address);
        found.unwrap_or_else(|| panic!("no {kind} event for {address}: {events:?}"))["data"].clone()
    }

    /// The one-click unsubscribe link (List-Unsubscribe) of the last message `address` received.
    pub fn unsubscribe_link(&self, address: &str) -> String {
        let messages = self.sink.state.messages.lock().unwrap().clone();
        let raw = &messages.iter().rev().find(|(r, _)| r == address).expect("a message").1;
        let text = String::from_utf8_lossy(raw).replace("\r\n ", " ");
        let line = text.lines().find_map(|l| l.strip_prefix("List-Unsubscribe: ")).expect("List-Unsubscribe");
        line.trim_start_matches('<').split('>').next().unwrap().to_string()
    }

    /// All logs, for failure messages.
    pub fn logs(&self) -> String {
        let mut out = format!("--- scheduler\n{}", self.scheduler.log_text());
        for w in &self.workers {
            out.push_str(&format!("--- {}\n{}", w.name, w.log_text()));
        }
        out
    }
}

/// `n` recipients spread over `domains` domains: `user{i}@d{i % domains}.example`.
pub fn recipients(n: usize, domains: usize, local: impl Fn(usize) -> String) -> Vec<Value> {
    (0..n).map(|i| serde_json::json!({"email": format!("{}@d{}.example", local(i), i % domains), "vars": {"name": format!("User {i}")}})).collect()
}

pub fn campaign_body(id: &str, recipients: Vec<Value>) -> Value {
    serde_json::json!({
        "id": id,
        "from": {"email": "news@shop.example", "name": "Shop"},
        "subject": "Hello {{name}}",
        "html": "<p>Hello {{name}}</p>",
        "text": "Hello {{name}}",
        "recipients": recipients,
    })
}

/// The value of one series (`name{labels}`) in Prometheus text.
pub fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
}

/// Counts as plain numbers.
pub fn counts(view: &Value) -> std::collections::BTreeMap<String, u64> {
    view["counts"].as_object().unwrap().iter().map(|(k, v)| (k.clone(), v.as_u64().unwrap())).collect()
}
