//! Webhooks through the real binaries: an endpoint that fails its first deliveries still gets
//! every event at least once, each batch signed so Python's hmac verifies it; a dead endpoint
//! next to it delays nobody and shows its backlog and last error in the API and metrics.

use crate::common;

use std::{
    collections::HashSet,
    process::Command,
    sync::{Arc, Mutex},
    time::Duration,
};

use serde_json::{Value, json};
use sluice_testkit::wait_for;
use tokio::{
    io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader},
    net::TcpListener,
};

/// Requests received: (Sluice-Signature header, raw body, answered with success).
pub(crate) type Received = Arc<Mutex<Vec<(String, Vec<u8>, bool)>>>;

/// An HTTP receiver on 127.0.0.1 that answers 500 to its first `fail_first` requests, then 200.
pub(crate) async fn receiver(fail_first: usize) -> (String, Received) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hooks", listener.local_addr().unwrap());
    let received: Received = Arc::default();
    let log = received.clone();
    tokio::spawn(async move {
        loop {
            let Ok((socket, _)) = listener.accept().await else { return };
            let log = log.clone();
            tokio::spawn(async move {
                let (read, mut write) = socket.into_split();
                let mut reader = BufReader::new(read);
                loop {
                    let (mut length, mut signature) = (0usize, String::new());
                    let mut line = String::new();
                    if reader.read_line(&mut line).await.unwrap_or(0) == 0 {
                        return;
                    }
                    loop {
                        line.clear();
                        reader.read_line(&mut line).await.unwrap();
                        let header = line.trim_end();
                        if header.is_empty() {
                            break;
                        }
                        let (name, value) = header.split_once(':').unwrap();
                        match name.to_ascii_lowercase().as_str() {
                            "content-length" => length = value.trim().parse().unwrap(),
                            "sluice-signature" => signature = value.trim().to_string(),
                            _ => {}
                        }
                    }
                    let mut body = vec![0; length];
                    reader.read_exact(&mut body).await.unwrap();
                    let ok = {
                        let mut log = log.lock().unwrap();
                        let ok = log.len() >= fail_first;
                        log.push((signature, body, ok));
                        ok
                    };
                    let status = if ok { "200 OK" } else { "500 Internal Server Error" };
                    let reply = format!("HTTP/1.1 {status}\r\ncontent-length: 0\r\n\r\n");
                    write.write_all(reply.as_bytes()).await.unwrap();
                }
            });
        }
    });
    (url, received)
}

fn event_ids(received: &Received) -> HashSet<String> {
    let log = received.lock().unwrap();
    let mut ids = HashSet::new();
    for (_, body, _) in log.iter().filter(|(_, _, ok)| *ok) {
        let batch: Value = serde_json::from_slice(body).unwrap();
        for e in batch["events"].as_array().unwrap() {
            ids.insert(e["id"].as_str().unwrap().to_string());
        }
    }
    ids
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_event_arrives_signed_despite_failures_and_a_dead_endpoint_delays_nobody() {
    let (url, received) = receiver(3).await;
    let secret = format!("whsec-{}", uuid_like());
    let dead_port = sluice_testkit::free_port();
    let extra = format!(
        r#"
[webhooks]
allow_http = true
allow_networks = ["127.0.0.0/8"]
retry_initial = "100ms"
retry_max = "400ms"
batch = 10

[[webhooks.endpoints]]
id = "crm"
url = "{url}"
secret = "{secret}"
"#
    );
    let stack = common::start(&extra, 1).await;
    let (status, dead) = stack
        .call(
            "POST",
            "/v1/webhooks",
            Some(json!({"id": "dead", "url": format!("http://127.0.0.1:{dead_port}/x"), "events": ["sent"]})),
        )
        .await;
    assert_eq!(status, 201, "{dead}");
    assert_eq!(dead["secret"].as_str().unwrap().len(), 64, "a secret is made and shown once");
    let (status, _) = stack.call("POST", "/v1/webhooks", Some(json!({"id": "x", "url": "ftp://nope"}))).await;
    assert_eq!(status, 422);

    let (status, reply) = stack
        .call(
            "POST",
            "/v1/campaigns",
            Some(common::campaign_body("hooks", common::recipients(20, 2, |i| format!("u{i}")))),
        )
        .await;
    assert_eq!(status, 201, "{reply}");
    let (status, msg) = stack
        .call(
            "POST",
            "/v1/messages",
            Some(json!({"from": "a@shop.example", "to": "m@x.example", "subject": "s", "text": "t"})),
        )
        .await;
    assert_eq!(status, 202, "{msg}");
    stack.wait_status("hooks", "completed", Duration::from_secs(20)).await;

    // Every event of the feed reaches the receiver at least once.
    let expected: HashSet<String> = wait_for("the feed", Duration::from_secs(10), || async {
        let (_, page) = stack.call("GET", "/v1/events?limit=1000", None).await;
        let ids: HashSet<String> =
            page["events"].as_array().unwrap().iter().map(|e| e["id"].as_str().unwrap().to_string()).collect();
        (ids.len() == 42).then_some(ids)
    })
    .await;
    wait_for("webhook deliveries", Duration::from_secs(20), || async {
        expected.is_subset(&event_ids(&received)).then_some(())
    })
    .await;
    let failures = received.lock().unwrap().iter().filter(|(_, _, ok)| !ok).count();
    assert_eq!(failures, 3, "the first three POSTs were refused and retried");

    // The signatures verify with Python's hmac; a tampered body does not.
    let dir = std::env::temp_dir().join(format!("sluice-webhooks-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for (k, (sig, body, _)) in received.lock().unwrap().iter().enumerate() {
        std::fs::write(dir.join(format!("{k:04}.sig")), sig).unwrap();
        std::fs::write(dir.join(format!("{k:04}.body")), body).unwrap();
    }
    let verify = |dir: &std::path::Path| {
        Command::new("python3")
            .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/events/webhook_verify.py"))
            .arg(&secret)
            .arg(dir)
            .output()
            .unwrap()
    };
    let out = verify(&dir);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
    let mut tampered = std::fs::read(dir.join("0000.body")).unwrap();
    tampered[0] ^= 1;
    std::fs::write(dir.join("0000.body"), tampered).unwrap();
    assert!(!verify(&dir).status.success(), "a tampered body must not verify");

    // Delivery state in the API and metrics.
    let (_, crm) = stack.call("GET", "/v1/webhooks/crm", None).await;
    assert!(crm["delivered"].as_i64().unwrap() >= 42, "{crm}");
    assert_eq!(crm["source"], "config");
    assert!(crm["last_success_at"].is_string() && crm["last_error"].as_str().unwrap().contains("500"), "{crm}");
    assert!(crm.get("secret").is_none());
    // The dead endpoint's first attempt can come after the crm deliveries: wait for its error.
    let dead = wait_for("the dead endpoint's first failure", Duration::from_secs(20), || async {
        let (_, dead) = stack.call("GET", "/v1/webhooks/dead", None).await;
        dead["last_error"].is_string().then_some(dead)
    })
    .await;
    assert!(dead["backlog"].as_i64().unwrap() > 0 && dead["last_success_at"].is_null(), "{dead}");
    let error = dead["last_error"].as_str().unwrap();
    assert!(error.starts_with("could not connect") && !error.contains(&dead_port.to_string()), "{dead}");
    let metrics = stack.scrape(0).await;
    assert!(metrics.contains("sluice_webhook_backlog{endpoint=\"dead\"}"), "{metrics}");
    assert!(metrics.contains("sluice_webhook_deliveries_total{endpoint=\"crm\",result=\"ok\"}"));
    let (status, _) = stack.call("DELETE", "/v1/webhooks/crm", None).await;
    assert_eq!(status, 409, "config endpoints are removed in the config");
    let (status, _) = stack.call("DELETE", "/v1/webhooks/dead", None).await;
    assert_eq!(status, 204);
}

fn uuid_like() -> String {
    format!(
        "{:x}{:x}",
        std::process::id(),
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos()
    )
}
