//! An API key's `send_rate` is one budget for the whole cluster: past it, `POST /v1/messages`
//! answers 429 with `Retry-After`, stores nothing, and counts the refusal; sends are taken
//! again once the rate allows. Keys without a `send_rate` are not limited.

mod common;

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use sluice_testkit::{Process, TestRedis, api_key_toml, free_port};

const KEYS: [(&str, &str, Option<&str>); 4] = [
    ("hourly", "token-hourly-01", Some("1/h")),
    ("second", "token-second-01", Some("1/s")),
    ("bursty", "token-bursty-01", Some("3/s")),
    ("free", "token-free-0001", None),
];

fn token(id: &str) -> &'static str {
    KEYS.iter().find(|(i, _, _)| *i == id).unwrap().1
}

fn message(to: &str) -> String {
    json!({"from": "a@shop.example", "to": [to], "subject": "s", "text": "t"}).to_string()
}

/// Messages stored in Redis.
fn stored(redis: &TestRedis) -> usize {
    let keys: Vec<String> = redis::cmd("KEYS").arg("sluice:{c:msg_*}:meta").query(&mut redis.conn()).unwrap();
    keys.len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_keys_send_rate_holds_across_schedulers() {
    let keys: String = KEYS
        .iter()
        .map(|(id, t, rate)| {
            let rate = rate.map(|r| format!("send_rate = \"{r}\"\n")).unwrap_or_default();
            format!("{}{rate}", api_key_toml(id, t, "\"send\""))
        })
        .collect();
    let redis = TestRedis::start();
    let (path, base) = common::config(&redis, &keys);
    let config = path.to_str().unwrap();
    let first = Process::spawn("scheduler-1", &common::bin(), &["--config", config], &[]);
    let listen = format!("127.0.0.1:{}", free_port());
    let metrics = format!("127.0.0.1:{}", free_port());
    let env = [
        ("SLUICE__API__LISTEN", listen.as_str()),
        ("SLUICE__METRICS__LISTEN", metrics.as_str()),
        ("SLUICE__SCHEDULER__NAME", "scheduler-2"),
    ];
    let second = Process::spawn("scheduler-2", &common::bin(), &["--config", config], &env);
    let bases = [base, format!("http://{listen}")];
    let http = reqwest::Client::new();
    for b in &bases {
        sluice_testkit::wait_for("scheduler API", Duration::from_secs(20), || {
            let (http, url) = (http.clone(), format!("{b}/healthz"));
            async move { http.get(&url).send().await.ok().filter(|r| r.status().is_success()).map(|_| ()) }
        })
        .await;
    }
    let send_keyed = |on: usize, key: &'static str, to: String, idempotency: Option<&'static str>| {
        let (http, url) = (http.clone(), format!("{}/v1/messages", bases[on]));
        async move {
            let mut req = http.post(url).bearer_auth(token(key)).header("content-type", "application/json");
            if let Some(k) = idempotency {
                req = req.header("Idempotency-Key", k);
            }
            let resp = req.body(message(&to)).send().await.unwrap();
            let status = resp.status().as_u16();
            let retry_after = resp.headers().get("retry-after").map(|v| v.to_str().unwrap().to_string());
            (status, retry_after, resp.json::<Value>().await.unwrap())
        }
    };
    let send = |on: usize, key: &'static str, to: String| send_keyed(on, key, to, None);

    // One an hour: the first send on one scheduler spends it for the other too.
    assert_eq!(send(0, "hourly", "a@x.example".into()).await.0, 202);
    let (status, retry_after, body) = send(1, "hourly", "b@x.example".into()).await;
    assert_eq!(status, 429, "{body}");
    let retry_after: u64 = retry_after.expect("Retry-After").parse().unwrap();
    assert!((3_500..=3_600).contains(&retry_after), "an hour's interval: {retry_after}");
    let text = body["error"]["message"].as_str().unwrap();
    assert!(text.contains("hourly") && text.contains("send_rate"), "{body}");
    assert_eq!(stored(&redis), 1, "the refused send stored nothing");

    // Bursts of one second's worth: of six at once at 3/s, exactly three go.
    let six = (0..6).map(|i| send(i % 2, "bursty", format!("burst{i}@x.example")));
    let statuses: Vec<u16> = futures::future::join_all(six).await.into_iter().map(|(s, _, _)| s).collect();
    assert_eq!(statuses.iter().filter(|s| **s == 202).count(), 3, "{statuses:?}");
    assert_eq!(statuses.iter().filter(|s| **s == 429).count(), 3, "{statuses:?}");

    // At 1/s a refused sender that waits as told is taken again.
    // The rate is checked first: replaying an accepted request's Idempotency-Key counts too.
    assert_eq!(send_keyed(0, "second", "c@x.example".into(), Some("order-1")).await.0, 202);
    let (status, retry_after, _) = send_keyed(1, "second", "c@x.example".into(), Some("order-1")).await;
    assert_eq!((status, retry_after.as_deref()), (429, Some("1")));
    let refused = Instant::now();
    let accepted = sluice_testkit::wait_for("the rate to allow a send again", Duration::from_secs(5), || async {
        (send(1, "second", "d@x.example".into()).await.0 == 202).then(|| refused.elapsed())
    })
    .await;
    assert!(accepted <= Duration::from_millis(1_500), "taken again after {accepted:?}");

    // No send_rate, no limit.
    for i in 0..10 {
        assert_eq!(send(i % 2, "free", format!("free{i}@x.example")).await.0, 202);
    }
    assert_eq!(stored(&redis), 1 + 3 + 2 + 10);

    let metrics = http.get(format!("http://{metrics}/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(metrics.contains("sluice_send_rate_limited_total{key=\"hourly\"} 1"), "{metrics}");
    drop((first, second));
}
