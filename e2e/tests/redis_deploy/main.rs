//! Redis as deployed: least-privilege ACL users, TLS, memory back near baseline after a
//! campaign, a Sentinel failover followed, and hand-offs that wait for a replica.

#[path = "../common/mod.rs"]
mod common;

mod redis_acl;
mod redis_memory;
mod redis_tls;
mod replica_acks;
mod sentinel_failover;
