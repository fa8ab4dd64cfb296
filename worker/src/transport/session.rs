//! One SMTP transaction on an open lettre connection, written here rather than left to
//! lettre's `send`, which drops the connection after any refusal and knows no PIPELINING.
//!
//! - With PIPELINING (RFC 2920), MAIL, RCPT and DATA go out in one write and their three
//!   replies are read after it; the dot-stuffed body and its final `.` go in a second write.
//!   Without it, each command waits for its reply.
//! - A refused MAIL or RCPT is the message's answer; the replies still due are read, RSET
//!   ends the transaction, and the connection stays usable. A refusal after the content
//!   needs no RSET.
//! - The connection is given up only when the server closes it, answers `421`, or gets out of
//!   step. A connection that was dead before it answered our first command is reported as
//!   [`Sent::stale`], so a pooled one can be replaced without counting an attempt.

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

/// The answer to one message, and whether the connection died before it.
pub struct Sent {
    pub answer: Result<SmtpReply, SendError>,
    /// The connection was dead before it answered our first command (EOF, a reset, a write
    /// error, or a 421 in place of MAIL's reply): nothing of this message reached the server.
    pub stale: bool,
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

    /// Sends one message from `from` to `to`.
    pub async fn send(&mut self, from: &str, to: &str, message: &[u8]) -> Sent {
        let parameters = match self.mail_parameters(from, to, message) {
            Ok(p) => p,
            Err(why) => return Sent { answer: Err(SendError::Unsendable(why)), stale: false },
        };
        let envelope = Envelope { from, parameters, to };
        let replies = self.envelope(&envelope).await;
        if replies[0].ends_connection() {
            self.usable = false;
            return Sent { answer: Err(failure(&replies[0])), stale: true };
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
            return Sent { answer, stale: false };
        }
        let reply = Reply::read(self.conn.command(Content::of(message)).await);
        if reply.ends_connection() {
            self.usable = false;
        }
        let answer = match reply {
            Reply::Positive(r) => Ok(r),
            other => Err(failure(&other)),
        };
        Sent { answer, stale: false }
    }

    /// The replies to MAIL, RCPT and DATA, in order. Pipelined, all three are read (unless the
    /// connection ends first); otherwise the first refusal ends the envelope.
    async fn envelope(&mut self, envelope: &Envelope<'_>) -> Vec<Reply> {
        let mut replies = Vec::with_capacity(3);
        if self.pipelining {
            replies.push(Reply::read(self.conn.command(envelope).await));
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
struct Content(String);

impl Content {
    fn of(message: &[u8]) -> Content {
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
        assert_eq!(Content::of(b"a\r\n.b\r\n..c\nd").to_string(), "a\r\n..b\r\n...c\r\nd\r\n.\r\n");
        assert_eq!(Content::of(b"x\r\n").to_string(), "x\r\n.\r\n");
        assert_eq!(Content::of(b"").to_string(), ".\r\n");
        assert_eq!(Content::of(b".\r\n").to_string(), "..\r\n.\r\n");
        let smuggle = Content::of(b"Hi x\r.\r\nMAIL FROM:<ceo@bank.example>\r\n\n.\r").to_string();
        assert_eq!(smuggle, "Hi x\r\n..\r\nMAIL FROM:<ceo@bank.example>\r\n\r\n..\r\n.\r\n");
        assert_eq!(Content::of("caf\u{e9}".as_bytes()).to_string(), "caf\u{e9}\r\n.\r\n");
        assert_eq!(Content::of(b"a\xffb").to_string(), "a\u{fffd}b\r\n.\r\n", "never a raw invalid byte");
    }

    #[test]
    fn the_envelope_is_one_group_with_the_parameters_it_needs() {
        let plain = Envelope { from: "a@x.example", parameters: "", to: "b@y.example" };
        assert_eq!(plain.to_string(), "MAIL FROM:<a@x.example>\r\nRCPT TO:<b@y.example>\r\nDATA\r\n");
        let utf8 = Envelope { from: "a@x.example", parameters: " SMTPUTF8 BODY=8BITMIME", to: "b\u{e9}@y.example" };
        assert_eq!(utf8.mail(), "MAIL FROM:<a@x.example> SMTPUTF8 BODY=8BITMIME\r\n");
    }
}
