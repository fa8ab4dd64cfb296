//! Who a request comes from: the socket's peer, or, when that peer is a trusted proxy
//! (`http.trusted_proxies`), the nearest address in `X-Forwarded-For` that is not a trusted
//! proxy itself. A client cannot make itself look like someone else by sending the header.
//! Both listeners resolve it once per request ([`resolve`]).

use std::net::IpAddr;

use axum::{
    extract::{Request, State},
    http::{Extensions, HeaderMap},
    middleware::Next,
    response::Response,
};
use sluice_shared::netguard::Cidr;

use super::Peer;

/// The client's address, resolved once per request by [`resolve`] for every layer and
/// handler after it (audit log, rate limit, repeat window).
#[derive(Debug, Clone, Copy)]
pub struct ClientAddr(pub IpAddr);

/// Puts the request's [`ClientAddr`] in its extensions (none for a request without a socket,
/// as in in-process tests).
pub async fn resolve(State(clients): State<Clients>, mut request: Request, next: Next) -> Response {
    if let Some(ip) = clients.ip(request.headers(), request.extensions()) {
        request.extensions_mut().insert(ClientAddr(ip));
    }
    next.run(request).await
}

/// The trusted proxies, parsed once.
#[derive(Debug, Clone, Default)]
pub struct Clients {
    proxies: Vec<Cidr>,
}

impl Clients {
    pub fn new(proxies: Vec<Cidr>) -> Clients {
        Clients { proxies }
    }

    fn trusted(&self, ip: IpAddr) -> bool {
        self.proxies.iter().any(|c| c.contains(ip))
    }

    /// The client's address; None when the request came without a socket.
    fn ip(&self, headers: &HeaderMap, extensions: &Extensions) -> Option<IpAddr> {
        let peer = extensions.get::<Peer>()?.0.ip();
        if !self.trusted(peer) {
            return Some(peer);
        }
        let forwarded: Vec<IpAddr> = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .filter_map(|a| a.trim().parse().ok())
            .collect();
        Some(
            forwarded
                .iter()
                .rev()
                .copied()
                .find(|ip| !self.trusted(*ip))
                .or(forwarded.first().copied())
                .unwrap_or(peer),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(peer: &str, forwarded: &[&str]) -> (HeaderMap, Extensions) {
        let mut headers = HeaderMap::new();
        for f in forwarded {
            headers.append("x-forwarded-for", f.parse().unwrap());
        }
        let mut extensions = Extensions::new();
        extensions.insert(Peer(format!("{peer}:40000").parse().unwrap()));
        (headers, extensions)
    }

    #[test]
    fn forwarded_for_is_believed_from_trusted_proxies_only() {
        let clients = Clients::new(vec![Cidr::try_from("10.0.0.0/8").unwrap()]);
        let ip = |peer: &str, fwd: &[&str]| {
            let (h, e) = request(peer, fwd);
            clients.ip(&h, &e).unwrap().to_string()
        };
        assert_eq!(ip("203.0.113.9", &["198.51.100.1"]), "203.0.113.9", "a stranger's header is ignored");
        assert_eq!(ip("10.0.0.5", &["198.51.100.1"]), "198.51.100.1");
        assert_eq!(ip("10.0.0.5", &["6.6.6.6, 198.51.100.1, 10.0.0.7"]), "198.51.100.1", "the nearest untrusted hop");
        assert_eq!(ip("10.0.0.5", &[]), "10.0.0.5");
        assert_eq!(Clients::default().ip(&HeaderMap::new(), &Extensions::new()), None);
    }
}
