use super::*;

fn limits() -> CampaignConfig {
    CampaignConfig { max_body_bytes: 2048, max_inline_recipients: 3, ..Default::default() }
}

fn parse_json(v: Value) -> Result<ValidCampaign, FieldError> {
    parse(v.to_string().as_bytes(), &limits(), || "generated".into())
}

fn base() -> Value {
    serde_json::json!({
        "from": {"email": "news@shop.example", "name": "Shop"},
        "subject": "Hi {{name}}",
        "html": "<p>Hello {{name}}</p>",
        "recipients": [{"email": "a@x.example", "vars": {"name": "A"}}]
    })
}

fn with(mut v: Value, key: &str, value: Value) -> Value {
    v[key] = value;
    v
}

fn without(mut v: Value, key: &str) -> Value {
    v.as_object_mut().unwrap().remove(key);
    v
}

#[test]
fn a_good_campaign_validates() {
    let c = parse_json(base()).unwrap();
    assert_eq!(c.spec.id, "generated");
    assert_eq!(c.recipients.len(), 1);
    assert!(c.start);
}

#[test]
fn every_bad_input_names_its_field() {
    let cases: Vec<(Value, &str, &str)> = vec![
        (with(base(), "extra", Value::Bool(true)), "extra", "unknown field"),
        (without(base(), "from"), "from", "missing field"),
        (without(base(), "subject"), "subject", "missing field"),
        (without(base(), "html"), "html", "needs html or text"),
        (with(base(), "subject", "  ".into()), "subject", "empty"),
        (with(base(), "from", serde_json::json!({"email": "nobody"})), "from.email", "no @"),
        (
            with(base(), "from", serde_json::json!({"email": format!("{}@x.example", "a".repeat(65))})),
            "from.email",
            "limit is 64",
        ),
        (
            with(base(), "from", serde_json::json!({"email": "a@x.example", "name": "A\r\nBcc: v@x.example"})),
            "from.name",
            "CR, LF or NUL",
        ),
        (with(base(), "subject", "Hi\nBcc: v@x.example".into()), "subject", "CR, LF or NUL"),
        (with(base(), "headers", serde_json::json!({"X-A": "b\r\nc"})), "headers.X-A", "CR, LF or NUL"),
        (with(base(), "headers", serde_json::json!({"X-A\n": "b"})), "headers.X-A\n", "CR, LF or NUL"),
        (with(base(), "reply_to", "bad@".into()), "reply_to", "domain is empty"),
        (with(base(), "html", "<p>{{#if x}}</p>".into()), "html", "template error"),
        (with(base(), "subject", "{{name".into()), "subject", "template error"),
        (with(base(), "html", "x".repeat(4096).into()), "html", "limit"),
        (with(base(), "send_at", "tomorrow".into()), "send_at", "RFC 3339"),
        (with(base(), "id", "has space".into()), "id", "letters"),
        (
            with(
                base(),
                "recipients",
                serde_json::json!([{"email":"a@x.example"},{"email":"b@x.example"},{"email":"c@x.example"},{"email":"d@x.example"}]),
            ),
            "recipients",
            "limit is 3",
        ),
        (with(base(), "start", "yes".into()), "start", "invalid type"),
    ];
    for (body, field, needle) in cases {
        let err = parse_json(body.clone()).unwrap_err();
        assert_eq!(err.field, field, "{body}: {err:?}");
        assert!(err.message.contains(needle), "{body}: {err:?}");
    }
    let err = parse(b"{not json", &limits(), || "x".into()).unwrap_err();
    assert_eq!((err.field.as_str(), err.kind), ("body", ErrorKind::Malformed));
}

#[test]
fn one_bad_recipient_rejects_only_itself() {
    let c = parse_json(with(
        base(),
        "recipients",
        serde_json::json!([{"email": "ok@x.example"}, {"email": "bad"}, {"email": "ok@X.example"}]),
    ))
    .unwrap();
    assert_eq!(c.recipients.len(), 1);
    let errors: Vec<_> = c.rejected.iter().map(|r| (r.index, r.error.clone())).collect();
    assert!(errors[0].0 == 1 && errors[0].1.contains("no @"), "{errors:?}");
    assert!(errors[1].0 == 2 && errors[1].1.contains("duplicate"), "{errors:?}");
    assert!(
        check_recipient(serde_json::json!({"email": "v@x.example", "vars": 3})).unwrap_err().contains("invalid type")
    );
    assert!(check_recipient(serde_json::json!({"mail": "typo@x.example"})).unwrap_err().contains("unknown field"));
}

#[test]
fn the_digest_ignores_key_order_but_not_content() {
    let a = parse(br#"{"id":"c","from":{"email":"a@x.example"},"subject":"s","text":"t"}"#, &limits(), || "x".into())
        .unwrap();
    let b = parse(br#"{"text":"t","subject":"s","from":{"email":"a@x.example"},"id":"c"}"#, &limits(), || "x".into())
        .unwrap();
    let c = parse(br#"{"text":"u","subject":"s","from":{"email":"a@x.example"},"id":"c"}"#, &limits(), || "x".into())
        .unwrap();
    assert_eq!(a.digest, b.digest);
    assert_ne!(a.digest, c.digest);
}
