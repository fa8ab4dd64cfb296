//! Entries of the suppression lists, made the same way wherever an address is suppressed:
//! the API, bounces, unsubscribes, complaints. An entry has a scope:
//!
//! - `all` (`sluice:suppressed`): bounces, complaints, operators. Nothing is sent to it.
//! - `campaigns` and `list` (`keys::unsubscribed`): unsubscribes. No campaign (or no campaign
//!   of that list) is sent to it; transactional messages still are.
//!
//! Both hashes map the lower-cased address (or its [`erased_token`]) to JSON; an unsubscribed
//! entry is `{"scope":"campaigns", ...}` or `{"scope":"lists","lists":{name: {...}}}`.

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

/// Who a suppression keeps mail from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// Everything: campaigns and transactional messages.
    All,
    /// Every campaign.
    Campaigns,
    /// The campaigns of one list.
    List(String),
}

impl Scope {
    /// The scope named by `scope` (`all`, `campaigns`, `list`) and `list` (only with `list`).
    pub fn parse(scope: Option<&str>, list: Option<&str>) -> Result<Scope, (&'static str, String)> {
        match (scope, list) {
            (None | Some("all"), None) => Ok(Scope::All),
            (Some("campaigns"), None) => Ok(Scope::Campaigns),
            (None | Some("list"), Some(name)) => {
                crate::validate::list_name(name).map_err(|m| ("list", m))?;
                Ok(Scope::List(name.to_string()))
            }
            (Some("list"), None) => Err(("list", "is required with scope \"list\"".into())),
            (Some("all" | "campaigns"), Some(_)) => Err(("list", "goes only with scope \"list\"".into())),
            (Some(other), _) => Err(("scope", format!("{other:?} is not one of all, campaigns, list"))),
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            Scope::All => "all",
            Scope::Campaigns => "campaigns",
            Scope::List(_) => "list",
        }
    }

    pub fn list(&self) -> Option<&str> {
        match self {
            Scope::List(name) => Some(name),
            _ => None,
        }
    }
}

/// Whether the unsubscribed entry `stored` keeps a campaign of `list` (None: a campaign on no
/// list) from the address.
pub fn unsubscribe_applies(stored: &str, list: Option<&str>) -> bool {
    let Ok(entry) = serde_json::from_str::<Value>(stored) else { return true };
    match entry["scope"].as_str() {
        Some("lists") => list.is_some_and(|l| entry["lists"].get(l).is_some()),
        _ => true,
    }
}

/// The entries of one address as the API shows them, broadest first: each with `email`,
/// `scope` and (for a list) `list`, beside what was stored.
pub fn entries(email: &str, all: Option<&str>, unsubscribed: Option<&str>) -> Vec<Value> {
    let parse = |text: &str| serde_json::from_str::<Value>(text).unwrap_or(Value::Null);
    let shown = |mut e: Value, scope: &str, list: Option<&str>| {
        if !e.is_object() {
            e = json!({});
        }
        e["email"] = email.into();
        e["scope"] = scope.into();
        if let Some(l) = list {
            e["list"] = l.into();
        }
        e
    };
    let mut out: Vec<Value> = all.map(|a| shown(parse(a), "all", None)).into_iter().collect();
    let Some(entry) = unsubscribed.map(parse) else { return out };
    match entry["lists"].as_object().filter(|_| entry["scope"] == "lists") {
        Some(lists) => out.extend(lists.iter().map(|(name, e)| shown(e.clone(), "list", Some(name)))),
        None => out.push(shown(entry, "campaigns", None)),
    }
    out
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
    use super::*;

    #[test]
    fn scopes_are_named_and_checked() {
        assert_eq!(Scope::parse(None, None), Ok(Scope::All));
        assert_eq!(Scope::parse(Some("campaigns"), None), Ok(Scope::Campaigns));
        assert_eq!(Scope::parse(None, Some("news")), Ok(Scope::List("news".into())));
        assert_eq!(Scope::parse(Some("list"), None).unwrap_err().0, "list");
        assert_eq!(Scope::parse(Some("all"), Some("news")).unwrap_err().0, "list");
        assert_eq!(Scope::parse(Some("every"), None).unwrap_err().0, "scope");
        assert_eq!(Scope::parse(None, Some("no spaces")).unwrap_err().0, "list");
    }

    #[test]
    fn an_unsubscribe_applies_to_its_lists_or_to_every_campaign() {
        let everything = r#"{"scope":"campaigns","reason":"unsubscribed"}"#;
        assert!(unsubscribe_applies(everything, None) && unsubscribe_applies(everything, Some("news")));
        let news = r#"{"scope":"lists","lists":{"news":{"reason":"unsubscribed"}}}"#;
        assert!(unsubscribe_applies(news, Some("news")));
        assert!(!unsubscribe_applies(news, Some("offers")) && !unsubscribe_applies(news, None));
        let shown = entries("ann@x.example", Some(r#"{"reason":"bounce"}"#), Some(news));
        assert_eq!(shown.len(), 2);
        assert_eq!((shown[0]["scope"].as_str(), shown[1]["list"].as_str()), (Some("all"), Some("news")));
        assert_eq!(shown[1]["email"], "ann@x.example");
    }
    #[test]
    fn an_erased_address_is_named_by_its_hash_whatever_its_case() {
        let token = erased_token("Ann@Example.com");
        assert_eq!(token, erased_token("ann@example.com"));
        assert!(token.starts_with("sha256:") && token.len() == 7 + 64 && !token.contains("ann"));
    }
}
