//! How a message is found again when a report about it comes back later: the VERP
//! Return-Path (`b+<campaign>=<index>=<tag>@<bounce domain>`, a 64-bit tag), the sealed trace
//! header `X-Sluice-Ref`, and the Message-ID (`<sealed token>@<from domain>`, opaque, opened
//! only with the recipient's address).

use sha2::{Digest, Sha256};

use crate::tokens::TokenKey;

/// The trace header every campaign message carries.
pub const TRACE_HEADER: &str = "X-Sluice-Ref";

/// The longest local part SMTP allows (RFC 5321 4.5.3.1.1).
const LOCAL_PART_MAX: usize = 64;

/// The Message-ID of recipient `index` (`address`) of a campaign: stable across retries,
/// unique across campaigns (creation time and id), in the sender's domain, and revealing
/// neither campaign nor index. With a token key it is sealed and bound to the address, so a
/// report quoting it is matched only when it names that recipient; without one (no
/// `[public]`, hence no reports to match) it is a digest.
pub fn message_id(
    key: Option<&TokenKey>,
    campaign: &str,
    created_ms: i64,
    index: u64,
    address: &str,
    from_domain: &str,
) -> String {
    let local = match key {
        Some(k) => k.message_id_local(campaign, created_ms, index, address),
        None => {
            let digest = Sha256::digest(format!("sluice-message-id\n{campaign}\n{created_ms}\n{index}"));
            hex::encode(&digest[..16])
        }
    };
    format!("<{local}@{from_domain}>")
}

/// The campaign and index of one of our Message-IDs, if `address` is its recipient.
pub fn open_message_id(key: &TokenKey, id: &str, address: &str) -> Option<(String, u64)> {
    let inner = id.trim().trim_start_matches('<').trim_end_matches('>');
    let (local, _) = inner.rsplit_once('@')?;
    key.open_message_id_local(local, address)
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
    (tag.len() == 16 && tag.chars().all(|c| c.is_ascii_hexdigit())).then(|| Verp {
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
    fn message_ids_are_opaque_and_open_with_their_recipient_only() {
        let key = TokenKey::new("a-secret-of-at-least-32-characters!!");
        let id = message_id(Some(&key), "spring.v2", 1700000000000, 7, "ann@x.example", "shop.example");
        assert!(id.starts_with('<') && id.ends_with("@shop.example>") && !id.contains("spring"), "{id}");
        assert_eq!(open_message_id(&key, &id, "ann@x.example"), Some(("spring.v2".into(), 7)));
        assert_eq!(open_message_id(&key, &id, "bob@x.example"), None);
        assert_eq!(open_message_id(&key, "<1.1.no-such-campaign@shop.example>", "ann@x.example"), None);
        let plain = message_id(None, "spring.v2", 1700000000000, 7, "ann@x.example", "shop.example");
        assert_eq!(plain, message_id(None, "spring.v2", 1700000000000, 7, "bob@x.example", "shop.example"));
        assert!(!plain.contains("spring") && plain.len() == "<@shop.example>".len() + 32, "{plain}");
    }
}
