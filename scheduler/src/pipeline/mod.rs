//! The scheduler's pipeline duties, run by every scheduler on a tick ([`duties`]): take
//! campaigns from the Redis intake ([`intake`]), expand staged recipients into destination
//! streams ([`expander`], through [`enqueue`]), put due retries back ([`retries`]), keep
//! Redis tidy ([`hygiene`]), and put back what a failover lost ([`reconcile`]). [`lease`] lets
//! one scheduler at a time own a shared job.

pub mod duties;
pub mod enqueue;
pub mod expander;
pub mod hygiene;
pub mod intake;
pub mod lease;
pub mod reconcile;
pub mod retries;
