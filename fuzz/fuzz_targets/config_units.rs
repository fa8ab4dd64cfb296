//! The config units (`Rate`, `Span`, `Cidr`) on any text: no panic, and what parses keeps its
//! bounds (a rate between one a day and 10^9 a second; a CIDR contains its own address, but
//! for an IPv6 block wider than /96 written with a v4-mapped address: addresses are judged
//! unmapped, as IPv4, so such a block deliberately allows no IPv4 address).
#![no_main]

use std::net::IpAddr;

use libfuzzer_sys::fuzz_target;
use sluice_shared::{
    netguard::Cidr,
    units::{MAX_RATE_PER_SECOND, MIN_RATE_PER_SECOND, Rate, Span},
};

fuzz_target!(|text: &str| {
    if let Ok(rate) = Rate::try_from(text) {
        let r = rate.per_second();
        assert!((MIN_RATE_PER_SECOND * (1.0 - 1e-9)..=MAX_RATE_PER_SECOND).contains(&r), "{text:?}: {r}");
    }
    let _ = Span::try_from(text);
    if let Ok(cidr) = Cidr::try_from(text) {
        let address = text.split('/').next().unwrap().trim();
        let ip: IpAddr = address.parse().expect("a CIDR's address parsed once already");
        let mapped_wide = matches!(ip, IpAddr::V6(v6) if v6.to_ipv4_mapped().is_some()) && !cidr.contains(ip);
        let prefix: Option<u8> = text.split_once('/').and_then(|(_, p)| p.trim().parse().ok());
        assert!(cidr.contains(ip) || (mapped_wide && prefix.is_some_and(|p| p < 96)), "{text:?} lacks its own address");
    }
});
