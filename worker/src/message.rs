//! Builds the RFC 5322 message: Date, a unique Message-ID, multipart/alternative when both
//! parts exist, RFC 2047 encoded-words for non-ASCII subjects and display names (lettre; the
//! parts' bodies by [`crate::body`], as lettre would encode them), in
//! UTF-8 or, when asked, ISO-2022-JP ([`crate::charset`]).

use lettre::{
    Message,
    message::{
        Body, Mailbox, MultiPart, SinglePart,
        header::{ContentTransferEncoding, ContentType, HeaderName, HeaderValue},
    },
};

use sluice_shared::{config::MissingKey, dkim::Signer, model::Charset, refs, tokens::TokenKey};

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

/// A built message, and why it is not in the charset asked for, if it is not.
pub struct Built {
    pub bytes: Vec<u8>,
    pub charset_fallback: Option<String>,
}

/// The ISO-2022-JP forms of a message's subject, From header and text part.
struct Jis {
    subject: String,
    from: String,
    text: Option<Vec<u8>>,
}

impl Jis {
    /// Every part in JIS X 0208, or the first character that is not.
    fn of(content: &Rendered, from_name: Option<&str>, from_email: &str) -> Result<Jis, char> {
        let from = match from_name {
            Some(name) => format!("{} <{from_email}>", crate::charset::header_words(name)?),
            None => from_email.to_string(),
        };
        let text = content.text.as_deref().map(crate::charset::iso_2022_jp).transpose()?;
        Ok(Jis { subject: crate::charset::header_words(&content.subject)?, from, text })
    }

    fn text_part(bytes: Vec<u8>) -> SinglePart {
        let body = Body::new_with_encoding(bytes, ContentTransferEncoding::SevenBit).unwrap_or_else(|long_lines| {
            Body::new_with_encoding(long_lines, ContentTransferEncoding::Base64).expect("base64 takes any bytes")
        });
        let content_type = ContentType::parse("text/plain; charset=ISO-2022-JP").expect("a valid content type");
        SinglePart::builder().header(content_type).body(body)
    }
}

/// The whole message for one recipient, as bytes ready for DATA. A campaign that sets its own
/// List-Unsubscribe header keeps it instead of ours. In ISO-2022-JP when `charset` says so and
/// every part fits JIS X 0208; else UTF-8, with the reason in [`Built::charset_fallback`].
pub fn build(
    campaign: &Campaign,
    index: u64,
    to: &str,
    content: Rendered,
    links: Links<'_>,
    charset: Charset,
) -> Result<Built, String> {
    let spec = &campaign.spec;
    let from = Mailbox::new(spec.from.name.clone(), spec.from.email.parse().map_err(|e| format!("from: {e}"))?);
    let message_id = message_id(links.tokens, campaign, index, to);
    let to = Mailbox::new(None, to.parse().map_err(|e| format!("to: {e}"))?);
    let (jis, charset_fallback) = match charset {
        Charset::Utf8 => (None, None),
        Charset::Iso2022Jp => match Jis::of(&content, spec.from.name.as_deref(), &spec.from.email) {
            Ok(jis) => (Some(jis), None),
            Err(c) => (None, Some(format!("sent as UTF-8: {c:?} (U+{:04X}) is not in JIS X 0208", c as u32))),
        },
    };
    let mut builder = Message::builder().to(to).date_now().message_id(Some(message_id));
    builder = match &jis {
        Some(j) => builder
            .raw_header(HeaderValue::dangerous_new_pre_encoded(
                HeaderName::new_from_ascii_str("From"),
                from.to_string(),
                j.from.clone(),
            ))
            .raw_header(HeaderValue::dangerous_new_pre_encoded(
                HeaderName::new_from_ascii_str("Subject"),
                content.subject.clone(),
                j.subject.clone(),
            )),
        None => builder.from(from).subject(content.subject),
    };
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
    let text_part = |text: String| match jis.as_ref().and_then(|j| j.text.clone()) {
        Some(bytes) => Jis::text_part(bytes),
        None => SinglePart::plain(crate::body::encode(text)),
    };
    let html_part = |html: String| SinglePart::html(crate::body::encode(html));
    let message = match (content.html, content.text) {
        (Some(html), Some(text)) => {
            builder.multipart(MultiPart::alternative().singlepart(text_part(text)).singlepart(html_part(html)))
        }
        (Some(html), None) => builder.singlepart(html_part(html)),
        (None, Some(text)) => builder.singlepart(text_part(text)),
        (None, None) => return Err("campaign has neither html nor text".into()),
    }
    .map_err(|e| format!("message: {e}"))?;
    Ok(Built { bytes: message.formatted(), charset_fallback })
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
        let raw =
            String::from_utf8(build(&c, 7, "ann@x.example", content, links, Charset::Utf8).unwrap().bytes).unwrap();
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
