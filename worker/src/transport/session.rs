//! SMTP transactions on an open lettre connection, written here rather than left to
//! lettre's `send`, which drops the connection after any refusal and knows no PIPELINING.
//!
//! - With PIPELINING (RFC 2920), MAIL, RCPT and DATA go out in one write and their three
//!   replies are read after it; the dot-stuffed body and its final `.` go in a second write,
//!   together with the next message's MAIL, RCPT and DATA when messages are sent in a row.
//!   Without it, each command waits for its reply.
//! - A refused MAIL or RCPT is the message's answer; the replies still due are read, RSET
//!   ends the transaction, and the connection stays usable. A refusal after the content
//!   needs no RSET.
//! - The connection is given up only when the server closes it, answers `421`, or gets out of
//!   step. A message whose MAIL the connection was dead before answering is left unsent
//!   ([`Run::dead`]): it can go out on another connection without counting an attempt.

use std::fmt;

use lettre::transport::smtp::{Error, client::AsyncSmtpConnection, extension::ClientId, extension::Extension};

use super::{
    SendError, SmtpReply,
    smtp::{code_number, reply_text},
};

/// An open SMTP connection and what its server offers.
pub struct Session {
    conn: AsyncSmtpConnection,
    pipelining: bool,
    /// False once the server closed the connection, answered 421 or got out of step: it is
    /// dropped without QUIT and never reused.
    usable: bool,
}

/// One message to send: envelope sender, recipient, the message itself.
#[derive(Clone, Copy)]
pub struct Outgoing<'a> {
    pub from: &'a str,
    pub to: &'a str,
    pub message: &'a [u8],
}

/// What one connection did with messages given in order ([`Session::send_all`]).
pub struct Run {
    /// The answers to the first messages, in order; the ones after them were not sent.
    pub answers: Vec<Result<SmtpReply, SendError>>,
    /// Why the connection stopped before the next message: it was dead (EOF, a reset, a write
    /// error, or a 421) before it answered that message's MAIL, so nothing of it reached the
    /// server. None when every message has its answer.
    pub dead: Option<SendError>,
    /// A message's exchange outlived the bound: it has its answer (a connection problem) and
    /// the messages after it were not tried.
    pub timed_out: bool,
}

/// How one transaction ended.
enum Step {
    /// The message's answer, and whether the next message's envelope went out after its content.
    Answered(Result<SmtpReply, SendError>, bool),
    /// The connection was dead before it answered MAIL.
    Dead(SendError),
}

/// One reply, as the transaction needs to see it.
enum Reply {
    Positive(SmtpReply),
    Negative(SmtpReply),
    /// No reply: the connection broke (EOF, reset, write error, garbage).
    Broken(String),
}

impl Reply {
    fn read(result: Result<lettre::transport::smtp::response::Response, Error>) -> Reply {
        match result {
            Ok(r) => {
                Reply::Positive(SmtpReply::parse(code_number(r.code()), &r.message().collect::<Vec<_>>().join(" ")))
            }
            Err(e) => match e.status() {
                Some(code) => Reply::Negative(SmtpReply::parse(code_number(code), &reply_text(&e))),
                None => Reply::Broken(e.to_string()),
            },
        }
    }

    /// The server closes the connection after this reply, or already has.
    fn ends_connection(&self) -> bool {
        match self {
            Reply::Positive(_) => false,
            Reply::Negative(r) => r.code == 421,
            Reply::Broken(_) => true,
        }
    }
}

impl Session {
    /// Takes a connection that has said EHLO (and STARTTLS, AUTH as configured).
    pub async fn start(mut conn: AsyncSmtpConnection, hello: &ClientId) -> Result<Session, Error> {
        let pipelining = offered(&mut conn, hello).await?;
        Ok(Session { conn, pipelining, usable: true })
    }

    /// Whether another message may be sent on this connection.
    pub fn is_usable(&self) -> bool {
        self.usable
    }

    /// Says goodbye: QUIT, unless the server has already gone. Callers bound it in time.
    pub async fn quit(mut self) {
        if self.usable {
            self.usable = false;
            let _ = self.conn.command("QUIT\r\n").await;
        }
    }

    /// Sends messages in order, each exchange bounded by `bound`, until one has no answer.
    /// With PIPELINING a message's content and the next one's envelope go out in one write
    /// (RFC 2920 lets the content open a group): one round trip per message instead of two.
    pub async fn send_all(&mut self, messages: &[Outgoing<'_>], bound: std::time::Duration) -> Run {
        let mut run = Run { answers: Vec::with_capacity(messages.len()), dead: None, timed_out: false };
        let mut announced = false;
        for (k, m) in messages.iter().enumerate() {
            if !self.usable {
                run.dead = Some(SendError::Connection("the connection was closed".into()));
                break;
            }
            let envelope = match self.envelope_for(m) {
                Ok(e) => e,
                Err(why) => {
                    run.answers.push(Err(SendError::Unsendable(why)));
                    continue;
                }
            };
            let next = messages.get(k + 1).filter(|_| self.pipelining).and_then(|n| self.envelope_for(n).ok());
            match tokio::time::timeout(bound, self.transaction(&envelope, m.message, announced, next.as_ref())).await {
                Ok(Step::Answered(answer, next_announced)) => {
                    run.answers.push(answer);
                    announced = next_announced;
                }
                Ok(Step::Dead(why)) => {
                    run.dead = Some(why);
                    break;
                }
                Err(_) => {
                    self.usable = false;
                    run.answers.push(Err(SendError::Connection(format!("no reply within {bound:?}"))));
                    run.timed_out = true;
                    break;
                }
            }
        }
        run
    }

    /// One message's transaction; `announced`: its envelope already went out, after the
    /// previous message's content. `next`: the envelope to send after this content.
    async fn transaction(
        &mut self,
        envelope: &Envelope<'_>,
        message: &[u8],
        announced: bool,
        next: Option<&Envelope<'_>>,
    ) -> Step {
        let replies = self.envelope(envelope, announced).await;
        if replies[0].ends_connection() {
            self.usable = false;
            return Step::Dead(failure(&replies[0]));
        }
        if let Some(refusal) = replies.iter().find(|r| !matches!(r, Reply::Positive(_))) {
            let answer = Err(failure(refusal));
            let data_accepted = replies.len() == 3 && matches!(replies[2], Reply::Positive(_));
            if replies.iter().any(Reply::ends_connection) || data_accepted {
                // Closed by the server, or it took DATA with no recipient: out of step.
                self.usable = false;
            } else {
                self.reset().await;
            }
            return Step::Answered(answer, false);
        }
        let reply = Reply::read(self.conn.command(Content::of(message, next)).await);
        if reply.ends_connection() {
            self.usable = false;
        }
        let answer = match reply {
            Reply::Positive(r) => Ok(r),
            other => Err(failure(&other)),
        };
        Step::Answered(answer, next.is_some())
    }

    /// The replies to MAIL, RCPT and DATA, in order (the commands are written first unless
    /// `announced`). Pipelined, all three are read (unless the connection ends first);
    /// otherwise the first refusal ends the envelope.
    async fn envelope(&mut self, envelope: &Envelope<'_>, announced: bool) -> Vec<Reply> {
        let mut replies = Vec::with_capacity(3);
        if self.pipelining {
            let first = if announced { self.conn.read_response().await } else { self.conn.command(envelope).await };
            replies.push(Reply::read(first));
            while replies.len() < 3 && !replies.last().is_some_and(Reply::ends_connection) {
                replies.push(Reply::read(self.conn.read_response().await));
            }
            return replies;
        }
        let commands = [envelope.mail(), envelope.rcpt(), "DATA\r\n".to_string()];
        for command in commands {
            let reply = Reply::read(self.conn.command(command).await);
            let refused = !matches!(reply, Reply::Positive(_));
            replies.push(reply);
            if refused {
                break;
            }
        }
        replies
    }

    /// The envelope for a message, or why this server cannot take it.
    fn envelope_for<'a>(&self, m: &Outgoing<'a>) -> Result<Envelope<'a>, String> {
        let parameters = self.mail_parameters(m.from, m.to, m.message)?;
        Ok(Envelope { from: m.from, parameters, to: m.to })
    }

    /// Ends a refused transaction; a connection that cannot is given up.
    async fn reset(&mut self) {
        if !matches!(Reply::read(self.conn.command("RSET\r\n").await), Reply::Positive(_)) {
            self.usable = false;
        }
    }

    /// The MAIL parameters the message needs, or why this server cannot take it.
    fn mail_parameters(&self, from: &str, to: &str, message: &[u8]) -> Result<&'static str, String> {
        let offers = |e: Extension| self.conn.server_info().supports_feature(e);
        let utf8_addresses = !from.is_ascii() || !to.is_ascii();
        if utf8_addresses && !offers(Extension::SmtpUtfEight) {
            return Err("the envelope has non-ASCII addresses and the server does not offer SMTPUTF8".into());
        }
        let eight_bit = !message.is_ascii();
        if eight_bit && !offers(Extension::EightBitMime) {
            return Err("the message has non-ASCII content and the server does not offer 8BITMIME".into());
        }
        Ok(match (utf8_addresses, eight_bit) {
            (true, true) => " SMTPUTF8 BODY=8BITMIME",
            (true, false) => " SMTPUTF8",
            (false, true) => " BODY=8BITMIME",
            (false, false) => "",
        })
    }
}

/// A refusal keeps its code and text; a broken connection is a connection problem.
fn failure(reply: &Reply) -> SendError {
    match reply {
        Reply::Positive(r) | Reply::Negative(r) => SendError::Rejected(r.clone()),
        Reply::Broken(why) => SendError::Connection(why.clone()),
    }
}

/// Whether the server lists PIPELINING in its EHLO reply (asked once per connection).
async fn offered(conn: &mut AsyncSmtpConnection, hello: &ClientId) -> Result<bool, Error> {
    let reply = conn.command(format!("EHLO {hello}\r\n")).await?;
    Ok(reply.message().any(|line| line.trim().eq_ignore_ascii_case("PIPELINING")))
}

/// `MAIL FROM:<from>`, `RCPT TO:<to>`, `DATA`: one group when pipelined.
struct Envelope<'a> {
    from: &'a str,
    parameters: &'static str,
    to: &'a str,
}

impl Envelope<'_> {
    fn mail(&self) -> String {
        format!("MAIL FROM:<{}>{}\r\n", self.from, self.parameters)
    }
    fn rcpt(&self) -> String {
        format!("RCPT TO:<{}>\r\n", self.to)
    }
}

impl fmt::Display for Envelope<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}DATA\r\n", self.mail(), self.rcpt())
    }
}

/// The message, dot-stuffed, with CRLF line ends, then `.`: the whole DATA content. CRLF, a
/// bare CR and a bare LF all end a line here, so neither a bare CR nor a bare LF (nor the
/// `<CR>.<CR><LF>` of SMTP smuggling) can reach the wire, whatever the message holds.
/// Messages are built as UTF-8 text; other bytes would be replaced, never sent raw. Built once
/// into a buffer of about its final size: lettre's `command` copies it out in one piece.
/// `next`, the following message's envelope, goes in the same write after the `.`.
struct Content(String);

impl Content {
    fn of(message: &[u8], next: Option<&Envelope<'_>>) -> Content {
        let text = match std::str::from_utf8(message) {
            Ok(text) => std::borrow::Cow::Borrowed(text),
            Err(_) => String::from_utf8_lossy(message),
        };
        // Room for a CR on every line of a few dozen bytes and a stuffed dot now and then.
        let mut out = String::with_capacity(text.len() + text.len() / 32 + 8);
        let mut rest: &str = &text;
        while !rest.is_empty() {
            if rest.starts_with('.') {
                out.push('.');
            }
            // A byte search (SIMD): a char-pattern `find` cost a worker ~20,000 instructions a message.
            match memchr::memchr2(b'\r', b'\n', rest.as_bytes()) {
                Some(i) => {
                    out.push_str(&rest[..i]);
                    out.push_str("\r\n");
                    let skip = if rest[i..].starts_with("\r\n") { 2 } else { 1 };
                    rest = &rest[i + skip..];
                }
                None => {
                    out.push_str(rest);
                    out.push_str("\r\n");
                    rest = "";
                }
            }
        }
        out.push_str(".\r\n");
        if let Some(envelope) = next {
            use std::fmt::Write;
            let _ = write!(out, "{envelope}");
        }
        Content(out)
    }
}

impl fmt::Display for Content {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_is_dot_stuffed_with_crlf_and_terminated() {
        assert_eq!(Content::of(b"a\r\n.b\r\n..c\nd", None).to_string(), "a\r\n..b\r\n...c\r\nd\r\n.\r\n");
        assert_eq!(Content::of(b"x\r\n", None).to_string(), "x\r\n.\r\n");
        assert_eq!(Content::of(b"", None).to_string(), ".\r\n");
        assert_eq!(Content::of(b".\r\n", None).to_string(), "..\r\n.\r\n");
        let smuggle = Content::of(b"Hi x\r.\r\nMAIL FROM:<ceo@bank.example>\r\n\n.\r", None).to_string();
        assert_eq!(smuggle, "Hi x\r\n..\r\nMAIL FROM:<ceo@bank.example>\r\n\r\n..\r\n.\r\n");
        assert_eq!(Content::of("caf\u{e9}".as_bytes(), None).to_string(), "caf\u{e9}\r\n.\r\n");
        assert_eq!(Content::of(b"a\xffb", None).to_string(), "a\u{fffd}b\r\n.\r\n", "never a raw invalid byte");
    }

    #[test]
    fn the_envelope_is_one_group_with_the_parameters_it_needs() {
        let plain = Envelope { from: "a@x.example", parameters: "", to: "b@y.example" };
        assert_eq!(plain.to_string(), "MAIL FROM:<a@x.example>\r\nRCPT TO:<b@y.example>\r\nDATA\r\n");
        let utf8 = Envelope { from: "a@x.example", parameters: " SMTPUTF8 BODY=8BITMIME", to: "b\u{e9}@y.example" };
        assert_eq!(utf8.mail(), "MAIL FROM:<a@x.example> SMTPUTF8 BODY=8BITMIME\r\n");
    }
}
