//! A campaign's and a message's events reach PostgreSQL exactly as the events API shows them;
//! they are searched by recipient, source, type and time, paged newest first, reported on and
//! exported, and all of it still works once Redis has expired the campaign. Bad parameters are
//! named; the reads are audited.

use std::{collections::HashSet, time::Duration};

use serde_json::{Value, json};
use sluice_testkit::{PostgresServer, wait_for};

use super::{common, history_toml, read_all, row_counts, wait_events};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_are_searchable_reported_and_exported_after_redis_expired_them() {
    let pg = PostgresServer::start();
    let stack = common::start(&history_toml(&pg, "[campaigns]\nretention = \"2s\""), 1).await;
    let mut body = common::campaign_body("news", common::recipients(30, 3, |i| format!("U{i}")));
    body["tags"] = json!(["newsletter"]);
    body["metadata"] = json!({"quarter": "Q4"});
    let (status, reply) = stack.call("POST", "/v1/campaigns", Some(body)).await;
    assert_eq!(status, 201, "{reply}");
    stack.wait_status("news", "completed", Duration::from_secs(30)).await;
    let (status, msg) = stack
        .call(
            "POST",
            "/v1/messages",
            Some(json!({"from": "a@shop.example", "to": "u0@d0.example", "subject": "s", "text": "t"})),
        )
        .await;
    assert_eq!(status, 202, "{msg}");
    let message = msg["id"].as_str().unwrap().to_string();
    stack.wait_message(&message, "sent", Duration::from_secs(10)).await;
    // A message from a stored template: the history records which version it used.
    let template = json!({"subject": "Code {{code}}", "text": "Your code is {{code}}"});
    assert_eq!(stack.call("PUT", "/v1/templates/reset", Some(template)).await.0, 201);
    let (status, reset) = stack
        .call(
            "POST",
            "/v1/messages",
            Some(json!({"from": "a@shop.example", "to": "z@d2.example", "template": "reset", "vars": {"code": "42"}})),
        )
        .await;
    assert_eq!(status, 202, "{reset}");
    let reset = reset["id"].as_str().unwrap().to_string();
    wait_events(&stack, &format!("&message={reset}"), 2).await;
    assert_eq!(pg.sql("SELECT id || ':' || version FROM templates"), "reset:1\n");
    let recorded = pg.sql(&format!("SELECT kind, summary->'template'->>'id' FROM sources WHERE name = '{reset}'"));
    assert_eq!(recorded, "message|reset\n");

    // In PostgreSQL, each event exactly as the events API shows it (addresses lower-cased).
    let kept = wait_events(&stack, "&campaign=news", 60).await;
    let (status, live) = stack.call("GET", "/v1/events?campaign=news&limit=1000", None).await;
    assert_eq!(status, 200);
    let lower = |mut e: Value| {
        let r = e["recipient"].as_str().unwrap().to_lowercase();
        e["recipient"] = r.into();
        e
    };
    let mut from_redis: Vec<Value> = live["events"].as_array().unwrap().iter().cloned().map(lower).collect();
    let mut from_history = kept.clone();
    let by_id = |a: &Value, b: &Value| a["id"].as_str().cmp(&b["id"].as_str());
    from_redis.sort_by(by_id);
    from_history.sort_by(by_id);
    assert_eq!(from_history, from_redis);
    assert_eq!(kept[0]["tags"], json!(["newsletter"]));
    assert_eq!(kept[0]["metadata"], json!({"quarter": "Q4"}));
    wait_events(&stack, &format!("&message={message}"), 2).await;

    // Newest first, paged by cursor, each event once; filters by type and time.
    let paged = read_all(&stack, "&campaign=news", 7).await;
    assert_eq!(paged.len(), 60);
    assert_eq!(paged.iter().map(|e| e["id"].as_str().unwrap()).collect::<HashSet<_>>().len(), 60);
    let times: Vec<&str> = paged.iter().map(|e| e["at"].as_str().unwrap()).collect();
    assert!(times.windows(2).all(|w| w[0] >= w[1]), "newest first: {times:?}");
    assert_eq!(read_all(&stack, "&campaign=news&type=sent", 100).await.len(), 30);
    let future = "&from=2999-01-01T00:00:00Z";
    assert!(read_all(&stack, future, 10).await.is_empty());
    assert_eq!(read_all(&stack, "&to=2999-01-01T00:00:00Z&type=queued,sent", 1000).await.len(), 64);

    // One address's timeline across the campaign and the message, whatever the case asked.
    let (status, timeline) = stack.call("GET", "/v1/recipients/U0@D0.Example/timeline", None).await;
    assert_eq!(status, 200, "{timeline}");
    let seen: Vec<(String, String)> = timeline["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (e["type"].as_str().unwrap().into(), e["campaign_id"].as_str().or(e["message_id"].as_str()).unwrap().into())
        })
        .collect();
    assert_eq!(seen.len(), 4, "{seen:?}");
    for want in [("queued", "news"), ("sent", "news"), ("queued", message.as_str()), ("sent", message.as_str())] {
        assert!(seen.contains(&(want.0.into(), want.1.into())), "{want:?} in {seen:?}");
    }
    assert!(timeline["events"].as_array().unwrap().iter().all(|e| e["recipient"] == "u0@d0.example"));

    // The export: every event in the range, oldest first, as NDJSON and as CSV.
    let (status, ndjson) = stack.call("GET", "/v1/history/export?from=2000-01-01T00:00:00Z", None).await;
    assert_eq!(status, 200);
    let lines: Vec<Value> = ndjson.as_str().unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 64);
    assert!(lines.windows(2).all(|w| w[0]["at"].as_str() <= w[1]["at"].as_str()), "oldest first");
    let (status, csv) = stack.call("GET", "/v1/history/export?from=2000-01-01T00:00:00Z&format=csv", None).await;
    assert_eq!(status, 200);
    let csv = csv.as_str().unwrap();
    assert!(csv.starts_with("id,at,type,campaign_id,message_id,recipient,data\r\n"), "{csv}");
    assert_eq!(csv.lines().count(), 65);

    // Redis expires the finished campaign; the history still has it all.
    wait_for("the campaign to expire from Redis", Duration::from_secs(20), || async {
        (stack.call("GET", "/v1/campaigns/news", None).await.0 == 404).then_some(())
    })
    .await;
    assert_eq!(read_all(&stack, "&campaign=news", 1000).await.len(), 60);
    let (status, report) = stack.call("GET", "/v1/campaigns/news/report", None).await;
    assert_eq!(status, 200, "{report}");
    assert_eq!((report["totals"]["queued"].as_i64(), report["totals"]["sent"].as_i64()), (Some(30), Some(30)));
    assert_eq!(report["totals"]["bounced"], 0);
    assert_eq!(report["rates"]["bounce"], 0.0);
    assert_eq!(report["recorded"]["summary"]["tags"], json!(["newsletter"]));
    assert_eq!(report["recorded"]["summary"]["subject"], "Hello {{name}}");
    let destinations = report["destinations"].as_array().unwrap();
    assert_eq!(destinations.len(), 3, "{report}");
    assert!(destinations.iter().all(|d| d["totals"]["sent"] == 10), "{report}");
    let hourly = report["hourly"].as_array().unwrap();
    let per_hour: i64 = hourly.iter().map(|h| h["events"]["sent"].as_i64().unwrap_or(0)).sum();
    assert_eq!(per_hour, 30, "{report}");
    assert_eq!(stack.call("GET", "/v1/campaigns/nothing-here/report", None).await.0, 404);
    assert_eq!(row_counts(&pg), (64, 64));

    // Bad parameters name themselves.
    for (query, field) in [
        ("/v1/history/events?from=yesterday", "from"),
        ("/v1/history/events?from=2026-02-01T00:00:00Z&to=2026-01-01T00:00:00Z", "to"),
        ("/v1/history/events?type=sent,exploded", "type"),
        ("/v1/history/events?cursor=nonsense", "cursor"),
        ("/v1/history/events?limit=0", "limit"),
        ("/v1/history/events?limit=1001", "limit"),
        ("/v1/history/events?campaign=a&message=msg_b", "campaign"),
        ("/v1/history/events?message=news", "message"),
        ("/v1/history/events?recipient=not-an-address", "recipient"),
        ("/v1/recipients/nobody/timeline", "email"),
        ("/v1/history/export", "from"),
        ("/v1/history/export?from=2026-01-01T00:00:00Z&format=xml", "format"),
    ] {
        let (status, body) = stack.call("GET", query, None).await;
        assert_eq!((status, body["error"]["field"].as_str()), (422, Some(field)), "{query}: {body}");
    }
    let (status, body) = stack.call("GET", "/v1/history/events?sort=asc", None).await;
    assert_eq!(status, 400, "{body}");

    // Reads of personal data are audited.
    let (_, audit) = stack.call("GET", "/v1/audit?limit=1000", None).await;
    let paths: Vec<&str> = audit["items"].as_array().unwrap().iter().filter_map(|e| e["path"].as_str()).collect();
    assert!(paths.contains(&"/v1/history/events") && paths.contains(&"/v1/history/export"), "{paths:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_history_store_the_routes_say_so() {
    let stack = common::start("", 0).await;
    for path in ["/v1/history/events", "/v1/recipients/a@b.example/timeline", "/v1/campaigns/x/report"] {
        let (status, body) = stack.call("GET", path, None).await;
        assert_eq!(status, 404, "{path}: {body}");
        assert!(body["error"]["message"].as_str().unwrap().contains("[history] url"), "{body}");
    }
}
