//! SMTP PIPELINING (RFC 2920) on a lettre connection: MAIL, RCPT and DATA go out in one write
//! and their three replies are read after it; the dot-stuffed body and its final `.` go out in
//! a second write. Two writes per message instead of lettre's five (MAIL, RCPT, DATA, body,
//! terminator), and a round trip instead of three before the body. lettre does not know the
//! extension, so whether the server offers it is read from a second EHLO per connection.

use std::fmt;

use lettre::{
    address::Envelope as LettreEnvelope,
    transport::smtp::{Error, client::AsyncSmtpConnection, extension::ClientId, response::Response},
};

/// An open SMTP connection and whether its server pipelines.
pub struct Session {
    pub conn: AsyncSmtpConnection,
    pipelining: bool,
}

impl Session {
    /// Takes a connection that has said EHLO (and STARTTLS, AUTH as configured).
    pub async fn start(mut conn: AsyncSmtpConnection, hello: &ClientId) -> Result<Session, Error> {
        let pipelining = offered(&mut conn, hello).await?;
        Ok(Session { conn, pipelining })
    }

    /// Sends one message, pipelined when the server and the message allow it.
    pub async fn send(&mut self, envelope: &LettreEnvelope, message: &[u8]) -> Result<Response, Error> {
        let from = envelope.from().map_or("", |a| a.as_ref());
        match envelope.to() {
            [to] if self.pipelining && fits(from, to.as_ref(), message) => {
                send(&mut self.conn, from, to.as_ref(), message).await
            }
            _ => self.conn.send(envelope, message).await,
        }
    }
}

/// Whether the server lists PIPELINING in its EHLO reply (asked once per connection).
async fn offered(conn: &mut AsyncSmtpConnection, hello: &ClientId) -> Result<bool, Error> {
    let reply = conn.command(format!("EHLO {hello}\r\n")).await?;
    Ok(reply.message().any(|line| line.trim().eq_ignore_ascii_case("PIPELINING")))
}

/// Whether a message can take the pipelined path: plain ASCII envelope and content, so no
/// SMTPUTF8 or 8BITMIME parameter is needed (lettre's own `send` handles those).
fn fits(from: &str, to: &str, message: &[u8]) -> bool {
    from.is_ascii() && to.is_ascii() && message.is_ascii()
}

/// Sends one message over a connection whose server offers PIPELINING. On any negative
/// reply the connection is out of step (replies may still be pending), so the caller must
/// drop it, as it does after any error.
async fn send(conn: &mut AsyncSmtpConnection, from: &str, to: &str, message: &[u8]) -> Result<Response, Error> {
    conn.command(Envelope { from, to }).await?;
    conn.read_response().await?;
    conn.read_response().await?;
    conn.command(Content(message)).await
}

/// `MAIL FROM:<from>`, `RCPT TO:<to>`, `DATA`: one group.
struct Envelope<'a> {
    from: &'a str,
    to: &'a str,
}

impl fmt::Display for Envelope<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MAIL FROM:<{}>\r\nRCPT TO:<{}>\r\nDATA\r\n", self.from, self.to)
    }
}

/// The message, dot-stuffed, with CRLF line ends, then `.`: the whole DATA content. CRLF, a
/// bare CR and a bare LF all end a line here, so neither a bare CR nor a bare LF (nor the
/// `<CR>.<CR><LF>` of SMTP smuggling) can reach the wire, whatever the message holds.
struct Content<'a>(&'a [u8]);

impl fmt::Display for Content<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = std::str::from_utf8(self.0).map_err(|_| fmt::Error)?;
        let mut rest = text;
        while !rest.is_empty() {
            if rest.starts_with('.') {
                f.write_str(".")?;
            }
            match rest.find(['\r', '\n']) {
                Some(i) => {
                    f.write_str(&rest[..i])?;
                    f.write_str("\r\n")?;
                    let skip = if rest[i..].starts_with("\r\n") { 2 } else { 1 };
                    rest = &rest[i + skip..];
                }
                None => {
                    f.write_str(rest)?;
                    f.write_str("\r\n")?;
                    rest = "";
                }
            }
        }
        f.write_str(".\r\n")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_is_dot_stuffed_with_crlf_and_terminated() {
        assert_eq!(Content(b"a\r\n.b\r\n..c\nd").to_string(), "a\r\n..b\r\n...c\r\nd\r\n.\r\n");
        assert_eq!(Content(b"x\r\n").to_string(), "x\r\n.\r\n");
        assert_eq!(Content(b"").to_string(), ".\r\n");
        assert_eq!(Content(b".\r\n").to_string(), "..\r\n.\r\n");
        let smuggle = Content(b"Hi x\r.\r\nMAIL FROM:<ceo@bank.example>\r\n\n.\r").to_string();
        assert_eq!(smuggle, "Hi x\r\n..\r\nMAIL FROM:<ceo@bank.example>\r\n\r\n..\r\n.\r\n");
    }

    #[test]
    fn the_envelope_is_one_group() {
        let group = Envelope { from: "a@x.example", to: "b@y.example" }.to_string();
        assert_eq!(group, "MAIL FROM:<a@x.example>\r\nRCPT TO:<b@y.example>\r\nDATA\r\n");
        assert!(fits("a@x", "b@y", b"plain"));
        assert!(!fits("a@x", "b\u{e9}@y", b"plain") && !fits("a@x", "b@y", "caf\u{e9}".as_bytes()));
    }
}
