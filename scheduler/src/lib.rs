//! `sluice-scheduler`'s library: the admin HTTP API, the Redis intake, and the housekeeping that moves
//! campaigns into per-domain streams and retries back into them. Any number may run.
//!
//! - [`api`]: the admin HTTP API (`app()` builds the router).
//! - [`campaign`]: request validation, storage, the shared submit path.
//! - [`field_error`]: the error naming one field that every way in answers with.
//! - [`intake`]: the `sluice:intake` stream consumer.
//! - [`expander`], [`retries`], [`enqueue`]: moving jobs into domain streams.
//! - [`inbound`]: bounce and complaint reports that arrive later (DSN, ARF).
//! - [`public`]: the public listener (one-click unsubscribe, tracking).
//! - [`http`]: how both HTTP listeners are served (timeouts, connection cap, client address).
//! - [`duties`]: the housekeeping loop; [`hygiene`]: expiry of finished campaigns, gone consumers.
//!
//! The binary (`main.rs`) only wires these together; fuzz targets and tests reach the parsers
//! and the router through this library.

pub mod api;
pub mod campaign;
pub mod duties;
pub mod enqueue;
pub mod events;
pub mod expander;
pub mod field_error;
pub mod http;
pub mod hygiene;
pub mod inbound;
pub mod intake;
pub mod lease;
pub mod message;
pub mod public;
pub mod retries;
pub mod template;
pub mod tls;
pub mod webhook;
