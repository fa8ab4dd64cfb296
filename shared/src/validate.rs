//! Checks shared by every intake path: addresses (RFC 5321 limits), domains (IDNA),
//! header names and values (no CR, LF or NUL: header injection), ids.

/// A recipient or sender address that passed validation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email {
    /// Local part as given, `@`, then the ASCII (IDNA) lower-cased domain.
    pub address: String,
    /// The destination domain: lower-cased, IDNA-normalised.
    pub domain: String,
}

const MAX_LOCAL: usize = 64;
const MAX_ADDRESS: usize = 254;
const MAX_HEADER_LINE: usize = 998;

fn has_control_breaks(text: &str) -> bool {
    text.contains(['\r', '\n', '\0'])
}

/// Validates an address and normalises its domain.
pub fn email(input: &str) -> Result<Email, String> {
    if input.is_empty() {
        return Err("address is empty".into());
    }
    if has_control_breaks(input) {
        return Err("address contains CR, LF or NUL".into());
    }
    let (local, domain) = input.rsplit_once('@').ok_or("address has no @")?;
    if local.is_empty() {
        return Err("local part is empty".into());
    }
    if local.len() > MAX_LOCAL {
        return Err(format!("local part is {} octets, the limit is {MAX_LOCAL}", local.len()));
    }
    check_local(local)?;
    let domain = self::domain(domain)?;
    let address = format!("{local}@{domain}");
    if address.len() > MAX_ADDRESS {
        return Err(format!("address is {} octets, the limit is {MAX_ADDRESS}", address.len()));
    }
    Ok(Email { address, domain })
}

fn check_local(local: &str) -> Result<(), String> {
    if local.starts_with('.') || local.ends_with('.') || local.contains("..") {
        return Err("local part has a misplaced dot".into());
    }
    const SPECIALS: &str = "!#$%&'*+-/=?^_`{|}~.";
    match local.chars().find(|c| !(c.is_alphanumeric() || SPECIALS.contains(*c) || !c.is_ascii())) {
        Some(bad) => Err(format!("local part contains {bad:?}")),
        None => Ok(()),
    }
}

/// Lower-cases and IDNA-normalises a domain, checking label and length limits.
pub fn domain(input: &str) -> Result<String, String> {
    if input.is_empty() {
        return Err("domain is empty".into());
    }
    let ascii = idna::domain_to_ascii(input).map_err(|_| format!("domain {input:?} is not a valid IDNA name"))?;
    if ascii.len() > 253 {
        return Err("domain is longer than 253 octets".into());
    }
    if !ascii.contains('.') {
        return Err(format!("domain {ascii:?} has no dot"));
    }
    for label in ascii.split('.') {
        if label.is_empty() || label.len() > 63 {
            return Err(format!("domain {ascii:?} has an empty or over-long label"));
        }
        if label.starts_with('-')
            || label.ends_with('-')
            || !label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        {
            return Err(format!("domain {ascii:?} has an invalid label {label:?}"));
        }
    }
    Ok(ascii)
}

/// Headers Sluice writes itself; a caller may not set them.
const RESERVED_HEADERS: &[&str] = &[
    "from",
    "to",
    "cc",
    "bcc",
    "subject",
    "date",
    "message-id",
    "mime-version",
    "content-type",
    "content-transfer-encoding",
    "reply-to",
    "return-path",
    "sender",
];

/// A custom header name: printable ASCII without ':' and not one Sluice sets itself.
pub fn header_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("header name is empty".into());
    }
    if has_control_breaks(name) {
        return Err("header name contains CR, LF or NUL".into());
    }
    if !name.bytes().all(|b| (33..=126).contains(&b) && b != b':') {
        return Err(format!("header name {name:?} may hold only printable ASCII without ':'"));
    }
    if RESERVED_HEADERS.contains(&name.to_ascii_lowercase().as_str()) {
        return Err(format!("header {name:?} is set by Sluice and cannot be overridden"));
    }
    Ok(())
}

/// A header value or display name: one line, without CR, LF, NUL or any other control
/// character but tab.
pub fn header_value(value: &str) -> Result<(), String> {
    if has_control_breaks(value) {
        return Err("value contains CR, LF or NUL".into());
    }
    if let Some(c) = value.chars().find(|c| c.is_control() && *c != '\t') {
        return Err(format!("value contains the control character U+{:04X}", c as u32));
    }
    if value.len() > MAX_HEADER_LINE {
        return Err(format!("value is {} octets, the limit is {MAX_HEADER_LINE}", value.len()));
    }
    Ok(())
}

fn id_like(text: &str, what: &str, extra: &[char]) -> Result<(), String> {
    if text.is_empty() || text.len() > 64 {
        return Err(format!("{what} must be 1-64 characters"));
    }
    if !text.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.' || extra.contains(&c)) {
        return Err(format!("{what} may hold only letters, digits, '-', '_' and '.'"));
    }
    Ok(())
}

/// A campaign id: 1-64 of `[A-Za-z0-9._-]` (it becomes part of Redis keys and Message-IDs).
pub fn campaign_id(id: &str) -> Result<(), String> {
    if crate::lane::is_message(id) {
        return Err(format!(
            "ids starting with {:?} are reserved for transactional messages",
            crate::lane::MESSAGE_PREFIX
        ));
    }
    id_like(id, "id", &[])
}

/// Every event type, in lifecycle order.
pub const EVENT_TYPES: &[&str] = &[
    "queued",
    "sent",
    "deferred",
    "requeued",
    "bounced",
    "failed",
    "suppressed",
    "dormant",
    "cancelled",
    "opened",
    "clicked",
    "unsubscribed",
    "complained",
    "campaign_paused",
];

/// A webhook endpoint's event filter: known types only.
pub fn event_types(types: &[String]) -> Result<(), String> {
    match types.iter().find(|t| !EVENT_TYPES.contains(&t.as_str())) {
        Some(bad) => Err(format!("unknown event type {bad:?}; one of {}", EVENT_TYPES.join(", "))),
        None => Ok(()),
    }
}

/// A webhook endpoint id: like a campaign id.
pub fn webhook_id(id: &str) -> Result<(), String> {
    id_like(id, "id", &[])
}

/// A webhook endpoint URL: https (http only when allowed), a host, no user info.
pub fn webhook_url(url: &str, allow_http: bool) -> Result<(), String> {
    let rest = match url.strip_prefix("https://") {
        Some(rest) => rest,
        None if allow_http => url.strip_prefix("http://").ok_or("must start with https:// or http://")?,
        None if url.starts_with("http://") => {
            return Err("must start with https:// (set webhooks.allow_http to allow http://)".into());
        }
        None => return Err("must start with https://".into()),
    };
    if rest.is_empty() || rest.starts_with('/') || url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("must name a host and hold no spaces".into());
    }
    if url_host(url).is_none() {
        return Err("must not carry a user name or password (user@host)".into());
    }
    Ok(())
}

/// The host of an http(s) URL (`[..]` kept around IPv6); None when the authority carries
/// user info.
pub fn url_host(url: &str) -> Option<&str> {
    let rest = url.split_once("://")?.1;
    let authority = &rest[..rest.find(['/', '?', '#']).unwrap_or(rest.len())];
    if authority.contains('@') {
        return None;
    }
    let host = match authority.rfind(':') {
        Some(i) if !authority[i..].contains(']') => &authority[..i],
        _ => authority,
    };
    Some(host)
}

/// A stored template's id: the same characters as a campaign id.
pub fn template_id(id: &str) -> Result<(), String> {
    id_like(id, "id", &[])
}

/// A mailing list's name (a campaign's `list`, an unsubscribe's scope): like a campaign id.
pub fn list_name(name: &str) -> Result<(), String> {
    id_like(name, "list", &[])
}

/// A language tag (BCP 47's shape: `ja`, `en-US`, `zh-Hant-TW`), at most 35 characters.
pub fn locale(tag: &str) -> Result<(), String> {
    let mut parts = tag.split('-');
    let primary = parts.next().unwrap_or("");
    let ok = tag.len() <= 35
        && (2..=3).contains(&primary.len())
        && primary.chars().all(|c| c.is_ascii_alphabetic())
        && parts.all(|p| (1..=8).contains(&p.len()) && p.chars().all(|c| c.is_ascii_alphanumeric()));
    if ok { Ok(()) } else { Err("must be a language tag such as ja, en or en-US".into()) }
}

/// A stable consumer name for a worker or scheduler.
pub fn consumer_name(name: &str) -> Result<(), String> {
    id_like(name, "name", &[':'])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn good_addresses_normalise_their_domain() {
        let e = email("Ann.Lee+news@Example.COM").unwrap();
        assert_eq!(e.address, "Ann.Lee+news@example.com");
        assert_eq!(e.domain, "example.com");
        let e = email("user@Bücher.example").unwrap();
        assert_eq!(e.domain, "xn--bcher-kva.example");
    }

    #[test]
    fn bad_addresses_say_why() {
        let long_local = format!("{}@example.com", "a".repeat(65));
        let long_addr = format!(
            "{}@{}.com",
            "a".repeat(64),
            ["b".repeat(60), "c".repeat(60), "d".repeat(60), "e".repeat(60)].join(".")
        );
        let cases = [
            ("", "empty"),
            ("no-at-sign", "no @"),
            ("@example.com", "local part is empty"),
            (long_local.as_str(), "limit is 64"),
            (long_addr.as_str(), "limit is 254"),
            ("a\r\nBcc: x@y.z@example.com", "CR, LF or NUL"),
            ("a\0@example.com", "CR, LF or NUL"),
            ("a..b@example.com", "dot"),
            ("a b@example.com", "contains ' '"),
            ("a@localhost", "no dot"),
            ("a@exa_mple.com", "invalid"),
            ("a@", "domain is empty"),
        ];
        for (input, needle) in cases {
            let err = email(input).unwrap_err();
            assert!(err.contains(needle), "{input:?}: {err}");
        }
    }

    #[test]
    fn headers_reject_injection_and_reserved_names() {
        assert!(header_name("X-Campaign").is_ok());
        assert!(header_name("X-Bad\r\nBcc").unwrap_err().contains("CR, LF or NUL"));
        assert!(header_name("Bad Name").unwrap_err().contains("printable"));
        assert!(header_name("Subject").unwrap_err().contains("set by Sluice"));
        assert!(header_value("fine value").is_ok());
        assert!(header_value("x\nBcc: y").unwrap_err().contains("CR, LF or NUL"));
        assert!(header_value("x\u{1b}[31m").unwrap_err().contains("U+001B"));
        assert!(header_value("x\ty").is_ok());
        assert!(header_value(&"v".repeat(999)).unwrap_err().contains("998"));
    }

    #[test]
    fn webhook_urls_name_a_host_without_user_info() {
        assert_eq!(url_host("https://crm.example:8443/a@b"), Some("crm.example"));
        assert_eq!(url_host("https://[::1]:80/x"), Some("[::1]"));
        assert_eq!(url_host("https://[::1]/x"), Some("[::1]"));
        assert_eq!(url_host("https://u:p@crm.example/"), None);
        assert!(webhook_url("https://u@crm.example/", false).unwrap_err().contains("user name"));
        assert!(webhook_url("http://crm.example/", false).unwrap_err().contains("allow_http"));
        assert!(webhook_url("http://crm.example/", true).is_ok());
        assert!(webhook_url("https:///x", true).is_err());
    }

    #[test]
    fn ids_are_key_safe() {
        assert!(campaign_id("spring-2026_v1.2").is_ok());
        assert!(campaign_id("has space").is_err());
        assert!(campaign_id("msg_1").unwrap_err().contains("reserved"));
        assert!(campaign_id("{tag}").is_err());
        assert!(campaign_id(&"x".repeat(65)).is_err());
        assert!(consumer_name("host:worker-1").is_ok());
    }
}
