//! Transactional messages through the real binaries: stored, versioned templates; a send
//! with an Idempotency-Key replayed (same id, one delivery) and misused (409); the status and
//! events of a message; bad input named by field.

use crate::common;

use std::time::Duration;

use serde_json::json;

fn subject_of(raw: &[u8]) -> String {
    let text = String::from_utf8_lossy(raw);
    text.split("\r\n").find_map(|l| l.strip_prefix("Subject: ")).unwrap_or_default().to_string()
}

/// The subject of the message the sink kept for `rcpt`.
fn subject_for(stack: &common::Stack, rcpt: &str) -> Option<String> {
    stack.sink.state.messages.lock().unwrap().iter().find(|(r, _)| r == rcpt).map(|(_, m)| subject_of(m))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transactional_send_is_idempotent_and_uses_stored_templates() {
    let stack = common::start_with("", 1, true).await;

    // Templates: every PUT is a new version.
    let v1 = json!({"subject": "Reset your password, {{name}}", "text": "Code {{code}}"});
    let (status, body) = stack.call("PUT", "/v1/templates/reset", Some(v1)).await;
    assert_eq!((status, body["version"].as_u64()), (201, Some(1)), "{body}");
    let v2 = json!({"subject": "Your reset code, {{name}}", "text": "Code {{code}}", "html": "<p>{{code}}</p>"});
    let (status, body) = stack.call("PUT", "/v1/templates/reset", Some(v2)).await;
    assert_eq!((status, body["version"].as_u64()), (200, Some(2)), "{body}");
    let (status, body) = stack.call("GET", "/v1/templates/reset?version=1", None).await;
    assert_eq!((status, body["subject"].as_str()), (200, Some("Reset your password, {{name}}")), "{body}");
    let (status, body) =
        stack.call("PUT", "/v1/templates/bad", Some(json!({"subject": "x {{#if}}", "text": "t"}))).await;
    assert_eq!((status, body["error"]["field"].as_str()), (422, Some("subject")), "{body}");

    let message = json!({
        "from": "account@shop.example",
        "to": "ann@x.example",
        "template": "reset",
        "vars": {"name": "Ann", "code": "123456"},
        "tags": ["password-reset"],
        "metadata": {"user_id": 42},
    });
    let key = [("Idempotency-Key", "reset-42-1")];
    let (status, _, first) = stack.call_with("POST", "/v1/messages", Some(message.clone()), &key).await;
    assert_eq!(status, 202, "{first}");
    let id = first["id"].as_str().unwrap().to_string();
    assert!(id.starts_with("msg_"), "{id}");
    let (status, headers, again) = stack.call_with("POST", "/v1/messages", Some(message.clone()), &key).await;
    assert_eq!((status, again["id"].as_str()), (202, Some(id.as_str())), "{again}");
    assert_eq!(headers.get("idempotent-replayed").map(|v| v.to_str().unwrap()), Some("true"));
    let mut other = message.clone();
    other["vars"]["code"] = "999999".into();
    let (status, _, refused) = stack.call_with("POST", "/v1/messages", Some(other), &key).await;
    assert_eq!(status, 409, "{refused}");

    let view = stack.wait_message(&id, "sent", Duration::from_secs(10)).await;
    assert_eq!(view["recipients"], json!([{"email": "ann@x.example", "status": "sent"}]));
    assert_eq!(view["template"], json!({"id": "reset", "version": 2}));
    let sent = view["events"].as_array().unwrap().iter().find(|e| e["type"] == "sent").expect("a sent event");
    assert_eq!(sent["message_id"], id.as_str());
    assert_eq!(sent["recipient"], "ann@x.example");
    assert_eq!(sent["tags"], json!(["password-reset"]));
    assert_eq!(sent["metadata"], json!({"user_id": 42}));
    assert!(sent["id"].as_str().unwrap().starts_with(&format!("{id}:")));

    // Replayed again after delivery: same id, still one message at the sink.
    let (status, _, late) = stack.call_with("POST", "/v1/messages", Some(message), &key).await;
    assert_eq!((status, late["id"].as_str()), (202, Some(id.as_str())));
    // The replay queued nothing: the message still has its one recipient, sent, and no job
    // waits in any stream or retry set.
    let (_, view) = stack.call("GET", &format!("/v1/messages/{id}"), None).await;
    assert_eq!(view["recipients"], json!([{"email": "ann@x.example", "status": "sent"}]), "{view}");
    let counts: std::collections::BTreeMap<String, u64> =
        redis::cmd("HGETALL").arg(sluice_shared::keys::campaign_counts(&id)).query(&mut stack.redis.conn()).unwrap();
    assert_eq!((counts["total"], counts["sent"], counts.get("queued").copied().unwrap_or(0)), (1, 1, 0), "{counts:?}");
    assert_eq!(stack.sink.state.delivered_to("ann@x.example"), 1);
    let subjects: Vec<String> = stack.sink.state.messages.lock().unwrap().iter().map(|(_, m)| subject_of(m)).collect();
    assert_eq!(subjects, ["Your reset code, Ann"]);

    // A pinned older version, two recipients, no key: each request is its own message.
    let pinned = json!({"from": "account@shop.example", "to": ["bob@x.example", "cat@y.example"],
        "template": "reset", "template_version": 1, "vars": {"name": "Bob", "code": "1"}});
    let (status, two) = stack.call("POST", "/v1/messages", Some(pinned)).await;
    assert_eq!((status, two["recipients"].as_u64()), (202, Some(2)), "{two}");
    stack.wait_message(two["id"].as_str().unwrap(), "sent", Duration::from_secs(10)).await;
    assert_eq!(subject_for(&stack, "bob@x.example").as_deref(), Some("Reset your password, Bob"));

    // Bad input names the field and stores nothing.
    for (body, field) in [
        (json!({"from": "a@shop.example", "subject": "s", "text": "t"}), "to"),
        (json!({"from": "a@shop.example", "to": "x@y.example", "template": "reset", "subject": "s"}), "subject"),
        (json!({"from": "a@shop.example", "to": "x@y.example", "template": "nope"}), "template"),
        (json!({"from": "a@shop.example", "to": ["x@y.example", "bad"], "subject": "s", "text": "t"}), "to[1]"),
        (json!({"from": "a@shop.example", "to": "x@y.example", "subject": "s", "text": "t", "tags": [""]}), "tags[0]"),
    ] {
        let (status, reply) = stack.call("POST", "/v1/messages", Some(body)).await;
        assert_eq!((status, reply["error"]["field"].as_str()), (422, Some(field)), "{reply}");
    }
    let (status, _, reply) = stack.call_with("POST", "/v1/messages", Some(json!({})), &[("Idempotency-Key", "")]).await;
    assert_eq!((status, reply["error"]["field"].as_str()), (422, Some("Idempotency-Key")), "{reply}");
    let (status, _) = stack.call("GET", "/v1/messages/msg_nope", None).await;
    assert_eq!(status, 404);
    // A campaign can name a stored template too.
    let campaign = json!({"id": "tpl", "from": {"email": "news@shop.example"}, "template": "reset",
        "recipients": [{"email": "dan@x.example", "vars": {"name": "Dan", "code": "7"}}]});
    let (status, reply) = stack.call("POST", "/v1/campaigns", Some(campaign)).await;
    assert_eq!(status, 201, "{reply}");
    stack.wait_status("tpl", "completed", Duration::from_secs(10)).await;
    assert_eq!(subject_for(&stack, "dan@x.example").as_deref(), Some("Your reset code, Dan"));

    let (status, _) = stack.call("DELETE", "/v1/templates/reset", None).await;
    assert_eq!(status, 204);
    let (status, _) = stack.call("GET", "/v1/templates/reset", None).await;
    assert_eq!(status, 404);
}
