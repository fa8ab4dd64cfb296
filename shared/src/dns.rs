//! DNS for direct MX delivery, MX rollup and `doctor`: hickory-resolver on the configured
//! nameservers (`dns.nameservers`, else the system's), with its cache honouring record TTLs.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use hickory_resolver::{
    ResolveError, Resolver,
    config::{NameServerConfig, ResolveHosts, ResolverConfig, ResolverOpts},
    name_server::TokioConnectionProvider,
    proto::xfer::Protocol,
};

use crate::config::DnsConfig;

/// Where mail for a domain goes (RFC 5321 5.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MailHosts {
    /// MX hosts, lowest preference first (ties keep the resolver's order).
    Mx(Vec<String>),
    /// No MX record: the domain itself is the host (implicit MX).
    Implicit(String),
    /// A null MX (RFC 7505): the domain accepts no mail.
    Null,
}

impl MailHosts {
    /// The hosts to try, in order.
    pub fn hosts(&self) -> Vec<String> {
        match self {
            MailHosts::Mx(h) => h.clone(),
            MailHosts::Implicit(d) => vec![d.clone()],
            MailHosts::Null => Vec::new(),
        }
    }
}

/// A lookup that failed: the name does not exist, or DNS did not answer.
#[derive(Debug, Clone, thiserror::Error)]
pub enum DnsError {
    #[error("{0}: no such domain")]
    NoSuchDomain(String),
    #[error("{name}: DNS lookup failed: {reason}")]
    Failed { name: String, reason: String },
}

#[derive(Clone)]
pub struct Dns {
    resolver: Resolver<TokioConnectionProvider>,
}

fn fqdn(name: &str) -> String {
    format!("{}.", name.trim_end_matches('.'))
}

fn failed(name: &str, e: ResolveError) -> DnsError {
    if e.is_nx_domain() {
        DnsError::NoSuchDomain(name.to_string())
    } else {
        DnsError::Failed { name: name.to_string(), reason: e.to_string() }
    }
}

impl Dns {
    pub fn from_config(config: &DnsConfig) -> Result<Dns, String> {
        let mut opts = ResolverOpts::default();
        opts.cache_size = 10_000;
        opts.timeout = config.timeout.get();
        opts.attempts = 2;
        // Configured nameservers are the whole truth (a local test server, a split-horizon
        // resolver): the hosts file is not consulted.
        if !config.nameservers.is_empty() {
            opts.use_hosts_file = ResolveHosts::Never;
        }
        let builder = if config.nameservers.is_empty() {
            Resolver::builder_tokio().map_err(|e| format!("system resolver configuration: {e}"))?
        } else {
            let mut rc = ResolverConfig::new();
            for ns in &config.nameservers {
                let addr: SocketAddr =
                    ns.parse().map_err(|_| format!("nameserver {ns:?} is not an address like 127.0.0.1:53"))?;
                rc.add_name_server(NameServerConfig::new(addr, Protocol::Udp));
                rc.add_name_server(NameServerConfig::new(addr, Protocol::Tcp));
            }
            Resolver::builder_with_config(rc, TokioConnectionProvider::default())
        };
        Ok(Dns { resolver: builder.with_options(opts).build() })
    }

    /// The mail hosts of `domain`.
    pub async fn mail_hosts(&self, domain: &str) -> Result<MailHosts, DnsError> {
        match self.resolver.mx_lookup(fqdn(domain)).await {
            Ok(found) => {
                let mut mx: Vec<(u16, String)> = found
                    .iter()
                    .map(|r| (r.preference(), r.exchange().to_utf8().trim_end_matches('.').to_ascii_lowercase()))
                    .collect();
                if mx.len() == 1 && mx[0].1.is_empty() {
                    return Ok(MailHosts::Null);
                }
                mx.sort_by_key(|(p, _)| *p);
                Ok(MailHosts::Mx(mx.into_iter().map(|(_, h)| h).collect()))
            }
            Err(e) if e.is_no_records_found() && !e.is_nx_domain() => Ok(MailHosts::Implicit(domain.to_string())),
            Err(e) => Err(failed(domain, e)),
        }
    }

    /// IPv4 addresses of a host.
    pub async fn ipv4(&self, host: &str) -> Result<Vec<Ipv4Addr>, DnsError> {
        match self.resolver.ipv4_lookup(fqdn(host)).await {
            Ok(found) => Ok(found.iter().map(|a| a.0).collect()),
            Err(e) if e.is_no_records_found() && !e.is_nx_domain() => Ok(Vec::new()),
            Err(e) => Err(failed(host, e)),
        }
    }

    /// TXT records of a name, each joined from its strings.
    pub async fn txt(&self, name: &str) -> Result<Vec<String>, DnsError> {
        match self.resolver.txt_lookup(fqdn(name)).await {
            Ok(found) => Ok(found
                .iter()
                .map(|t| t.txt_data().iter().map(|s| String::from_utf8_lossy(s).into_owned()).collect::<String>())
                .collect()),
            Err(e) if e.is_no_records_found() && !e.is_nx_domain() => Ok(Vec::new()),
            Err(e) => Err(failed(name, e)),
        }
    }

    /// PTR names of an address.
    pub async fn ptr(&self, ip: IpAddr) -> Result<Vec<String>, DnsError> {
        match self.resolver.reverse_lookup(ip).await {
            Ok(found) => Ok(found.iter().map(|n| n.to_utf8().trim_end_matches('.').to_ascii_lowercase()).collect()),
            Err(e) if e.is_no_records_found() && !e.is_nx_domain() => Ok(Vec::new()),
            Err(e) => Err(failed(&ip.to_string(), e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_testkit::dns_server::{DnsServer, Entry, ip};

    #[tokio::test]
    async fn mail_hosts_txt_and_ptr_from_a_local_server() {
        let server = DnsServer::start(vec![
            Entry::Mx { name: "x.example".into(), preference: 20, exchange: "mx2.x.example".into() },
            Entry::Mx { name: "x.example".into(), preference: 10, exchange: "mx1.x.example".into() },
            Entry::A { name: "plain.example".into(), address: ip("127.0.0.9") },
            Entry::Mx { name: "null.example".into(), preference: 0, exchange: ".".into() },
            Entry::Txt { name: "x.example".into(), text: "v=spf1 ip4:127.0.0.1 -all".into() },
            Entry::Ptr { address: ip("192.0.2.1"), target: "mta1.x.example".into() },
        ])
        .await;
        let config = DnsConfig { nameservers: vec![server.nameserver()], ..Default::default() };
        let dns = Dns::from_config(&config).unwrap();
        assert_eq!(
            dns.mail_hosts("x.example").await.unwrap(),
            MailHosts::Mx(vec!["mx1.x.example".into(), "mx2.x.example".into()])
        );
        assert_eq!(dns.mail_hosts("plain.example").await.unwrap(), MailHosts::Implicit("plain.example".into()));
        assert_eq!(dns.mail_hosts("null.example").await.unwrap(), MailHosts::Null);
        assert!(matches!(dns.mail_hosts("nowhere.example").await, Err(DnsError::NoSuchDomain(_))));
        assert_eq!(dns.ipv4("plain.example").await.unwrap(), vec![ip("127.0.0.9")]);
        assert_eq!(dns.txt("x.example").await.unwrap(), vec!["v=spf1 ip4:127.0.0.1 -all".to_string()]);
        assert_eq!(dns.ptr("192.0.2.1".parse().unwrap()).await.unwrap(), vec!["mta1.x.example".to_string()]);
    }
}
