//! The optional inbound SMTP listener (`inbound.smtp_listen`): the bounce domain's MX. It
//! accepts mail for `bounces.return_path_domain` only, and answers 250 to DATA once the report
//! is recorded or kept (451 if Redis is unavailable, so the sender retries). Plain SMTP: put a
//! TLS-terminating MTA in front if the path needs encryption.

use std::{sync::Arc, time::Duration};

use sluice_shared::{redis::Pool, shutdown::Shutdown};
use tokio::{
    io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader},
    net::{TcpListener, TcpStream},
    sync::Semaphore,
};

use super::Inbound;
use crate::api::InboundParts;

/// Concurrent sessions.
const SESSIONS: usize = 64;
/// Longest wait for a command or a DATA line (RFC 5321 4.5.3.2 suggests minutes).
const IDLE: Duration = Duration::from_secs(300);
/// Longest command line.
const LINE_MAX: u64 = 2048;

pub struct Listener {
    pub pool: Pool,
    pub config: Arc<sluice_shared::config::Config>,
    pub parts: Arc<InboundParts>,
}

impl Listener {
    pub async fn run(self: Arc<Self>, listener: TcpListener, shutdown: Shutdown) {
        let sessions = Arc::new(Semaphore::new(SESSIONS));
        loop {
            let accepted = tokio::select! {
                a = listener.accept() => a,
                _ = shutdown.wait() => break,
            };
            let Ok((stream, peer)) = accepted else { continue };
            let Ok(permit) = sessions.clone().try_acquire_owned() else {
                let mut s = stream;
                let _ = s.write_all(b"421 4.3.2 Too many connections, try later\r\n").await;
                continue;
            };
            let me = self.clone();
            tokio::spawn(async move {
                if let Err(e) = me.session(stream).await {
                    tracing::debug!(%peer, error = %e, "inbound SMTP session ended");
                }
                drop(permit);
            });
        }
    }

    async fn session(&self, stream: TcpStream) -> std::io::Result<()> {
        let domain = self.config.bounces.return_path_domain.clone().unwrap_or_default();
        let max = self.config.inbound.max_message_bytes;
        let (read, mut write) = stream.into_split();
        let mut read = BufReader::new(read);
        write.write_all(format!("220 {domain} Sluice inbound ESMTP\r\n").as_bytes()).await?;
        let mut rcpt: Option<String> = None;
        let mut sender = false;
        loop {
            let Some(line) = read_line(&mut read).await? else { return Ok(()) };
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
                match read_data(&mut read, max).await? {
                    Some(raw) => self.deliver(&raw, &to).await,
                    None => "552 5.3.4 Message too big\r\n".into(),
                }
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

async fn read_line<R: tokio::io::AsyncBufRead + Unpin>(read: &mut R) -> std::io::Result<Option<String>> {
    let mut buf = Vec::new();
    let n = tokio::time::timeout(IDLE, read.take(LINE_MAX).read_until(b'\n', &mut buf))
        .await
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "idle"))??;
    if n == 0 {
        return Ok(None);
    }
    Ok(Some(String::from_utf8_lossy(&buf).trim_end_matches(['\r', '\n']).to_string()))
}

/// The DATA section up to the lone dot, dot-stuffing undone; None when it exceeds `max`
/// (the rest is read and dropped so the session stays in step).
async fn read_data<R: tokio::io::AsyncBufRead + Unpin>(read: &mut R, max: usize) -> std::io::Result<Option<Vec<u8>>> {
    let mut out = Vec::new();
    let mut too_big = false;
    loop {
        let mut line = Vec::new();
        let n = tokio::time::timeout(IDLE, read.read_until(b'\n', &mut line))
            .await
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "idle in DATA"))??;
        if n == 0 {
            return Err(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "eof in DATA"));
        }
        if line == b".\r\n" || line == b".\n" {
            return Ok((!too_big).then_some(out));
        }
        let line = if line.starts_with(b"..") { &line[1..] } else { &line[..] };
        if out.len() + line.len() > max {
            too_big = true;
            out.clear();
        } else if !too_big {
            out.extend_from_slice(line);
        }
    }
}
