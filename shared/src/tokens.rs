//! Sealed tokens for public links (unsubscribe, open pixel, tracked clicks), the trace header
//! and Message-IDs. A token is its fields encrypted and authenticated (ChaCha20-Poly1305)
//! under a key derived from `public.secret`, with the purpose as associated data: it cannot be
//! forged, altered or reused for another purpose, and it shows nobody the recipient's
//! address. The nonce is a MAC of the fields, so one recipient's token is stable (retries
//! carry the same Message-ID). Tokens of the first format (fields in clear base64, a `.`, an
//! HMAC tag) are still opened, so links in mail already sent keep working.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD as B64URL};
use ring::{aead, hmac};

/// What a token is for; part of the authenticated data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    Unsubscribe,
    /// The trace header `X-Sluice-Ref`: finds a message again when a report comes back.
    Reference,
    /// The tag in a VERP Return-Path.
    Verp,
    /// The open-tracking pixel.
    Open,
    /// A tracked link: carries the original URL, so only URLs that were in the message can be
    /// redirect targets.
    Click,
    /// The local part of a Message-ID; it opens only with the recipient's address.
    MessageId,
}

impl Purpose {
    fn tag(self) -> &'static [u8] {
        match self {
            Purpose::Unsubscribe => b"sluice-unsubscribe-v1\0",
            Purpose::Reference => b"sluice-reference-v1\0",
            Purpose::Verp => b"sluice-verp-v1\0",
            Purpose::Open => b"sluice-open-v1\0",
            Purpose::Click => b"sluice-click-v1\0",
            Purpose::MessageId => b"sluice-message-id-v2\0",
        }
    }
}

/// Tag bytes of a first-format token: 128 bits.
const LEGACY_TAG_LEN: usize = 16;
/// Bytes of a VERP tag: 64 bits, written as 16 hex digits.
const VERP_TAG_LEN: usize = 8;

/// Seals and opens tokens with one secret.
#[derive(Clone)]
pub struct TokenKey {
    /// HMAC under the secret itself: first-format tokens and VERP tags.
    mac: hmac::Key,
    /// Makes each sealed token's nonce from its fields.
    nonce: hmac::Key,
    seal: aead::LessSafeKey,
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
        let mac = hmac::Key::new(hmac::HMAC_SHA256, secret.as_bytes());
        let derive = |label: &[u8]| hmac::sign(&mac, label);
        let nonce = hmac::Key::new(hmac::HMAC_SHA256, derive(b"sluice-token-nonce-v2").as_ref());
        let seal_key = derive(b"sluice-token-seal-v2");
        let unbound = aead::UnboundKey::new(&aead::CHACHA20_POLY1305, &seal_key.as_ref()[..32])
            .expect("a 32-byte key fits ChaCha20-Poly1305");
        TokenKey { mac, nonce, seal: aead::LessSafeKey::new(unbound) }
    }

    /// `fields` sealed for `purpose`; `bound` is authenticated but not carried: the token
    /// opens only when the opener supplies the same values.
    fn seal(&self, purpose: Purpose, fields: &[&str], bound: &[&str]) -> String {
        let aad = associated(purpose, bound);
        let mut in_out = fields.join("\n").into_bytes();
        let mut ctx = hmac::Context::with_key(&self.nonce);
        ctx.update(&aad);
        ctx.update(&[0xff]);
        ctx.update(&in_out);
        let mut nonce = [0u8; aead::NONCE_LEN];
        nonce.copy_from_slice(&ctx.sign().as_ref()[..aead::NONCE_LEN]);
        self.seal
            .seal_in_place_append_tag(aead::Nonce::assume_unique_for_key(nonce), aead::Aad::from(&aad), &mut in_out)
            .expect("a token is far below ChaCha20-Poly1305's length limit");
        let mut token = nonce.to_vec();
        token.extend_from_slice(&in_out);
        B64URL.encode(token)
    }

    fn open(&self, purpose: Purpose, token: &str, n: usize, bound: &[&str]) -> Option<Vec<String>> {
        if token.contains('.') {
            return bound.is_empty().then(|| self.open_legacy(purpose, token, n)).flatten();
        }
        let raw = B64URL.decode(token).ok()?;
        if raw.len() < aead::NONCE_LEN + aead::CHACHA20_POLY1305.tag_len() {
            return None;
        }
        let (nonce, sealed) = raw.split_at(aead::NONCE_LEN);
        let nonce = aead::Nonce::try_assume_unique_for_key(nonce).ok()?;
        let mut in_out = sealed.to_vec();
        let aad = associated(purpose, bound);
        let payload = self.seal.open_in_place(nonce, aead::Aad::from(&aad), &mut in_out).ok()?;
        fields_of(payload, n)
    }

    /// A first-format token: the fields in clear, a `.`, a truncated HMAC tag.
    fn open_legacy(&self, purpose: Purpose, token: &str, n: usize) -> Option<Vec<String>> {
        let (payload, tag) = token.split_once('.')?;
        let payload = B64URL.decode(payload).ok()?;
        let tag = B64URL.decode(tag).ok()?;
        let mut ctx = hmac::Context::with_key(&self.mac);
        ctx.update(purpose.tag());
        ctx.update(&payload);
        let expected = ctx.sign();
        if !constant_time_eq(&expected.as_ref()[..LEGACY_TAG_LEN], &tag) {
            return None;
        }
        fields_of(&payload, n)
    }

    /// A token for recipient `index` (`address`) of `campaign`.
    pub fn unsubscribe(&self, campaign: &str, index: u64, address: &str) -> String {
        self.seal(Purpose::Unsubscribe, &[campaign, &index.to_string(), address], &[])
    }

    /// The fields of a genuine unsubscribe token; None for anything forged or altered.
    pub fn open_unsubscribe(&self, token: &str) -> Option<Recipient> {
        self.open_recipient(Purpose::Unsubscribe, token)
    }

    /// A trace reference for recipient `index` (`address`) of `campaign`.
    pub fn reference(&self, campaign: &str, index: u64, address: &str) -> String {
        self.seal(Purpose::Reference, &[campaign, &index.to_string(), address], &[])
    }

    /// The fields of a genuine trace reference.
    pub fn open_reference(&self, token: &str) -> Option<Recipient> {
        self.open_recipient(Purpose::Reference, token)
    }

    /// The local part of the Message-ID of recipient `index` of a campaign created at
    /// `created_ms`: opaque to receivers, opened only together with the recipient's address.
    pub fn message_id_local(&self, campaign: &str, created_ms: i64, index: u64, address: &str) -> String {
        let address = address.to_ascii_lowercase();
        self.seal(Purpose::MessageId, &[campaign, &index.to_string(), &created_ms.to_string()], &[&address])
    }

    /// The campaign and index of one of our Message-ID local parts, if `address` is the
    /// recipient it was made for.
    pub fn open_message_id_local(&self, local: &str, address: &str) -> Option<(String, u64)> {
        let address = address.to_ascii_lowercase();
        let mut f = self.open(Purpose::MessageId, local, 3, &[&address])?.into_iter();
        let campaign = f.next()?;
        Some((campaign, f.next()?.parse().ok()?))
    }

    /// Sixteen hex digits (64 bits) binding a VERP address to its recipient (lower-case:
    /// local parts may be case-folded on the way back).
    pub fn verp_tag(&self, campaign: &str, index: u64, address: &str) -> String {
        let mut ctx = hmac::Context::with_key(&self.mac);
        ctx.update(Purpose::Verp.tag());
        ctx.update(format!("{campaign}\n{index}\n{}", address.to_ascii_lowercase()).as_bytes());
        hex::encode(&ctx.sign().as_ref()[..VERP_TAG_LEN])
    }

    /// The open pixel's token for a message rendered at `sent_s` (unix seconds).
    pub fn open_pixel(&self, campaign: &str, index: u64, address: &str, sent_s: i64) -> String {
        self.seal(Purpose::Open, &[campaign, &index.to_string(), address, &sent_s.to_string()], &[])
    }

    /// A genuine open token's recipient and render time.
    pub fn open_open_pixel(&self, token: &str) -> Option<(Recipient, i64)> {
        let mut f = self.open(Purpose::Open, token, 4, &[])?;
        let sent = f.pop()?.parse().ok()?;
        Some((recipient_of(f)?, sent))
    }

    /// A tracked link to `url`; None for a URL a token cannot carry (a line break).
    pub fn click(&self, campaign: &str, index: u64, address: &str, sent_s: i64, url: &str) -> Option<String> {
        (!url.contains('\n'))
            .then(|| self.seal(Purpose::Click, &[campaign, &index.to_string(), address, &sent_s.to_string(), url], &[]))
    }

    /// A genuine click token's recipient, render time and original URL.
    pub fn open_click(&self, token: &str) -> Option<(Recipient, i64, String)> {
        let mut f = self.open(Purpose::Click, token, 5, &[])?;
        let url = f.pop()?;
        let sent = f.pop()?.parse().ok()?;
        Some((recipient_of(f)?, sent, url))
    }

    fn open_recipient(&self, purpose: Purpose, token: &str) -> Option<Recipient> {
        recipient_of(self.open(purpose, token, 3, &[])?)
    }
}

/// The associated data of a sealed token: its purpose, then the bound values.
fn associated(purpose: Purpose, bound: &[&str]) -> Vec<u8> {
    let mut aad = purpose.tag().to_vec();
    aad.extend_from_slice(bound.join("\n").as_bytes());
    aad
}

/// Exactly `n` newline-separated UTF-8 fields.
fn fields_of(payload: &[u8], n: usize) -> Option<Vec<String>> {
    let fields: Vec<String> = std::str::from_utf8(payload).ok()?.split('\n').map(String::from).collect();
    (fields.len() == n).then_some(fields)
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
mod tests;
