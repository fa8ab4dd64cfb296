//! Where webhook requests may go. Whoever can add an endpoint names a URL, so the HTTP client
//! resolves each host itself and connects only to addresses the policy permits (the address it
//! checked is the address it connects to: no second lookup to race), refuses internal IP
//! literals before any request, follows no redirect and uses no proxy. Errors are described
//! without naming the hosts or ports that were tried, so `last_error` maps no internal network.

use std::{net::SocketAddr, sync::Arc};

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use sluice_shared::netguard::AddressPolicy;

/// A host that resolved only to addresses the policy refuses.
#[derive(Debug)]
pub struct Refused;

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the host resolves only to internal addresses")
    }
}

impl std::error::Error for Refused {}

/// Resolves through the system resolver and keeps the permitted addresses only.
struct GuardedResolver {
    policy: Arc<AddressPolicy>,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let policy = self.policy.clone();
        Box::pin(async move {
            let found: Vec<SocketAddr> = tokio::net::lookup_host((name.as_str(), 0)).await?.collect();
            let permitted: Vec<SocketAddr> = found.into_iter().filter(|a| policy.permits(a.ip())).collect();
            if permitted.is_empty() {
                return Err(Box::new(Refused) as Box<dyn std::error::Error + Send + Sync>);
            }
            Ok(Box::new(permitted.into_iter()) as Addrs)
        })
    }
}

/// The webhook HTTP client: guarded resolution, no redirects, no proxy, `timeout` per request.
pub fn client(policy: Arc<AddressPolicy>, timeout: std::time::Duration) -> reqwest::Result<reqwest::Client> {
    reqwest::Client::builder()
        .timeout(timeout)
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .dns_resolver(Arc::new(GuardedResolver { policy }))
        .build()
}

/// Whether `url` may be requested before any connection: an IP literal host must be permitted
/// (the resolver never sees literals).
pub fn check_literal(policy: &AddressPolicy, url: &reqwest::Url) -> Result<(), String> {
    let host = url.host_str().unwrap_or_default().trim_start_matches('[').trim_end_matches(']');
    match host.parse::<std::net::IpAddr>() {
        Ok(ip) if !policy.permits(ip) => Err(refused_text()),
        _ => Ok(()),
    }
}

fn refused_text() -> String {
    "refused: the endpoint is an internal address (see webhooks.allow_networks)".into()
}

/// What went wrong, for `last_error`: the kind of failure, never the address tried.
pub fn describe(error: &reqwest::Error) -> String {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(e) = source {
        if e.is::<Refused>() {
            return refused_text();
        }
        source = e.source();
    }
    if error.is_timeout() {
        "timed out".into()
    } else if error.is_connect() {
        "could not connect (refused, unreachable, unknown host or TLS failure)".into()
    } else {
        "request failed before an answer".into()
    }
}

/// What a non-2xx answer means for `last_error`.
pub fn describe_status(status: reqwest::StatusCode) -> String {
    if status.is_redirection() {
        format!("answered {status}; redirects are not followed")
    } else {
        format!("answered {status}")
    }
}
