use super::*;

const DSN: &str = include_str!("../../tests/fixtures/dsn_multipart.eml");
const ARF: &str = include_str!("../../tests/fixtures/arf_redacted.eml");

fn original(to: &str) -> String {
    format!(
        "From: Shop <news@shop.example>\r\nTo: {to}\r\nSubject: Spring\r\nMessage-ID: <3.1700000000000.spring@shop.example>\r\n\
         X-Sluice-Ref: abc.def\r\nMIME-Version: 1.0\r\n\r\nHello\r\n"
    )
}

fn fill(template: &str) -> String {
    let headers_only = original("xxxxxxxx@x.example");
    let headers_only = &headers_only[..headers_only.find("\r\n\r\n").unwrap() + 2];
    template
        .replace("{{VERP}}", "b+spring=3=0a1b2c3d@bounces.shop.example")
        .replace("{{RCPT}}", "ann@x.example")
        .replace("{{ORIGINAL}}\r\n", &original("ann@x.example"))
        .replace("{{ORIGINAL_REDACTED}}\r\n", headers_only)
}

#[test]
fn a_multipart_dsn_gives_its_recipient_and_the_original_headers() {
    let r = parse(fill(DSN).as_bytes()).unwrap();
    let Kind::Dsn(recipients) = &r.kind else { panic!("{r:?}") };
    assert_eq!(recipients.len(), 1);
    let d = &recipients[0];
    assert_eq!(d.address.as_deref(), Some("ann@x.example"));
    assert_eq!((d.action.as_str(), d.status.as_deref()), ("failed", Some("5.1.1")));
    assert!(
        d.diagnostic
            .as_deref()
            .unwrap()
            .starts_with("550 5.1.1 <ann@x.example>: Recipient address rejected: User unknown")
    );
    assert_eq!(field(&r.headers, "to"), Some("b+spring=3=0a1b2c3d@bounces.shop.example"));
    assert_eq!(field(&r.original, "message-id"), Some("<3.1700000000000.spring@shop.example>"));
    assert_eq!(field(&r.original, "x-sluice-ref"), Some("abc.def"));
}

#[test]
fn an_arf_complaint_with_a_redacted_recipient_keeps_the_original_headers() {
    let r = parse(fill(ARF).as_bytes()).unwrap();
    assert_eq!(r.kind, Kind::Arf { feedback_type: "abuse".into(), original_rcpt: None });
    assert_eq!(field(&r.original, "to"), Some("xxxxxxxx@x.example"));
    assert_eq!(field(&r.original, "x-sluice-ref"), Some("abc.def"));
}

#[test]
fn anything_else_says_why_it_is_not_a_report() {
    let bare = "From: a@b.example\r\nTo: c@d.example\r\nSubject: hi\r\n\r\nJust a reply.\r\n";
    assert!(parse(bare.as_bytes()).unwrap_err().contains("not a report"));
    let plain = bare.replace("Subject: hi", "Subject: hi\r\nContent-Type: text/plain");
    assert!(parse(plain.as_bytes()).unwrap_err().contains("text/plain is not multipart/report"));
    let other = fill(DSN).replace("report-type=delivery-status", "report-type=disposition-notification");
    assert!(parse(other.as_bytes()).unwrap_err().contains("disposition-notification"));
    assert!(parse(b"").is_err());
}

#[test]
fn a_dsn_is_read_for_at_most_its_recipient_cap() {
    let block = "Final-Recipient: rfc822; ann@x.example\r\nAction: failed\r\nStatus: 5.1.1\r\n\r\n";
    let many = block.repeat(MAX_DSN_RECIPIENTS * 50);
    let dsn = fill(DSN).replacen("Final-Recipient:", &format!("{many}Final-Recipient:"), 1);
    let Kind::Dsn(recipients) = parse(dsn.as_bytes()).unwrap().kind else { panic!("a DSN") };
    assert_eq!(recipients.len(), MAX_DSN_RECIPIENTS);
}
