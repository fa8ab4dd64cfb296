//! What arrives at the relay is a correct RFC 5322 message: a Japanese subject and display
//! name arrive intact (RFC 2047), both parts in multipart/alternative, a unique Message-ID,
//! a Date, per-recipient rendering with HTML escaping in html only.

use crate::common;

use std::time::Duration;

use base64::Engine;

/// Decodes RFC 2047 encoded-words (UTF-8, B or Q) in an unfolded header value.
fn decode_words(value: &str) -> String {
    let mut out = String::new();
    let mut rest = value;
    while let Some(start) = rest.find("=?") {
        out.push_str(&rest[..start]);
        let word = &rest[start + 2..];
        let mut parts = word.splitn(3, '?');
        let (_charset, enc, tail) = (parts.next().unwrap(), parts.next().unwrap(), parts.next().unwrap());
        let end = tail.find("?=").unwrap();
        let payload = &tail[..end];
        let bytes = match enc {
            "b" | "B" => base64::engine::general_purpose::STANDARD.decode(payload).unwrap(),
            _ => payload.replace('_', " ").into_bytes(),
        };
        out.push_str(&String::from_utf8(bytes).unwrap());
        rest = tail[end + 2..].trim_start_matches([' ', '\t']);
    }
    out.push_str(rest);
    out
}

fn header(raw: &str, name: &str) -> Vec<String> {
    let head = &raw[..raw.find("\r\n\r\n").unwrap()];
    let unfolded = head.replace("\r\n ", " ").replace("\r\n\t", " ");
    unfolded.split("\r\n").filter_map(|l| l.strip_prefix(&format!("{name}: ")).map(str::to_string)).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn japanese_subjects_arrive_intact_in_well_formed_messages() {
    let stack = common::start_with("", 1, true).await;
    let body = serde_json::json!({
        "id": "jp",
        "from": {"email": "news@shop.example", "name": "ショップ 通信"},
        "subject": "{{name}}様、春のセールのお知らせ 🌸",
        "html": "<p>{{name}}</p><p>{{note}}</p>",
        "text": "{{name}}: {{note}}",
        "headers": {"X-Campaign-Tag": "spring"},
        "recipients": [
            {"email": "taro@x.example", "vars": {"name": "山田太郎", "note": "<b>&</b>"}},
            {"email": "hanako@y.example", "vars": {"name": "佐藤花子", "note": "ok"}}
        ]
    });
    let (status, reply) = stack.call("POST", "/v1/campaigns", Some(body)).await;
    assert_eq!(status, 201, "{reply}");
    stack.wait_status("jp", "completed", Duration::from_secs(30)).await;
    let messages = stack.sink.state.messages.lock().unwrap().clone();
    assert_eq!(messages.len(), 2);
    let mut ids = Vec::new();
    for (rcpt, raw) in &messages {
        let raw = String::from_utf8(raw.clone()).unwrap();
        let head = &raw[..raw.find("\r\n\r\n").unwrap()];
        assert!(head.is_ascii(), "headers must be 7-bit: {head}");
        for name in ["From", "To", "Subject", "Date", "Message-ID", "MIME-Version", "X-Campaign-Tag"] {
            assert_eq!(header(&raw, name).len(), 1, "{name} once in {head}");
        }
        let subject = decode_words(&header(&raw, "Subject")[0]);
        let who = if rcpt.starts_with("taro") { "山田太郎" } else { "佐藤花子" };
        assert_eq!(subject, format!("{who}様、春のセールのお知らせ 🌸"));
        assert!(decode_words(&header(&raw, "From")[0]).contains("ショップ 通信"), "{head}");
        assert!(raw.contains("multipart/alternative"), "{raw}");
        ids.push(header(&raw, "Message-ID")[0].clone());
    }
    ids.dedup();
    assert_eq!(ids.len(), 2, "Message-IDs are unique: {ids:?}");
    let taro = messages.iter().find(|(r, _)| r.starts_with("taro")).unwrap();
    let text = String::from_utf8(taro.1.clone()).unwrap();
    assert!(text.contains("&lt;b&gt;&amp;&lt;/b&gt;") || text.contains("&lt;b&gt;&amp;"), "html part escapes vars");
}
