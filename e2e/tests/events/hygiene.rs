//! List hygiene through the real binaries: with `sunset_after_sends = 2`, addresses that got two
//! campaigns without a click are skipped as dormant by the third (counted, with an event), one
//! that clicked is not; `GET /v1/recipients/{email}` shows the records, `GET /v1/hygiene/dormant`
//! lists the dormant ones; a campaign with `include_dormant` and a transactional message still
//! reach them.

use crate::common;

use std::time::Duration;

use serde_json::{Value, json};

fn campaign(id: &str) -> Value {
    let mut body = common::campaign_body(
        id,
        ["ann", "bob", "cat"].iter().map(|n| json!({"email": format!("{n}@x.example"), "vars": {"name": n}})).collect(),
    );
    body["html"] = r#"<p>Hi {{name}}</p><a href="https://shop.example/sale">Sale</a>"#.into();
    body["tracking"] = json!({"clicks": true});
    body
}

async fn run(stack: &common::Stack, body: Value) -> std::collections::BTreeMap<String, u64> {
    let id = body["id"].as_str().unwrap().to_string();
    let (status, reply) = stack.call("POST", "/v1/campaigns", Some(body)).await;
    assert_eq!(status, 201, "{reply}");
    common::counts(&stack.wait_status(&id, "completed", Duration::from_secs(20)).await)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dormant_addresses_are_skipped_and_counted_unless_the_campaign_includes_them() {
    let stack = common::start_with("[hygiene]\nsunset_after_sends = 2\n", 1, true).await;
    run(&stack, campaign("one")).await;
    run(&stack, campaign("two")).await;
    // Bob clicks the link in the second campaign.
    let raw = {
        let messages = stack.sink.state.messages.lock().unwrap();
        let last = messages.iter().rev().find(|(r, _)| r == "bob@x.example").unwrap();
        crate::tracking::unquote(&String::from_utf8_lossy(&last.1))
    };
    let click = crate::tracking::links(&raw, &format!("{}/c/", stack.public)).pop().expect("a tracked link");
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let clicked = http.get(&click).header("user-agent", "Mozilla/5.0 (X11; Linux) Firefox/140").send().await.unwrap();
    assert_eq!(clicked.status(), 302);

    let third = run(&stack, campaign("three")).await;
    assert_eq!((third["dormant"], third["sent"], third["total"]), (2, 1, 3), "{third:?}");
    assert_eq!(stack.event_data("three", "dormant", "ann@x.example"), "{}");
    assert_eq!(stack.sink.state.delivered_to("bob@x.example"), 3);
    assert_eq!(stack.sink.state.delivered_to("ann@x.example"), 2);

    let (status, ann) = stack.call("GET", "/v1/recipients/ann@x.example", None).await;
    assert_eq!(status, 200, "{ann}");
    let e = &ann["engagement"];
    assert_eq!((e["sends_since_engagement"].as_u64(), e["dormant"].as_bool()), (Some(2), Some(true)), "{ann}");
    assert!(e["last_click"].is_null() && e["first_seen"].is_string() && e["last_sent"].is_string(), "{ann}");
    let (_, bob) = stack.call("GET", "/v1/recipients/bob@x.example", None).await;
    let e = &bob["engagement"];
    assert_eq!((e["sends_since_engagement"].as_u64(), e["dormant"].as_bool()), (Some(1), Some(false)), "{bob}");
    assert!(e["last_click"].is_string(), "{bob}");
    let (status, _) = stack.call("GET", "/v1/recipients/nobody@x.example", None).await;
    assert_eq!(status, 404);

    let export = http
        .get(format!("{}/v1/hygiene/dormant?format=csv", stack.api))
        .bearer_auth(common::TOKEN)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let mut listed: Vec<&str> = export.lines().skip(1).filter_map(|l| l.split(',').next()).collect();
    listed.sort();
    assert_eq!(listed, ["ann@x.example", "cat@x.example"], "{export}");
    let (status, refused) = stack.call("GET", "/v1/hygiene/dormant?sends=0", None).await;
    assert_eq!((status, refused["error"]["field"].as_str()), (422, Some("sends")), "{refused}");

    let mut everyone = campaign("four");
    everyone["include_dormant"] = true.into();
    let four = run(&stack, everyone).await;
    assert_eq!((four["dormant"], four["sent"]), (0, 3), "{four:?}");
    let body = json!({"from": "accounts@shop.example", "to": "cat@x.example", "subject": "Reset", "text": "Code"});
    let (status, reply) = stack.call("POST", "/v1/messages", Some(body)).await;
    assert_eq!(status, 202, "{reply}");
    let message = stack.wait_message(reply["id"].as_str().unwrap(), "sent", Duration::from_secs(20)).await;
    assert_eq!(message["recipients"][0]["status"], "sent", "a transactional message is never skipped: {message}");
}
