use super::*;

const SECRET: &str = "a-secret-of-at-least-32-characters!!";

/// A token of the first format, as mail sent before sealed tokens carries.
fn legacy(key: &TokenKey, purpose: Purpose, fields: &[&str]) -> String {
    let payload = fields.join("\n");
    let mut ctx = hmac::Context::with_key(&key.mac);
    ctx.update(purpose.tag());
    ctx.update(payload.as_bytes());
    format!("{}.{}", B64URL.encode(&payload), B64URL.encode(&ctx.sign().as_ref()[..LEGACY_TAG_LEN]))
}

#[test]
fn tokens_round_trip_hide_the_address_and_reject_forgery() {
    let key = TokenKey::new(SECRET);
    let token = key.unsubscribe("spring", 42, "ann@x.example");
    assert!(token.chars().all(|c| c.is_ascii_alphanumeric() || "-_".contains(c)), "{token}");
    assert_eq!(token, key.unsubscribe("spring", 42, "ann@x.example"), "stable");
    let decoded = B64URL.decode(&token).unwrap();
    assert!(!String::from_utf8_lossy(&decoded).contains("ann"), "the address is not in clear");
    let opened = key.open_unsubscribe(&token).unwrap();
    assert_eq!(opened, Recipient { campaign: "spring".into(), index: 42, address: "ann@x.example".into() });
    assert_eq!(key.open_reference(&token), None, "an unsubscribe token is not a reference");
    let reference = key.reference("spring", 42, "ann@x.example");
    assert_eq!(key.open_reference(&reference), Some(opened));

    // Another secret, a flipped bit anywhere, truncation, garbage: all refused.
    assert_eq!(TokenKey::new("another-secret-of-32-characters!!!!").open_unsubscribe(&token), None);
    for i in 0..decoded.len() {
        let mut altered = decoded.clone();
        altered[i] ^= 1;
        assert_eq!(key.open_unsubscribe(&B64URL.encode(&altered)), None, "bit flipped at {i}");
    }
    assert_eq!(key.open_unsubscribe(&B64URL.encode(&decoded[..decoded.len() - 1])), None);
    assert_eq!(key.open_unsubscribe("nonsense"), None);
    assert_eq!(key.open_unsubscribe(""), None);

    // Tracking tokens carry their fields and only work for their purpose.
    let pixel = key.open_pixel("spring", 7, "ann@x.example", 1_700_000_000);
    assert_eq!(key.open_open_pixel(&pixel).map(|(r, t)| (r.index, t)), Some((7, 1_700_000_000)));
    assert_eq!(key.open_click(&pixel), None);
    let click = key.click("spring", 7, "ann@x.example", 1, "https://shop.example/a?b=1").unwrap();
    assert_eq!(key.open_click(&click).map(|(_, _, u)| u).as_deref(), Some("https://shop.example/a?b=1"));
    assert_eq!(key.click("c", 1, "a@b", 1, "https://x/\nLocation: y"), None);
}

#[test]
fn links_in_mail_sent_before_sealed_tokens_keep_working() {
    let key = TokenKey::new(SECRET);
    let old = legacy(&key, Purpose::Unsubscribe, &["spring", "42", "ann@x.example"]);
    assert_eq!(key.open_unsubscribe(&old).map(|r| r.address).as_deref(), Some("ann@x.example"));
    let old_click = legacy(&key, Purpose::Click, &["spring", "7", "ann@x.example", "1", "https://shop.example/a"]);
    assert_eq!(key.open_click(&old_click).map(|(_, _, u)| u).as_deref(), Some("https://shop.example/a"));
    // Altering the clear payload of an old token breaks its tag.
    let (_, tag) = old.split_once('.').unwrap();
    let forged = format!("{}.{tag}", B64URL.encode("spring\n42\nbob@x.example"));
    assert_eq!(key.open_unsubscribe(&forged), None);
    let elsewhere = format!("{}.{}", B64URL.encode("spring\n7\nann@x.example\n1\nhttps://evil.example/"), tag);
    assert_eq!(key.open_click(&elsewhere), None, "no open redirect");
}

#[test]
fn message_ids_open_only_with_their_recipient() {
    let key = TokenKey::new(SECRET);
    let local = key.message_id_local("spring", 1_700_000_000_000, 7, "Ann@X.example");
    assert_eq!(local, key.message_id_local("spring", 1_700_000_000_000, 7, "ann@x.example"), "stable");
    assert_ne!(local, key.message_id_local("spring", 1_700_000_000_001, 7, "ann@x.example"), "unique per campaign");
    assert!(!local.contains("spring"), "opaque: {local}");
    assert_eq!(key.open_message_id_local(&local, "ann@x.example"), Some(("spring".into(), 7)));
    assert_eq!(key.open_message_id_local(&local, "bob@x.example"), None, "bound to the recipient");
    assert_eq!(key.open_message_id_local("1.1.no-such-campaign", "ann@x.example"), None);
}

#[test]
fn verp_tags_are_64_bits_and_case_blind() {
    let key = TokenKey::new(SECRET);
    let tag = key.verp_tag("spring", 42, "Ann@X.example");
    assert_eq!(tag.len(), 16);
    assert_eq!(tag, key.verp_tag("spring", 42, "ann@x.example"));
    assert_ne!(tag, key.verp_tag("spring", 43, "ann@x.example"));
}
