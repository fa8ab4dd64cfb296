//! MTA-STS (RFC 8461): a domain's TXT record `_mta-sts.<domain>` announces a policy, fetched
//! over verified HTTPS from `https://mta-sts.<domain>/.well-known/mta-sts.txt` and cached for
//! its `max_age` (fetched again when the record's `id` changes). In `enforce` mode mail goes
//! only to MX hosts the policy lists, over TLS with a certificate verified for the host;
//! `testing` and `none` change nothing (no TLSRPT reports are sent).
//!
//! The fetch follows no redirect, uses no proxy, reads at most 64 KiB within 10 s, and resolves
//! through Sluice's own DNS with internal addresses refused unless `smtp.mx_allow_networks`
//! allows them. A failed fetch keeps a cached policy until it expires.

use std::{
    collections::HashMap,
    net::{IpAddr, SocketAddr},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use sluice_shared::{dns::Dns, netguard::AddressPolicy};

/// Longest policy body read (RFC 8461 section 3.3 suggests 64 KiB).
const MAX_POLICY_BYTES: usize = 64 * 1024;
/// Longest `max_age` honoured (RFC 8461: 31,557,600 s, about a year).
const MAX_AGE_LIMIT: u64 = 31_557_600;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Enforce,
    Testing,
    None,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    pub mode: Mode,
    /// MX patterns: `mx.example.com`, or `*.example.com` for one more label.
    pub mx: Vec<String>,
    pub max_age: Duration,
}

impl Policy {
    /// Parses a policy body (`key: value` lines, CRLF or LF).
    pub fn parse(text: &str) -> Result<Policy, String> {
        let (mut version, mut mode, mut max_age, mut mx) = (None, None, None, Vec::new());
        for line in text.lines() {
            let Some((key, value)) = line.split_once(':') else { continue };
            let value = value.trim();
            match key.trim() {
                "version" => version = Some(value.to_string()),
                "mode" => {
                    mode = Some(match value {
                        "enforce" => Mode::Enforce,
                        "testing" => Mode::Testing,
                        "none" => Mode::None,
                        other => return Err(format!("unknown mode {other:?}")),
                    })
                }
                "max_age" => {
                    let seconds: u64 = value.parse().map_err(|_| format!("max_age {value:?} is not a number"))?;
                    max_age = Some(Duration::from_secs(seconds.min(MAX_AGE_LIMIT)));
                }
                "mx" => mx.push(value.trim_end_matches('.').to_ascii_lowercase()),
                _ => {}
            }
        }
        if version.as_deref() != Some("STSv1") {
            return Err("version is not STSv1".into());
        }
        let mode = mode.ok_or("no mode")?;
        let max_age = max_age.ok_or("no max_age")?;
        if mode != Mode::None && mx.is_empty() {
            return Err("no mx".into());
        }
        Ok(Policy { mode, mx, max_age })
    }

    /// Whether `host` is one of the policy's MX hosts.
    pub fn allows(&self, host: &str) -> bool {
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        self.mx.iter().any(|pattern| match pattern.strip_prefix("*.") {
            Some(parent) => host.split_once('.').is_some_and(|(label, rest)| !label.is_empty() && rest == parent),
            None => *pattern == host,
        })
    }
}

/// The `id` of a `v=STSv1; id=...;` record, if it is one.
pub fn record_id(txt: &str) -> Option<String> {
    let mut fields = txt.split(';').map(str::trim).filter(|f| !f.is_empty());
    if fields.next()? != "v=STSv1" {
        return None;
    }
    let id = fields.find_map(|f| f.strip_prefix("id="))?;
    (!id.is_empty() && id.len() <= 32 && id.chars().all(|c| c.is_ascii_alphanumeric())).then(|| id.to_string())
}

struct Cached {
    id: String,
    policy: Policy,
    expires: Instant,
}

/// Policies by domain, fetched as needed.
pub struct MtaSts {
    dns: Dns,
    http: reqwest::Client,
    port: u16,
    cache: Mutex<HashMap<String, Arc<Cached>>>,
}

impl MtaSts {
    /// `extra_root`: `smtp.mx_ca_file`, trusted beside the Mozilla roots; `port`: 443 but in tests.
    pub fn new(dns: Dns, allowed: AddressPolicy, extra_root: Option<&[u8]>, port: u16) -> anyhow::Result<MtaSts> {
        let mut http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .https_only(true)
            .timeout(Duration::from_secs(10))
            .dns_resolver(Arc::new(Guarded { dns: dns.clone(), allowed }));
        if let Some(pem) = extra_root {
            http = http.add_root_certificate(reqwest::Certificate::from_pem(pem)?);
        }
        Ok(MtaSts { dns, http: http.build()?, port, cache: Mutex::default() })
    }

    /// The policy `domain` publishes, if any (a fetch that fails leaves a cached one in force).
    pub async fn policy(&self, domain: &str) -> Option<Policy> {
        let cached = self.cache.lock().unwrap().get(domain).cloned().filter(|c| c.expires > Instant::now());
        let records = self.dns.txt(&format!("_mta-sts.{domain}")).await.unwrap_or_default();
        let Some(id) = records.iter().find_map(|r| record_id(r)) else { return cached.map(|c| c.policy.clone()) };
        if let Some(c) = cached.as_ref().filter(|c| c.id == id) {
            return Some(c.policy.clone());
        }
        match self.fetch(domain).await {
            Ok(policy) => {
                let entry = Cached { id, expires: Instant::now() + policy.max_age, policy: policy.clone() };
                self.cache.lock().unwrap().insert(domain.to_string(), Arc::new(entry));
                Some(policy)
            }
            Err(e) => {
                tracing::warn!(domain, error = %e, "MTA-STS policy not fetched; the cached one (if any) stays");
                cached.map(|c| c.policy.clone())
            }
        }
    }

    async fn fetch(&self, domain: &str) -> Result<Policy, String> {
        let url = format!("https://mta-sts.{domain}:{}/.well-known/mta-sts.txt", self.port);
        let mut response = self.http.get(&url).send().await.map_err(|e| format!("{url}: {e:#}"))?;
        if !response.status().is_success() {
            return Err(format!("{url}: status {}", response.status()));
        }
        let content_type = response.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("");
        if !content_type.starts_with("text/plain") {
            return Err(format!("{url}: content type {content_type:?}, not text/plain"));
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| format!("{url}: {e}"))? {
            if body.len() + chunk.len() > MAX_POLICY_BYTES {
                return Err(format!("{url}: policy over {MAX_POLICY_BYTES} bytes"));
            }
            body.extend_from_slice(&chunk);
        }
        Policy::parse(&String::from_utf8_lossy(&body)).map_err(|e| format!("{url}: {e}"))
    }
}

/// Resolves policy hosts through Sluice's DNS, refusing internal addresses.
struct Guarded {
    dns: Dns,
    allowed: AddressPolicy,
}

impl reqwest::dns::Resolve for Guarded {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let (dns, allowed) = (self.dns.clone(), self.allowed.clone());
        Box::pin(async move {
            let found = dns.ipv4(name.as_str()).await?;
            let usable: Vec<SocketAddr> = found
                .into_iter()
                .filter(|ip| allowed.permits(IpAddr::V4(*ip)))
                .map(|ip| SocketAddr::new(IpAddr::V4(ip), 0))
                .collect();
            if usable.is_empty() {
                return Err(format!("{}: no address Sluice may reach", name.as_str()).into());
            }
            Ok(Box::new(usable.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policies_parse_as_rfc_8461_writes_them() {
        let text =
            "version: STSv1\r\nmode: enforce\r\nmx: mail.example.com\r\nmx: *.example.net\r\nmax_age: 604800\r\n";
        let p = Policy::parse(text).unwrap();
        assert_eq!((p.mode, p.max_age), (Mode::Enforce, Duration::from_secs(604_800)));
        assert!(p.allows("mail.example.com") && p.allows("MX1.example.net.") && !p.allows("a.b.example.net"));
        assert!(!p.allows("example.net") && !p.allows("evil.com"));
        assert_eq!(
            Policy::parse("version: STSv1\nmode: none\nmax_age: 99999999999\n").unwrap().max_age.as_secs(),
            MAX_AGE_LIMIT
        );
        for bad in [
            "mode: enforce\nmx: a\nmax_age: 1",
            "version: STSv1\nmode: strict\nmx: a\nmax_age: 1",
            "version: STSv1\nmode: enforce\nmax_age: 1",
        ] {
            assert!(Policy::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn records_give_their_id() {
        assert_eq!(record_id("v=STSv1; id=20160831085700Z;").as_deref(), Some("20160831085700Z"));
        assert_eq!(record_id("v=STSv1;id=abc"), Some("abc".into()));
        assert_eq!(record_id("v=spf1 -all"), None);
        assert_eq!(record_id("v=STSv1; id=not-alnum"), None);
    }
}
