//! `sluice-scheduler`'s library: the admin HTTP API, the Redis intake, and the housekeeping that moves
//! campaigns into per-domain streams and retries back into them. Any number may run.
//!
//! - [`api`]: the admin HTTP API (`app()` builds the router).
//! - [`campaign`]: request validation, storage, the shared submit path.
//! - [`field_error`]: the error naming one field that every way in answers with.
//! - [`pipeline`]: the duties every scheduler runs: intake, expansion into destination
//!   streams, retries, hygiene.
//! - [`erase`]: erasing one address from everything Sluice keeps.
//! - [`history`]: every event kept in PostgreSQL (`[history]`): the writers and what the API reads.
//! - [`inbound`]: bounce and complaint reports that arrive later (DSN, ARF).
//! - [`late`]: opens, clicks, unsubscribes and reports recorded against their campaign.
//! - [`public`]: the public listener (one-click unsubscribe, tracking).
//! - [`http`]: how both HTTP listeners are served (timeouts, connection cap, client address).
//! - [`smtp_server`]: how SMTP listeners are served (session caps and deadlines, STARTTLS).
//!
//! The binary (`main.rs`) only wires these together; fuzz targets and tests reach the parsers
//! and the router through this library.

pub mod api;
pub mod campaign;
pub mod csv;
pub mod erase;
pub mod events;
pub mod field_error;
pub mod history;
pub mod http;
pub mod hygiene;
pub mod inbound;
pub mod late;
pub mod message;
pub mod pipeline;
pub mod public;
pub mod reputation;
pub mod smtp_server;
pub mod submission;
pub mod suppression;
pub mod template;
pub mod tls;
pub mod webhook;
