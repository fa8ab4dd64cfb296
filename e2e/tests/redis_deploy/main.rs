//! Redis as deployed: least-privilege ACL users, TLS, and memory back near baseline after a campaign.

#[path = "../common/mod.rs"]
mod common;

mod redis_acl;
mod redis_memory;
mod redis_tls;
