//! The event API through the real binaries: every event of a campaign and a message reaches
//! the feed exactly as recorded, and paging by cursor (globally, per source, by type) returns
//! each event once, in order; bad parameters are named.

use crate::common;

use std::{collections::HashSet, time::Duration};

use serde_json::{Value, json};

/// Every event the query matches, read `limit` at a time by following `next`.
async fn read_all(stack: &common::Stack, query: &str, limit: usize) -> Vec<Value> {
    let mut out = Vec::new();
    let mut after = String::new();
    for _ in 0..1000 {
        let (status, page) = stack.call("GET", &format!("/v1/events?limit={limit}{query}{after}"), None).await;
        assert_eq!(status, 200, "{page}");
        let events = page["events"].as_array().unwrap().clone();
        assert!(events.len() <= limit);
        if events.is_empty() {
            return out;
        }
        out.extend(events);
        after = format!("&after={}", page["next"].as_str().unwrap());
    }
    panic!("paging never ended");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_are_paged_by_cursor_globally_per_source_and_by_type() {
    let stack = common::start("", 1).await;
    let mut body = common::campaign_body("news", common::recipients(30, 3, |i| format!("u{i}")));
    body["tags"] = json!(["newsletter"]);
    let (status, reply) = stack.call("POST", "/v1/campaigns", Some(body)).await;
    assert_eq!(status, 201, "{reply}");
    stack.wait_status("news", "completed", Duration::from_secs(20)).await;
    let (status, msg) = stack
        .call("POST", "/v1/messages", Some(json!({"from": "a@shop.example", "to": "m@x.example", "subject": "s", "text": "t", "metadata": {"k": 1}})))
        .await;
    assert_eq!(status, 202, "{msg}");
    let id = msg["id"].as_str().unwrap();
    stack.wait_message(id, "sent", Duration::from_secs(10)).await;

    // The feed gets every event (30 queued + 30 sent + the message's 2) once, in order.
    let mut all = Vec::new();
    for _ in 0..100 {
        all = read_all(&stack, "", 7).await;
        if all.len() >= 62 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(all.len(), 62, "{all:?}");
    let ids: HashSet<&str> = all.iter().map(|e| e["id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), 62, "every event once");
    let kinds = |t: &str| all.iter().filter(|e| e["type"] == t).count();
    assert_eq!((kinds("queued"), kinds("sent")), (31, 31));
    // In order: each recipient's queued comes before its sent.
    for sent in all.iter().filter(|e| e["type"] == "sent") {
        let at = |t: &str| all.iter().position(|e| e["type"] == t && e["recipient"] == sent["recipient"]).unwrap();
        assert!(at("queued") < at("sent"), "{sent}");
    }
    let e = all.iter().find(|e| e["campaign_id"] == "news" && e["type"] == "sent").unwrap();
    assert_eq!(e["tags"], json!(["newsletter"]));
    assert!(e["recipient"].as_str().unwrap().ends_with(".example") && e["at"].as_str().unwrap().ends_with('Z'));
    let m = all.iter().find(|e| e["message_id"] == id).unwrap();
    assert_eq!(m["metadata"], json!({"k": 1}));

    // Per source and by type, paged.
    let sent = read_all(&stack, "&campaign=news&type=sent", 8).await;
    assert_eq!(sent.len(), 30);
    assert!(sent.iter().all(|e| e["type"] == "sent" && e["campaign_id"] == "news"));
    let of_message = read_all(&stack, &format!("&message={id}"), 1).await;
    let types: Vec<&str> = of_message.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(types, ["queued", "sent"]);
    let both = read_all(&stack, "&type=queued,sent&campaign=news", 50).await;
    assert_eq!(both.len(), 60);

    // Bad parameters name themselves.
    for (query, field) in [
        ("type=opened,nope", "type"),
        ("after=xyz", "after"),
        ("limit=0", "limit"),
        ("campaign=news&message=msg_1", "campaign"),
        ("message=news", "message"),
    ] {
        let (status, reply) = stack.call("GET", &format!("/v1/events?{query}"), None).await;
        assert_eq!((status, reply["error"]["field"].as_str()), (422, Some(field)), "{query}: {reply}");
    }
}
