//! Bounces and complaints that arrive later, end to end: messages go out with a VERP
//! Return-Path and a signed trace header; realistic reports built from the messages the sink
//! captured (a multipart DSN with the original message, an ARF complaint with a redacted
//! recipient, a DSN matched only by Message-ID) are posted to /v1/inbound, recorded once,
//! and suppress the address; forged and unparseable ones are kept, never dropped.

use crate::common;

use std::{path::PathBuf, time::Duration};

use serde_json::{Value, json};
use sluice_shared::keys;

pub(crate) fn fixture(name: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scheduler/tests/fixtures").join(name);
    std::fs::read_to_string(path).unwrap()
}

pub(crate) fn head(raw: &str) -> &str {
    &raw[..raw.find("\r\n\r\n").unwrap() + 2]
}

pub(crate) fn header<'a>(raw: &'a str, name: &str) -> &'a str {
    head(raw).split("\r\n").find_map(|l| l.strip_prefix(&format!("{name}: "))).unwrap()
}

async fn post(stack: &common::Stack, report: String, rcpt: Option<&str>) -> (u16, Value) {
    let path = match rcpt {
        Some(r) => format!("/v1/inbound?rcpt={r}"),
        None => "/v1/inbound".into(),
    };
    stack.post_raw(&path, report).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dsn_and_arf_reports_are_matched_recorded_and_suppress() {
    let stack = common::start_with("[bounces]\nreturn_path_domain = \"bounces.shop.example\"\n", 1, true).await;
    let recipients =
        ["ann", "bob", "cat", "dan"].map(|n| json!({"email": format!("{n}@x.example"), "vars": {"name": n}}));
    let (status, reply) =
        stack.call("POST", "/v1/campaigns", Some(common::campaign_body("late", recipients.to_vec()))).await;
    assert_eq!(status, 201, "{reply}");
    stack.wait_status("late", "completed", Duration::from_secs(20)).await;
    let messages: Vec<(String, String)> = stack
        .sink
        .state
        .messages
        .lock()
        .unwrap()
        .iter()
        .map(|(r, m)| (r.clone(), String::from_utf8_lossy(m).into_owned()))
        .collect();
    let message = |rcpt: &str| messages.iter().find(|(r, _)| r == rcpt).unwrap().1.clone();
    let ann = message("ann@x.example");
    let verp = header(&ann, "Return-Path").trim_matches(['<', '>']).to_string();
    assert!(verp.starts_with("b+late=0=") && verp.ends_with("@bounces.shop.example"), "VERP Return-Path: {verp}");
    let tag = verp.trim_start_matches("b+late=0=").trim_end_matches("@bounces.shop.example");
    assert_eq!(tag.len(), 16, "a 64-bit VERP tag: {verp}");
    assert!(!header(&ann, "X-Sluice-Ref").is_empty());

    // A multipart DSN carrying the whole original message: a hard bounce.
    let dsn = fixture("dsn_multipart.eml")
        .replace("{{VERP}}", &verp)
        .replace("{{RCPT}}", "ann@x.example")
        .replace("{{ORIGINAL}}\r\n", &ann);
    let (status, body) = post(&stack, dsn.clone(), None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["kind"], "dsn");
    let o = &body["outcomes"][0];
    assert_eq!(
        (o["event"].as_str(), o["category"].as_str(), o["suppressed"].as_bool()),
        (Some("bounced"), Some("invalid_recipient"), Some(true)),
        "{body}"
    );
    assert_eq!((o["campaign"].as_str(), o["index"].as_u64(), o["new"].as_bool()), (Some("late"), Some(0), Some(true)));
    let (status, entry) = stack.call("GET", "/v1/suppressions/ann@x.example", None).await;
    assert_eq!((status, entry["reason"].as_str()), (200, Some("bounce")), "{entry}");
    let (_, again) = post(&stack, dsn, None).await;
    assert_eq!(again["outcomes"][0]["new"], false, "the same report is recorded once");

    // An ARF complaint: recipient redacted everywhere; only the signed trace header names it.
    let bob = message("bob@x.example");
    let bob_verp = header(&bob, "Return-Path").trim_matches(['<', '>']).to_string();
    let redacted_headers = head(&bob).replace("To: bob@x.example", "To: xxxxxxxx@x.example");
    let arf = fixture("arf_redacted.eml")
        .replace("{{VERP}}", &bob_verp)
        .replace("{{ORIGINAL_REDACTED}}\r\n", &redacted_headers);
    let (status, body) = post(&stack, arf, None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        (body["kind"].as_str(), body["outcomes"][0]["event"].as_str()),
        (Some("arf"), Some("complained")),
        "{body}"
    );
    assert_eq!(body["outcomes"][0]["recipient"], "bob@x.example");
    let (status, entry) = stack.call("GET", "/v1/suppressions/bob@x.example", None).await;
    assert_eq!((status, entry["reason"].as_str()), (200, Some("complaint")), "{entry}");

    // A DSN with neither VERP nor trace header: matched by the original Message-ID.
    let cat = message("cat@x.example");
    let cat_original: String =
        cat.split("\r\n").filter(|l| !l.starts_with("X-Sluice-Ref:")).collect::<Vec<_>>().join("\r\n");
    let by_message_id = fixture("dsn_multipart.eml")
        .replace("{{VERP}}", "postmaster@shop.example")
        .replace("{{RCPT}}", "cat@x.example")
        .replace("{{ORIGINAL}}\r\n", &cat_original);
    let (status, body) = post(&stack, by_message_id, None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        (body["outcomes"][0]["recipient"].as_str(), body["outcomes"][0]["index"].as_u64()),
        (Some("cat@x.example"), Some(2))
    );

    // Forged: ann's VERP address naming dan, without the original message. Kept, not applied.
    let forged = fixture("dsn_multipart.eml")
        .replace("{{VERP}}", &verp)
        .replace("{{RCPT}}", "dan@x.example")
        .replace("{{ORIGINAL}}\r\n", "");
    let (status, body) = post(&stack, forged, Some(&verp)).await;
    assert_eq!(status, 202, "{body}");
    assert!(body["kept"].as_str().unwrap().starts_with("unmatched"), "{body}");
    let (status, _) = stack.call("GET", "/v1/suppressions/dan@x.example", None).await;
    assert_eq!(status, 404, "a forged report suppresses nobody");
    // Not a report at all.
    let (status, body) = post(&stack, "Subject: out of office\r\n\r\nI am away.\r\n".into(), None).await;
    assert_eq!(status, 202, "{body}");
    assert!(body["kept"].as_str().unwrap().starts_with("unparseable"), "{body}");
    let kept: i64 = redis::cmd("XLEN").arg(keys::inbound_unmatched()).query(&mut stack.redis.conn()).unwrap();
    assert_eq!(kept, 2, "both kept for a person to look at");
    let (status, body) = post(&stack, String::new(), None).await;
    assert_eq!(status, 422, "{body}");

    let view = stack.campaign("late").await;
    let counts = common::counts(&view);
    assert_eq!((counts["bounced_async"], counts["complained"], counts["sent"]), (2, 1, 4), "{view}");
    let scheduler_metrics = stack.scrape(0).await;
    assert!(scheduler_metrics.contains("sluice_inbound_reports_total{result=\"unmatched\"} 1"), "{scheduler_metrics}");
}

/// One SMTP exchange: sends `line` (if any) and returns the reply's first line.
async fn smtp(conn: &mut tokio::io::BufReader<tokio::net::TcpStream>, line: &str) -> String {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
    if !line.is_empty() {
        conn.get_mut().write_all(line.as_bytes()).await.unwrap();
    }
    let mut reply = String::new();
    loop {
        let mut l = String::new();
        conn.read_line(&mut l).await.unwrap();
        reply.push_str(&l);
        if l.len() < 4 || l.as_bytes()[3] != b'-' {
            return reply;
        }
    }
}

/// A stack with the inbound SMTP listener on its own port, after a one-recipient campaign
/// `id` to ann@x.example has completed: (stack, listener port, the message ann received).
async fn stack_with_listener(id: &str) -> (common::Stack, u16, String) {
    let port = sluice_testkit::free_port();
    let extra = format!(
        "[bounces]\nreturn_path_domain = \"bounces.shop.example\"\n\n[inbound]\nsmtp_listen = \"127.0.0.1:{port}\"\n"
    );
    let stack = common::start_with(&extra, 1, true).await;
    let body = common::campaign_body(id, vec![json!({"email": "ann@x.example", "vars": {"name": "Ann"}})]);
    let (status, reply) = stack.call("POST", "/v1/campaigns", Some(body)).await;
    assert_eq!(status, 201, "{reply}");
    stack.wait_status(id, "completed", Duration::from_secs(20)).await;
    let ann = String::from_utf8_lossy(&stack.sink.state.messages.lock().unwrap()[0].1).into_owned();
    (stack, port, ann)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_inbound_smtp_listener_takes_reports_for_the_bounce_domain_only() {
    let (stack, port, ann) = stack_with_listener("mx").await;
    let verp = header(&ann, "Return-Path").trim_matches(['<', '>']).to_string();
    let dsn = fixture("dsn_multipart.eml")
        .replace("{{VERP}}", &verp)
        .replace("{{RCPT}}", "ann@x.example")
        .replace("{{ORIGINAL}}\r\n", &ann);
    // Dot-stuff as any SMTP client would.
    let stuffed: String =
        dsn.split("\r\n").map(|l| if l.starts_with('.') { format!(".{l}\r\n") } else { format!("{l}\r\n") }).collect();

    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let mut c = tokio::io::BufReader::new(tcp);
    assert!(smtp(&mut c, "").await.starts_with("220"));
    assert!(smtp(&mut c, "EHLO mx.x.example\r\n").await.contains("SIZE"));
    assert!(smtp(&mut c, "MAIL FROM:<>\r\n").await.starts_with("250"));
    assert!(smtp(&mut c, "RCPT TO:<someone@elsewhere.example>\r\n").await.starts_with("550"), "no relaying");
    assert!(smtp(&mut c, &format!("RCPT TO:<{verp}>\r\n")).await.starts_with("250"));
    assert!(smtp(&mut c, "DATA\r\n").await.starts_with("354"));
    let reply = smtp(&mut c, &format!("{stuffed}.\r\n")).await;
    assert!(reply.starts_with("250"), "{reply}");
    assert!(smtp(&mut c, "QUIT\r\n").await.starts_with("221"));

    let (status, entry) = stack.call("GET", "/v1/suppressions/ann@x.example", None).await;
    assert_eq!((status, entry["reason"].as_str()), (200, Some("bounce")), "{entry}");
    assert_eq!(common::counts(&stack.campaign("mx").await)["bounced_async"], 1);
}

/// A DSN as the security review forged it: several `Final-Recipient` blocks, and the original
/// headers quoting `message_id`.
fn forged_dsn(to: &str, message_id: &str, victims: &[&str]) -> String {
    let blocks: String = victims
        .iter()
        .map(|v| format!("Final-Recipient: rfc822; {v}\r\nAction: failed\r\nStatus: 5.1.1\r\nDiagnostic-Code: smtp; 550 5.1.1 User unknown\r\n\r\n"))
        .collect();
    format!(
        "From: MAILER-DAEMON@mx.v.example\r\nTo: {to}\r\nSubject: Undelivered\r\nMIME-Version: 1.0\r\n\
         Content-Type: multipart/report; report-type=delivery-status; boundary=\"B\"\r\n\r\n\
         --B\r\nContent-Type: text/plain\r\n\r\nfailed\r\n\
         --B\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.v.example\r\n\r\n{blocks}\
         --B\r\nContent-Type: text/rfc822-headers\r\n\r\nFrom: news@shop.example\r\nMessage-ID: {message_id}\r\n\
         Subject: Hello\r\n\r\n--B--\r\n"
    )
}

fn forged_arf(message_id: &str, victim: &str) -> String {
    format!(
        "From: feedback@arf.v.example\r\nTo: abuse@shop.example\r\nSubject: FW: report\r\nMIME-Version: 1.0\r\n\
         Content-Type: multipart/report; report-type=feedback-report; boundary=\"B\"\r\n\r\n\
         --B\r\nContent-Type: text/plain\r\n\r\nabuse report\r\n\
         --B\r\nContent-Type: message/feedback-report\r\n\r\nFeedback-Type: abuse\r\nVersion: 1\r\n\
         Original-Rcpt-To: <{victim}>\r\n\r\n\
         --B\r\nContent-Type: text/rfc822-headers\r\n\r\nFrom: news@shop.example\r\nTo: {victim}\r\n\
         Message-ID: {message_id}\r\n\r\n--B--\r\n"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_reports_suppress_nobody_and_are_kept() {
    let (stack, port, ann) = stack_with_listener("real").await;
    let real_id = header(&ann, "Message-ID").to_string();
    assert!(!real_id.contains("real") && !real_id.starts_with("<0."), "opaque: {real_id}");
    let created: i64 =
        redis::cmd("HGET").arg(keys::campaign_meta("real")).arg("created_at").query(&mut stack.redis.conn()).unwrap();
    let victims = ["victim1@v.example", "victim2@v.example", "victim3@v.example"];
    let forgeries = [
        forged_dsn("b@bounces.shop.example", "<1.1.no-such-campaign@shop.example>", &victims),
        // The old, readable Message-ID of a campaign that exists: guessable, so not evidence.
        forged_dsn("b@bounces.shop.example", &format!("<0.{created}.real@shop.example>"), &victims),
        // A genuine Message-ID is bound to its recipient: it names none of the victims.
        forged_dsn("b@bounces.shop.example", &real_id, &victims),
    ];
    for dsn in forgeries {
        let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        let mut c = tokio::io::BufReader::new(tcp);
        assert!(smtp(&mut c, "").await.starts_with("220"));
        assert!(smtp(&mut c, "EHLO mx.v.example\r\n").await.starts_with("250"));
        assert!(smtp(&mut c, "MAIL FROM:<>\r\n").await.starts_with("250"));
        assert!(smtp(&mut c, "RCPT TO:<b@bounces.shop.example>\r\n").await.starts_with("250"));
        assert!(smtp(&mut c, "DATA\r\n").await.starts_with("354"));
        let reply = smtp(&mut c, &format!("{dsn}.\r\n")).await;
        assert!(reply.starts_with("250"), "taken and kept: {reply}");
        assert!(smtp(&mut c, "QUIT\r\n").await.starts_with("221"));
    }
    for id in ["<1.1.no-such-campaign@shop.example>", real_id.as_str()] {
        let (status, body) = post(&stack, forged_arf(id, "victim1@v.example"), None).await;
        assert_eq!(status, 202, "{body}");
        assert!(body["kept"].as_str().unwrap().starts_with("unmatched"), "{body}");
    }
    for v in victims {
        let (status, entry) = stack.call("GET", &format!("/v1/suppressions/{v}"), None).await;
        assert_eq!(status, 404, "{v} was suppressed by a forged report: {entry}");
    }
    let (_, list) = stack.call("GET", "/v1/suppressions", None).await;
    assert_eq!(list["items"].as_array().unwrap().len(), 0, "{list}");
    let kept: i64 = redis::cmd("XLEN").arg(keys::inbound_unmatched()).query(&mut stack.redis.conn()).unwrap();
    assert_eq!(kept, 5, "every forgery kept for a person to look at");
    let c = common::counts(&stack.campaign("real").await);
    assert_eq!((c["bounced_async"], c["complained"]), (0, 0), "{c:?}");

    // The genuine Message-ID with its own recipient is still matched.
    let genuine = forged_dsn("b@bounces.shop.example", &real_id, &["ann@x.example"]);
    let (status, body) = post(&stack, genuine, None).await;
    assert_eq!((status, body["outcomes"][0]["recipient"].as_str()), (200, Some("ann@x.example")), "{body}");
}
