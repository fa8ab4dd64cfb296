//! Erasing an address (`DELETE /v1/recipients/{email}`, GDPR / APPI): after a campaign, a
//! message, a draft, a timeline read, a manual suppression and an unmatched report all named
//! it, a dump of every Redis key and of the whole PostgreSQL database finds no occurrence; the
//! answer counts what went where; the audit entry of the erase carries only the hash; the
//! address is still never mailed (a draft started later and a new campaign suppress it). While
//! mail to an address is in flight the erase is refused and changes nothing.

use std::time::Duration;

use serde_json::{Value, json};
use sluice_testkit::PostgresServer;

use super::{common, history_toml, wait_events};

const ANN: &str = "ann@d0.example";

/// Every key's name and content, on every node, lower-cased.
fn redis_dump(stack: &common::Stack) -> String {
    let mut out = String::new();
    for mut node in stack.redis.each_node() {
        let keys: Vec<String> = redis::cmd("KEYS").arg("*").query(&mut node).unwrap();
        for key in keys {
            let kind: String = redis::cmd("TYPE").arg(&key).query(&mut node).unwrap();
            let content: Vec<redis::Value> = match kind.as_str() {
                "string" => vec![redis::cmd("GET").arg(&key).query(&mut node).unwrap()],
                "hash" => vec![redis::cmd("HGETALL").arg(&key).query(&mut node).unwrap()],
                "list" => vec![redis::cmd("LRANGE").arg(&key).arg(0).arg(-1).query(&mut node).unwrap()],
                "set" => vec![redis::cmd("SMEMBERS").arg(&key).query(&mut node).unwrap()],
                "zset" => vec![redis::cmd("ZRANGE").arg(&key).arg(0).arg(-1).query(&mut node).unwrap()],
                "stream" => vec![redis::cmd("XRANGE").arg(&key).arg("-").arg("+").query(&mut node).unwrap()],
                other => panic!("key {key} of type {other}"),
            };
            out.push_str(&format!("{key} {content:?}\n"));
        }
    }
    out.to_lowercase()
}

/// The lines of `dump` that name `address`.
fn naming(dump: &str, address: &str) -> Vec<String> {
    dump.lines().filter(|l| l.contains(address)).map(|l| l.chars().take(300).collect()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_erased_address_leaves_no_trace_and_stays_suppressed() {
    let pg = PostgresServer::start();
    let stack = common::start(&history_toml(&pg, ""), 1).await;
    let mut recipients = common::recipients(6, 2, |i| format!("reader{i}"));
    recipients.push(json!({"email": "Ann@D0.example", "vars": {"name": "Ann"}}));
    let (status, reply) = stack.call("POST", "/v1/campaigns", Some(common::campaign_body("spring", recipients))).await;
    assert_eq!(status, 201, "{reply}");
    stack.wait_status("spring", "completed", Duration::from_secs(30)).await;
    let (status, msg) = stack
        .call(
            "POST",
            "/v1/messages",
            Some(json!({"from": "a@shop.example", "to": "ANN@d0.example", "subject": "s", "text": "t"})),
        )
        .await;
    assert_eq!(status, 202, "{msg}");
    let message = msg["id"].as_str().unwrap().to_string();
    stack.wait_message(&message, "sent", Duration::from_secs(10)).await;
    let mut draft = common::campaign_body(
        "later",
        vec![
            json!({"email": ANN, "vars": {"name": "Ann"}}),
            json!({"email": "bob@d1.example", "vars": {"name": "Bob"}}),
        ],
    );
    draft["start"] = false.into();
    assert_eq!(stack.call("POST", "/v1/campaigns", Some(draft)).await.0, 201);
    assert_eq!(stack.call("PUT", "/v1/suppressions/ann@d0.example", Some(json!({"reason": "asked"}))).await.0, 201);
    let unsubscribe = json!({"scope": "list", "list": "news"});
    assert_eq!(stack.call("PUT", "/v1/suppressions/ann@d0.example", Some(unsubscribe)).await.0, 201);
    let report = "From: postmaster@elsewhere.example\r\nTo: bounces@shop.example\r\nSubject: failure\r\n\r\nCould not deliver to <ann@d0.example>.\r\n";
    let (status, kept) = stack.post_raw("/v1/inbound", report.to_string()).await;
    assert_eq!(status, 202, "{kept}");
    wait_events(&stack, "&recipient=ann@d0.example", 4).await;
    let (status, _) = stack.call("GET", "/v1/recipients/Ann%40d0.example/timeline", None).await;
    assert_eq!(status, 200);
    assert!(!naming(&redis_dump(&stack), ANN).is_empty(), "the address is in Redis before the erase");
    let delivered_before = stack.sink.state.delivered.lock().unwrap().get(ANN).copied();

    // Bad input is named; then the erase.
    let (status, body) = stack.call("DELETE", "/v1/recipients/nobody", None).await;
    assert_eq!((status, body["error"]["field"].as_str()), (422, Some("email")), "{body}");
    let (status, erased) = stack.call("DELETE", "/v1/recipients/ANN@D0.example", None).await;
    assert_eq!(status, 200, "{erased}");
    let token = erased["erased"].as_str().unwrap().to_string();
    assert!(token.starts_with("sha256:") && erased["suppressed"] == true, "{erased}");
    let r = &erased["redis"];
    assert_eq!(r["events"], 4, "queued and sent, in the campaign and the message: {erased}");
    assert!(r["feed_events_redacted"].as_i64().unwrap() >= 4, "{erased}");
    assert_eq!((r["recipients_not_yet_sent"].as_i64(), r["messages"].as_i64()), (Some(1), Some(1)), "{erased}");
    assert_eq!(r["inbound_unmatched"], 1, "{erased}");
    assert!(r["audit_entries_redacted"].as_i64().unwrap() >= 1, "{erased}");
    assert_eq!(erased["postgres"]["events"], 4, "{erased}");

    // No trace anywhere: every Redis key, the whole database.
    let dump = redis_dump(&stack);
    assert!(naming(&dump, ANN).is_empty(), "Redis still names the address:\n{:?}", naming(&dump, ANN));
    assert!(naming(&dump, "ann%40d0.example").is_empty(), "{:?}", naming(&dump, "ann%40d0.example"));
    let database = pg.dump().to_lowercase();
    assert!(!database.contains(ANN), "PostgreSQL still names the address");
    assert!(database.contains("reader1@d1.example"), "the dump holds the other recipients' events");
    // The erase itself is audited under the hash.
    let (_, audit) = stack.call("GET", "/v1/audit?limit=1000", None).await;
    let paths: Vec<&str> = audit["items"].as_array().unwrap().iter().filter_map(|e| e["path"].as_str()).collect();
    assert!(paths.contains(&format!("/v1/recipients/{token}").as_str()), "{paths:?}");
    // The other recipients are untouched.
    assert_eq!(
        stack.call("GET", "/v1/history/events?campaign=spring", None).await.1["events"].as_array().unwrap().len(),
        12
    );

    // Still never mailed: the draft's staged copy and a new campaign are suppressed.
    assert_eq!(stack.call("POST", "/v1/campaigns/later/start", None).await.0, 200);
    let later = stack.wait_status("later", "completed", Duration::from_secs(30)).await;
    assert_eq!((common::counts(&later)["suppressed"], common::counts(&later)["sent"]), (1, 1), "{later}");
    let again = common::campaign_body("again", vec![json!({"email": "aNN@d0.example", "vars": {"name": "Ann"}})]);
    assert_eq!(stack.call("POST", "/v1/campaigns", Some(again)).await.0, 201);
    let view = stack.wait_status("again", "completed", Duration::from_secs(30)).await;
    assert_eq!(common::counts(&view)["suppressed"], 1, "{view}");
    assert_eq!(stack.sink.state.delivered.lock().unwrap().get(ANN).copied(), delivered_before);
    let kept: Option<String> =
        redis::cmd("HGET").arg("sluice:suppressed").arg(&token).query(&mut stack.redis.conn()).unwrap();
    assert!(kept.is_some_and(|k| k.contains("\"reason\":\"asked\"")), "the suppression moved under the hash");

    // The new campaign recorded the address its caller sent again; a second erase takes that too.
    wait_events(&stack, "&campaign=again", 1).await;
    let (status, twice) = stack.call("DELETE", "/v1/recipients/ann@d0.example", None).await;
    assert_eq!(status, 200, "{twice}");
    assert_eq!(
        (twice["redis"]["events"].as_i64(), twice["postgres"]["events"].as_i64()),
        (Some(1), Some(1)),
        "{twice}"
    );
    assert!(naming(&redis_dump(&stack), ANN).is_empty());
    assert!(!pg.dump().to_lowercase().contains(ANN));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_erase_while_mail_is_in_flight_is_refused_and_changes_nothing() {
    let pg = PostgresServer::start();
    let limits = "[limits.domains.\"slow.example\"]\nrate = \"1/h\"\nburst = 1\n";
    let stack = common::start(&history_toml(&pg, limits), 1).await;
    let recipients = vec![
        json!({"email": "first@slow.example", "vars": {"name": "F"}}),
        json!({"email": "busy@slow.example", "vars": {"name": "B"}}),
    ];
    assert_eq!(stack.call("POST", "/v1/campaigns", Some(common::campaign_body("slow", recipients))).await.0, 201);
    wait_events(&stack, "&recipient=busy@slow.example", 1).await;
    let (status, body) = stack.call("DELETE", "/v1/recipients/busy@slow.example", None).await;
    assert_eq!(status, 409, "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("slow"), "{body}");
    // Nothing changed: its events are still in Redis and in the history.
    let (_, events) = stack.call("GET", "/v1/events?campaign=slow&limit=100", None).await;
    assert!(events["events"].as_array().unwrap().iter().any(|e| e["recipient"] == "busy@slow.example"), "{events}");
    let kept: Value = stack.call("GET", "/v1/history/events?recipient=busy@slow.example", None).await.1;
    assert_eq!(kept["events"].as_array().unwrap().len(), 1, "{kept}");
    // Once the campaign is cancelled, the erase goes through.
    assert_eq!(stack.call("POST", "/v1/campaigns/slow/cancel", None).await.0, 200);
    stack.wait_status("slow", "cancelled", Duration::from_secs(20)).await;
    let (status, erased) = stack.call("DELETE", "/v1/recipients/busy@slow.example", None).await;
    assert_eq!(status, 200, "{erased}");
}
