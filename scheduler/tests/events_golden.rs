//! The events API's output, byte for byte, for a fixed set of events: written straight into a
//! campaign's and a message's own streams under explicit entry ids, copied into the feed by the
//! real scheduler, read back through `GET /v1/events`. The expected bytes are in
//! `fixtures/events_golden.json`; a change to how events are stored, packed or copied must not
//! change a byte a reader sees (ids, order, fields, escaping). `SLUICE_BLESS=1` rewrites the
//! file from the current build (only for a deliberate change of the API's output).

mod common;

use std::time::Duration;

use sluice_shared::keys;
use sluice_testkit::wait_for;

const GOLDEN: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/events_golden.json");

/// (entry id, type, index, recipient or None, data).
const CAMPAIGN_EVENTS: &[(&str, &str, &str, Option<&str>, &str)] = &[
    ("1796400000000-0", "queued", "0", Some("ann@x.example"), "{}"),
    ("1796400000000-1", "queued", "1", Some("bo.b+tag@y.example"), "{}"),
    (
        "1796400000123-0",
        "sent",
        "0",
        Some("ann@x.example"),
        r#"{"code":250,"enhanced":"2.0.0","text":"ok id=7","mx":"mx.x.example"}"#,
    ),
    (
        "1796400000200-0",
        "deferred",
        "1",
        Some("bo.b+tag@y.example"),
        r#"{"code":421,"text":"Überlastet — 混雑しています \"later\"","retry_in_s":60}"#,
    ),
    ("1796400060000-0", "requeued", "1", Some("bo.b+tag@y.example"), r#"{"reason":"reconciled","attempt":1}"#),
    (
        "1796400061000-0",
        "bounced",
        "1",
        Some("bo.b+tag@y.example"),
        r#"{"code":550,"category":"unknown_user","nested":{"list":[1,2.5,true,null]}}"#,
    ),
    ("1796400062000-0", "opened", "0", Some("ann@x.example"), r#"{"prefetch":false,"ua":"Mozilla/5.0 <script>"}"#),
    ("1796400063000-0", "campaign_paused", "-1", Some(""), r#"{"reason":"complaint rate 0.6% >= 0.3%"}"#),
    ("1796400064000-0", "clicked", "0", None, "not json"),
];

const MESSAGE: &str = "msg_019ac0000000000000000000gold";
const MESSAGE_EVENTS: &[(&str, &str, &str, Option<&str>, &str)] = &[
    ("1796400000050-0", "queued", "0", Some("cat@z.example"), "{}"),
    ("1796400000090-0", "sent", "0", Some("cat@z.example"), r#"{"code":250}"#),
];

/// Writes `events` into `source`'s stream and marks the source for the pump.
fn write(conn: &mut impl redis::ConnectionLike, source: &str, events: &[(&str, &str, &str, Option<&str>, &str)]) {
    for (id, kind, index, recipient, data) in events {
        let mut xadd = redis::cmd("XADD");
        xadd.arg(keys::campaign_events(source)).arg(*id).arg("type").arg(*kind).arg("i").arg(*index);
        if let Some(r) = recipient {
            xadd.arg("r").arg(*r);
        }
        xadd.arg("data").arg(*data);
        xadd.query::<String>(conn).unwrap();
    }
    let pending = keys::feed_pending(keys::feed_shard_of(source));
    redis::cmd("ZINCRBY").arg(pending).arg(1).arg(source).query::<f64>(conn).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_events_api_reads_the_same_bytes() {
    let api = common::Api::start("").await;
    // A draft campaign gives the events its tags and metadata; a draft writes no event.
    let spec = serde_json::json!({
        "id": "gold", "from": {"email": "news@shop.example"}, "subject": "s", "text": "t", "start": false,
        "recipients": [{"email": "ann@x.example"}, {"email": "bo.b+tag@y.example"}],
        "tags": ["spring", "ünï"], "metadata": {"crm_id": 42, "segment": "a\"b"},
    });
    let (status, reply) = api.call("POST", "/v1/campaigns", Some(spec)).await;
    assert_eq!(status, 201, "{reply}");
    let mut conn = api.redis.conn();
    write(&mut conn, "gold", CAMPAIGN_EVENTS);
    write(&mut conn, MESSAGE, MESSAGE_EVENTS);

    // Per source: the order across sources follows when each was copied, which varies.
    let http = reqwest::Client::new();
    let mut pages = Vec::new();
    for (filter, n) in [("campaign=gold", CAMPAIGN_EVENTS.len()), (&format!("message={MESSAGE}"), MESSAGE_EVENTS.len())]
    {
        let url = format!("{}/v1/events?limit=1000&{filter}", api.base);
        let body = wait_for("every event in the feed", Duration::from_secs(20), || async {
            let text = http.get(&url).bearer_auth(common::TOKEN).send().await.ok()?.text().await.ok()?;
            let page: serde_json::Value = serde_json::from_str(&text).ok()?;
            (page["events"].as_array()?.len() == n).then_some(text)
        })
        .await;
        // The page as served, up to its cursor (which names feed entries made at run time).
        pages.push(body[..body.rfind(",\"next\":").expect("a next cursor")].to_string());
    }
    let events = pages.join("\n");
    if std::env::var("SLUICE_BLESS").as_deref() == Ok("1") {
        std::fs::write(GOLDEN, format!("{events}\n")).unwrap();
    }
    let golden = std::fs::read_to_string(GOLDEN).expect("the golden file");
    assert_eq!(events, golden.trim_end_matches('\n'), "the events API output changed");
}
