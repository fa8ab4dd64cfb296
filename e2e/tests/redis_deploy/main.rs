//! Redis as deployed: least-privilege ACL users, TLS, memory back near baseline after a
//! campaign, and a Sentinel failover followed.

#[path = "../common/mod.rs"]
mod common;

mod redis_acl;
mod redis_memory;
mod redis_tls;
mod sentinel_failover;
