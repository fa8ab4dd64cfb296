//! Reliability through the real binaries: crashes at every step, chaos, poison jobs, scheduler failover and the campaign lifecycle.

#[path = "../common/mod.rs"]
mod common;

mod chaos_short;
mod crash_points;
mod crash_safety;
mod lifecycle;
mod poison;
mod reconcile;
mod scheduler_failover;
