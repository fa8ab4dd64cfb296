//! Every kind of bad input gets a 4xx JSON error naming the field, and a campaign rejected as
//! a whole writes nothing to Redis. Runs the real scheduler binary on its own redis-server.

mod common;

use common::Api;
use serde_json::{Value, json};

fn good() -> Value {
    json!({
        "from": {"email": "news@shop.example", "name": "Shop"},
        "subject": "Hi {{name}}",
        "html": "<p>Hello {{name}}</p>",
        "recipients": [{"email": "a@x.example", "vars": {"name": "A"}}]
    })
}

fn set(mut v: Value, key: &str, value: Value) -> Value {
    v[key] = value;
    v
}

fn unset(mut v: Value, key: &str) -> Value {
    v.as_object_mut().unwrap().remove(key);
    v
}

#[tokio::test]
async fn bad_campaigns_are_refused_whole_and_name_the_field() {
    let api = Api::start("[campaigns]\nmax_body_bytes = 2000\n").await;
    let cases: Vec<(String, u16, &str)> = vec![
        ("{\"from\": ".into(), 400, "body"),
        ("[1, 2]".into(), 400, "body"),
        (set(good(), "colour", "red".into()).to_string(), 400, "colour"),
        (unset(good(), "from").to_string(), 400, "from"),
        (unset(good(), "subject").to_string(), 400, "subject"),
        (unset(good(), "html").to_string(), 422, "html"),
        (set(good(), "from", json!({"email": "not-an-address"})).to_string(), 422, "from.email"),
        (set(good(), "from", json!({"email": format!("{}@x.example", "l".repeat(65))})).to_string(), 422, "from.email"),
        (set(good(), "from", json!({"email": format!("a@{}.example", ["d".repeat(63), "e".repeat(63), "f".repeat(63), "g".repeat(60)].join("."))})).to_string(), 422, "from.email"),
        (set(good(), "from", json!({"email": "a@x.example", "name": "Evil\r\nBcc: all@x.example"})).to_string(), 422, "from.name"),
        (set(good(), "from", json!({"email": "a\u{0}b@x.example"})).to_string(), 422, "from.email"),
        (set(good(), "subject", "Hi\nBcc: all@x.example".into()).to_string(), 422, "subject"),
        (set(good(), "headers", json!({"X-Tag": "a\r\nBcc: all@x.example"})).to_string(), 422, "headers.X-Tag"),
        (set(good(), "headers", json!({"X-Tag\r\nBcc": "v"})).to_string(), 422, "headers.X-Tag\r\nBcc"),
        (set(good(), "headers", json!({"X-Tag": "a\u{1b}[31m"})).to_string(), 422, "headers.X-Tag"),
        (set(good(), "reply_to", "nobody".into()).to_string(), 422, "reply_to"),
        (set(good(), "html", "<p>{{#each items}}</p>".into()).to_string(), 422, "html"),
        (set(good(), "subject", "Hi {{name".into()).to_string(), 422, "subject"),
        (set(good(), "text", r#"{{#*inline "a"}}x{{> b}}{{/inline}}{{#*inline "b"}}y{{> a}}{{/inline}}{{> a}}"#.into()).to_string(), 422, "text"),
        (set(good(), "html", "{{> footer}}".into()).to_string(), 422, "html"),
        (set(good(), "html", r#"{{log email level="error"}}"#.into()).to_string(), 422, "html"),
        (set(good(), "subject", "{{shout name}}".into()).to_string(), 422, "subject"),
        (set(good(), "html", "x".repeat(3000).into()).to_string(), 413, "html"),
        (set(good(), "send_at", "next tuesday".into()).to_string(), 422, "send_at"),
        (set(good(), "send_at", "2026-13-01T00:00:00Z".into()).to_string(), 422, "send_at"),
    ];
    for (body, status, field) in cases {
        let (got, reply) = api.request("POST", "/v1/campaigns", Some(common::TOKEN), Some(body.clone())).await;
        assert_eq!(got, status, "{body:?} -> {reply}");
        assert_eq!(reply["error"]["field"], field, "{body:?} -> {reply}");
        assert!(reply["error"]["message"].as_str().is_some_and(|m| !m.is_empty()), "{reply}");
    }
    assert!(api.campaign_keys().is_empty(), "a refused campaign left keys: {:?}", api.campaign_keys());
}

#[tokio::test]
async fn one_bad_recipient_rejects_only_itself() {
    let api = Api::start("").await;
    let body = set(
        good(),
        "recipients",
        json!([
            {"email": "ok@x.example", "vars": {"name": "A"}},
            {"email": "broken"},
            {"email": format!("{}@x.example", "l".repeat(65))},
            {"email": "crlf\r\n@x.example"},
            {"email": "ok2@x.example", "vars": "not an object"},
            {"email": "ok@X.EXAMPLE", "vars": {"name": "dup"}},
            {"emial": "typo@x.example"}
        ]),
    );
    let (status, reply) = api.call("POST", "/v1/campaigns", Some(set(body, "start", false.into()))).await;
    assert_eq!(status, 201, "{reply}");
    assert_eq!(reply["accepted"], 1);
    let rejected: Vec<u64> =
        reply["rejected"].as_array().unwrap().iter().map(|r| r["index"].as_u64().unwrap()).collect();
    assert_eq!(rejected, vec![1, 2, 3, 4, 5, 6], "{reply}");
    assert!(reply["rejected"][1]["error"].as_str().unwrap().contains("64"), "{reply}");
}

#[tokio::test]
async fn every_v1_route_needs_a_valid_token() {
    let api = Api::start("").await;
    for (method, path) in
        [("GET", "/v1/campaigns"), ("POST", "/v1/campaigns"), ("GET", "/v1/suppressions"), ("GET", "/v1/campaigns/x")]
    {
        let (status, reply) = api.request(method, path, None, None).await;
        assert_eq!(status, 401, "{method} {path}: {reply}");
        let (status, _) = api.request(method, path, Some("wrong-token-xyz"), None).await;
        assert_eq!(status, 401, "{method} {path} with a wrong token");
    }
}

#[tokio::test]
async fn drafts_take_ndjson_uploads_with_per_line_rejections() {
    let api = Api::start("").await;
    let draft = set(set(good(), "id", "draft1".into()), "start", false.into());
    let (status, reply) = api.call("POST", "/v1/campaigns", Some(draft)).await;
    assert_eq!((status, reply["status"].as_str()), (201, Some("draft")), "{reply}");
    let ndjson = "{\"email\":\"b@x.example\",\"vars\":{\"name\":\"B\"}}\n\nnot json\n{\"email\":\"bad\"}\n{\"email\":\"c@y.example\"}\n";
    let (status, reply) =
        api.request("POST", "/v1/campaigns/draft1/recipients", Some(common::TOKEN), Some(ndjson.into())).await;
    assert_eq!(status, 200, "{reply}");
    assert_eq!((reply["accepted"].as_u64(), reply["rejected_count"].as_u64()), (Some(2), Some(2)), "{reply}");
    let lines: Vec<u64> = reply["rejected"].as_array().unwrap().iter().map(|r| r["line"].as_u64().unwrap()).collect();
    assert_eq!(lines, vec![3, 4]);
    let (_, view) = api.call("GET", "/v1/campaigns/draft1", None).await;
    assert_eq!(view["counts"]["total"], 3, "{view}");

    // An overlong line and one that is not UTF-8 refuse only themselves: the lines after them
    // are still read (the first fuzz run found the upload ending at the first such line).
    let long = format!("{{\"email\":\"{}@x.example\"}}", "l".repeat(70_000));
    let body = [long.as_bytes(), b"\n{\"email\":\"e@x.example\"}\n\xff\xfe\n{\"email\":\"f@x.example\"}\n"].concat();
    let (status, reply) =
        api.request_bytes("POST", "/v1/campaigns/draft1/recipients", Some(common::TOKEN), Some(body)).await;
    assert_eq!(status, 200, "{reply}");
    assert_eq!((reply["accepted"].as_u64(), reply["rejected_count"].as_u64()), (Some(2), Some(2)), "{reply}");
    let errors: Vec<(u64, &str)> = reply["rejected"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["line"].as_u64().unwrap(), r["error"].as_str().unwrap()))
        .collect();
    assert_eq!(errors, [(1, "line is longer than 65536 bytes"), (3, "line is not UTF-8")]);

    let (status, _) = api.call("POST", "/v1/campaigns/draft1/pause", None).await;
    assert_eq!(status, 409, "a draft cannot be paused");
    let (status, _) = api.call("POST", "/v1/campaigns/draft1/start", None).await;
    assert_eq!(status, 200);
    let (status, reply) = api
        .request(
            "POST",
            "/v1/campaigns/draft1/recipients",
            Some(common::TOKEN),
            Some("{\"email\":\"d@x.example\"}\n".into()),
        )
        .await;
    assert_eq!(status, 409, "uploads only into drafts: {reply}");
    let (status, _) =
        api.request("POST", "/v1/campaigns/nope/recipients", Some(common::TOKEN), Some("{}\n".into())).await;
    assert_eq!(status, 404);
    let (status, _) = api.call("POST", "/v1/campaigns/draft1/explode", None).await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn future_send_at_holds_the_campaign_and_lists_page() {
    let api = Api::start("").await;
    let later = (chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339();
    let (status, reply) =
        api.call("POST", "/v1/campaigns", Some(set(set(good(), "id", "later".into()), "send_at", later.into()))).await;
    assert_eq!((status, reply["status"].as_str()), (201, Some("scheduled")), "{reply}");
    for i in 0..3 {
        let (status, _) = api.call("POST", "/v1/campaigns", Some(set(good(), "id", format!("c{i}").into()))).await;
        assert_eq!(status, 201);
    }
    let (_, page1) = api.call("GET", "/v1/campaigns?limit=2", None).await;
    assert_eq!(page1["items"].as_array().unwrap().len(), 2, "{page1}");
    let cursor = page1["next_cursor"].as_str().unwrap().to_string();
    let (_, page2) = api.call("GET", &format!("/v1/campaigns?limit=2&cursor={cursor}"), None).await;
    assert_eq!(page2["items"].as_array().unwrap().len(), 2, "{page2}");
    assert!(page2["next_cursor"].is_null());
    let (_, view) = api.call("GET", "/v1/campaigns/later", None).await;
    assert_eq!(view["status"], "scheduled", "held until send_at: {view}");
    let (status, reply) = api.call("GET", "/v1/campaigns?limit=0", None).await;
    assert_eq!((status, reply["error"]["field"].as_str()), (422, Some("limit")));
}

#[tokio::test]
async fn suppressions_can_be_managed() {
    let api = Api::start("").await;
    let (status, reply) = api.call("PUT", "/v1/suppressions/Ann@Example.COM", Some(json!({"reason": "asked"}))).await;
    assert_eq!((status, reply["email"].as_str()), (201, Some("ann@example.com")), "{reply}");
    let (status, reply) = api.call("GET", "/v1/suppressions/ann@example.com", None).await;
    assert_eq!((status, reply["reason"].as_str()), (200, Some("asked")), "{reply}");
    let (_, list) = api.call("GET", "/v1/suppressions?limit=10", None).await;
    assert_eq!(list["items"].as_array().unwrap().len(), 1, "{list}");
    let (status, reply) = api.call("PUT", "/v1/suppressions/not-an-address", None).await;
    assert_eq!((status, reply["error"]["field"].as_str()), (422, Some("email")), "{reply}");
    let (status, _) = api.call("DELETE", "/v1/suppressions/ann@example.com", None).await;
    assert_eq!(status, 204);
    let (status, _) = api.call("GET", "/v1/suppressions/ann@example.com", None).await;
    assert_eq!(status, 404);

    // A suppressed recipient is counted as suppressed at expansion and never queued.
    api.call("PUT", "/v1/suppressions/gone@x.example", None).await;
    let body = set(
        good(),
        "recipients",
        json!([{"email": "gone@x.example", "vars": {"name": "G"}}, {"email": "here@x.example", "vars": {"name": "H"}}]),
    );
    let (status, _) = api.call("POST", "/v1/campaigns", Some(set(body, "id", "sup".into()))).await;
    assert_eq!(status, 201);
    let view = sluice_testkit::wait_for("expansion", std::time::Duration::from_secs(10), || async {
        let (_, v) = api.call("GET", "/v1/campaigns/sup", None).await;
        (v["counts"]["staged"] == 0).then_some(v)
    })
    .await;
    assert_eq!(
        (view["counts"]["suppressed"].as_u64(), view["counts"]["queued"].as_u64()),
        (Some(1), Some(1)),
        "{view}"
    );
}
