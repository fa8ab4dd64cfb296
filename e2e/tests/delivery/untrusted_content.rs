//! Content written by API callers is untrusted. Through the real binaries: a template whose
//! output multiplies fails only the recipient whose data makes it blow up, and the others of
//! the same batch are sent; recursive inline partials stored before the template rules (put
//! straight into Redis) fail their recipients with the reason instead of overflowing the
//! worker's stack; a bare CR from a variable never reaches the wire.

use crate::common;

use std::time::Duration;

use serde_json::{Value, json};
use sluice_shared::keys;

async fn failures(stack: &common::Stack, campaign: &str) -> Vec<Value> {
    let (status, page) = stack.call("GET", &format!("/v1/events?campaign={campaign}&type=failed"), None).await;
    assert_eq!(status, 200, "{page}");
    page["events"].as_array().unwrap().clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_template_that_multiplies_its_output_fails_only_its_recipient() {
    let mut stack = common::start_with("", 1, true).await;
    let big: Vec<u32> = (0..60).collect();
    let body = json!({
        "id": "blowup",
        "from": {"email": "news@shop.example"},
        "subject": "Hi",
        "text": "{{#each a}}{{#each ../a}}{{#each ../../a}}0123456789{{/each}}{{/each}}{{/each}}",
        "recipients": [
            {"email": "small@x.example", "vars": {"a": [1, 2]}},
            {"email": "huge@x.example", "vars": {"a": big}},
            {"email": "other@x.example", "vars": {"a": [1]}}
        ]
    });
    let (status, reply) = stack.call("POST", "/v1/campaigns", Some(body)).await;
    assert_eq!(status, 201, "{reply}");
    let done = stack.wait_status("blowup", "completed", Duration::from_secs(20)).await;
    let c = common::counts(&done);
    assert_eq!((c["sent"], c["failed"]), (2, 1), "{done}");
    let failed = failures(&stack, "blowup").await;
    assert_eq!(failed[0]["recipient"], "huge@x.example", "{failed:?}");
    let reason = failed[0]["data"]["reason"].as_str().unwrap_or_default();
    assert!(reason.contains("rendered output exceeds 2097152 bytes"), "{failed:?}");
    assert_eq!(stack.sink.state.delivered_to("small@x.example"), 1);
    assert!(stack.workers[0].is_running(), "the worker lives on\n{}", stack.logs());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recursive_partials_stored_before_the_rules_fail_without_killing_the_worker() {
    let mut stack = common::start_with("", 1, true).await;
    let recipients = (0..5).map(|i| json!({"email": format!("r{i}@x.example"), "vars": {"name": "R"}})).collect();
    let mut body = common::campaign_body("recursive", recipients);
    body["start"] = false.into();
    let (status, reply) = stack.call("POST", "/v1/campaigns", Some(body)).await;
    assert_eq!(status, 201, "{reply}");
    // As if accepted by an older release: the stored spec gets the template the API now refuses.
    let mut redis = stack.redis.conn();
    let spec: String = redis::cmd("HGET").arg(keys::campaign_meta("recursive")).arg("spec").query(&mut redis).unwrap();
    let mut spec: Value = serde_json::from_str(&spec).unwrap();
    spec["text"] = r#"{{#*inline "a"}}x{{> b}}{{/inline}}{{#*inline "b"}}y{{> a}}{{/inline}}{{> a}}"#.into();
    redis::cmd("HSET")
        .arg(keys::campaign_meta("recursive"))
        .arg("spec")
        .arg(spec.to_string())
        .query::<()>(&mut redis)
        .unwrap();
    let (status, reply) = stack.call("POST", "/v1/campaigns/recursive/start", None).await;
    assert_eq!(status, 200, "{reply}");
    let done = stack.wait_status("recursive", "completed", Duration::from_secs(20)).await;
    assert_eq!(common::counts(&done)["failed"], 5, "{done}");
    let failed = failures(&stack, "recursive").await;
    assert!(failed[0]["data"]["reason"].as_str().unwrap_or_default().contains("partials"), "{failed:?}");
    assert!(stack.workers[0].is_running(), "the worker lives on\n{}", stack.logs());
    let others = common::recipients(3, 1, |i| format!("after{i}"));
    let (status, _) = stack.call("POST", "/v1/campaigns", Some(common::campaign_body("after", others))).await;
    assert_eq!(status, 201);
    let done = stack.wait_status("after", "completed", Duration::from_secs(20)).await;
    assert_eq!(common::counts(&done)["sent"], 3);
}

/// Bytes of `raw` that are a CR not followed by LF, or an LF not preceded by CR.
fn bare_line_ends(raw: &[u8]) -> usize {
    (0..raw.len())
        .filter(|&i| {
            (raw[i] == b'\r' && raw.get(i + 1) != Some(&b'\n')) || (raw[i] == b'\n' && (i == 0 || raw[i - 1] != b'\r'))
        })
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bare_cr_in_a_variable_never_reaches_the_wire() {
    let stack = common::start_with("", 1, true).await;
    let smuggle = "x\r.\r\nMAIL FROM:<ceo@bank.example>\r\nRCPT TO:<v@x.example>\r\nDATA\r\n\rFrom: ceo\r\r\n";
    let body = json!({
        "id": "smuggle",
        "from": {"email": "news@shop.example"},
        "subject": "Hello",
        "html": "<p>Hi {{name}}</p>",
        "text": "Hi {{name}}",
        "recipients": [{"email": "ann@x.example", "vars": {"name": smuggle}},
                       {"email": "esc@x.example", "vars": {"name": "a\u{1b}[31mb\u{0}"}}]
    });
    let (status, reply) = stack.call("POST", "/v1/campaigns", Some(body.clone())).await;
    assert_eq!(status, 201, "{reply}");
    stack.wait_status("smuggle", "completed", Duration::from_secs(20)).await;
    let messages = stack.sink.state.messages.lock().unwrap().clone();
    assert_eq!(messages.len(), 2);
    for (rcpt, raw) in &messages {
        assert_eq!(bare_line_ends(raw), 0, "{rcpt}: {}", String::from_utf8_lossy(raw));
    }
    // A control character rendered into a header fails that recipient.
    let mut subject_body = body;
    subject_body["id"] = "smuggle-subject".into();
    subject_body["subject"] = "Hello {{name}}".into();
    subject_body["recipients"] = json!([{"email": "esc@x.example", "vars": {"name": "a\u{1b}[31mb"}},
                                        {"email": "nul@x.example", "vars": {"name": "a\u{0}b"}},
                                        {"email": "fine@x.example", "vars": {"name": "Fine"}}]);
    let (status, reply) = stack.call("POST", "/v1/campaigns", Some(subject_body)).await;
    assert_eq!(status, 201, "{reply}");
    let done = stack.wait_status("smuggle-subject", "completed", Duration::from_secs(20)).await;
    assert_eq!((common::counts(&done)["failed"], common::counts(&done)["sent"]), (2, 1), "{done}");
    let failed = failures(&stack, "smuggle-subject").await;
    assert!(failed.iter().all(|f| f["data"]["reason"].as_str().unwrap_or_default().contains("control character")));
}
