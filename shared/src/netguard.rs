//! Which addresses a request that a user configured may reach. Anyone who can name a URL
//! (a webhook) must not make Sluice talk to its own network: loopback, private, link-local,
//! unique-local, shared (CGNAT), multicast, broadcast and unspecified addresses are refused
//! unless an operator lists them as allowed CIDRs.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// An address block such as `10.0.0.0/8` or `fd00::/8`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    network: IpAddr,
    prefix: u8,
}

impl TryFrom<&str> for Cidr {
    type Error = String;

    fn try_from(text: &str) -> Result<Cidr, String> {
        let (address, prefix) = match text.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (text, None),
        };
        let network: IpAddr = address.trim().parse().map_err(|_| format!("{text:?} is not an address or CIDR"))?;
        let max = if network.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(p) => p
                .trim()
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("{text:?}: the prefix length must be 0-{max}"))?,
            None => max,
        };
        // `::ffff:10.0.0.0/104` names IPv4 addresses, and addresses are judged unmapped.
        if let (IpAddr::V6(v6), true) = (network, prefix >= 96)
            && let Some(v4) = v6.to_ipv4_mapped()
        {
            return Ok(Cidr { network: IpAddr::V4(v4), prefix: prefix - 96 });
        }
        Ok(Cidr { network, prefix })
    }
}

impl Cidr {
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.network, unmapped(ip)) {
            (IpAddr::V4(n), IpAddr::V4(a)) => same_prefix(&n.octets(), &a.octets(), self.prefix),
            (IpAddr::V6(n), IpAddr::V6(a)) => same_prefix(&n.octets(), &a.octets(), self.prefix),
            _ => false,
        }
    }
}

fn same_prefix(a: &[u8], b: &[u8], bits: u8) -> bool {
    let (whole, rest) = (usize::from(bits / 8), bits % 8);
    if a[..whole] != b[..whole] {
        return false;
    }
    rest == 0 || (a[whole] ^ b[whole]) >> (8 - rest) == 0
}

/// An IPv4 address written as IPv6 (`::ffff:127.0.0.1`) is judged as the IPv4 address.
fn unmapped(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// Whether `ip` belongs to a host's own or a private network rather than the internet.
pub fn is_internal(ip: IpAddr) -> bool {
    match unmapped(ip) {
        IpAddr::V4(a) => internal_v4(a),
        IpAddr::V6(a) => internal_v6(a),
    }
}

fn internal_v4(a: Ipv4Addr) -> bool {
    let [first, second, ..] = a.octets();
    a.is_loopback()
        || a.is_private()
        || a.is_link_local()
        || a.is_multicast()
        || a.is_broadcast()
        || a.is_unspecified()
        || first == 0
        || (first == 100 && (64..128).contains(&second)) // shared address space (RFC 6598)
        || first >= 240
}

fn internal_v6(a: Ipv6Addr) -> bool {
    let first = a.segments()[0];
    a.is_loopback()
        || a.is_unspecified()
        || a.is_multicast()
        || (first & 0xfe00) == 0xfc00 // unique local
        || (first & 0xffc0) == 0xfe80 // link local
        || (first & 0xffc0) == 0xfec0 // site local (deprecated)
}

/// The addresses outgoing requests may reach: anything public, plus the allowed blocks.
#[derive(Debug, Clone, Default)]
pub struct AddressPolicy {
    pub allowed: Vec<Cidr>,
}

impl AddressPolicy {
    /// Parses the allowed blocks; the error names the bad entry.
    pub fn new(allowed: &[String]) -> Result<AddressPolicy, String> {
        let allowed = allowed.iter().map(|c| Cidr::try_from(c.as_str())).collect::<Result<_, _>>()?;
        Ok(AddressPolicy { allowed })
    }

    pub fn permits(&self, ip: IpAddr) -> bool {
        !is_internal(ip) || self.allowed.iter().any(|c| c.contains(ip))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn internal_addresses_are_refused_unless_allowed() {
        let internal = [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "224.0.0.1",
            "255.255.255.255",
            "::1",
            "::",
            "fd00::1",
            "fe80::1",
            "ff02::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
        ];
        let policy = AddressPolicy::default();
        for a in internal {
            assert!(!policy.permits(ip(a)), "{a} must be refused");
        }
        for a in ["93.184.216.34", "2606:2800:220:1::1", "8.8.8.8", "100.128.0.1"] {
            assert!(policy.permits(ip(a)), "{a} is public");
        }
        let lab = AddressPolicy::new(&["127.0.0.0/8".into(), "fd00::/8".into(), "10.1.2.3".into()]).unwrap();
        assert!(lab.permits(ip("127.0.0.2")) && lab.permits(ip("::ffff:127.0.0.1")) && lab.permits(ip("fd12::1")));
        assert!(lab.permits(ip("10.1.2.3")) && !lab.permits(ip("10.1.2.4")) && !lab.permits(ip("192.168.0.1")));
    }

    #[test]
    fn cidrs_parse_or_name_the_problem() {
        assert_eq!(Cidr::try_from("10.0.0.0/33").unwrap_err(), "\"10.0.0.0/33\": the prefix length must be 0-32");
        assert!(Cidr::try_from("example.com/8").unwrap_err().contains("not an address"));
        assert!(Cidr::try_from("0.0.0.0/0").unwrap().contains(ip("1.2.3.4")));
        assert!(Cidr::try_from("192.168.0.0/17").unwrap().contains(ip("192.168.127.1")));
        assert!(!Cidr::try_from("192.168.0.0/17").unwrap().contains(ip("192.168.128.1")));
        let mapped = Cidr::try_from("::ffff:10.0.0.0/104").unwrap();
        assert!(
            mapped.contains(ip("10.9.8.7"))
                && mapped.contains(ip("::ffff:10.0.0.1"))
                && !mapped.contains(ip("11.0.0.1"))
        );
    }
}
