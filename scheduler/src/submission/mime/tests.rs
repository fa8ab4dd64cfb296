use super::*;

fn now() -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::parse_from_rfc3339("2026-12-04T10:00:00Z").unwrap().into()
}

fn text(p: &Prepared) -> String {
    String::from_utf8_lossy(&p.mime).into_owned()
}

#[test]
fn the_message_is_kept_as_given_but_for_bcc_our_fields_and_a_missing_date() {
    let raw = b"From: \"Shop\" <orders@shop.example>\r\nTo: ann@x.example\r\nBcc: hidden@x.example,\r\n  other@x.example\r\nSubject: =?UTF-8?Q?Caf=C3=A9?=\r\nX-Sluice-Tags: receipt, eu ,\r\nX-Sluice-Metadata: {\"order\":\r\n  42}\r\nX-Sluice-Ref: forged\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nBcc: stays in the body\r\n\xe9t\xe9\r\n";
    let p = prepare(raw, now()).unwrap();
    assert_eq!(p.from, "orders@shop.example");
    assert_eq!(p.from_name.as_deref(), Some("Shop"));
    assert_eq!(p.subject, "Café");
    assert_eq!(p.tags, ["receipt", "eu"]);
    assert_eq!(p.metadata, Some(serde_json::json!({"order": 42})));
    assert_eq!(p.message_id, None);
    let want = "From: \"Shop\" <orders@shop.example>\r\nTo: ann@x.example\r\nSubject: =?UTF-8?Q?Caf=C3=A9?=\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nDate: Fri, 4 Dec 2026 10:00:00 +0000\r\n\r\nBcc: stays in the body\r\n";
    assert!(text(&p).starts_with(want), "{}", text(&p));
    assert!(p.mime.ends_with(b"\r\n\xe9t\xe9\r\n"), "8-bit bytes pass untouched");
}

#[test]
fn a_given_date_and_message_id_are_kept_and_bare_newlines_become_crlf() {
    let raw =
        b"Date: Thu, 3 Dec 2026 09:00:00 +0000\nMessage-ID:  <abc@shop.example>\nFrom: a@shop.example\n\nline\nlast";
    let p = prepare(raw, now()).unwrap();
    assert_eq!(p.message_id.as_deref(), Some("<abc@shop.example>"));
    assert_eq!(
        text(&p),
        "Date: Thu, 3 Dec 2026 09:00:00 +0000\r\nMessage-ID:  <abc@shop.example>\r\nFrom: a@shop.example\r\n\r\nline\r\nlast\r\n"
    );
}

#[test]
fn a_message_without_a_blank_line_gets_one_before_its_body() {
    let p = prepare(b"From: a@shop.example\r\nthis line is not a field\r\n", now()).unwrap();
    assert!(text(&p).ends_with("\r\n\r\nthis line is not a field\r\n"), "{}", text(&p));
    let p = prepare(b"From: a@shop.example\r\n", now()).unwrap();
    assert!(text(&p).ends_with("+0000\r\n\r\n"), "{}", text(&p));
}

#[test]
fn refusals_name_the_problem() {
    let refused = |raw: &[u8]| prepare(raw, now()).unwrap_err();
    assert!(refused(b"Subject: x\r\n\r\nbody\r\n").text.contains("no From:"));
    assert!(refused(b"From: a@shop.example\r\nFrom: b@shop.example\r\n\r\n").text.contains("more than one From:"));
    assert!(refused(b"From: a@shop.example, b@shop.example\r\n\r\n").text.contains("exactly one address"));
    assert!(refused(b"From: nobody\r\n\r\n").text.contains("exactly one address"));
    // Found by fuzzing: an encoded word the parser reads as a mailbox with an empty address.
    let empty = b"From:=?2 \xbe\0\0\0\0\0\0\0?B?Bcb ?=(2z@=2 z@?B?mb\xa9FR\xffO";
    assert!(refused(empty).text.contains("exactly one address"));
    assert!(refused(b"From: a@shop.example\r\n\r\nx\r.\r\nMAIL FROM:<x@y>\r\n").text.contains("bare CR"));
    let r = refused(b"From: a@shop.example\r\nX-Sluice-Metadata: [1]\r\n\r\n");
    assert_eq!((r.code, r.reason), ("550 5.6.0", "content"));
    assert!(r.text.starts_with("X-Sluice-Metadata: must be a JSON object"), "{}", r.text);
    assert!(refused(b"From: a@shop.example\r\nX-Sluice-Metadata: {\r\n\r\n").text.contains("not JSON"));
    let many = format!("From: a@shop.example\r\nX-Sluice-Tags: {}\r\n\r\n", ["t"; 11].join(","));
    assert!(refused(many.as_bytes()).text.starts_with("X-Sluice-Tags: 11 tags"));
}
