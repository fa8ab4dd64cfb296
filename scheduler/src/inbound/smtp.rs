//! The optional inbound SMTP listener (`inbound.smtp_listen`): the bounce domain's MX. It
//! accepts mail for `bounces.return_path_domain` only, and answers 250 to DATA once the report
//! is recorded or kept (451 if Redis is unavailable, so the sender retries). Plain SMTP: put a
//! TLS-terminating MTA in front if the path needs encryption.
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
    io::{AsyncBufRead, AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader},
    net::{TcpListener, TcpStream, tcp::OwnedWriteHalf},
    sync::{OwnedSemaphorePermit, Semaphore},
};

use super::Inbound;
use crate::api::InboundParts;

/// Longest command line, CRLF included (Postfix's `line_length_limit`).
const COMMAND_LINE_MAX: usize = 2048;
/// Longest line of DATA, CRLF included: RFC 5321 allows 1,000; this leaves room for senders
/// that overstep it without letting one line fill memory.
const DATA_LINE_MAX: usize = 8192;
/// DATA memory is taken from the shared budget in steps of this many bytes.
const BUDGET_STEP: usize = 64 * 1024;

pub struct Listener {
    pool: Pool,
    config: Arc<sluice_shared::config::Config>,
    parts: Arc<InboundParts>,
    /// Open sessions per client address.
    clients: Mutex<HashMap<IpAddr, usize>>,
    /// Permits of [`BUDGET_STEP`] bytes of DATA held in memory, shared by every session.
    budget: Arc<Semaphore>,
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

/// A line read under a length cap.
enum Line {
    Eof,
    TooLong,
    Full(Vec<u8>),
}

/// What DATA produced.
enum Data {
    Message(Vec<u8>, OwnedSemaphorePermit),
    TooBig,
    LineTooLong,
    NoMemory,
}

impl Listener {
    pub fn new(pool: Pool, config: Arc<sluice_shared::config::Config>, parts: Arc<InboundParts>) -> Listener {
        let steps = config.inbound.max_buffered_bytes.div_ceil(BUDGET_STEP);
        Listener { pool, config, parts, clients: Mutex::default(), budget: Arc::new(Semaphore::new(steps)) }
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

    /// One session under the session deadline; a timeout is answered 421 before closing.
    async fn serve(&self, stream: TcpStream, peer: SocketAddr) {
        let (read, mut write) = stream.into_split();
        let mut read = BufReader::new(read);
        let deadline = self.config.inbound.session_timeout.get();
        let ended = match tokio::time::timeout(deadline, self.session(&mut read, &mut write)).await {
            Ok(Ok(())) => return,
            Ok(Err(e)) if e.kind() == std::io::ErrorKind::TimedOut => "421 4.4.2 Timeout exceeded, closing\r\n",
            Ok(Err(e)) => {
                tracing::debug!(%peer, error = %e, "inbound SMTP session ended");
                return;
            }
            Err(_) => "421 4.4.2 Session too long, closing\r\n",
        };
        tracing::info!(%peer, reply = ended.trim_end(), "inbound SMTP session closed");
        let _ = tokio::time::timeout(Duration::from_secs(5), write.write_all(ended.as_bytes())).await;
    }

    async fn session<R: AsyncBufRead + Unpin>(&self, read: &mut R, write: &mut OwnedWriteHalf) -> std::io::Result<()> {
        let domain = self.config.bounces.return_path_domain.clone().unwrap_or_default();
        let max = self.config.inbound.max_message_bytes;
        let wait = self.config.inbound.command_timeout.get();
        write.write_all(format!("220 {domain} Sluice inbound ESMTP\r\n").as_bytes()).await?;
        let mut rcpt: Option<String> = None;
        let mut sender = false;
        loop {
            let line = match read_line(read, COMMAND_LINE_MAX, wait).await? {
                Line::Eof => return Ok(()),
                Line::TooLong => {
                    write.write_all(b"500 5.5.2 Line too long, closing\r\n").await?;
                    return Ok(());
                }
                Line::Full(l) => String::from_utf8_lossy(&l).trim_end_matches(['\r', '\n']).to_string(),
            };
            let upper = line.to_ascii_uppercase();
            let reply: String = if upper.starts_with("EHLO") {
                format!("250-{domain}\r\n250-SIZE {max}\r\n250 8BITMIME\r\n")
            } else if upper.starts_with("HELO") {
                format!("250 {domain}\r\n")
            } else if upper.starts_with("MAIL FROM:") {
                sender = true;
                rcpt = None;
                "250 2.1.0 Ok\r\n".into()
            } else if upper.starts_with("RCPT TO:") {
                let address = line[8..].trim().trim_start_matches('<').split('>').next().unwrap_or("").to_string();
                let ours = address.rsplit_once('@').is_some_and(|(_, d)| d.eq_ignore_ascii_case(&domain));
                match (sender, ours) {
                    (false, _) => "503 5.5.1 MAIL first\r\n".into(),
                    (true, false) => {
                        "550 5.7.1 Relaying denied: this host takes reports for its bounce domain only\r\n".into()
                    }
                    (true, true) => {
                        rcpt = Some(address);
                        "250 2.1.5 Ok\r\n".into()
                    }
                }
            } else if upper == "DATA" {
                let Some(to) = rcpt.take() else {
                    write.write_all(b"503 5.5.1 RCPT first\r\n").await?;
                    continue;
                };
                write.write_all(b"354 End data with <CR><LF>.<CR><LF>\r\n").await?;
                sender = false;
                // Past a limit the rest of the message is not read: the reply goes out and
                // the session closes, so an endless DATA costs nothing more.
                let refusal: &[u8] = match read_data(read, max, wait, &self.budget).await? {
                    Data::Message(raw, _held) => {
                        write.write_all(self.deliver(&raw, &to).await.as_bytes()).await?;
                        continue;
                    }
                    Data::TooBig => b"552 5.3.4 Message too big, closing\r\n",
                    Data::LineTooLong => b"552 5.3.4 Line too long, closing\r\n",
                    Data::NoMemory => b"452 4.3.1 Insufficient system storage, try later\r\n",
                };
                write.write_all(refusal).await?;
                return Ok(());
            } else if upper == "RSET" {
                sender = false;
                rcpt = None;
                "250 2.0.0 Ok\r\n".into()
            } else if upper == "NOOP" {
                "250 2.0.0 Ok\r\n".into()
            } else if upper == "QUIT" {
                write.write_all(b"221 2.0.0 Bye\r\n").await?;
                return Ok(());
            } else {
                "502 5.5.2 Command not recognized\r\n".into()
            };
            write.write_all(reply.as_bytes()).await?;
        }
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

/// One line of at most `max` bytes (its LF included), read within `wait`. A longer line is
/// `TooLong` once `max + 1` bytes were read: the rest is never buffered.
async fn read_line<R: AsyncBufRead + Unpin>(read: &mut R, max: usize, wait: Duration) -> std::io::Result<Line> {
    let mut buf = Vec::new();
    let n = tokio::time::timeout(wait, read.take(max as u64 + 1).read_until(b'\n', &mut buf))
        .await
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "command timeout"))??;
    Ok(match n {
        0 => Line::Eof,
        _ if buf.len() > max => Line::TooLong,
        _ => Line::Full(buf),
    })
}

/// The DATA section up to the lone dot, dot-stuffing undone, each line and the whole held to
/// their limits while reading; the memory it holds is taken from `budget` as it grows and
/// given back when the returned permit drops.
async fn read_data<R: AsyncBufRead + Unpin>(
    read: &mut R,
    max: usize,
    wait: Duration,
    budget: &Arc<Semaphore>,
) -> std::io::Result<Data> {
    let mut out = Vec::new();
    let Ok(mut held) = budget.clone().try_acquire_owned() else { return Ok(Data::NoMemory) };
    let mut allowed = BUDGET_STEP;
    loop {
        let line = match read_line(read, DATA_LINE_MAX, wait).await? {
            Line::Eof => return Err(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "eof in DATA")),
            Line::TooLong => return Ok(Data::LineTooLong),
            Line::Full(line) => line,
        };
        if line == b".\r\n" || line == b".\n" {
            return Ok(Data::Message(out, held));
        }
        let line = line.strip_prefix(b".").unwrap_or(&line);
        if out.len() + line.len() > max {
            return Ok(Data::TooBig);
        }
        while out.len() + line.len() > allowed {
            let Ok(more) = budget.clone().try_acquire_owned() else { return Ok(Data::NoMemory) };
            held.merge(more);
            allowed += BUDGET_STEP;
        }
        out.extend_from_slice(line);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn data(input: &[u8], max: usize, budget: usize) -> Data {
        let mut reader = BufReader::new(input);
        let budget = Arc::new(Semaphore::new(budget));
        read_data(&mut reader, max, Duration::from_secs(1), &budget).await.unwrap()
    }

    #[tokio::test]
    async fn data_is_held_to_its_limits_while_reading() {
        match data(b"a\r\n..b\r\n.\r\n", 100, 1).await {
            Data::Message(m, _) => assert_eq!(m, b"a\r\n.b\r\n"),
            _ => panic!("a small message is read whole"),
        }
        let long_line = vec![b'x'; DATA_LINE_MAX * 4];
        assert!(matches!(data(&long_line, 1 << 20, 100).await, Data::LineTooLong));
        let many_lines = b"0123456789\r\n".repeat(1000);
        assert!(matches!(data(&many_lines, 5000, 100).await, Data::TooBig));
        let big = b"0123456789\r\n".repeat(10_000);
        assert!(matches!(data(&big, 1 << 20, 1).await, Data::NoMemory), "past the shared budget");
        assert!(matches!(data(b"x\r\n", 100, 0).await, Data::NoMemory));
    }
}
