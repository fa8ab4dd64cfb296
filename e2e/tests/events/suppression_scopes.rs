//! Suppression scopes through the real binaries: a one-click unsubscribe from a campaign on a
//! list keeps that list's campaigns from the address, the page's "every campaign" button all
//! campaigns; transactional messages still reach both (a password reset), while a scope-`all`
//! suppression stops them too. An unsubscribe entry written before scopes existed is moved
//! by the next scheduler to start, and from then on keeps only campaigns away.

use crate::common;

use std::time::Duration;

use serde_json::{Value, json};
use sluice_shared::keys;

fn people(names: &[&str]) -> Vec<Value> {
    names.iter().map(|n| json!({"email": format!("{n}@x.example"), "vars": {"name": n}})).collect()
}

fn on_list(id: &str, list: &str, names: &[&str]) -> Value {
    let mut body = common::campaign_body(id, people(names));
    body["list"] = list.into();
    body
}

async fn send_reset(stack: &common::Stack, to: &str) -> Value {
    let body = json!({"from": "accounts@shop.example", "to": to, "subject": "Reset your password", "text": "Your code: 123456"});
    let (status, reply) = stack.call("POST", "/v1/messages", Some(body)).await;
    assert_eq!(status, 202, "{reply}");
    let id = reply["id"].as_str().unwrap().to_string();
    stack.wait_message(&id, "sent", Duration::from_secs(20)).await
}

async fn run(stack: &common::Stack, id: &str, body: Value) -> std::collections::BTreeMap<String, u64> {
    let (status, reply) = stack.call("POST", "/v1/campaigns", Some(body)).await;
    assert_eq!(status, 201, "{reply}");
    common::counts(&stack.wait_status(id, "completed", Duration::from_secs(20)).await)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsubscribes_keep_campaigns_away_and_let_transactional_mail_through() {
    let stack = common::start_with("", 1, true).await;
    run(&stack, "news-1", on_list("news-1", "news", &["ann", "bob"])).await;
    let http = reqwest::Client::new();

    // Ann: the provider's one-click POST leaves the campaign's list.
    let ann = stack.unsubscribe_link("ann@x.example");
    let resp = http.post(&ann).body("List-Unsubscribe=One-Click").send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert!(resp.text().await.unwrap().contains("news"), "the page names the list");
    let (_, entry) = stack.call("GET", "/v1/suppressions/ann@x.example", None).await;
    assert_eq!((entry["scope"].as_str(), entry["list"].as_str()), (Some("list"), Some("news")), "{entry}");

    // Bob: the page offers this list or every campaign; he picks every campaign.
    let bob = stack.unsubscribe_link("bob@x.example");
    let page = http.get(&bob).send().await.unwrap().text().await.unwrap();
    assert!(page.contains("value=\"list\"") && page.contains("value=\"everything\""), "{page}");
    let resp = http.post(&bob).body("List-Unsubscribe=One-Click&scope=everything").send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let (_, entry) = stack.call("GET", "/v1/suppressions/bob@x.example", None).await;
    assert_eq!((entry["scope"].as_str(), entry["list"].as_str()), (Some("campaigns"), None), "{entry}");

    // Transactional mail reaches both.
    for who in ["ann@x.example", "bob@x.example"] {
        let before = stack.sink.state.delivered_to(who);
        let message = send_reset(&stack, who).await;
        assert_eq!(message["recipients"][0]["status"], "sent", "{message}");
        assert_eq!(stack.sink.state.delivered_to(who), before + 1, "a password reset reaches {who}");
    }

    // The news list skips both; another list skips only Bob; no list skips Bob too.
    let news = run(&stack, "news-2", on_list("news-2", "news", &["ann", "bob", "cat"])).await;
    assert_eq!((news["suppressed"], news["sent"]), (2, 1), "{news:?}");
    let offers = run(&stack, "offers-1", on_list("offers-1", "offers", &["ann", "bob", "cat"])).await;
    assert_eq!((offers["suppressed"], offers["sent"]), (1, 2), "{offers:?}");
    let plain = run(&stack, "plain-1", common::campaign_body("plain-1", people(&["ann", "bob", "cat"]))).await;
    assert_eq!((plain["suppressed"], plain["sent"]), (1, 2), "{plain:?}");
    let (sent_to_ann, sent_to_bob) =
        (stack.sink.state.delivered_to("ann@x.example"), stack.sink.state.delivered_to("bob@x.example"));
    assert_eq!((sent_to_ann, sent_to_bob), (4, 2), "news-1, reset, offers-1, plain-1 / news-1, reset");

    // A scope-all suppression (a bounce, an operator) stops transactional mail as well.
    let (status, _) = stack.call("PUT", "/v1/suppressions/cat@x.example", Some(json!({"reason": "hard bounce"}))).await;
    assert_eq!(status, 201);
    let before = stack.sink.state.delivered_to("cat@x.example");
    let body = json!({"from": "accounts@shop.example", "to": "cat@x.example", "subject": "Reset", "text": "Code"});
    let (status, reply) = stack.call("POST", "/v1/messages", Some(body)).await;
    assert_eq!(status, 202, "{reply}");
    let message = stack.wait_message(reply["id"].as_str().unwrap(), "failed", Duration::from_secs(20)).await;
    assert_eq!(message["recipients"][0]["status"], "suppressed", "{message}");
    assert_eq!(stack.sink.state.delivered_to("cat@x.example"), before);

    // Filters: by scope and by list.
    let (_, lists) = stack.call("GET", "/v1/suppressions?scope=list", None).await;
    let shown: Vec<&str> = lists["items"].as_array().unwrap().iter().filter_map(|i| i["email"].as_str()).collect();
    assert_eq!(shown, ["ann@x.example"], "{lists}");
    let (status, refused) = stack.call("GET", "/v1/suppressions?scope=all&list=news", None).await;
    assert_eq!((status, refused["error"]["field"].as_str()), (422, Some("list")), "{refused}");
    // Taking Ann's list unsubscribe back lets the news list reach her again.
    let (status, _) = stack.call("DELETE", "/v1/suppressions/ann@x.example?list=news", None).await;
    assert_eq!(status, 204);
    let (status, _) = stack.call("GET", "/v1/suppressions/ann@x.example", None).await;
    assert_eq!(status, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsubscribes_written_before_scopes_are_moved_to_the_campaign_scope() {
    let mut stack = common::start_with("", 1, false).await;
    let mut conn = stack.redis.conn();
    let legacy = json!({"reason": "unsubscribed", "source": "unsubscribed", "campaign": "spring-2025",
        "created_at": "2025-04-01T10:00:00.000Z", "detail": {"method": "one-click"}});
    let bounce = json!({"reason": "bounce", "source": "bounce", "created_at": "2025-04-01T10:00:00.000Z"});
    // One command at a time: the test's cluster connection takes no pipelines.
    let _: () = redis::cmd("HSET")
        .arg(keys::suppressed())
        .arg("old@x.example")
        .arg(legacy.to_string())
        .query(&mut conn)
        .unwrap();
    let _: () = redis::cmd("HSET")
        .arg(keys::suppressed())
        .arg("gone@x.example")
        .arg(bounce.to_string())
        .query(&mut conn)
        .unwrap();
    let _: () = redis::cmd("DEL").arg(keys::suppression_version()).query(&mut conn).unwrap();
    let _second = stack.add_scheduler_with("scheduler-2", &[]).await;
    sluice_testkit::wait_for("the move", Duration::from_secs(20), || async {
        let (_, e) = stack.call("GET", "/v1/suppressions/old@x.example", None).await;
        (e["scope"] == "campaigns").then_some(())
    })
    .await;
    let (_, entry) = stack.call("GET", "/v1/suppressions/old@x.example", None).await;
    assert_eq!(
        (entry["campaign"].as_str(), entry["created_at"].as_str()),
        (Some("spring-2025"), Some("2025-04-01T10:00:00.000Z"))
    );
    assert_eq!(entry["entries"].as_array().unwrap().len(), 1, "moved, not copied: {entry}");
    let (_, kept) = stack.call("GET", "/v1/suppressions/gone@x.example", None).await;
    assert_eq!(kept["scope"], "all", "a bounce stays in scope all: {kept}");
    let message = send_reset(&stack, "old@x.example").await;
    assert_eq!(message["recipients"][0]["status"], "sent", "{message}");
}

/// The peak resident memory of process `pid`, in bytes.
fn peak_rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse::<u64>().unwrap() * 1024
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_million_line_import_streams_at_bounded_memory() {
    const LINES: usize = 1_000_000;
    let stack = common::start("", 0).await;
    // Generated as it is sent: the test holds no more of the body than the scheduler should.
    let header = futures::stream::once(async { Ok::<_, std::io::Error>(bytes::Bytes::from("email,reason\n")) });
    let rows = futures::stream::iter((0..LINES / 1000).map(|block| {
        let mut chunk = String::with_capacity(40_000);
        for i in block * 1000..(block + 1) * 1000 {
            match i {
                500_000 => chunk.push_str("not-an-address,bad\n"),
                _ => chunk.push_str(&format!("user{i}@list{}.example,imported\n", i % 50)),
            }
        }
        Ok(bytes::Bytes::from(chunk))
    }));
    let body = reqwest::Body::wrap_stream(futures::StreamExt::chain(header, rows));
    let reply: Value = reqwest::Client::new()
        .post(format!("{}/v1/suppressions/import", stack.api))
        .bearer_auth(common::TOKEN)
        .header("content-type", "text/csv")
        .body(body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        (reply["added"].as_u64(), reply["rejected_count"].as_u64()),
        (Some(LINES as u64 - 1), Some(1)),
        "{reply}"
    );
    assert_eq!(reply["rejected"][0]["line"], 500_002, "numbered from the header line: {reply}");
    let stored: u64 = redis::cmd("HLEN").arg(keys::suppressed()).query(&mut stack.redis.conn()).unwrap();
    assert_eq!(stored, LINES as u64 - 1);
    let peak = peak_rss(stack.scheduler.pid());
    println!("scheduler peak RSS after a {LINES}-line import: {:.1} MB", peak as f64 / 1e6);
    assert!(peak < 100_000_000, "peak RSS {peak} bytes");
}
