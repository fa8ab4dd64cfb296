//! ISO-2022-JP through the real binaries: a campaign that asks for it arrives with its subject,
//! From name and text part in JIS, and Python's `email` package reads back the exact Japanese
//! text; a message holding ① (outside JIS X 0208) arrives as UTF-8 and its event says why; a
//! carrier's domain gets ISO-2022-JP by its profile without asking.

use crate::common;

use std::{process::Command, time::Duration};

use serde_json::{Value, json};

const SUBJECT: &str = "【お知らせ】年末年始の営業時間と配送スケジュールについて";
const NAME: &str = "山田商店";
const TEXT: &str =
    "山田様\r\n\r\nいつもご利用ありがとうございます。\r\n年末年始は十二月二十九日から休業いたします。\r\n";

/// What a mail client shows of the last message `rcpt` received.
fn read(stack: &common::Stack, rcpt: &str) -> (Value, String) {
    let messages = stack.sink.state.messages.lock().unwrap().clone();
    let raw = messages.iter().rev().find(|(r, _)| r == rcpt).expect("a message").1.clone();
    let path = std::env::temp_dir().join(format!("sluice-jis-{}-{rcpt}.eml", std::process::id()));
    std::fs::write(&path, &raw).unwrap();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/delivery/read_mime.py");
    let out = Command::new("python3").arg(script).arg(&path).output().expect("python3 runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    (serde_json::from_slice(&out.stdout).unwrap(), String::from_utf8_lossy(&raw).into_owned())
}

fn campaign(id: &str, to: &str, text: &str, charset: Option<&str>) -> Value {
    let mut body = json!({
        "id": id, "from": {"email": "news@shop.example", "name": NAME}, "subject": SUBJECT,
        "text": text, "html": "<p>山田様</p>", "recipients": [{"email": to}],
    });
    if let Some(c) = charset {
        body["charset"] = c.into();
    }
    body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn iso_2022_jp_decodes_to_the_exact_text_and_falls_back_to_utf_8_outside_jis_x_0208() {
    let stack = common::start_with("", 1, true).await;
    for (id, to, text, charset) in [
        ("jis", "ann@x.example", TEXT, Some("iso-2022-jp")),
        ("circled", "bob@x.example", "会議は①から始めます。\r\n", Some("iso-2022-jp")),
        ("carrier", "cat@docomo.ne.jp", TEXT, None),
    ] {
        let (status, reply) = stack.call("POST", "/v1/campaigns", Some(campaign(id, to, text, charset))).await;
        assert_eq!(status, 201, "{reply}");
        stack.wait_status(id, "completed", Duration::from_secs(20)).await;
    }

    for to in ["ann@x.example", "cat@docomo.ne.jp"] {
        let (shown, raw) = read(&stack, to);
        assert_eq!(shown["subject"], SUBJECT, "{raw}");
        assert_eq!(shown["from_name"], NAME, "{raw}");
        assert_eq!(shown["text"].as_str().unwrap().replace("\r\n", "\n"), TEXT.replace("\r\n", "\n"), "{raw}");
        assert_eq!(
            (shown["text_charset"].as_str(), shown["html_charset"].as_str()),
            (Some("iso-2022-jp"), Some("utf-8"))
        );
        assert!(raw.contains("=?ISO-2022-JP?B?") && raw.is_ascii(), "7-bit on the wire: {raw}");
    }

    let (shown, raw) = read(&stack, "bob@x.example");
    assert_eq!(shown["text_charset"], "utf-8", "{raw}");
    assert_eq!(shown["text"].as_str().unwrap().replace("\r\n", "\n"), "会議は①から始めます。\n");
    assert_eq!(shown["subject"], SUBJECT);
    let sent = stack.event_data("circled", "sent", "bob@x.example");
    assert!(sent.contains("sent as UTF-8") && sent.contains("U+2460"), "the event says why: {sent}");
    let (status, refused) =
        stack.call("POST", "/v1/campaigns", Some(campaign("bad", "dan@x.example", "x", Some("shift_jis")))).await;
    assert_eq!((status, refused["error"]["field"].as_str()), (422, Some("charset")), "{refused}");
}
