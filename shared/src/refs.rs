//! How a message is found again when a report about it comes back later: the VERP
//! Return-Path (`b+<campaign>=<index>=<tag>@<bounce domain>`), the signed trace header
//! `X-Sluice-Ref`, and the Message-ID (`<index>.<created ms>.<campaign>@<from domain>`).

use crate::tokens::TokenKey;

/// The trace header every campaign message carries.
pub const TRACE_HEADER: &str = "X-Sluice-Ref";

/// The longest local part SMTP allows (RFC 5321 4.5.3.1.1).
const LOCAL_PART_MAX: usize = 64;

/// The Message-ID of recipient `index` of a campaign: stable across retries, unique across
/// campaigns (creation time and id), in the sender's domain.
pub fn message_id(campaign: &str, created_ms: i64, index: u64, from_domain: &str) -> String {
    format!("<{index}.{created_ms}.{campaign}@{from_domain}>")
}

/// The campaign and index in one of our Message-IDs.
pub fn parse_message_id(id: &str) -> Option<(String, u64)> {
    let inner = id.trim().trim_start_matches('<').trim_end_matches('>');
    let (local, _) = inner.rsplit_once('@')?;
    let mut parts = local.splitn(3, '.');
    let index = parts.next()?.parse().ok()?;
    parts.next()?.parse::<i64>().ok()?;
    let campaign = parts.next()?;
    crate::validate::campaign_id(campaign).ok()?;
    Some((campaign.to_string(), index))
}

/// The VERP envelope sender for one recipient, or None when it would not fit in a local part
/// (long campaign ids): such messages are matched by the trace header or Message-ID instead.
pub fn verp_address(key: &TokenKey, campaign: &str, index: u64, address: &str, bounce_domain: &str) -> Option<String> {
    let local = format!("b+{campaign}={index}={}", key.verp_tag(campaign, index, address));
    (local.len() <= LOCAL_PART_MAX).then(|| format!("{local}@{bounce_domain}"))
}

/// What a VERP address says: campaign, index and tag (checked once the address is known).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verp {
    pub campaign: String,
    pub index: u64,
    pub tag: String,
}

pub fn parse_verp(address: &str) -> Option<Verp> {
    let address = address.trim().trim_start_matches('<').trim_end_matches('>');
    let (local, _) = address.rsplit_once('@')?;
    let rest = local.strip_prefix("b+").or_else(|| local.strip_prefix("B+"))?;
    let mut parts = rest.rsplitn(3, '=');
    let tag = parts.next()?.to_ascii_lowercase();
    let index = parts.next()?.parse().ok()?;
    let campaign = parts.next()?;
    crate::validate::campaign_id(campaign).ok()?;
    (tag.len() == 8 && tag.chars().all(|c| c.is_ascii_hexdigit())).then(|| Verp {
        campaign: campaign.into(),
        index,
        tag,
    })
}

impl Verp {
    /// Whether `address` is the recipient this VERP address was made for.
    pub fn matches(&self, key: &TokenKey, address: &str) -> bool {
        key.verp_tag(&self.campaign, self.index, address) == self.tag
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verp_round_trips_and_binds_the_recipient() {
        let key = TokenKey::new("a-secret-of-at-least-32-characters!!");
        let v = verp_address(&key, "spring-2026", 42, "ann@x.example", "bounces.shop.example").unwrap();
        assert!(v.starts_with("b+spring-2026=42=") && v.ends_with("@bounces.shop.example"), "{v}");
        let parsed = parse_verp(&format!("<{}>", v.to_uppercase().replace("B+SPRING-2026", "b+spring-2026"))).unwrap();
        assert_eq!((parsed.campaign.as_str(), parsed.index), ("spring-2026", 42));
        assert!(parsed.matches(&key, "ann@x.example"));
        assert!(!parsed.matches(&key, "bob@x.example"));
        let long = "c".repeat(64);
        assert_eq!(verp_address(&key, &long, 1, "a@x.example", "b.example"), None, "does not fit a local part");
        assert_eq!(parse_verp("bounces@x.example"), None);
    }

    #[test]
    fn message_ids_round_trip() {
        let id = message_id("spring.v2", 1700000000000, 7, "shop.example");
        assert_eq!(id, "<7.1700000000000.spring.v2@shop.example>");
        assert_eq!(parse_message_id(&id), Some(("spring.v2".into(), 7)));
        assert_eq!(parse_message_id("<abc@elsewhere.example>"), None);
    }
}
