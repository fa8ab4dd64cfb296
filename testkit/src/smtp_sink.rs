//! A scriptable SMTP server over real TCP, for tests, the demo and the benchmarks.
//!
//! What it answers depends on the recipient's local part:
//! - `soft<N>-...`: `451 4.3.0` at RCPT the first N times, then accepted;
//! - `hard-...`: `550 5.1.1` at RCPT (invalid recipient), every time;
//! - `block-...`: `554 5.7.1` after DATA (spam content), every time;
//! - `throttle<N>-...`: `421 4.7.28` (Google's "temporarily rate limited") the first N times,
//!   and the connection is closed, as servers do after a 421;
//! - `full-...`: `452 4.2.2` (mailbox full), every time;
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
    net::{IpAddr, SocketAddr},
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
};

use tokio::{
    io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader},
    net::{TcpListener, TcpStream},
};
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

/// The reply scripted for `rcpt` at RCPT time, given how often it was tried before.
fn rcpt_reply(rcpt: &str, tries_before: u32) -> &'static str {
    let local = rcpt.split('@').next().unwrap_or("");
    if local.starts_with("hard-") {
        return "550 5.1.1 The email account that you tried to reach does not exist\r\n";
    }
    if local.starts_with("full-") {
        return "452 4.2.2 The recipient's inbox is out of storage space\r\n";
    }
    let failing_first = |prefix: &str| {
        local
            .strip_prefix(prefix)
            .and_then(|rest| rest.split_once('-'))
            .and_then(|(n, _)| n.parse::<u32>().ok())
            .is_some_and(|n| tries_before < n)
    };
    if failing_first("soft") {
        return "451 4.3.0 Temporary failure, try again later\r\n";
    }
    if failing_first("throttle") {
        return "421 4.7.28 Our system has detected an unusual rate of unsolicited email originating from \
                your IP address; it has been temporarily rate limited\r\n";
    }
    "250 2.1.5 Ok\r\n"
}

fn address_in(line: &str) -> String {
    let start = line.find('<').map(|i| i + 1).unwrap_or(0);
    let end = line.rfind('>').unwrap_or(line.len());
    line[start..end.max(start)].to_ascii_lowercase()
}

/// How a session on one stream ended.
enum Ended<S = ()> {
    Quit,
    /// The client closed the connection without QUIT.
    Left,
    /// The sink answered 421 and closed it.
    ClosedBySink,
    /// The client asked for STARTTLS and got 220: continue on TLS over this stream.
    Starttls(S),
}

impl<S> Ended<S> {
    /// The end of a session that continues on no other stream.
    fn last(self) -> Ended {
        match self {
            Ended::Quit => Ended::Quit,
            Ended::ClosedBySink => Ended::ClosedBySink,
            Ended::Left | Ended::Starttls(_) => Ended::Left,
        }
    }
}

/// How the sink speaks TLS.
#[derive(Clone)]
struct Tls {
    acceptor: TlsAcceptor,
    implicit: bool,
}

const GREETING: &[u8] = b"220 sluice-sink ESMTP ready\r\n";

async fn session(stream: TcpStream, peer: IpAddr, state: &SinkState, tls: Option<Tls>) -> std::io::Result<Ended> {
    stream.set_nodelay(true)?;
    if let Some(Tls { acceptor, implicit: true }) = &tls {
        let mut encrypted = BufReader::new(acceptor.accept(stream).await?);
        encrypted.get_mut().write_all(GREETING).await?;
        return Ok(exchange(encrypted, peer, state, false, true).await?.last());
    }
    let mut stream = BufReader::new(stream);
    stream.get_mut().write_all(GREETING).await?;
    match exchange(stream, peer, state, tls.is_some(), false).await? {
        Ended::Starttls(tcp) => {
            let acceptor = tls.expect("STARTTLS is offered only with TLS configured").acceptor;
            let encrypted = acceptor.accept(tcp).await?;
            Ok(exchange(BufReader::new(encrypted), peer, state, false, true).await?.last())
        }
        other => Ok(other.last()),
    }
}

/// The next command line, or None when the session has been silent past the idle limit.
async fn next_line<S: AsyncRead + Unpin>(
    stream: &mut BufReader<S>,
    line: &mut String,
    state: &SinkState,
) -> std::io::Result<Option<usize>> {
    match state.idle_close_ms.load(Ordering::SeqCst) {
        0 => stream.read_line(line).await.map(Some),
        ms => match tokio::time::timeout(std::time::Duration::from_millis(ms), stream.read_line(line)).await {
            Ok(read) => read.map(Some),
            Err(_) => Ok(None),
        },
    }
}

async fn exchange<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: BufReader<S>,
    peer: IpAddr,
    state: &SinkState,
    offer_starttls: bool,
    encrypted: bool,
) -> std::io::Result<Ended<S>> {
    let mut line = String::new();
    let mut rcpts: Vec<String> = Vec::new();
    let mut sender = String::new();
    // MAIL's SMTPUTF8 and BODY=8BITMIME parameters, which non-ASCII mail needs.
    let mut utf8 = false;
    let mut eight_bit = false;
    let mut helo = String::new();
    loop {
        line.clear();
        match next_line(&mut stream, &mut line, state).await? {
            None => {
                stream.get_mut().write_all(b"421 4.4.2 sluice-sink Error: timeout exceeded\r\n").await?;
                return Ok(Ended::ClosedBySink);
            }
            Some(0) => return Ok(Ended::Left),
            Some(_) => {}
        }
        let upper = line.to_ascii_uppercase();
        if state.is_refusing() {
            stream.get_mut().write_all(b"421 4.3.2 Service not available, closing channel\r\n").await?;
            return Ok(Ended::ClosedBySink);
        }
        if upper.starts_with("EHLO") || upper.starts_with("HELO") {
            helo = line[4..].trim().to_string();
            state.helo_names.lock().unwrap().push(helo.clone());
        }
        let reply: &[u8] = if upper.starts_with("EHLO") {
            let pipelining = !state.no_pipelining.load(Ordering::SeqCst);
            match (offer_starttls, pipelining) {
                (true, true) => {
                    b"250-sluice-sink\r\n250-PIPELINING\r\n250-8BITMIME\r\n250-SMTPUTF8\r\n250-STARTTLS\r\n250 SIZE 52428800\r\n"
                }
                (false, true) => b"250-sluice-sink\r\n250-PIPELINING\r\n250-8BITMIME\r\n250-SMTPUTF8\r\n250 SIZE 52428800\r\n",
                (true, false) => b"250-sluice-sink\r\n250-8BITMIME\r\n250-SMTPUTF8\r\n250-STARTTLS\r\n250 SIZE 52428800\r\n",
                (false, false) => b"250-sluice-sink\r\n250-8BITMIME\r\n250-SMTPUTF8\r\n250 SIZE 52428800\r\n",
            }
        } else if upper.starts_with("STARTTLS") && offer_starttls {
            stream.get_mut().write_all(b"220 2.0.0 Ready to start TLS\r\n").await?;
            return Ok(Ended::Starttls(stream.into_inner()));
        } else if upper.starts_with("HELO") {
            b"250 sluice-sink\r\n"
        } else if upper.starts_with("MAIL FROM") {
            if !stream.buffer().is_empty() {
                state.pipelined.fetch_add(1, Ordering::Relaxed);
            }
            rcpts.clear();
            sender = address_in(&line);
            let parameters = upper.get(upper.rfind('>').unwrap_or(0)..).unwrap_or_default();
            utf8 = parameters.contains(" SMTPUTF8");
            eight_bit = utf8 || parameters.contains(" BODY=8BITMIME");
            b"250 2.1.0 Ok\r\n"
        } else if upper.starts_with("RCPT TO") {
            let rcpt = address_in(&line);
            let before = {
                let mut attempts = state.attempts.lock().unwrap();
                let n = attempts.entry(rcpt.clone()).or_insert(0);
                *n += 1;
                *n - 1
            };
            if rcpt.starts_with("slow-") {
                tokio::time::sleep(std::time::Duration::from_secs(2)).await;
            }
            let reply = match rcpt.is_ascii() || utf8 {
                true => rcpt_reply(&rcpt, before),
                false => "553 5.6.7 SMTPUTF8 is required for a non-ASCII address\r\n",
            };
            if reply.starts_with("421") {
                stream.get_mut().write_all(reply.as_bytes()).await?;
                return Ok(Ended::ClosedBySink);
            }
            if reply.starts_with('2') {
                rcpts.push(rcpt);
            }
            reply.as_bytes()
        } else if upper.starts_with("DATA") {
            if rcpts.is_empty() {
                b"554 5.5.1 No valid recipients\r\n"
            } else {
                stream.get_mut().write_all(b"354 End data with <CR><LF>.<CR><LF>\r\n").await?;
                let body = read_data(&mut stream).await?;
                let blocked = rcpts.iter().any(|r| r.starts_with("block-"));
                let reply: &[u8] = if blocked {
                    b"554 5.7.1 Message rejected as likely unsolicited mail\r\n"
                } else if !body.is_ascii() && !eight_bit {
                    b"554 5.6.0 8-bit content needs BODY=8BITMIME\r\n"
                } else {
                    let trace = format!("Return-Path: <{sender}>\r\nReceived: from {helo} ([{peer}])\r\n");
                    accept(state, &rcpts, &trace, body);
                    if encrypted {
                        state.accepted_encrypted.fetch_add(rcpts.len() as u64, Ordering::Relaxed);
                    }
                    b"250 2.0.0 Ok: queued\r\n"
                };
                rcpts.clear();
                reply
            }
        } else if upper.starts_with("RSET") {
            rcpts.clear();
            b"250 2.0.0 Ok\r\n"
        } else if upper.starts_with("NOOP") {
            b"250 2.0.0 Ok\r\n"
        } else if upper.starts_with("QUIT") {
            stream.get_mut().write_all(b"221 2.0.0 Bye\r\n").await?;
            return Ok(Ended::Quit);
        } else {
            b"502 5.5.2 Command not recognized\r\n"
        };
        stream.get_mut().write_all(reply).await?;
    }
}

/// Kept messages start with `Return-Path: <MAIL FROM>` and `Received: from HELO ([peer])`,
/// as a final delivery agent writes them.
fn accept(state: &SinkState, rcpts: &[String], trace: &str, body: Vec<u8>) {
    {
        let mut delivered = state.delivered.lock().unwrap();
        for r in rcpts {
            *delivered.entry(r.clone()).or_insert(0) += 1;
        }
    }
    state.accepted_total.fetch_add(rcpts.len() as u64, Ordering::Relaxed);
    state.record_latency(&body);
    if state.keep_messages {
        let mut kept = trace.as_bytes().to_vec();
        kept.extend(body);
        state.messages.lock().unwrap().push((rcpts[0].clone(), kept));
    }
}

/// Reads a DATA section up to the lone dot, undoing dot-stuffing.
async fn read_data<R: tokio::io::AsyncBufRead + Unpin>(reader: &mut R) -> std::io::Result<Vec<u8>> {
    let mut body = Vec::with_capacity(4096);
    let mut line = Vec::with_capacity(256);
    loop {
        line.clear();
        if reader.read_until(b'\n', &mut line).await? == 0 {
            return Err(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "eof in DATA"));
        }
        if line == b".\r\n" || line == b".\n" {
            return Ok(body);
        }
        let start = usize::from(line.starts_with(b".."));
        body.extend_from_slice(&line[start..]);
    }
}

#[cfg(test)]
mod tests {
    use super::rcpt_reply;

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
