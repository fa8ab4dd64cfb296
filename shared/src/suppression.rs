//! Entries of the suppression list (`sluice:suppressed`, lower-cased address -> JSON), made the
//! same way wherever an address is suppressed: the API, bounces, unsubscribes, complaints.

use serde_json::{Value, json};

/// The JSON stored for one address: why, by what, when, and (when known) the campaign and
/// the evidence (an SMTP reply, a report).
pub fn entry(reason: &str, source: &str, campaign: Option<&str>, detail: Option<&Value>) -> Value {
    let mut e = json!({
        "reason": reason,
        "source": source,
        "created_at": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
    });
    if let Some(c) = campaign {
        e["campaign"] = c.into();
    }
    if let Some(d) = detail {
        e["detail"] = d.clone();
    }
    e
}

/// What stands for an erased address: `sha256:` and the hex SHA-256 of the lower-cased
/// address. The suppression list keeps the address under this name after an erase, so the
/// address is still never mailed though it is kept nowhere; a recipient not yet expanded when
/// its address was erased carries this name instead and is suppressed by it.
pub fn erased_token(address: &str) -> String {
    use sha2::Digest;
    format!("sha256:{}", hex::encode(sha2::Sha256::digest(address.to_lowercase().as_bytes())))
}

#[cfg(test)]
mod tests {
    #[test]
    fn an_erased_address_is_named_by_its_hash_whatever_its_case() {
        let token = super::erased_token("Ann@Example.com");
        assert_eq!(token, super::erased_token("ann@example.com"));
        assert!(token.starts_with("sha256:") && token.len() == 7 + 64 && !token.contains("ann"));
    }
}
