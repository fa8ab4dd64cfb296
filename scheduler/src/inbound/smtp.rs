//! The optional inbound SMTP listener (`inbound.smtp_listen`): the bounce domain's MX. It
//! accepts mail for `bounces.return_path_domain` only, and answers 250 to DATA once the report
//! is recorded or kept (451 if Redis is unavailable, so the sender retries). With
//! `inbound.tls_cert` and `tls_key` it offers STARTTLS (RFC 3207): commands pipelined behind
//! STARTTLS are never carried over into the encrypted session, and the handshake counts against
//! the session deadline.
//!
//! Held like Postfix's smtpd against a stranger on the internet: line length and message size
//! are enforced while reading (nothing is buffered past them), DATA held in memory by all
//! sessions together has a budget, sessions are capped in total and per client address, and
//! every command has a timeout and every session a deadline.

use std::{
    collections::HashMap,
    net::{IpAddr, SocketAddr},
    sync::{Arc, Mutex},
    time::Duration,
};

use sluice_shared::{redis::Pool, shutdown::Shutdown};
use tokio::{
    io::{AsyncRead, AsyncWrite, AsyncWriteExt, BufReader},
    net::{TcpListener, TcpStream},
    sync::Semaphore,
    time::Instant,
};
use tokio_rustls::TlsAcceptor;

use super::InboundParts;
use super::{
    Inbound,
    command::{BUDGET_STEP, COMMAND_LINE_MAX, Command, Data, Line, command_text, read_data, read_line},
};

pub struct Listener {
    pool: Pool,
    config: Arc<sluice_shared::config::Config>,
    parts: Arc<InboundParts>,
    /// Open sessions per client address.
    clients: Mutex<HashMap<IpAddr, usize>>,
    /// Permits of [`BUDGET_STEP`] bytes of DATA held in memory, shared by every session.
    budget: Arc<Semaphore>,
    /// Offered as STARTTLS when configured.
    tls: Option<TlsAcceptor>,
}

/// How a conversation on one stream ended.
enum Next {
    Done,
    /// The client asked for STARTTLS and got 220: the session goes on over TLS.
    StartTls,
}

/// One client's place in the per-client count, given back when the session ends.
struct ClientSlot<'a> {
    listener: &'a Listener,
    ip: IpAddr,
}

impl Drop for ClientSlot<'_> {
    fn drop(&mut self) {
        let mut clients = self.listener.clients.lock().unwrap();
        if let Some(n) = clients.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                clients.remove(&self.ip);
            }
        }
    }
}

impl Listener {
    pub fn new(
        pool: Pool,
        config: Arc<sluice_shared::config::Config>,
        parts: Arc<InboundParts>,
        tls: Option<TlsAcceptor>,
    ) -> Listener {
        let steps = config.inbound.max_buffered_bytes.div_ceil(BUDGET_STEP);
        Listener { pool, config, parts, clients: Mutex::default(), budget: Arc::new(Semaphore::new(steps)), tls }
    }

    pub async fn run(self: Arc<Self>, listener: TcpListener, shutdown: Shutdown) {
        let sessions = Arc::new(Semaphore::new(self.config.inbound.max_connections));
        loop {
            let accepted = tokio::select! {
                a = listener.accept() => a,
                _ = shutdown.wait() => break,
            };
            let Ok((stream, peer)) = accepted else { continue };
            let permit = sessions.clone().try_acquire_owned().ok();
            let me = self.clone();
            tokio::spawn(async move {
                let Some(permit) = permit else {
                    return me.refuse(stream, peer, "Too many connections, try later").await;
                };
                let Some(slot) = me.take_client_slot(peer.ip()) else {
                    return me.refuse(stream, peer, "Too many connections from your address, try later").await;
                };
                me.serve(stream, peer).await;
                drop(slot);
                drop(permit);
            });
        }
    }

    fn take_client_slot(&self, ip: IpAddr) -> Option<ClientSlot<'_>> {
        let mut clients = self.clients.lock().unwrap();
        let n = clients.entry(ip).or_insert(0);
        if *n >= self.config.inbound.max_connections_per_client {
            return None;
        }
        *n += 1;
        Some(ClientSlot { listener: self, ip })
    }

    /// Over `max_connections` or `max_connections_per_client`: 421 and close.
    async fn refuse(&self, mut stream: TcpStream, peer: SocketAddr, text: &str) {
        tracing::info!(%peer, reason = text, "inbound SMTP connection refused");
        let reply = format!("421 4.7.0 {text}\r\n");
        let _ = tokio::time::timeout(Duration::from_secs(5), stream.write_all(reply.as_bytes())).await;
    }

    /// One session under the session deadline, upgraded to TLS when the client asks for it.
    async fn serve(&self, stream: TcpStream, peer: SocketAddr) {
        let deadline = Instant::now() + self.config.inbound.session_timeout.get();
        let mut plain = BufReader::new(stream);
        let offer = self.tls.is_some();
        let Some(Next::StartTls) = self.bounded(&mut plain, peer, deadline, true, offer).await else { return };
        if !plain.buffer().is_empty() {
            // Commands sent behind STARTTLS before the handshake (RFC 3207 section 5): a
            // plaintext injection into the encrypted session. Refused by closing.
            tracing::info!(%peer, "inbound SMTP: commands pipelined behind STARTTLS; closing");
            return;
        }
        let Some(acceptor) = self.tls.clone() else { return };
        let encrypted = match tokio::time::timeout_at(deadline, acceptor.accept(plain.into_inner())).await {
            Ok(Ok(encrypted)) => encrypted,
            Ok(Err(e)) => return tracing::debug!(%peer, error = %e, "inbound SMTP TLS handshake failed"),
            Err(_) => return tracing::debug!(%peer, "inbound SMTP TLS handshake past the session deadline"),
        };
        self.bounded(&mut BufReader::new(encrypted), peer, deadline, false, false).await;
    }

    /// A conversation until `deadline`; a timeout is answered 421 before closing.
    async fn bounded<S: AsyncRead + AsyncWrite + Unpin>(
        &self,
        stream: &mut BufReader<S>,
        peer: SocketAddr,
        deadline: Instant,
        greet: bool,
        offer_tls: bool,
    ) -> Option<Next> {
        let ended = match tokio::time::timeout_at(deadline, self.session(stream, greet, offer_tls)).await {
            Ok(Ok(next)) => return Some(next),
            Ok(Err(e)) if e.kind() == std::io::ErrorKind::TimedOut => "421 4.4.2 Timeout exceeded, closing\r\n",
            Ok(Err(e)) => {
                tracing::debug!(%peer, error = %e, "inbound SMTP session ended");
                return None;
            }
            Err(_) => "421 4.4.2 Session too long, closing\r\n",
        };
        tracing::info!(%peer, reply = ended.trim_end(), "inbound SMTP session closed");
        let _ = tokio::time::timeout(Duration::from_secs(5), stream.get_mut().write_all(ended.as_bytes())).await;
        None
    }

    async fn session<S: AsyncRead + AsyncWrite + Unpin>(
        &self,
        read: &mut BufReader<S>,
        greet: bool,
        offer_tls: bool,
    ) -> std::io::Result<Next> {
        let domain = self.config.bounces.return_path_domain.clone().unwrap_or_default();
        let max = self.config.inbound.max_message_bytes;
        let wait = self.config.inbound.command_timeout.get();
        if greet {
            read.get_mut().write_all(format!("220 {domain} Sluice inbound ESMTP\r\n").as_bytes()).await?;
        }
        let mut rcpt: Option<String> = None;
        let mut sender = false;
        loop {
            let line = match read_line(read, COMMAND_LINE_MAX, wait).await? {
                Line::Eof => return Ok(Next::Done),
                Line::TooLong => {
                    read.get_mut().write_all(b"500 5.5.2 Line too long, closing\r\n").await?;
                    return Ok(Next::Done);
                }
                Line::Full(l) => command_text(&l),
            };
            let reply: String = match Command::parse(&line) {
                Command::Ehlo => {
                    let starttls = if offer_tls { "250-STARTTLS\r\n" } else { "" };
                    format!("250-{domain}\r\n250-SIZE {max}\r\n{starttls}250 8BITMIME\r\n")
                }
                Command::StartTls if !offer_tls => "454 4.7.0 TLS not available\r\n".into(),
                Command::StartTls => {
                    read.get_mut().write_all(b"220 2.0.0 Ready to start TLS\r\n").await?;
                    return Ok(Next::StartTls);
                }
                Command::Helo => format!("250 {domain}\r\n"),
                Command::Mail => {
                    sender = true;
                    rcpt = None;
                    "250 2.1.0 Ok\r\n".into()
                }
                Command::Rcpt(address) => {
                    let reply = rcpt_reply(sender, &address, &domain);
                    if reply.starts_with("250") {
                        rcpt = Some(address);
                    }
                    reply.into()
                }
                Command::Data => {
                    let Some(to) = rcpt.take() else {
                        read.get_mut().write_all(b"503 5.5.1 RCPT first\r\n").await?;
                        continue;
                    };
                    sender = false;
                    match self.data(read, &to).await? {
                        Some(next) => return Ok(next),
                        None => continue,
                    }
                }
                Command::Rset => {
                    sender = false;
                    rcpt = None;
                    "250 2.0.0 Ok\r\n".into()
                }
                Command::Noop => "250 2.0.0 Ok\r\n".into(),
                Command::Quit => {
                    read.get_mut().write_all(b"221 2.0.0 Bye\r\n").await?;
                    return Ok(Next::Done);
                }
                Command::Unknown => "502 5.5.2 Command not recognized\r\n".into(),
            };
            read.get_mut().write_all(reply.as_bytes()).await?;
        }
    }

    /// Reads one message after DATA and answers it; `Some` when the session must close. Past a
    /// limit the rest of the message is not read: the reply goes out and the session closes,
    /// so an endless DATA costs nothing more.
    async fn data<S: AsyncRead + AsyncWrite + Unpin>(
        &self,
        read: &mut BufReader<S>,
        to: &str,
    ) -> std::io::Result<Option<Next>> {
        let (max, wait) = (self.config.inbound.max_message_bytes, self.config.inbound.command_timeout.get());
        read.get_mut().write_all(b"354 End data with <CR><LF>.<CR><LF>\r\n").await?;
        let refusal: &[u8] = match read_data(read, max, wait, &self.budget).await? {
            Data::Message(raw, _held) => {
                read.get_mut().write_all(self.deliver(&raw, to).await.as_bytes()).await?;
                return Ok(None);
            }
            Data::TooBig => b"552 5.3.4 Message too big, closing\r\n",
            Data::LineTooLong => b"552 5.3.4 Line too long, closing\r\n",
            Data::NoMemory => b"452 4.3.1 Insufficient system storage, try later\r\n",
        };
        read.get_mut().write_all(refusal).await?;
        Ok(Some(Next::Done))
    }

    async fn deliver(&self, raw: &[u8], to: &str) -> String {
        let inbound = Inbound { config: &self.config, tokens: &self.parts.tokens, rules: &self.parts.rules };
        let done = async {
            let mut conn = self.pool.get().await.map_err(|e| e.to_string())?;
            inbound.process(&mut conn, raw, Some(to)).await.map_err(|e| e.to_string())
        };
        match done.await {
            Ok(_) => "250 2.0.0 Ok: report taken\r\n".into(),
            Err(e) => {
                tracing::warn!(error = %e, "inbound report not recorded; asking the sender to retry");
                "451 4.3.0 Temporary failure, try again later\r\n".into()
            }
        }
    }
}

/// The answer to RCPT: reports are taken for the bounce domain only, after MAIL.
fn rcpt_reply(sender: bool, address: &str, domain: &str) -> &'static str {
    let ours = address.rsplit_once('@').is_some_and(|(_, d)| d.eq_ignore_ascii_case(domain));
    match (sender, ours) {
        (false, _) => "503 5.5.1 MAIL first\r\n",
        (true, false) => "550 5.7.1 Relaying denied: this host takes reports for its bounce domain only\r\n",
        (true, true) => "250 2.1.5 Ok\r\n",
    }
}
