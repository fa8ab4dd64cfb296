//! Enough of SPF (RFC 7208) to answer "would this address pass?": ip4/ip6, a, mx, include,
//! redirect and all, with the 10-lookup limit. Macros and exists: are reported as unsupported.

use std::net::IpAddr;

use sluice_shared::dns::Dns;

/// The outcome for one address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Spf {
    Pass,
    /// Not matched, or matched by a non-pass qualifier; the text says how.
    Fail(String),
    /// No SPF record, or a record we cannot evaluate.
    Missing(String),
}

const LOOKUP_LIMIT: u32 = 10;

/// The domain's SPF record (the one TXT record starting `v=spf1`).
pub async fn record(dns: &Dns, domain: &str) -> Result<String, String> {
    let txt = dns.txt(domain).await.map_err(|e| e.to_string())?;
    let spf: Vec<&String> = txt.iter().filter(|t| t.to_ascii_lowercase().starts_with("v=spf1")).collect();
    match spf.as_slice() {
        [one] => Ok(one.to_string()),
        [] => Err(format!("{domain} has no SPF record")),
        _ => Err(format!("{domain} has {} SPF records (must be one)", spf.len())),
    }
}

/// Would mail from `ip` with envelope domain `domain` pass SPF?
pub async fn check(dns: &Dns, domain: &str, ip: IpAddr) -> Spf {
    let mut lookups = 0;
    match evaluate(dns, domain, ip, &mut lookups, 0).await {
        Ok(Some(('+', _))) => Spf::Pass,
        Ok(Some((q, all))) if all == "all" => {
            Spf::Fail(format!("{ip} is not covered by the SPF record of {domain} (it ends in {q}all)"))
        }
        Ok(Some((q, mechanism))) => Spf::Fail(format!("{ip} matches {q}{mechanism}")),
        Ok(None) => Spf::Fail(format!("{ip} is not covered by the SPF record of {domain}")),
        Err(e) => Spf::Missing(e),
    }
}

/// The qualifier and name of the first matching mechanism, None if nothing matched.
type Evaluation<'a> =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<Option<(char, String)>, String>> + Send + 'a>>;

fn evaluate<'a>(dns: &'a Dns, domain: &'a str, ip: IpAddr, lookups: &'a mut u32, depth: u32) -> Evaluation<'a> {
    Box::pin(async move {
        if depth > LOOKUP_LIMIT {
            return Err("SPF include loop".into());
        }
        let record = record(dns, domain).await?;
        let mut redirect = None;
        for term in record.split_whitespace().skip(1) {
            let term = term.to_ascii_lowercase();
            if let Some(target) = term.strip_prefix("redirect=") {
                redirect = Some(target.to_string());
                continue;
            }
            let (qualifier, mechanism) = match term.chars().next() {
                Some(q @ ('+' | '-' | '~' | '?')) => (q, term[1..].to_string()),
                _ => ('+', term.clone()),
            };
            let (name, arg) = mechanism.split_once(':').map_or((mechanism.as_str(), None), |(n, a)| (n, Some(a)));
            let matched = match name {
                "all" => true,
                "ip4" | "ip6" => arg.is_some_and(|cidr| in_cidr(ip, cidr)),
                "a" | "mx" | "include" => {
                    *lookups += 1;
                    if *lookups > LOOKUP_LIMIT {
                        return Err(format!("more than {LOOKUP_LIMIT} DNS lookups (RFC 7208 4.6.4)"));
                    }
                    let target = arg.unwrap_or(domain);
                    match name {
                        "include" => matches!(evaluate(dns, target, ip, lookups, depth + 1).await?, Some(('+', _))),
                        "a" => host_has(dns, target, ip).await,
                        _ => {
                            let hosts = dns.mail_hosts(target).await.map(|h| h.hosts()).unwrap_or_default();
                            let mut any = false;
                            for h in hosts {
                                any |= host_has(dns, &h, ip).await;
                            }
                            any
                        }
                    }
                }
                "exists" | "ptr" => return Err(format!("mechanism {name} is not evaluated by doctor")),
                _ if mechanism.contains('=') => false,
                other => return Err(format!("unknown SPF mechanism {other:?}")),
            };
            if matched {
                return Ok(Some((qualifier, name.to_string())));
            }
        }
        match redirect {
            Some(target) => {
                *lookups += 1;
                evaluate(dns, &target, ip, lookups, depth + 1).await
            }
            None => Ok(None),
        }
    })
}

async fn host_has(dns: &Dns, host: &str, ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => dns.ipv4(host).await.map(|a| a.contains(&v4)).unwrap_or(false),
        IpAddr::V6(_) => false,
    }
}

fn in_cidr(ip: IpAddr, cidr: &str) -> bool {
    let (net, len) = cidr.split_once('/').map_or((cidr, None), |(n, l)| (n, l.parse::<u32>().ok()));
    match (ip, net.parse::<IpAddr>()) {
        (IpAddr::V4(a), Ok(IpAddr::V4(n))) => {
            let len = len.unwrap_or(32).min(32);
            let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
            u32::from(a) & mask == u32::from(n) & mask
        }
        (IpAddr::V6(a), Ok(IpAddr::V6(n))) => {
            let len = len.unwrap_or(128).min(128);
            let mask = if len == 0 { 0 } else { u128::MAX << (128 - len) };
            u128::from(a) & mask == u128::from(n) & mask
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::in_cidr;

    #[test]
    fn cidr_matching() {
        let ip = "192.0.2.10".parse().unwrap();
        assert!(in_cidr(ip, "192.0.2.10"));
        assert!(in_cidr(ip, "192.0.2.0/24"));
        assert!(!in_cidr(ip, "192.0.3.0/24"));
        assert!(in_cidr(ip, "0.0.0.0/0"));
        assert!(!in_cidr(ip, "2001:db8::/32"));
    }
}
