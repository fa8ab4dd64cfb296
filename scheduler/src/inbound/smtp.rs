//! The optional inbound SMTP listener (`inbound.smtp_listen`): the bounce domain's MX. It
//! accepts mail for `bounces.return_path_domain` only, and answers 250 to DATA once the report
//! is recorded or kept (451 if Redis is unavailable, so the sender retries). With
//! `inbound.tls_cert` and `tls_key` it offers STARTTLS (RFC 3207).
//!
//! Sessions, their caps and deadlines and the STARTTLS upgrade are the shared
//! [`crate::smtp_server`]'s. Here, as in Postfix's smtpd: line length and message size are
//! enforced while reading (nothing is buffered past them), DATA held in memory by all sessions
//! together has a budget, and every command has a timeout.

use std::sync::Arc;

use sluice_shared::redis::Pool;
use tokio::{
    io::{AsyncRead, AsyncWrite, AsyncWriteExt, BufReader},
    sync::Semaphore,
};

use super::InboundParts;
use super::{
    Inbound,
    command::{BUDGET_STEP, COMMAND_LINE_MAX, Command, Data, Line, command_text, read_data, read_line},
};
use crate::smtp_server::{self, Conversation, Next, Session, Tls};

/// What the bounce domain's MX says: it takes reports.
pub struct Reports {
    pool: Pool,
    config: Arc<sluice_shared::config::Config>,
    parts: Arc<InboundParts>,
    /// Permits of [`BUDGET_STEP`] bytes of DATA held in memory, shared by every session.
    budget: Arc<Semaphore>,
}

impl Reports {
    pub fn new(pool: Pool, config: Arc<sluice_shared::config::Config>, parts: Arc<InboundParts>) -> Reports {
        let steps = config.inbound.max_buffered_bytes.div_ceil(BUDGET_STEP);
        Reports { pool, config, parts, budget: Arc::new(Semaphore::new(steps)) }
    }

    /// The session limits of `[inbound]`.
    pub fn limits(config: &sluice_shared::config::Config) -> smtp_server::Limits {
        smtp_server::Limits {
            max_connections: config.inbound.max_connections,
            max_connections_per_client: config.inbound.max_connections_per_client,
            session_timeout: config.inbound.session_timeout.get(),
        }
    }
}

impl Conversation for Reports {
    const NAME: &'static str = "inbound SMTP";

    async fn converse<S: AsyncRead + AsyncWrite + Unpin + Send>(
        &self,
        read: &mut BufReader<S>,
        session: Session,
    ) -> std::io::Result<Next> {
        self.session(read, session.greet, session.tls == Tls::Offered).await
    }
}

impl Reports {
    async fn session<S: AsyncRead + AsyncWrite + Unpin + Send>(
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
    async fn data<S: AsyncRead + AsyncWrite + Unpin + Send>(
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
