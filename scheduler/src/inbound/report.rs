//! Reading a report that came back: a DSN (RFC 3464, `multipart/report;
//! report-type=delivery-status`) or an ARF complaint (RFC 5965, `report-type=feedback-report`),
//! with the headers of the original message when the report includes them.

use mail_parser::{MessageParser, MimeHeaders};

/// Header fields as (lower-case name, value) in order; continuation lines unfolded.
pub type Fields = Vec<(String, String)>;

/// One recipient block of a DSN.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DsnRecipient {
    /// From `Final-Recipient` (or `Original-Recipient`), without the `rfc822;` type.
    pub address: Option<String>,
    /// failed, delayed, delivered, relayed, expanded.
    pub action: String,
    /// The enhanced status code, e.g. `5.1.1`.
    pub status: Option<String>,
    /// The remote reply, e.g. `550 5.1.1 user unknown` (the `smtp;` type removed).
    pub diagnostic: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Kind {
    Dsn(Vec<DsnRecipient>),
    /// A complaint: the feedback type and the original recipient if not redacted.
    Arf {
        feedback_type: String,
        original_rcpt: Option<String>,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    pub kind: Kind,
    /// The report's own headers (To, Delivered-To...: where the VERP address shows).
    pub headers: Fields,
    /// The original message's headers, if included.
    pub original: Fields,
}

/// Most recipient blocks read from one DSN; the rest are ignored. Our messages have one
/// recipient each, so a genuine DSN names one; the cap bounds the work a forged one causes.
pub const MAX_DSN_RECIPIENTS: usize = 100;

/// Parses a raw RFC 5322 report. An error says why it is not a report we can use.
pub fn parse(raw: &[u8]) -> Result<Report, String> {
    let message = MessageParser::default().parse(raw).ok_or("not an RFC 5322 message")?;
    let root = message.parts.first().ok_or("empty message")?;
    let headers = header_block(&String::from_utf8_lossy(&raw[..(root.offset_body as usize).min(raw.len())]));
    let ct = root.content_type().ok_or("no Content-Type: not a report")?;
    let report_type = match (ct.ctype().to_ascii_lowercase().as_str(), ct.subtype().map(str::to_ascii_lowercase)) {
        ("multipart", Some(s)) if s == "report" => ct.attribute("report-type").unwrap_or("").to_ascii_lowercase(),
        (t, s) => return Err(format!("Content-Type {t}/{} is not multipart/report", s.unwrap_or_default())),
    };
    let mut status_blocks = None;
    let mut feedback = None;
    let mut original = Fields::new();
    for part in &message.parts[1..] {
        let Some(ct) = part.content_type() else { continue };
        let kind = format!("{}/{}", ct.ctype(), ct.subtype().unwrap_or("")).to_ascii_lowercase();
        let text = String::from_utf8_lossy(part.contents());
        match kind.as_str() {
            "message/delivery-status" | "message/global-delivery-status" => {
                status_blocks = Some(blocks(&text, 1 + MAX_DSN_RECIPIENTS))
            }
            "message/feedback-report" => feedback = Some(header_block(&text)),
            "message/rfc822" | "message/global" | "text/rfc822-headers" | "message/rfc822-headers"
                if original.is_empty() =>
            {
                original = header_block(&text);
            }
            _ => {}
        }
    }
    let kind = match report_type.as_str() {
        "delivery-status" => {
            let blocks = status_blocks.ok_or("delivery-status report without a message/delivery-status part")?;
            let recipients: Vec<DsnRecipient> = blocks.iter().skip(1).map(dsn_recipient).collect();
            if recipients.is_empty() {
                return Err("delivery-status part has no recipient block".into());
            }
            Kind::Dsn(recipients)
        }
        "feedback-report" => {
            let f = feedback.ok_or("feedback report without a message/feedback-report part")?;
            let feedback_type = field(&f, "feedback-type").unwrap_or("abuse").to_ascii_lowercase();
            let original_rcpt = field(&f, "original-rcpt-to").map(strip_type).filter(|a| a.contains('@'));
            Kind::Arf { feedback_type, original_rcpt }
        }
        other => return Err(format!("report-type {other:?} is neither delivery-status nor feedback-report")),
    };
    Ok(Report { kind, headers, original })
}

/// The first value of a field (names are lower-case).
pub fn field<'a>(fields: &'a Fields, name: &str) -> Option<&'a str> {
    fields.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
}

fn dsn_recipient(block: &Fields) -> DsnRecipient {
    DsnRecipient {
        address: field(block, "final-recipient").or_else(|| field(block, "original-recipient")).map(strip_type),
        action: field(block, "action").unwrap_or("").trim().to_ascii_lowercase(),
        status: field(block, "status").map(|s| s.split_whitespace().next().unwrap_or("").to_string()),
        diagnostic: field(block, "diagnostic-code").map(strip_type),
    }
}

/// `rfc822; ann@x.example` -> `ann@x.example`; `smtp; 550 ...` -> `550 ...`.
fn strip_type(value: &str) -> String {
    let v = value.split_once(';').map_or(value, |(_, rest)| rest).trim();
    v.trim_start_matches('<').trim_end_matches('>').to_string()
}

/// Header-style fields up to the first empty line.
pub fn header_block(text: &str) -> Fields {
    blocks(text, 1).into_iter().next().unwrap_or_default()
}

/// Groups of header-style fields separated by empty lines (a DSN's per-message block, then one
/// per recipient), at most `max` of them: reading stops there.
fn blocks(text: &str, max: usize) -> Vec<Fields> {
    let mut out: Vec<Fields> = Vec::new();
    let mut current = Fields::new();
    for line in text.lines() {
        if line.trim().is_empty() {
            if !current.is_empty() {
                out.push(std::mem::take(&mut current));
                if out.len() == max {
                    return out;
                }
            }
            continue;
        }
        if line.starts_with([' ', '\t']) {
            if let Some((_, v)) = current.last_mut() {
                v.push(' ');
                v.push_str(line.trim());
            }
            continue;
        }
        if let Some((name, value)) = line.split_once(':') {
            current.push((name.trim().to_ascii_lowercase(), value.trim().to_string()));
        }
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

#[cfg(test)]
#[path = "report_tests.rs"]
mod tests;
