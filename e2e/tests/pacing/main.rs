//! Pacing through the real binaries: the cluster-wide token bucket, throttling replies, provider shaping, warm-up and the priority lane.

#[path = "../common/mod.rs"]
mod common;

mod adaptive_throttle;
mod dead_jobs;
mod long_tail;
mod niceness;
mod priority_lane;
mod providers;
mod rate_limit;
mod warmup;
