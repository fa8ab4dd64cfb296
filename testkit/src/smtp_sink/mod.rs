//! A scriptable SMTP server over real TCP, for tests, the demo and the benchmarks.
//!
//! What it answers depends on the recipient's local part:
//! - `soft<N>-...`: `451 4.3.0` at RCPT the first N times, then accepted;
//! - `hard-...`: `550 5.1.1` at RCPT (invalid recipient), every time;
//! - `block-...`: `554 5.7.1` after DATA (spam content), every time;
//! - `throttle<N>-...`: `421 4.7.28` (Google's "temporarily rate limited") the first N times,
//!   and the connection is closed, as servers do after a 421;
//! - `full-...`: `452 4.2.2` (mailbox full), every time;
//! - `unauth-...`: `550 5.7.26` (Gmail: our From domain failed DMARC), every time;
//! - `reset<N>-...`: the connection is reset (TCP RST) at RCPT the first N times;
//! - `slow-...`: accepted, but the RCPT reply takes 2 seconds;
//! - anything else: accepted.
//!
//! Like a strict server, it refuses a non-ASCII address unless MAIL said SMTPUTF8 (`553 5.6.7`)
//! and non-ASCII content unless MAIL said BODY=8BITMIME or SMTPUTF8 (`554 5.6.0`).
//!
//! It counts, per recipient, the messages it accepted, so tests can check exactly-once, and how
//! each session ended (QUIT, the client leaving without it, the sink closing it). Like Postfix's
//! `smtpd_timeout`, [`SinkState::set_idle_close`] makes it answer `421 4.4.2` and close a
//! session that sends nothing for a while; [`SinkState::set_pipelining`] withdraws PIPELINING.
//! [`SmtpSink::start_starttls`] also offers STARTTLS with a certificate made at test time.

use std::{
    collections::HashMap,
    net::SocketAddr,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
};

mod session;

use session::{Ended, Tls, session};
use tokio::net::TcpListener;
use tokio_rustls::{TlsAcceptor, rustls::pki_types::PrivateKeyDer};

/// What the sink has seen.
#[derive(Default)]
pub struct SinkState {
    /// Accepted messages per recipient address (lower-cased).
    pub delivered: Mutex<HashMap<String, u32>>,
    /// RCPT attempts per recipient address (lower-cased), accepted or not.
    pub attempts: Mutex<HashMap<String, u32>>,
    /// Raw accepted messages, if `keep_messages` was set.
    pub messages: Mutex<Vec<(String, Vec<u8>)>>,
    pub accepted_total: AtomicU64,
    /// Of those, accepted on a connection upgraded with STARTTLS.
    pub accepted_encrypted: AtomicU64,
    pub connections: AtomicU64,
    /// MAIL commands that arrived with more commands already behind them (PIPELINING).
    pub pipelined: AtomicU64,
    /// Client address of each connection, and each EHLO/HELO name given.
    pub peers: Mutex<Vec<std::net::IpAddr>>,
    pub helo_names: Mutex<Vec<String>>,
    /// While set, new connections are closed at once and open sessions answer 421 and close:
    /// the relay is "down".
    pub refusing: AtomicBool,
    /// Sessions the client ended with QUIT.
    pub quits: AtomicU64,
    /// Sessions the client closed (or broke) without QUIT.
    pub left_without_quit: AtomicU64,
    /// Sessions the sink closed itself (421: refusing, idle, throttled).
    pub closed_by_sink: AtomicU64,
    /// Milliseconds of silence after which a session gets `421 4.4.2` and is closed; 0: never.
    idle_close_ms: AtomicU64,
    /// While set, EHLO does not offer PIPELINING.
    no_pipelining: AtomicBool,
    keep_messages: bool,
    /// With [`SinkState::measure_latency`]: the header carrying each message's send time.
    latency_header: std::sync::OnceLock<String>,
    /// Microseconds from that send time to acceptance here, per message carrying the header.
    pub latencies_us: Mutex<Vec<i64>>,
}

impl SinkState {
    pub fn delivered_to(&self, rcpt: &str) -> u32 {
        self.delivered.lock().unwrap().get(&rcpt.to_ascii_lowercase()).copied().unwrap_or(0)
    }
    pub fn attempts_for(&self, rcpt: &str) -> u32 {
        self.attempts.lock().unwrap().get(&rcpt.to_ascii_lowercase()).copied().unwrap_or(0)
    }
    pub fn accepted(&self) -> u64 {
        self.accepted_total.load(Ordering::Relaxed)
    }
    pub fn set_refusing(&self, refusing: bool) {
        self.refusing.store(refusing, Ordering::SeqCst);
    }
    /// Records, for every message with header `name: <unix microseconds>`, how long it took
    /// from that time to its acceptance here (benchmarks of end-to-end latency).
    pub fn measure_latency(&self, name: &str) {
        let _ = self.latency_header.set(format!("\r\n{}: ", name.to_ascii_lowercase()));
    }
    fn record_latency(&self, body: &[u8]) {
        let Some(needle) = self.latency_header.get() else { return };
        let head_end = body.windows(4).position(|w| w == b"\r\n\r\n").unwrap_or(body.len());
        let head = String::from_utf8_lossy(&body[..head_end]).to_ascii_lowercase();
        let Some(at) = head.find(needle.as_str()) else { return };
        let value = head[at + needle.len()..].split("\r\n").next().unwrap_or_default();
        if let Ok(sent) = value.trim().parse::<i64>() {
            let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_micros() as i64;
            self.latencies_us.lock().unwrap().push(now - sent);
        }
    }
    /// Closes sessions idle longer than `after` with `421 4.4.2` (None: never), like Postfix's
    /// `smtpd_timeout`.
    pub fn set_idle_close(&self, after: Option<std::time::Duration>) {
        self.idle_close_ms.store(after.map_or(0, |d| d.as_millis().max(1) as u64), Ordering::SeqCst);
    }
    /// Whether EHLO offers PIPELINING (it does unless told otherwise).
    pub fn set_pipelining(&self, offered: bool) {
        self.no_pipelining.store(!offered, Ordering::SeqCst);
    }
    /// Sessions still open: connections accepted minus those that ended.
    pub fn open_sessions(&self) -> u64 {
        let ended = self.quits.load(Ordering::SeqCst)
            + self.left_without_quit.load(Ordering::SeqCst)
            + self.closed_by_sink.load(Ordering::SeqCst);
        self.connections.load(Ordering::SeqCst).saturating_sub(ended)
    }
    fn is_refusing(&self) -> bool {
        self.refusing.load(Ordering::SeqCst)
    }
}

/// A running sink.
pub struct SmtpSink {
    pub addr: SocketAddr,
    pub state: Arc<SinkState>,
    /// PEM of the self-signed certificate it offers (for `ca_file`), if any.
    pub ca_pem: Option<String>,
    /// TLS from the first byte (SMTPS) rather than after STARTTLS.
    pub implicit_tls: bool,
    task: tokio::task::JoinHandle<()>,
}

impl SmtpSink {
    /// Starts on 127.0.0.1 with a free port.
    pub async fn start(keep_messages: bool) -> SmtpSink {
        Self::bind("127.0.0.1:0", keep_messages).await.expect("bind SMTP sink")
    }

    /// Starts on 127.0.0.1 offering STARTTLS with a fresh self-signed certificate for
    /// `localhost` (generated now, never stored).
    pub async fn start_starttls(keep_messages: bool) -> SmtpSink {
        Self::start_tls(keep_messages, false).await
    }

    /// Starts on 127.0.0.1 speaking TLS from the first byte (SMTPS), same certificate kind.
    pub async fn start_implicit_tls(keep_messages: bool) -> SmtpSink {
        Self::start_tls(keep_messages, true).await
    }

    /// Starts on `listen`, offering STARTTLS.
    pub async fn bind_starttls(listen: &str, keep_messages: bool) -> SmtpSink {
        Self::start_tls_on(listen, keep_messages, false).await
    }

    async fn start_tls(keep_messages: bool, implicit: bool) -> SmtpSink {
        Self::start_tls_on("127.0.0.1:0", keep_messages, implicit).await
    }

    /// Starts on `listen`, offering STARTTLS with the given PEM certificate and key files
    /// (say, from a [`super::test_ca::TestCa`], for a verifying client).
    pub async fn bind_starttls_with(
        listen: &str,
        keep_messages: bool,
        cert: &std::path::Path,
        key: &std::path::Path,
    ) -> SmtpSink {
        let acceptor = super::test_ca::acceptor_from_files(cert, key);
        let pem = std::fs::read_to_string(cert).expect("certificate file");
        Self::serve_tls(listen, keep_messages, false, acceptor, pem).await
    }

    async fn start_tls_on(listen: &str, keep_messages: bool, implicit: bool) -> SmtpSink {
        let key = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).expect("certificate");
        let pem = key.cert.pem();
        let certs = vec![key.cert.der().clone()];
        let private = PrivateKeyDer::try_from(key.signing_key.serialize_der()).expect("key");
        Self::serve_tls(listen, keep_messages, implicit, super::test_ca::acceptor(certs, private), pem).await
    }

    async fn serve_tls(
        listen: &str,
        keep_messages: bool,
        implicit: bool,
        acceptor: TlsAcceptor,
        pem: String,
    ) -> SmtpSink {
        let tls = Tls { acceptor, implicit };
        let mut sink = Self::serve(listen, keep_messages, Some(tls)).await.expect("bind");
        sink.ca_pem = Some(pem);
        sink.implicit_tls = implicit;
        sink
    }

    /// Starts on `listen`.
    pub async fn bind(listen: &str, keep_messages: bool) -> std::io::Result<SmtpSink> {
        Self::serve(listen, keep_messages, None).await
    }

    async fn serve(listen: &str, keep_messages: bool, tls: Option<Tls>) -> std::io::Result<SmtpSink> {
        let listener = TcpListener::bind(listen).await?;
        let addr = listener.local_addr()?;
        let state = Arc::new(SinkState { keep_messages, ..Default::default() });
        let shared = state.clone();
        let task = tokio::spawn(async move {
            while let Ok((stream, peer)) = listener.accept().await {
                shared.peers.lock().unwrap().push(peer.ip());
                if shared.is_refusing() {
                    drop(stream);
                    continue;
                }
                shared.connections.fetch_add(1, Ordering::Relaxed);
                let state = shared.clone();
                let tls = tls.clone();
                tokio::spawn(async move {
                    let ended = session(stream, peer.ip(), &state, tls).await;
                    let counter = match ended {
                        Ok(Ended::Quit) => &state.quits,
                        Ok(Ended::ClosedBySink) => &state.closed_by_sink,
                        _ => &state.left_without_quit,
                    };
                    counter.fetch_add(1, Ordering::SeqCst);
                });
            }
        });
        Ok(SmtpSink { addr, state, ca_pem: None, implicit_tls: false, task })
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::session::rcpt_reply;

    #[test]
    fn scripted_replies_follow_the_local_part() {
        assert!(rcpt_reply("hard-1@x.example", 0).starts_with("550 5.1.1"));
        assert!(rcpt_reply("soft2-1@x.example", 0).starts_with("451"));
        assert!(rcpt_reply("soft2-1@x.example", 1).starts_with("451"));
        assert!(rcpt_reply("soft2-1@x.example", 2).starts_with("250"));
        assert!(rcpt_reply("throttle1-1@x.example", 0).starts_with("421 4.7.28"));
        assert!(rcpt_reply("throttle1-1@x.example", 1).starts_with("250"));
        assert!(rcpt_reply("full-1@x.example", 5).starts_with("452 4.2.2"));
        assert!(rcpt_reply("ann@x.example", 0).starts_with("250"));
    }
}
