//! Webhook endpoints are URLs that API callers name, so they are attacked, not just used.
//! Through the real binaries: https only unless allowed, no user info, no internal address
//! (literal or behind a host name) unless its network is allowed, no redirect followed, a
//! `last_error` that maps no internal port, and a new endpoint receives only what happens
//! after it was created unless it asks for a backfill.

use crate::common;

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use serde_json::{Value, json};
use sluice_testkit::wait_for;
use tokio::{
    io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader},
    net::TcpListener,
};

/// Bodies received by a receiver.
type Bodies = Arc<Mutex<Vec<Value>>>;

/// An HTTP receiver on 127.0.0.1 answering every request with `status_line` and `headers`.
async fn receiver(status_line: &'static str, headers: String) -> (u16, Bodies) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let bodies: Bodies = Arc::default();
    let log = bodies.clone();
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            let (log, headers) = (log.clone(), headers.clone());
            tokio::spawn(async move {
                let (read, mut write) = socket.into_split();
                let mut reader = BufReader::new(read);
                let mut line = String::new();
                while reader.read_line(&mut line).await.unwrap_or(0) > 0 {
                    let mut length = 0;
                    loop {
                        line.clear();
                        reader.read_line(&mut line).await.unwrap();
                        let header = line.trim_end().to_ascii_lowercase();
                        if header.is_empty() {
                            break;
                        }
                        if let Some(v) = header.strip_prefix("content-length:") {
                            length = v.trim().parse().unwrap();
                        }
                    }
                    let mut body = vec![0; length];
                    reader.read_exact(&mut body).await.unwrap();
                    log.lock().unwrap().push(serde_json::from_slice(&body).unwrap_or(Value::Null));
                    let reply = format!("HTTP/1.1 {status_line}\r\n{headers}content-length: 0\r\n\r\n");
                    write.write_all(reply.as_bytes()).await.unwrap();
                    line.clear();
                }
            });
        }
    });
    (port, bodies)
}

async fn create(stack: &common::Stack, body: Value) -> (u16, Value) {
    stack.call("POST", "/v1/webhooks", Some(body)).await
}

async fn last_error(stack: &common::Stack, id: &str) -> String {
    wait_for(&format!("a delivery error on {id}"), Duration::from_secs(15), || async {
        let (_, view) = stack.call("GET", &format!("/v1/webhooks/{id}"), None).await;
        view["last_error"].as_str().map(String::from)
    })
    .await
}

async fn run_campaign(stack: &common::Stack, id: &str) {
    let body = common::campaign_body(id, common::recipients(3, 1, |i| format!("{id}{i}")));
    let (status, reply) = stack.call("POST", "/v1/campaigns", Some(body)).await;
    assert_eq!(status, 201, "{reply}");
    stack.wait_status(id, "completed", Duration::from_secs(20)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn internal_and_unsafe_urls_are_refused() {
    let (port, bodies) = receiver("200 OK", String::new()).await;
    let stack = common::start("[webhooks]\nallow_http = true\nretry_initial = \"100ms\"\n", 1).await;
    let refused = [
        (format!("http://127.0.0.1:{port}/hooks"), "internal address"),
        ("http://[::1]/hooks".to_string(), "internal address"),
        (format!("http://2130706433:{port}/hooks"), "internal address"),
        (format!("http://0x7f.1:{port}/hooks"), "internal address"),
        ("http://[::ffff:127.0.0.1]/hooks".to_string(), "internal address"),
        ("http://169.254.169.254/latest/meta-data".to_string(), "internal address"),
        ("https://crm:hunter2@crm.example/hooks".to_string(), "user name or password"),
        ("ftp://crm.example/hooks".to_string(), "https://"),
    ];
    for (url, problem) in refused {
        let (status, reply) = create(&stack, json!({"id": "x", "url": url})).await;
        assert_eq!(status, 422, "{url}: {reply}");
        assert_eq!(reply["error"]["field"], "url");
        assert!(reply["error"]["message"].as_str().unwrap().contains(problem), "{url}: {reply}");
    }
    // A host name that resolves to loopback is refused when the request is made.
    let redis_port = stack.redis.port();
    for (id, p) in [("named", port), ("redis", redis_port)] {
        let (status, reply) = create(&stack, json!({"id": id, "url": format!("http://localhost:{p}/hooks")})).await;
        assert_eq!(status, 201, "{reply}");
    }
    run_campaign(&stack, "c").await;
    for id in ["named", "redis"] {
        let error = last_error(&stack, id).await;
        assert!(error.starts_with("refused: the endpoint is an internal address"), "{error}");
        assert!(!error.contains(&port.to_string()) && !error.contains("127.0.0.1"), "{error}");
    }
    assert!(bodies.lock().unwrap().is_empty(), "nothing reached the loopback receiver");
    let (_, list) = stack.call("GET", "/v1/webhooks", None).await;
    assert!(!list.to_string().contains("hunter2"), "{list}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_is_required_unless_http_is_allowed() {
    let stack = common::start("", 0).await;
    let (status, reply) = create(&stack, json!({"id": "x", "url": "http://crm.example/hooks"})).await;
    assert_eq!(status, 422, "{reply}");
    assert!(reply["error"]["message"].as_str().unwrap().contains("webhooks.allow_http"), "{reply}");
    let (status, reply) = create(&stack, json!({"id": "x", "url": "https://crm.example/hooks"})).await;
    assert_eq!(status, 201, "{reply}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redirects_are_not_followed_and_new_endpoints_start_now() {
    let config = "[webhooks]\nallow_http = true\nallow_networks = [\"127.0.0.0/8\"]\nretry_initial = \"100ms\"\n";
    let stack = common::start(config, 1).await;
    let (target, redirected) = receiver("200 OK", String::new()).await;
    let (port, hopped) = receiver("307 Temporary Redirect", format!("location: http://127.0.0.1:{target}/x\r\n")).await;
    let (status, reply) = create(&stack, json!({"id": "hop", "url": format!("http://127.0.0.1:{port}/h")})).await;
    assert_eq!(status, 201, "{reply}");
    run_campaign(&stack, "before").await;
    let error = last_error(&stack, "hop").await;
    assert!(error.contains("307") && error.contains("redirects are not followed"), "{error}");
    assert!(!hopped.lock().unwrap().is_empty());
    assert!(redirected.lock().unwrap().is_empty(), "the redirect target got nothing");

    // Made after "before" completed: only later events, unless it asks for the feed's past.
    let (now_port, now_bodies) = receiver("200 OK", String::new()).await;
    let (past_port, past_bodies) = receiver("200 OK", String::new()).await;
    for (id, p, backfill) in [("fresh", now_port, false), ("backfill", past_port, true)] {
        let body = json!({"id": id, "url": format!("http://127.0.0.1:{p}/h"), "backfill": backfill});
        assert_eq!(create(&stack, body).await.0, 201);
    }
    run_campaign(&stack, "after").await;
    let campaigns_in = |bodies: &Bodies| -> std::collections::BTreeSet<String> {
        let bodies = bodies.lock().unwrap();
        let events = bodies.iter().flat_map(|b| b["events"].as_array().cloned().unwrap_or_default());
        events.map(|e| e["campaign_id"].as_str().unwrap_or_default().to_string()).collect()
    };
    wait_for("events of both campaigns at the backfilled endpoint", Duration::from_secs(15), || async {
        (campaigns_in(&past_bodies).len() == 2).then_some(())
    })
    .await;
    wait_for("events of the later campaign at the fresh endpoint", Duration::from_secs(15), || async {
        campaigns_in(&now_bodies).contains("after").then_some(())
    })
    .await;
    assert_eq!(campaigns_in(&now_bodies), ["after".to_string()].into(), "nothing from before it existed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_proxy_in_the_environment_is_not_used() {
    let config = "[webhooks]\nallow_http = true\nallow_networks = [\"127.0.0.0/8\"]\nretry_initial = \"100ms\"\n";
    let mut stack = common::start(config, 0).await;
    let (proxy_port, proxied) = receiver("200 OK", String::new()).await;
    let (target, delivered) = receiver("200 OK", String::new()).await;
    // The only scheduler left runs with every proxy variable pointing at the proxy receiver.
    assert!(stack.scheduler.terminate().success());
    let proxy = format!("http://127.0.0.1:{proxy_port}");
    let env: Vec<(&str, &str)> = ["HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"]
        .map(|k| (k, proxy.as_str()))
        .to_vec();
    let _proxied_scheduler = stack.add_scheduler_with("proxied", &env).await;
    let (status, reply) = create(&stack, json!({"id": "direct", "url": format!("http://127.0.0.1:{target}/h")})).await;
    assert_eq!(status, 201, "{reply}");
    let body = common::campaign_body("queued-only", common::recipients(3, 1, |i| format!("q{i}")));
    assert_eq!(stack.call("POST", "/v1/campaigns", Some(body)).await.0, 201);
    wait_for("events at the endpoint, straight", Duration::from_secs(15), || async {
        (!delivered.lock().unwrap().is_empty()).then_some(())
    })
    .await;
    assert!(proxied.lock().unwrap().is_empty(), "nothing went through the proxy");
}
