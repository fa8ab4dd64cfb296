//! A submitted message made ready to store, touching no more than a submission server must
//! (RFC 6409 section 8): line endings become CRLF, `Bcc:` goes (the envelope carries it),
//! `Date:` is added when missing, and the `X-Sluice-Tags` and `X-Sluice-Metadata` fields are
//! read and removed. Everything else is kept byte for byte: the client's MIME is what is sent.
//! `Message-ID` and the trace header are the worker's, per recipient (see `worker::message`).

use mail_parser::MessageParser;
use serde_json::Value;
use sluice_shared::refs;

use super::Refusal;

/// What a message becomes before it is stored.
#[derive(Debug, PartialEq)]
pub struct Prepared {
    /// The message as it will be sent (before the worker's per-recipient fields and DKIM).
    pub mime: Vec<u8>,
    pub from: String,
    pub from_name: Option<String>,
    /// Decoded, for the API and events; empty when the message has none.
    pub subject: String,
    /// The client's `Message-ID`, when it set one: a resubmission of it is the same message.
    pub message_id: Option<String>,
    pub tags: Vec<String>,
    pub metadata: Option<Value>,
}

/// Fields removed from every message: `Bcc` (RFC 5322 section 3.6.3), our instructions, and
/// fields only Sluice or the final delivery may write.
const REMOVED: [&str; 5] = ["bcc", "x-sluice-tags", "x-sluice-metadata", "return-path", refs::TRACE_HEADER];

/// One header field: its name and its lines as given (continuations included, CRLF ended).
struct Field<'a> {
    name: &'a str,
    lines: &'a [u8],
}

impl Field<'_> {
    /// The value, unfolded and trimmed.
    fn value(&self) -> String {
        let text = String::from_utf8_lossy(&self.lines[self.name.len() + 1..]);
        text.split("\r\n").map(str::trim).filter(|l| !l.is_empty()).collect::<Vec<_>>().join(" ")
    }

    fn is(&self, name: &str) -> bool {
        self.name.trim_end().eq_ignore_ascii_case(name)
    }
}

/// Makes `raw` (the DATA as read, dot-stuffing undone) ready to store, or says why not.
pub fn prepare(raw: &[u8], now: chrono::DateTime<chrono::Utc>) -> Result<Prepared, Refusal> {
    let message = crlf(raw)?;
    let (fields, body) = split(&message);
    let mut from = None;
    let (mut tags, mut metadata, mut message_id, mut has_date) = (Vec::new(), None, None, false);
    let mut head = Vec::with_capacity(body.len().min(4096) + 256);
    for field in &fields {
        if field.is("from") && from.replace(field).is_some() {
            return Err(Refusal::content("the message has more than one From: field"));
        }
        if field.is("x-sluice-tags") {
            tags.extend(field.value().split(',').map(str::trim).filter(|t| !t.is_empty()).map(String::from));
        }
        if field.is("x-sluice-metadata") {
            let value = serde_json::from_str(&field.value())
                .map_err(|e| Refusal::content(format!("X-Sluice-Metadata: not JSON: {e}")))?;
            metadata = Some(value);
        }
        if field.is("message-id") {
            message_id = Some(field.value());
        }
        has_date |= field.is("date");
        if !REMOVED.iter().any(|r| field.is(r)) {
            head.extend_from_slice(field.lines);
        }
    }
    let from = from.ok_or_else(|| Refusal::content("the message has no From: field"))?;
    if !has_date {
        head.extend_from_slice(format!("Date: {}\r\n", now.to_rfc2822()).as_bytes());
    }
    let header_block = &message[..message.len() - body.len()];
    let parsed = MessageParser::new().parse_headers(header_block);
    let mailboxes = parsed.as_ref().and_then(|m| m.from());
    let mailbox = match mailboxes.map(|a| (a.iter().count(), a.first())) {
        Some((1, Some(m))) if m.address().is_some_and(|a| !a.trim().is_empty()) => m,
        _ => return Err(Refusal::content(format!("From: must name exactly one address (is {:?})", from.value()))),
    };
    let address = mailbox.address().unwrap_or_default().to_string();
    let from_name = mailbox.name().map(String::from);
    let subject = parsed.as_ref().and_then(|m| m.subject()).unwrap_or_default().to_string();
    crate::campaign::request::check_tags(&tags)
        .map_err(|e| Refusal::content(format!("X-Sluice-Tags: {}", e.message)))?;
    crate::campaign::request::check_metadata(metadata.as_ref())
        .map_err(|e| Refusal::content(format!("X-Sluice-Metadata: {}", e.message)))?;
    head.extend_from_slice(b"\r\n");
    head.extend_from_slice(body);
    Ok(Prepared { mime: head, from: address, from_name, subject, message_id, tags, metadata })
}

/// Every line ended by CRLF (a bare LF becomes CRLF, as Postfix does); a bare CR is refused:
/// passed on, some receivers read it as a line end, the stuff of SMTP smuggling.
fn crlf(raw: &[u8]) -> Result<Vec<u8>, Refusal> {
    let mut out = Vec::with_capacity(raw.len() + raw.len() / 64);
    let mut lines = raw.split_inclusive(|b| *b == b'\n').peekable();
    while let Some(line) = lines.next() {
        let content = line.strip_suffix(b"\n").map(|l| l.strip_suffix(b"\r").unwrap_or(l)).unwrap_or(line);
        if content.contains(&b'\r') {
            return Err(Refusal::content("the message contains a bare CR"));
        }
        out.extend_from_slice(content);
        if line.ends_with(b"\n") || lines.peek().is_none() {
            out.extend_from_slice(b"\r\n");
        }
    }
    Ok(out)
}

/// The header fields and the body of a CRLF message. The header section ends at the first
/// empty line, or at the first line that is not a field (which then starts the body, as in
/// Postfix); the body is returned without the empty line.
fn split(message: &[u8]) -> (Vec<Field<'_>>, &[u8]) {
    let mut fields: Vec<Field<'_>> = Vec::new();
    let mut at = 0;
    while at < message.len() {
        let line_end = message[at..].windows(2).position(|w| w == b"\r\n").map_or(message.len(), |p| at + p + 2);
        let line = &message[at..line_end];
        if line == b"\r\n" {
            return (fields, &message[line_end..]);
        }
        let continues = matches!(line.first(), Some(b' ' | b'\t'));
        match (continues, fields.last_mut(), field_name(line)) {
            (true, Some(last), _) => {
                let start = last.lines.as_ptr() as usize - message.as_ptr() as usize;
                last.lines = &message[start..line_end];
            }
            (false, _, Some(name)) => fields.push(Field { name, lines: line }),
            _ => return (fields, &message[at..]),
        }
        at = line_end;
    }
    (fields, &message[message.len()..])
}

/// The name of a field line (`Name:` with printable ASCII before the colon), if it is one.
fn field_name(line: &[u8]) -> Option<&str> {
    let colon = line.iter().position(|b| *b == b':')?;
    let name = &line[..colon];
    let printable = !name.is_empty() && name.iter().all(|b| (33..=126).contains(b) || *b == b' ');
    printable.then(|| std::str::from_utf8(name).ok()).flatten()
}

#[cfg(test)]
mod tests;
