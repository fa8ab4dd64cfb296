//! The HTTP listeners face slow, flooding and lying clients. Against the real scheduler: a
//! head trickled past `http.header_timeout` and a body stalled past `http.body_timeout` end
//! the connection; an idle keep-alive connection is closed; one client flooding the public
//! listener gets 429 while another is served; `X-Forwarded-For` names the client in the audit
//! log only when a trusted proxy sends it; every error is JSON.

mod common;

use std::{
    net::SocketAddr,
    time::{Duration, Instant},
};

use common::Api;
use serde_json::Value;
use sluice_testkit::free_port;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

const LIMITS: &str = "[http]\nheader_timeout = \"1s\"\nbody_timeout = \"1s\"\npublic_rate_per_client = \"1/m\"\npublic_burst_per_client = 5\n";

async fn start(extra: &str) -> (Api, String) {
    let public = free_port();
    let config = format!(
        "[public]\nlisten = \"127.0.0.1:{public}\"\nbase_url = \"https://m.shop.example\"\n\
         secret = \"a-secret-of-at-least-32-characters!!\"\n\n{extra}"
    );
    (Api::start(&config).await, format!("127.0.0.1:{public}"))
}

fn address(base: &str) -> SocketAddr {
    base.trim_start_matches("http://").parse().unwrap()
}

/// Reads until the server closes; returns what it sent and how long that took.
async fn until_closed(stream: &mut TcpStream, limit: Duration) -> (String, Duration) {
    let started = Instant::now();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout(limit.saturating_sub(started.elapsed()), stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return (String::from_utf8_lossy(&got).into_owned(), started.elapsed()),
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
            Err(_) => panic!("still open after {limit:?}; got {:?}", String::from_utf8_lossy(&got)),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_heads_stalled_bodies_and_idle_connections_are_cut_off() {
    let (api, public) = start(LIMITS).await;
    // A head trickled one header line at a time, slower than the whole head may take.
    let mut slow = TcpStream::connect(address(&api.base)).await.unwrap();
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n").await.unwrap();
    let trickle = async {
        for i in 0..10 {
            tokio::time::sleep(Duration::from_millis(300)).await;
            if slow.write_all(format!("X-Slow-{i}: y\r\n").as_bytes()).await.is_err() {
                break;
            }
        }
    };
    trickle.await;
    let (answer, _) = until_closed(&mut slow, Duration::from_secs(5)).await;
    assert!(!answer.contains("200 OK"), "a trickled head is never answered: {answer:?}");

    // A body that stops arriving, on the public listener's unsubscribe route.
    let mut stalled = TcpStream::connect(public.parse::<SocketAddr>().unwrap()).await.unwrap();
    stalled.write_all(b"POST /u/token HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nList-Unsub").await.unwrap();
    let (_, took) = until_closed(&mut stalled, Duration::from_secs(6)).await;
    assert!(took < Duration::from_secs(5), "closed after {took:?}");

    // An idle keep-alive connection after a complete request.
    let mut idle = TcpStream::connect(address(&api.base)).await.unwrap();
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
    let (answer, took) = until_closed(&mut idle, Duration::from_secs(6)).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer:?}");
    assert!(took < Duration::from_secs(5), "idle connection closed after {took:?}");
}

async fn get_from(from: [u8; 4], url: &str) -> u16 {
    let client = reqwest::Client::builder().local_address(std::net::IpAddr::from(from)).build().unwrap();
    client.get(url).send().await.unwrap().status().as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flooding_client_is_held_back_while_another_is_served() {
    let (_api, public) = start(LIMITS).await;
    let url = format!("http://{public}/o/not-a-token");
    let mut statuses = Vec::new();
    for _ in 0..30 {
        statuses.push(get_from([127, 0, 0, 1], &url).await);
    }
    assert!(statuses[..5].iter().all(|s| *s == 404), "the burst is served: {statuses:?}");
    assert!(statuses.iter().filter(|s| **s == 429).count() >= 24, "then 429: {statuses:?}");
    assert_eq!(get_from([127, 0, 0, 2], &url).await, 404, "another client is served");
}

async fn audit_clients(api: &Api) -> Vec<(String, u64)> {
    let (_, audit) = api.call("GET", "/v1/audit?limit=1000", None).await;
    audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| (i["client"].as_str().unwrap_or_default().to_string(), i["status"].as_u64().unwrap_or(0)))
        .collect()
}

async fn refused_with_forwarded_for(api: &Api, from: [u8; 4], forwarded: &str) {
    let client = reqwest::Client::builder().local_address(std::net::IpAddr::from(from)).build().unwrap();
    let url = format!("{}/v1/campaigns", api.base);
    let response = client.get(url).bearer_auth("wrong").header("x-forwarded-for", forwarded).send().await.unwrap();
    assert_eq!(response.status(), 401);
    let body: Value = response.json().await.unwrap();
    assert!(body["error"]["message"].is_string(), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwarded_for_is_believed_from_trusted_proxies_only() {
    let (api, _) = start("[http]\ntrusted_proxies = [\"127.0.0.2/32\"]\n").await;
    refused_with_forwarded_for(&api, [127, 0, 0, 1], "198.51.100.7").await;
    refused_with_forwarded_for(&api, [127, 0, 0, 2], "198.51.100.8").await;
    let seen = audit_clients(&api).await;
    assert_eq!(
        seen,
        [("127.0.0.1".to_string(), 401), ("198.51.100.8".to_string(), 401)],
        "a stranger's header is ignored; the proxy's is believed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_are_json_and_an_empty_template_list_is_empty() {
    let (api, _) = start("").await;
    let (status, body) = api.call("GET", "/v1/templates", None).await;
    assert_eq!((status, body.to_string()), (200, "{\"items\":[]}".to_string()));
    let big = format!("{{\"subject\":\"s\",\"text\":\"{}\"}}", "x".repeat(3 * 1024 * 1024));
    let (status, body) = api.request("PUT", "/v1/templates/t", Some(common::TOKEN), Some(big)).await;
    assert_eq!(status, 413, "{body}");
    assert_eq!(body["error"]["field"], "body", "{body}");
    let (status, body) = api.request("GET", "/v1/campaigns?limit=lots", Some(common::TOKEN), None).await;
    assert_eq!(status, 400, "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("limit"), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_past_the_cap_wait_to_be_served() {
    let (api, _) = start("[http]\nmax_connections = 2\nheader_timeout = \"10s\"\n").await;
    let mut held = Vec::new();
    for _ in 0..2 {
        held.push(TcpStream::connect(address(&api.base)).await.unwrap());
    }
    let mut waiting = TcpStream::connect(address(&api.base)).await.unwrap();
    waiting.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").await.unwrap();
    let mut buf = [0u8; 64];
    let early = tokio::time::timeout(Duration::from_millis(800), waiting.read(&mut buf)).await;
    assert!(early.is_err(), "answered while both connections were held");
    // (The test client's own keep-alive connection may hold one of the two places too.)
    drop(held);
    let (answer, _) = until_closed(&mut waiting, Duration::from_secs(5)).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "served once the held connections closed: {answer:?}");
}
