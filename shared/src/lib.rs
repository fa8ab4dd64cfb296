//! Sluice common crate.
//!
//! - [`attention`]: asking the schedulers to look after a campaign or message.
//! - [`classify`]: SMTP replies to category and action, by regex rules kept as data.
//! - [`crash`]: crash points for reliability tests (feature `failpoints`).
//! - [`dkim`]: DKIM signing keys (parsed once) and relaxed/relaxed signatures.
//! - [`dns`]: MX, A, TXT and PTR lookups on the configured nameservers (cached by TTL).
//! - [`config`]: typed TOML + environment configuration, validated at startup.
//! - [`units`]: human rates (`"100/s"`) and durations (`"30s"`).
//! - [`feed`]: how writers of events keep the event feed complete.
//! - [`keys`]: every Redis key Sluice uses, with explicit hash tags.
//! - [`lane`]: bulk and priority lanes; which jobs take which.
//! - [`netguard`]: which addresses a URL a user configured may reach (no internal networks).
//! - [`niceness`]: bulk threads yield the CPU to latency-critical ones.
//! - [`model`]: campaign specs, recipients, queued jobs, outcomes, counts.
//! - [`warmup`]: warm-up caps taken at send time, per From domain or sending address.
//! - [`validate`]: address, domain and header checks shared by every intake path.
//! - [`refs`]: VERP Return-Path, trace header and Message-ID: finding a message again.
//! - [`redis`]: connection pool with startup backoff, and the Lua scripts.
//! - [`metrics`]: metric names and the Prometheus recorder.
//! - [`ops_http`]: `/metrics`, `/healthz`, `/readyz` on `metrics.listen`.
//! - [`shutdown`]: SIGTERM/ctrl-c as a cloneable listener.
//! - [`startup`]: how both binaries start (config, logs, metrics, Redis).
//! - [`suppression`]: suppression-list entries, made alike by every path.
//! - [`telemetry`]: tracing setup.
//! - [`template`]: what untrusted handlebars content may contain, and the bounds of a render.
//! - [`tokens`]: sealed tokens for public links, the trace header and Message-IDs.

pub mod attention;
pub mod classify;
pub mod config;
pub mod crash;
pub mod dkim;
pub mod dns;
pub mod engagement;
pub mod feed;
pub mod keys;
pub mod lane;
pub mod metrics;
pub mod model;
pub mod netguard;
pub mod niceness;
pub mod ops_http;
pub mod redis;
pub mod refs;
pub mod reputation;
pub mod shutdown;
pub mod startup;
pub mod suppression;
pub mod telemetry;
pub mod template;
pub mod tokens;
pub mod units;
pub mod validate;
pub mod warmup;
