//! One submission session: EHLO, STARTTLS, AUTH, then transactions of MAIL, RCPT and DATA or
//! BDAT. Replies are gathered while the client's pipelined commands are still buffered and
//! written when the buffer runs dry (RFC 2920), so a pipelining client costs one write per
//! group. Past a limit on a message (size, line length, memory) the rest is not read: the
//! reply goes out and the session closes.

use std::{net::IpAddr, time::Instant};

use sluice_shared::{config::Scope, metrics as m, validate};
use tokio::{
    io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader},
    sync::OwnedSemaphorePermit,
};

use super::{
    Refusal, Submission, accept,
    command::{self, Command, Path},
    sasl::{self, Mechanism, Undecodable},
};
use crate::{
    api::auth::Principal,
    inbound::command::{BUDGET_STEP, COMMAND_LINE_MAX, Data, Line, command_text, read_data, read_line},
    smtp_server::{Conversation, Next, Session, Tls},
};

/// Commands not understood before the session is closed (Postfix's `smtpd_hard_error_limit`).
const MAX_ERRORS: u32 = 20;
/// Failed AUTH attempts in one session before it is closed.
const MAX_AUTH_FAILURES: u32 = 3;

/// What a reply does to the session.
enum Step {
    Reply(String),
    /// The reply, then the session closes.
    Close(String),
}

impl From<Refusal> for Step {
    fn from(r: Refusal) -> Step {
        Step::Reply(r.reply())
    }
}

/// One mail transaction, from MAIL to the end of DATA or the last BDAT.
#[derive(Default)]
struct Transaction {
    recipients: Vec<String>,
    /// BDAT chunks so far, and the memory budget they hold.
    chunks: Vec<u8>,
    held: Option<OwnedSemaphorePermit>,
}

struct State {
    ip: IpAddr,
    tls: Tls,
    trusted: bool,
    principal: Option<Principal>,
    transaction: Option<Transaction>,
    errors: u32,
    auth_failures: u32,
}

impl Conversation for Submission {
    const NAME: &'static str = "SMTP submission";

    async fn converse<S: AsyncRead + AsyncWrite + Unpin + Send>(
        &self,
        read: &mut BufReader<S>,
        session: Session,
    ) -> std::io::Result<Next> {
        let ip = session.peer.ip();
        let trusted = self.trusted.iter().any(|c| c.contains(ip));
        let mut state =
            State { ip, tls: session.tls, trusted, principal: None, transaction: None, errors: 0, auth_failures: 0 };
        let mut out = Vec::new();
        if session.greet {
            metrics::counter!(m::SUBMISSION_SESSIONS, "port" => self.port.label()).increment(1);
            out.extend_from_slice(format!("220 {} ESMTP Sluice submission\r\n", self.host).as_bytes());
        }
        let wait = self.config.submission.command_timeout.get();
        loop {
            if read.buffer().is_empty() {
                flush(read, &mut out).await?;
            }
            let step = match read_line(read, COMMAND_LINE_MAX, wait).await? {
                Line::Eof => return Ok(Next::Done),
                Line::TooLong => Step::Close("500 5.5.2 Line too long, closing\r\n".into()),
                Line::Full(l) => {
                    let text = command_text(&l);
                    match self.command(read, &mut out, &mut state, &text).await? {
                        Some(step) => step,
                        None => {
                            out.extend_from_slice(b"220 2.0.0 Ready to start TLS\r\n");
                            flush(read, &mut out).await?;
                            return Ok(Next::StartTls);
                        }
                    }
                }
            };
            match step {
                Step::Reply(reply) => out.extend_from_slice(reply.as_bytes()),
                Step::Close(reply) => {
                    out.extend_from_slice(reply.as_bytes());
                    flush(read, &mut out).await?;
                    return Ok(Next::Done);
                }
            }
        }
    }
}

/// Writes the gathered replies.
async fn flush<S: AsyncRead + AsyncWrite + Unpin>(read: &mut BufReader<S>, out: &mut Vec<u8>) -> std::io::Result<()> {
    if !out.is_empty() {
        read.get_mut().write_all(out).await?;
        read.get_mut().flush().await?;
        out.clear();
    }
    Ok(())
}

impl Submission {
    /// The answer to one command; `None` for STARTTLS accepted (the session goes on over TLS).
    async fn command<S: AsyncRead + AsyncWrite + Unpin + Send>(
        &self,
        read: &mut BufReader<S>,
        out: &mut Vec<u8>,
        state: &mut State,
        line: &str,
    ) -> std::io::Result<Option<Step>> {
        let ok = |text: &str| Step::Reply(format!("{text}\r\n"));
        Ok(Some(match Command::parse(line) {
            Command::Ehlo => {
                state.transaction = None;
                Step::Reply(self.ehlo(state))
            }
            Command::Helo => {
                state.transaction = None;
                Step::Reply(format!("250 {}\r\n", self.host))
            }
            Command::StartTls => match state.tls {
                Tls::Offered => return Ok(None),
                Tls::Active => ok("503 5.5.1 TLS already active"),
                Tls::Unavailable => ok("454 4.7.0 TLS not available"),
            },
            Command::Auth(mechanism, initial) => self.auth(read, out, state, mechanism, initial).await?,
            Command::Mail(argument) => self.mail(state, argument),
            Command::Rcpt(argument) => self.rcpt(state, argument),
            Command::Data => self.data(read, out, state).await?,
            Command::Bdat(arguments) => self.bdat(read, state, arguments).await?,
            Command::Rset => {
                state.transaction = None;
                ok("250 2.0.0 Ok")
            }
            Command::Noop => ok("250 2.0.0 Ok"),
            Command::Quit => Step::Close("221 2.0.0 Bye\r\n".into()),
            Command::Unknown => {
                state.errors += 1;
                if state.errors >= MAX_ERRORS {
                    Step::Close("421 4.7.0 Too many errors, closing\r\n".into())
                } else {
                    ok("502 5.5.2 Command not recognized")
                }
            }
        }))
    }

    fn ehlo(&self, state: &State) -> String {
        let max = self.config.submission.max_message_bytes;
        let mut lines = vec![
            self.host.clone(),
            "PIPELINING".into(),
            format!("SIZE {max}"),
            "8BITMIME".into(),
            "SMTPUTF8".into(),
            "ENHANCEDSTATUSCODES".into(),
            "CHUNKING".into(),
        ];
        if state.tls == Tls::Offered {
            lines.push("STARTTLS".into());
        }
        if state.tls == Tls::Active || state.trusted {
            lines.push(format!("AUTH {}", sasl::MECHANISMS));
        }
        let last = lines.len() - 1;
        lines.iter().enumerate().map(|(i, l)| format!("250{}{l}\r\n", if i == last { ' ' } else { '-' })).collect()
    }

    async fn auth<S: AsyncRead + AsyncWrite + Unpin + Send>(
        &self,
        read: &mut BufReader<S>,
        out: &mut Vec<u8>,
        state: &mut State,
        mechanism: &str,
        initial: Option<&str>,
    ) -> std::io::Result<Step> {
        let now = Instant::now();
        let refused = |code, reason, text: &str| Ok(Refusal::new(code, reason, text).into());
        if state.principal.is_some() {
            return Ok(Step::Reply("503 5.5.1 Already authenticated\r\n".into()));
        }
        if state.transaction.is_some() {
            return Ok(Step::Reply("503 5.5.1 AUTH is not allowed during a mail transaction\r\n".into()));
        }
        if state.tls != Tls::Active && !state.trusted {
            return refused("538 5.7.11", "tls_required", "Encryption required for requested authentication mechanism");
        }
        if self.failures.locked(state.ip, now).is_some() {
            return refused("454 4.7.0", "locked_out", "Too many failed authentications from your address, try later");
        }
        let Some(mechanism) = Mechanism::parse(mechanism) else {
            return Ok(Step::Reply("504 5.5.4 Unrecognized authentication type\r\n".into()));
        };
        let (user, password) = match self.credentials(read, out, mechanism, initial).await? {
            Ok(given) => given,
            Err(step) => return Ok(step),
        };
        match self.keys.login(&user, &password) {
            Some(p) if p.allows(Scope::Send) => {
                state.principal = Some(p.clone());
                Ok(Step::Reply("235 2.7.0 Authentication successful\r\n".into()))
            }
            Some(p) => refused("535 5.7.8", "no_send_scope", &format!("API key {:?} lacks the send scope", p.id)),
            None => {
                metrics::counter!(m::SUBMISSION_AUTH_FAILURES).increment(1);
                tracing::info!(client = %state.ip, user = %user.escape_debug(), "SMTP AUTH failed");
                tokio::time::sleep(self.failures.fail(state.ip, now)).await;
                state.auth_failures += 1;
                let reply = Refusal::new("535 5.7.8", "auth_failed", "Authentication credentials invalid").reply();
                if state.auth_failures >= MAX_AUTH_FAILURES {
                    return Ok(Step::Close(format!("{reply}421 4.7.0 Too many failed authentications, closing\r\n")));
                }
                Ok(Step::Reply(reply))
            }
        }
    }

    /// The user name and password the client gives (with the command, or each asked for
    /// with a 334 challenge), or the reply that ends the exchange.
    async fn credentials<S: AsyncRead + AsyncWrite + Unpin + Send>(
        &self,
        read: &mut BufReader<S>,
        out: &mut Vec<u8>,
        mechanism: Mechanism,
        initial: Option<&str>,
    ) -> std::io::Result<Result<(String, String), Step>> {
        let wait = self.config.submission.command_timeout.get();
        let first = match initial {
            Some(i) => i.to_string(),
            None => {
                let challenge = if mechanism == Mechanism::Plain { "334 " } else { "334 VXNlcm5hbWU6" };
                match prompt(read, out, challenge, wait).await? {
                    Ok(response) => response,
                    Err(step) => return Ok(Err(step)),
                }
            }
        };
        let decoded = match mechanism {
            Mechanism::Plain => sasl::plain(&first),
            Mechanism::Login => {
                let user = match sasl::decode(&first) {
                    Ok(user) => user,
                    Err(e) => return Ok(Err(undecodable(e))),
                };
                let password = match prompt(read, out, "334 UGFzc3dvcmQ6", wait).await? {
                    Ok(response) => response,
                    Err(step) => return Ok(Err(step)),
                };
                sasl::decode(&password).map(|p| (user, p))
            }
        };
        Ok(decoded.map_err(undecodable))
    }

    fn mail(&self, state: &mut State, argument: &str) -> Step {
        if state.transaction.is_some() {
            return Step::Reply("503 5.5.1 Nested MAIL command\r\n".into());
        }
        if state.principal.is_none() && !state.trusted {
            return Refusal::new("530 5.7.0", "auth_required", "Authentication required").into();
        }
        let Some(Path { address, params }) = command::path(argument) else {
            return Refusal::new("501 5.5.4", "syntax", "Syntax: MAIL FROM:<address>").into();
        };
        let max = self.config.submission.max_message_bytes;
        for (name, value) in &params {
            let refusal = match (name.as_str(), value.map(str::to_ascii_uppercase).as_deref()) {
                ("SIZE", Some(v)) => match v.parse::<u64>() {
                    Ok(size) if size > max as u64 => Some(Refusal::new(
                        "552 5.3.4",
                        "too_big",
                        format!("Message size exceeds the limit of {max} bytes"),
                    )),
                    Ok(_) => None,
                    Err(_) => Some(Refusal::new("501 5.5.4", "syntax", "SIZE needs a number")),
                },
                ("BODY", Some("7BIT" | "8BITMIME")) | ("SMTPUTF8", None) | ("AUTH", Some(_)) => None,
                _ => Some(Refusal::new("555 5.5.4", "syntax", format!("Unsupported MAIL parameter {name}"))),
            };
            if let Some(r) = refusal {
                return r.into();
            }
        }
        let email = match validate::email(address) {
            Ok(e) => e,
            Err(_) if address.is_empty() => {
                return Refusal::new("553 5.7.1", "sender_domain", "The null sender is not accepted for submission")
                    .into();
            }
            Err(e) => return Refusal::new("553 5.1.7", "syntax", format!("Bad sender address: {e}")).into(),
        };
        if !self.config.dkim.allows(&email.domain) {
            return Refusal::sender_domain("Sender", &email.domain).into();
        }
        state.transaction = Some(Transaction::default());
        Step::Reply("250 2.1.0 Ok\r\n".into())
    }

    fn rcpt(&self, state: &mut State, argument: &str) -> Step {
        let max = self.config.submission.max_recipients;
        let Some(transaction) = state.transaction.as_mut() else {
            return Step::Reply("503 5.5.1 MAIL first\r\n".into());
        };
        let Some(Path { address, params }) = command::path(argument) else {
            return Refusal::new("501 5.5.4", "syntax", "Syntax: RCPT TO:<address>").into();
        };
        if let Some((name, _)) = params.first() {
            return Refusal::new("555 5.5.4", "syntax", format!("Unsupported RCPT parameter {name}")).into();
        }
        let address = match validate::email(address) {
            Ok(e) => e.address,
            Err(e) => return Refusal::new("501 5.1.3", "recipient", format!("Bad recipient address: {e}")).into(),
        };
        if transaction.recipients.iter().any(|r| r.eq_ignore_ascii_case(&address)) {
            return Step::Reply("250 2.1.5 Ok\r\n".into());
        }
        if transaction.recipients.len() >= max {
            let text = format!("Too many recipients (submission.max_recipients = {max})");
            return Refusal::new("452 4.5.3", "too_many_recipients", text).into();
        }
        transaction.recipients.push(address);
        Step::Reply("250 2.1.5 Ok\r\n".into())
    }

    async fn data<S: AsyncRead + AsyncWrite + Unpin + Send>(
        &self,
        read: &mut BufReader<S>,
        out: &mut Vec<u8>,
        state: &mut State,
    ) -> std::io::Result<Step> {
        match &state.transaction {
            Some(t) if !t.recipients.is_empty() && t.chunks.is_empty() => {}
            Some(t) if !t.chunks.is_empty() => return Ok(Step::Reply("503 5.5.1 BDAT in progress\r\n".into())),
            _ => return Ok(Step::Reply("503 5.5.1 RCPT first\r\n".into())),
        }
        out.extend_from_slice(b"354 End data with <CR><LF>.<CR><LF>\r\n");
        flush(read, out).await?;
        let (max, wait) = (self.config.submission.max_message_bytes, self.config.submission.command_timeout.get());
        let refusal = match read_data(read, max, wait, &self.budget).await? {
            Data::Message(raw, _held) => return Ok(Step::Reply(self.finish(state, &raw).await)),
            Data::TooBig => Refusal::new("552 5.3.4", "too_big", format!("Message exceeds the limit of {max} bytes")),
            Data::LineTooLong => Refusal::new("552 5.3.4", "content", "Line too long"),
            Data::NoMemory => Refusal::new("452 4.3.1", "unavailable", "Insufficient system storage, try later"),
        };
        Ok(Step::Close(refusal.reply()))
    }

    /// One BDAT chunk (RFC 3030). A chunk that cannot be taken is not read, so the session
    /// closes after the reply.
    async fn bdat<S: AsyncRead + AsyncWrite + Unpin + Send>(
        &self,
        read: &mut BufReader<S>,
        state: &mut State,
        arguments: &str,
    ) -> std::io::Result<Step> {
        let max = self.config.submission.max_message_bytes;
        let Some((size, last)) = command::bdat(arguments) else {
            return Ok(Step::Close(Refusal::new("501 5.5.4", "syntax", "Syntax: BDAT size [LAST]").reply()));
        };
        let Some(transaction) = state.transaction.as_mut().filter(|t| !t.recipients.is_empty()) else {
            return Ok(Step::Close("503 5.5.1 RCPT first\r\n".into()));
        };
        let total = transaction.chunks.len().saturating_add(size);
        if total > max {
            let refusal = Refusal::new("552 5.3.4", "too_big", format!("Message exceeds the limit of {max} bytes"));
            return Ok(Step::Close(refusal.reply()));
        }
        let steps = total.div_ceil(BUDGET_STEP).max(1) as u32;
        let held_now = transaction.held.as_ref().map_or(0, |h| h.num_permits() as u32);
        if steps > held_now {
            let Ok(more) = self.budget.clone().try_acquire_many_owned(steps - held_now) else {
                let refusal = Refusal::new("452 4.3.1", "unavailable", "Insufficient system storage, try later");
                return Ok(Step::Close(refusal.reply()));
            };
            match transaction.held.as_mut() {
                Some(h) => h.merge(more),
                None => transaction.held = Some(more),
            }
        }
        let start = transaction.chunks.len();
        transaction.chunks.resize(total, 0);
        let wait = self.config.submission.command_timeout.get();
        match tokio::time::timeout(wait, read.read_exact(&mut transaction.chunks[start..])).await {
            Ok(result) => result?,
            Err(_) => return Err(std::io::Error::new(std::io::ErrorKind::TimedOut, "BDAT chunk timeout")),
        };
        if !last {
            return Ok(Step::Reply(format!("250 2.0.0 {size} octets received\r\n")));
        }
        let raw = std::mem::take(&mut transaction.chunks);
        Ok(Step::Reply(self.finish(state, &raw).await))
    }

    /// The end of a transaction: the message stored and queued, or refused.
    async fn finish(&self, state: &mut State, raw: &[u8]) -> String {
        let transaction = state.transaction.take().unwrap_or_default();
        match accept::accept(self, state.principal.as_ref(), &transaction.recipients, raw).await {
            Ok(id) => {
                metrics::counter!(m::SUBMISSION_ACCEPTED).increment(1);
                format!("250 2.0.0 Ok: queued as {id}\r\n")
            }
            Err(refusal) => refusal.reply(),
        }
    }
}

/// The answer to a response that cannot be read.
fn undecodable(e: Undecodable) -> Step {
    match e {
        Undecodable::Cancelled => Step::Reply("501 5.7.0 Authentication cancelled\r\n".into()),
        Undecodable::Malformed => Step::Reply("501 5.5.2 Cannot decode response\r\n".into()),
    }
}

/// Writes a 334 challenge and reads the client's response line: `Err` when the session must
/// end (the client left, or sent a line past the limit).
async fn prompt<S: AsyncRead + AsyncWrite + Unpin + Send>(
    read: &mut BufReader<S>,
    out: &mut Vec<u8>,
    challenge: &str,
    wait: std::time::Duration,
) -> std::io::Result<Result<String, Step>> {
    out.extend_from_slice(format!("{challenge}\r\n").as_bytes());
    flush(read, out).await?;
    Ok(match read_line(read, COMMAND_LINE_MAX, wait).await? {
        Line::Eof => Err(Step::Close(String::new())),
        Line::TooLong => Err(Step::Close("500 5.5.2 Line too long, closing\r\n".into())),
        Line::Full(l) => Ok(command_text(&l)),
    })
}
