//! Builds the RFC 5322 message: Date, a unique Message-ID, multipart/alternative when both
//! parts exist, RFC 2047 encoded-words for non-ASCII subjects and display names (lettre).

use lettre::{
    Message,
    message::{
        Mailbox, MultiPart, SinglePart,
        header::{HeaderName, HeaderValue},
    },
};

use sluice_shared::{config::MissingKey, dkim::Signer, refs, tokens::TokenKey};

use crate::render::{Campaign, Rendered};

/// The Message-ID of recipient `index` (`to`) of a campaign ([`refs::message_id`]).
pub fn message_id(tokens: Option<&TokenKey>, campaign: &Campaign, index: u64, to: &str) -> String {
    let domain = campaign.spec.from.email.rsplit_once('@').map(|(_, d)| d).unwrap_or("localhost");
    refs::message_id(tokens, &campaign.spec.id, campaign.created_ms, index, to, domain)
}

/// RFC 8058 one-click unsubscribe: the HTTPS link, and optionally a mailto.
pub struct ListUnsubscribe<'a> {
    pub url: &'a str,
    pub mailto: Option<&'a str>,
}

/// What a message carries so that replies and reports find their way back.
#[derive(Default)]
pub struct Links<'a> {
    pub unsubscribe: Option<ListUnsubscribe<'a>>,
    /// The signed trace reference for `X-Sluice-Ref`.
    pub reference: Option<&'a str>,
    /// The link secret, which seals the Message-ID (a digest without it).
    pub tokens: Option<&'a TokenKey>,
}

/// The whole message for one recipient, as bytes ready for DATA. A campaign that sets its own
/// List-Unsubscribe header keeps it instead of ours.
pub fn build(
    campaign: &Campaign,
    index: u64,
    to: &str,
    content: Rendered,
    links: Links<'_>,
) -> Result<Vec<u8>, String> {
    let spec = &campaign.spec;
    let from = Mailbox::new(spec.from.name.clone(), spec.from.email.parse().map_err(|e| format!("from: {e}"))?);
    let message_id = message_id(links.tokens, campaign, index, to);
    let to = Mailbox::new(None, to.parse().map_err(|e| format!("to: {e}"))?);
    let mut builder =
        Message::builder().from(from).to(to).subject(content.subject).date_now().message_id(Some(message_id));
    if let Some(r) = &spec.reply_to {
        builder = builder.reply_to(Mailbox::new(None, r.parse().map_err(|e| format!("reply_to: {e}"))?));
    }
    let own_list_unsubscribe = spec.headers.keys().any(|k| k.eq_ignore_ascii_case("list-unsubscribe"));
    if let Some(reference) = links.reference {
        builder =
            builder.raw_header(HeaderValue::new(HeaderName::new_from_ascii_str(refs::TRACE_HEADER), reference.into()));
    }
    if let Some(u) = links.unsubscribe.filter(|_| !own_list_unsubscribe) {
        let value = match u.mailto {
            Some(m) => format!("<{}>, <mailto:{m}?subject=unsubscribe>", u.url),
            None => format!("<{}>", u.url),
        };
        builder = builder
            .raw_header(HeaderValue::new(HeaderName::new_from_ascii_str("List-Unsubscribe"), value))
            .raw_header(HeaderValue::new(
                HeaderName::new_from_ascii_str("List-Unsubscribe-Post"),
                "List-Unsubscribe=One-Click".into(),
            ));
    }
    for (name, value) in &spec.headers {
        let name = HeaderName::new_from_ascii(name.clone()).map_err(|e| format!("header {name}: {e}"))?;
        builder = builder.raw_header(HeaderValue::new(name, value.clone()));
    }
    let message = match (content.html, content.text) {
        (Some(html), Some(text)) => builder.multipart(MultiPart::alternative_plain_html(text, html)),
        (Some(html), None) => builder.singlepart(SinglePart::html(html)),
        (None, Some(text)) => builder.singlepart(SinglePart::plain(text)),
        (None, None) => return Err("campaign has neither html nor text".into()),
    }
    .map_err(|e| format!("message: {e}"))?;
    Ok(message.formatted())
}

/// A message submitted over SMTP, for one recipient: the client's MIME as given, under our
/// trace header and, when the client set none, our Message-ID (sealed per recipient, as for
/// rendered messages, so reports quoting it find the recipient).
pub fn stamp(mime: &[u8], message_id: &str, reference: Option<&str>) -> Vec<u8> {
    let mut out = Vec::with_capacity(mime.len() + 256);
    if let Some(r) = reference {
        out.extend_from_slice(format!("{}: {r}\r\n", refs::TRACE_HEADER).as_bytes());
    }
    if !has_field(mime, "message-id") {
        out.extend_from_slice(format!("Message-ID: {message_id}\r\n").as_bytes());
    }
    out.extend_from_slice(mime);
    out
}

/// Does the header section of `mime` (CRLF lines, up to the first empty one) have `name`?
fn has_field(mime: &[u8], name: &str) -> bool {
    mime.split(|b| *b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
        .take_while(|l| !l.is_empty())
        .any(|l| l.len() > name.len() && l[name.len()] == b':' && l[..name.len()].eq_ignore_ascii_case(name.as_bytes()))
}

/// Puts the DKIM signatures of the From domain's active keys on top of the message. Without a
/// key the message goes unsigned or fails, per `dkim.missing_key`.
pub fn sign(signer: &Signer, missing: MissingKey, from: &str, message: Vec<u8>) -> Result<Vec<u8>, String> {
    let domain = from.rsplit_once('@').map(|(_, d)| d).unwrap_or_default();
    let header = signer.sign(domain, &message, chrono::Utc::now()).map_err(|e| format!("dkim: {e}"))?;
    if header.is_empty() {
        return match missing {
            MissingKey::Send => Ok(message),
            MissingKey::Refuse => Err(format!("dkim: no key for From domain {domain:?} (dkim.missing_key = refuse)")),
        };
    }
    let mut signed = header;
    signed.extend_from_slice(&message);
    Ok(signed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_shared::model::{CampaignSpec, Sender};

    fn campaign() -> Campaign {
        let spec = CampaignSpec {
            id: "spring".into(),
            name: None,
            from: Sender { email: "news@shop.example".into(), name: Some("Shop 店".into()) },
            reply_to: Some("help@shop.example".into()),
            subject: "s".into(),
            html: Some("h".into()),
            text: Some("t".into()),
            headers: [("X-Campaign".to_string(), "spring".to_string())].into(),
            send_at_ms: None,
            ..Default::default()
        };
        Campaign::compile(spec, 1700000000000).unwrap()
    }

    #[test]
    fn a_submitted_message_is_sent_as_given_under_our_trace_header() {
        let given = b"From: a@shop.example\r\nSubject: x\r\n\r\nMessage-ID: <not-a-header>\r\n";
        let stamped = stamp(given, "<ours@shop.example>", Some("ref.tag"));
        let want = b"X-Sluice-Ref: ref.tag\r\nMessage-ID: <ours@shop.example>\r\nFrom: a@shop.example\r\nSubject: x\r\n\r\nMessage-ID: <not-a-header>\r\n";
        assert_eq!(String::from_utf8_lossy(&stamped), String::from_utf8_lossy(want), "a body line is not a field");
        let own = b"message-id: <theirs@shop.example>\r\nFrom: a@shop.example\r\n\r\nbody\r\n";
        assert_eq!(stamp(own, "<ours@shop.example>", None), own.to_vec(), "the client's Message-ID is kept");
    }

    #[test]
    fn messages_carry_every_required_header_once() {
        let c = campaign();
        let content =
            Rendered {
                subject: "こんにちは、世界".into(), html: Some("<p>x</p>".into()), text: Some("x".into())
            };
        let unsubscribe = ListUnsubscribe { url: "https://m.shop.example/u/tok", mailto: Some("unsub@shop.example") };
        let key = TokenKey::new("a-secret-of-at-least-32-characters!!");
        let links = Links { unsubscribe: Some(unsubscribe), reference: Some("ref.tag"), tokens: Some(&key) };
        let raw = String::from_utf8(build(&c, 7, "ann@x.example", content, links).unwrap()).unwrap();
        let headers = &raw[..raw.find("\r\n\r\n").unwrap()];
        for name in [
            "From:",
            "To:",
            "Subject:",
            "Date:",
            "Message-ID:",
            "MIME-Version:",
            "Reply-To:",
            "X-Campaign:",
            "List-Unsubscribe:",
            "List-Unsubscribe-Post:",
            "X-Sluice-Ref:",
        ] {
            assert_eq!(
                headers.matches(&format!("\r\n{name}")).count() + usize::from(headers.starts_with(name)),
                1,
                "{name} in {headers}"
            );
        }
        let id = message_id(Some(&key), &c, 7, "ann@x.example");
        assert!(headers.contains(&format!("Message-ID: {id}")) && !id.contains("spring"), "{headers}");
        let unfolded = headers.replace("\r\n ", " ");
        assert!(
            unfolded.contains(
                "List-Unsubscribe: <https://m.shop.example/u/tok>, <mailto:unsub@shop.example?subject=unsubscribe>"
            ),
            "{headers}"
        );
        assert!(headers.contains("List-Unsubscribe-Post: List-Unsubscribe=One-Click"), "{headers}");
        assert!(headers.contains("=?utf-8?b?"), "subject and display name are encoded-words: {headers}");
        assert!(headers.is_ascii());
        assert!(raw.contains("multipart/alternative"));
    }
}
