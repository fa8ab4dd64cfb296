//! Mailbox providers: destinations grouped by domain list and by MX host suffix ("MX rollup":
//! every domain whose mail goes to Google's MX shares Google's queue and limits). A provider's
//! queue is named `@<provider>`; its limits start from the built-in table (DOMAIN.md section 4)
//! and `[limits.providers.NAME]` overrides any field or adds providers.

use serde::Deserialize;

use super::{DomainLimit, LimitOverride, LimitsConfig};
use crate::{model::Charset, units::Rate};

/// One provider as configured; every field is optional and overrides the built-in value.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderConfig {
    pub domains: Option<Vec<String>>,
    /// MX host names ending in one of these (e.g. `google.com` matches `aspmx.l.google.com`).
    pub mx_suffixes: Option<Vec<String>>,
    pub rate: Option<Rate>,
    pub burst: Option<u32>,
    pub connections: Option<usize>,
    pub require_tls: Option<bool>,
    pub messages_per_connection: Option<u32>,
    pub max_message_bytes: Option<usize>,
    pub reset_is_throttling: Option<bool>,
    pub charset: Option<Charset>,
}

struct Builtin {
    name: &'static str,
    domains: &'static [&'static str],
    mx_suffixes: &'static [&'static str],
    connections: Option<usize>,
    messages_per_connection: Option<u32>,
    require_tls: bool,
    /// Conservative rates for the carriers, which publish none and block heavy senders.
    rate: Option<&'static str>,
    max_message_bytes: Option<usize>,
    reset_is_throttling: bool,
    charset: Option<Charset>,
}

/// The fields most providers leave at `[limits.default]`.
const PLAIN: Builtin = Builtin {
    name: "",
    domains: &[],
    mx_suffixes: &[],
    connections: None,
    messages_per_connection: None,
    require_tls: false,
    rate: None,
    max_message_bytes: None,
    reset_is_throttling: false,
    charset: None,
};

/// KumoMTA's shipped shaping, as DOMAIN.md section 4 lists it, and the providers our users send
/// to with what they publish (DOMAIN.md section 1, sources in docs/deliverability/providers.md).
const BUILTIN: &[Builtin] = &[
    Builtin {
        name: "google",
        domains: &["gmail.com", "googlemail.com"],
        mx_suffixes: &["google.com", "googlemail.com"],
        connections: Some(5),
        messages_per_connection: Some(50),
        require_tls: true,
        ..PLAIN
    },
    Builtin {
        name: "yahoo",
        domains: &["yahoo.com", "ymail.com", "rocketmail.com", "aol.com"],
        mx_suffixes: &["yahoodns.net"],
        messages_per_connection: Some(20),
        ..PLAIN
    },
    Builtin {
        name: "outlook",
        domains: &["outlook.com", "hotmail.com", "live.com", "msn.com"],
        mx_suffixes: &["outlook.com"],
        connections: Some(5),
        messages_per_connection: Some(50),
        ..PLAIN
    },
    Builtin {
        name: "comcast",
        domains: &["comcast.net"],
        mx_suffixes: &["comcast.net"],
        connections: Some(25),
        messages_per_connection: Some(1000),
        ..PLAIN
    },
    Builtin {
        name: "icloud",
        domains: &["icloud.com", "me.com", "mac.com"],
        mx_suffixes: &["mail.icloud.com"],
        connections: Some(5),
        messages_per_connection: Some(50),
        ..PLAIN
    },
    Builtin {
        name: "yahoo-japan",
        domains: &["yahoo.co.jp", "ymail.ne.jp"],
        mx_suffixes: &["mail.yahoo.co.jp"],
        connections: Some(5),
        messages_per_connection: Some(50),
        ..PLAIN
    },
    // The carriers: few connections, a slow rate, ISO-2022-JP unless a campaign says otherwise;
    // docomo takes about 100 recipients a session; au refuses over 3 MB and answers heavy
    // senders with a TCP reset.
    Builtin {
        name: "docomo",
        domains: &["docomo.ne.jp"],
        mx_suffixes: &["docomo.ne.jp"],
        connections: Some(2),
        messages_per_connection: Some(100),
        rate: Some("5/s"),
        charset: Some(Charset::Iso2022Jp),
        ..PLAIN
    },
    Builtin {
        name: "au",
        domains: &["ezweb.ne.jp", "au.com"],
        mx_suffixes: &["ezweb.ne.jp", "au.com"],
        connections: Some(2),
        messages_per_connection: Some(100),
        rate: Some("5/s"),
        max_message_bytes: Some(3_000_000),
        reset_is_throttling: true,
        charset: Some(Charset::Iso2022Jp),
        ..PLAIN
    },
    Builtin {
        name: "softbank",
        domains: &["softbank.ne.jp", "i.softbank.jp"],
        mx_suffixes: &["softbank.ne.jp"],
        connections: Some(2),
        messages_per_connection: Some(100),
        rate: Some("5/s"),
        charset: Some(Charset::Iso2022Jp),
        ..PLAIN
    },
];

/// A provider with its configuration merged over the built-in entry.
#[derive(Debug, Clone, PartialEq)]
pub struct Provider {
    pub name: String,
    pub domains: Vec<String>,
    pub mx_suffixes: Vec<String>,
    pub limit: DomainLimit,
}

impl Provider {
    /// Its queue (and destination) name.
    pub fn queue(&self) -> String {
        format!("@{}", self.name)
    }
}

/// Every provider, resolved once; matching is done against this list.
#[derive(Debug, Clone, PartialEq)]
pub struct Providers(pub Vec<Provider>);

impl Providers {
    /// The provider whose domain list holds `domain`.
    pub fn by_domain(&self, domain: &str) -> Option<&Provider> {
        let domain = domain.to_ascii_lowercase();
        self.0.iter().find(|p| p.domains.contains(&domain))
    }

    /// The provider of the first of `mx_hosts` that matches any provider's MX suffixes.
    pub fn by_mx(&self, mx_hosts: &[String]) -> Option<&Provider> {
        mx_hosts.iter().find_map(|host| {
            let host = host.trim_end_matches('.').to_ascii_lowercase();
            self.0.iter().find(|p| p.mx_suffixes.iter().any(|s| host == *s || host.ends_with(&format!(".{s}"))))
        })
    }
}

impl LimitsConfig {
    /// Every provider: the built-in ones (as overridden) and the configured ones.
    pub fn providers(&self) -> Providers {
        let mut names: Vec<String> = BUILTIN.iter().map(|b| b.name.to_string()).collect();
        names.extend(self.providers.keys().filter(|n| !BUILTIN.iter().any(|b| b.name == n.as_str())).cloned());
        Providers(names.into_iter().filter_map(|n| self.provider(&n)).collect())
    }

    /// One provider by name.
    pub fn provider(&self, name: &str) -> Option<Provider> {
        let limit = self.provider_limit(name)?;
        let builtin = BUILTIN.iter().find(|b| b.name == name);
        let c = self.providers.get(name).cloned().unwrap_or_default();
        let list = |given: Option<Vec<String>>, fallback: Option<&[&str]>| {
            given.unwrap_or_else(|| fallback.unwrap_or(&[]).iter().map(|s| s.to_string()).collect())
        };
        Some(Provider {
            name: name.to_string(),
            domains: list(c.domains, builtin.map(|b| b.domains)),
            mx_suffixes: list(c.mx_suffixes, builtin.map(|b| b.mx_suffixes)),
            limit,
        })
    }

    /// A provider's limits: the configured fields over the built-in ones over `[limits.default]`.
    pub fn provider_limit(&self, name: &str) -> Option<DomainLimit> {
        let builtin = BUILTIN.iter().find(|b| b.name == name).map(|b| LimitOverride {
            rate: b.rate.map(|r| Rate::try_from(r).expect("built-in rates are valid")),
            connections: b.connections,
            messages_per_connection: b.messages_per_connection,
            require_tls: b.require_tls.then_some(true),
            max_message_bytes: b.max_message_bytes,
            reset_is_throttling: b.reset_is_throttling.then_some(true),
            charset: b.charset,
            ..LimitOverride::default()
        });
        let configured = self.providers.get(name).map(|c| LimitOverride {
            rate: c.rate,
            burst: c.burst,
            connections: c.connections,
            require_tls: c.require_tls,
            messages_per_connection: c.messages_per_connection,
            max_message_bytes: c.max_message_bytes,
            reset_is_throttling: c.reset_is_throttling,
            charset: c.charset,
        });
        if builtin.is_none() && configured.is_none() {
            return None;
        }
        let merged = configured.unwrap_or_default().over(&builtin.unwrap_or_default());
        Some(self.default.with(&merged))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(toml_text: &str) -> LimitsConfig {
        toml::from_str(toml_text).unwrap()
    }

    #[test]
    fn built_in_providers_follow_domain_md_and_can_be_overridden() {
        let l = limits(
            "[providers.google]\nrate = \"20/s\"\n[providers.fastmail]\ndomains = [\"fastmail.com\"]\nconnections = 3\n",
        );
        let g = l.provider("google").unwrap();
        assert_eq!((g.limit.connections, g.limit.messages_per_connection, g.limit.require_tls), (5, 50, true));
        assert_eq!((g.limit.per_second, g.limit.burst), (20.0, 20));
        assert!(g.domains.contains(&"gmail.com".to_string()), "the override keeps the built-in domains");
        assert_eq!(l.provider("comcast").unwrap().limit.messages_per_connection, 1000);
        assert_eq!(l.provider("fastmail").unwrap().limit.connections, 3);
        let all = l.providers();
        assert_eq!(all.by_domain("GMAIL.com").unwrap().queue(), "@google");
        assert_eq!(all.by_domain("fastmail.com").unwrap().name, "fastmail");
        assert_eq!(all.by_domain("shop.example"), None);
        let hosts = vec!["alt1.aspmx.l.google.com.".to_string()];
        assert_eq!(all.by_mx(&hosts).unwrap().name, "google");
        assert_eq!(all.by_mx(&["mx.notgoogle.com".to_string()]), None, "suffixes match whole labels");
        // Provider queues resolve to the provider's limits and label.
        assert_eq!(l.for_domain("@google").connections, 5);
        assert_eq!(l.label("@google"), "google");
    }

    #[test]
    fn the_providers_our_users_send_to_are_built_in() {
        let all = limits("").providers();
        for (domain, queue) in [
            ("icloud.com", "@icloud"),
            ("me.com", "@icloud"),
            ("mac.com", "@icloud"),
            ("yahoo.co.jp", "@yahoo-japan"),
            ("docomo.ne.jp", "@docomo"),
            ("ezweb.ne.jp", "@au"),
            ("au.com", "@au"),
            ("softbank.ne.jp", "@softbank"),
            ("i.softbank.jp", "@softbank"),
        ] {
            assert_eq!(all.by_domain(domain).map(Provider::queue).as_deref(), Some(queue), "{domain}");
        }
        assert_eq!(all.by_mx(&["mx01.mail.icloud.com.".into()]).unwrap().name, "icloud");
        let l = limits("");
        let au = l.for_domain("@au");
        assert_eq!(
            (au.connections, au.per_second, au.max_message_bytes, au.reset_is_throttling),
            (2, 5.0, Some(3_000_000), true)
        );
        let docomo = l.for_domain("@docomo");
        assert_eq!(
            (docomo.messages_per_connection, docomo.max_message_bytes, docomo.reset_is_throttling),
            (100, None, false)
        );
        let raised = limits("[providers.au]\nmax_message_bytes = 5000000\nreset_is_throttling = false\n");
        let au = raised.for_domain("@au");
        assert_eq!((au.max_message_bytes, au.reset_is_throttling, au.per_second), (Some(5_000_000), false, 5.0));
    }
}
