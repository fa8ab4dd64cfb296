//! Signed tokens for public links (unsubscribe, open pixel, tracked clicks). A token carries its
//! fields in the clear (URL-safe base64) and an HMAC-SHA256 tag over a purpose prefix and the
//! fields, so it cannot be forged, altered, or reused for another purpose.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD as B64URL};
use ring::hmac;

/// What a token is for; part of the signed data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    Unsubscribe,
    /// The trace header `X-Sluice-Ref`: finds a message again when a report comes back.
    Reference,
    /// The short tag in a VERP Return-Path.
    Verp,
    /// The open-tracking pixel.
    Open,
    /// A tracked link: carries the original URL, so only URLs that were in the message can be
    /// redirect targets.
    Click,
}

impl Purpose {
    fn tag(self) -> &'static [u8] {
        match self {
            Purpose::Unsubscribe => b"sluice-unsubscribe-v1\0",
            Purpose::Reference => b"sluice-reference-v1\0",
            Purpose::Verp => b"sluice-verp-v1\0",
            Purpose::Open => b"sluice-open-v1\0",
            Purpose::Click => b"sluice-click-v1\0",
        }
    }
}

/// Tag bytes kept: 128 bits are far beyond guessing and keep links short.
const TAG_LEN: usize = 16;

/// Signs and checks tokens with one secret.
#[derive(Clone)]
pub struct TokenKey {
    key: hmac::Key,
}

impl std::fmt::Debug for TokenKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenKey(..)")
    }
}

/// The fields of an unsubscribe or reference token: one recipient of one campaign.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recipient {
    pub campaign: String,
    pub index: u64,
    pub address: String,
}

impl TokenKey {
    pub fn new(secret: &str) -> TokenKey {
        TokenKey { key: hmac::Key::new(hmac::HMAC_SHA256, secret.as_bytes()) }
    }

    fn seal(&self, purpose: Purpose, fields: &[&str]) -> String {
        let payload = fields.join("\n");
        let mut ctx = hmac::Context::with_key(&self.key);
        ctx.update(purpose.tag());
        ctx.update(payload.as_bytes());
        let tag = ctx.sign();
        format!("{}.{}", B64URL.encode(payload), B64URL.encode(&tag.as_ref()[..TAG_LEN]))
    }

    fn open(&self, purpose: Purpose, token: &str, n: usize) -> Option<Vec<String>> {
        let (payload, tag) = token.split_once('.')?;
        let payload = B64URL.decode(payload).ok()?;
        let tag = B64URL.decode(tag).ok()?;
        let mut ctx = hmac::Context::with_key(&self.key);
        ctx.update(purpose.tag());
        ctx.update(&payload);
        let expected = ctx.sign();
        if !constant_time_eq(&expected.as_ref()[..TAG_LEN], &tag) {
            return None;
        }
        let fields: Vec<String> = String::from_utf8(payload).ok()?.split('\n').map(String::from).collect();
        (fields.len() == n).then_some(fields)
    }

    /// A token for recipient `index` (`address`) of `campaign`.
    pub fn unsubscribe(&self, campaign: &str, index: u64, address: &str) -> String {
        self.seal(Purpose::Unsubscribe, &[campaign, &index.to_string(), address])
    }

    /// The fields of a genuine unsubscribe token; None for anything forged or altered.
    pub fn open_unsubscribe(&self, token: &str) -> Option<Recipient> {
        self.open_recipient(Purpose::Unsubscribe, token)
    }

    /// A trace reference for recipient `index` (`address`) of `campaign`.
    pub fn reference(&self, campaign: &str, index: u64, address: &str) -> String {
        self.seal(Purpose::Reference, &[campaign, &index.to_string(), address])
    }

    /// The fields of a genuine trace reference.
    pub fn open_reference(&self, token: &str) -> Option<Recipient> {
        self.open_recipient(Purpose::Reference, token)
    }

    /// Eight hex digits binding a VERP address to its recipient (lower-case: local parts may
    /// be case-folded on the way back).
    pub fn verp_tag(&self, campaign: &str, index: u64, address: &str) -> String {
        let mut ctx = hmac::Context::with_key(&self.key);
        ctx.update(Purpose::Verp.tag());
        ctx.update(format!("{campaign}\n{index}\n{}", address.to_ascii_lowercase()).as_bytes());
        hex::encode(&ctx.sign().as_ref()[..4])
    }

    /// The open pixel's token for a message rendered at `sent_s` (unix seconds).
    pub fn open_pixel(&self, campaign: &str, index: u64, address: &str, sent_s: i64) -> String {
        self.seal(Purpose::Open, &[campaign, &index.to_string(), address, &sent_s.to_string()])
    }

    /// A genuine open token's recipient and render time.
    pub fn open_open_pixel(&self, token: &str) -> Option<(Recipient, i64)> {
        let mut f = self.open(Purpose::Open, token, 4)?;
        let sent = f.pop()?.parse().ok()?;
        Some((recipient_of(f)?, sent))
    }

    /// A tracked link to `url`; None for a URL a token cannot carry (a line break).
    pub fn click(&self, campaign: &str, index: u64, address: &str, sent_s: i64, url: &str) -> Option<String> {
        (!url.contains('\n'))
            .then(|| self.seal(Purpose::Click, &[campaign, &index.to_string(), address, &sent_s.to_string(), url]))
    }

    /// A genuine click token's recipient, render time and original URL.
    pub fn open_click(&self, token: &str) -> Option<(Recipient, i64, String)> {
        let mut f = self.open(Purpose::Click, token, 5)?;
        let url = f.pop()?;
        let sent = f.pop()?.parse().ok()?;
        Some((recipient_of(f)?, sent, url))
    }

    fn open_recipient(&self, purpose: Purpose, token: &str) -> Option<Recipient> {
        recipient_of(self.open(purpose, token, 3)?)
    }
}

/// `[campaign, index, address]` as a recipient.
fn recipient_of(mut f: Vec<String>) -> Option<Recipient> {
    let address = f.pop()?;
    let index = f.pop()?.parse().ok()?;
    Some(Recipient { campaign: f.pop()?, index, address })
}

/// Compares without an early exit, so the time taken does not reveal how much matched.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_and_reject_forgery() {
        let key = TokenKey::new("a-secret-of-at-least-32-characters!!");
        let token = key.unsubscribe("spring", 42, "ann@x.example");
        assert!(token.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)), "{token}");
        let opened = key.open_unsubscribe(&token).unwrap();
        assert_eq!(opened, Recipient { campaign: "spring".into(), index: 42, address: "ann@x.example".into() });
        assert_eq!(key.open_reference(&token), None, "an unsubscribe token is not a reference");
        let reference = key.reference("spring", 42, "ann@x.example");
        assert_eq!(key.open_reference(&reference), Some(opened));
        assert_eq!(key.verp_tag("spring", 42, "Ann@X.example"), key.verp_tag("spring", 42, "ann@x.example"));
        assert_ne!(key.verp_tag("spring", 42, "ann@x.example"), key.verp_tag("spring", 43, "ann@x.example"));

        // Another secret, an altered payload, an altered tag, garbage: all refused.
        assert_eq!(TokenKey::new("another-secret-of-32-characters!!!!").open_unsubscribe(&token), None);
        let (payload, tag) = token.split_once('.').unwrap();
        let forged_payload = B64URL.encode("spring\n42\nbob@x.example");
        assert_eq!(key.open_unsubscribe(&format!("{forged_payload}.{tag}")), None);
        let mut bad_tag = tag.to_string();
        bad_tag.replace_range(0..1, if tag.starts_with('A') { "B" } else { "A" });
        assert_eq!(key.open_unsubscribe(&format!("{payload}.{bad_tag}")), None);
        assert_eq!(key.open_unsubscribe("nonsense"), None);
        assert_eq!(key.open_unsubscribe(""), None);

        // Tracking tokens carry their fields and only work for their purpose.
        let pixel = key.open_pixel("spring", 7, "ann@x.example", 1_700_000_000);
        assert_eq!(key.open_open_pixel(&pixel).map(|(r, t)| (r.index, t)), Some((7, 1_700_000_000)));
        assert_eq!(key.open_click(&pixel), None);
        let click = key.click("spring", 7, "ann@x.example", 1, "https://shop.example/a?b=1").unwrap();
        assert_eq!(key.open_click(&click).map(|(_, _, u)| u).as_deref(), Some("https://shop.example/a?b=1"));
        let (payload, tag) = click.split_once('.').unwrap();
        let elsewhere =
            String::from_utf8(B64URL.decode(payload).unwrap()).unwrap().replace("shop.example", "evil.example");
        assert_eq!(key.open_click(&format!("{}.{tag}", B64URL.encode(elsewhere))), None, "no open redirect");
        assert_eq!(key.click("c", 1, "a@b", 1, "https://x/\nLocation: y"), None);
    }
}
