//! The seam between delivery logic and the wire: a small [`Transport`] trait, implemented by
//! the real SMTP relay pool ([`smtp::SmtpRelays`]), direct MX delivery ([`mx::MxDelivery`]),
//! and by scripted doubles in tests. [`Delivery`] picks one per `smtp.mode`.

mod mta_sts;
pub mod mx;
mod pool;
mod session;
pub mod smtp;
mod tls;

use std::future::Future;

/// Envelope of one message: one sender, one recipient (every message is personalised).
#[derive(Debug, Clone)]
pub struct Envelope {
    pub from: String,
    pub to: String,
    /// Transactional mail uses connections of its own, so it never queues behind bulk.
    pub lane: sluice_shared::lane::Lane,
}

impl Envelope {
    /// Both addresses, checked (no line break or other syntax can reach a command line).
    fn addresses(&self) -> Result<(lettre::Address, lettre::Address), SendError> {
        let from = self.from.parse().map_err(|e| SendError::Unsendable(format!("sender address: {e}")))?;
        let to = self.to.parse().map_err(|e| SendError::Unsendable(format!("recipient address: {e}")))?;
        Ok((from, to))
    }
}

/// An SMTP reply, kept whole for the record: code, enhanced status code, text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmtpReply {
    pub code: u16,
    pub enhanced: Option<String>,
    pub text: String,
}

impl SmtpReply {
    /// Splits `"5.1.1 The account ..."` into its enhanced code and the rest.
    pub fn parse(code: u16, message: &str) -> SmtpReply {
        let message = message.trim();
        let (first, rest) = message.split_once(' ').unwrap_or((message, ""));
        let is_enhanced = {
            let parts: Vec<&str> = first.split('.').collect();
            parts.len() == 3
                && matches!(parts[0], "2" | "4" | "5")
                && parts.iter().all(|p| !p.is_empty() && p.len() <= 3 && p.chars().all(|c| c.is_ascii_digit()))
        };
        if is_enhanced {
            SmtpReply { code, enhanced: Some(first.to_string()), text: rest.to_string() }
        } else {
            SmtpReply { code, enhanced: None, text: message.to_string() }
        }
    }
}

/// Why a message was not accepted.
#[derive(Debug, Clone, thiserror::Error)]
pub enum SendError {
    /// The relay answered 4xx or 5xx.
    #[error("relay replied {} {}", .0.code, .0.text)]
    Rejected(SmtpReply),
    /// No usable connection or the exchange broke off (refused, reset, timeout, TLS): retry later.
    #[error("connection problem: {0}")]
    Connection(String),
    /// The message cannot be sent as it is (e.g. a non-ASCII address to a relay without SMTPUTF8).
    #[error("cannot send: {0}")]
    Unsendable(String),
    /// Not sent, and not an attempt: wait until `until_ms` (every source address is at its
    /// warm-up cap for today).
    #[error("held until {until_ms}: {reason}")]
    Hold { until_ms: i64, reason: String },
}

/// Sends messages. Implementations own connection reuse, limits and timeouts.
pub trait Transport: Send + Sync + 'static {
    fn send(&self, envelope: &Envelope, message: &[u8]) -> impl Future<Output = Result<SmtpReply, SendError>> + Send;

    /// Whether [`Transport::send_all`] saves round trips (one connection, pipelined), so
    /// that longer runs pay; otherwise a run only takes turns.
    fn pipelines_runs(&self) -> bool {
        false
    }

    /// Sends messages of one lane one after another, one answer each, in order. The relays
    /// send them on one connection, pipelined; others send each in turn.
    fn send_all(
        &self,
        messages: &[(Envelope, Vec<u8>)],
    ) -> impl Future<Output = Vec<Result<SmtpReply, SendError>>> + Send {
        async move {
            let mut answers = Vec::with_capacity(messages.len());
            for (envelope, message) in messages {
                answers.push(self.send(envelope, message).await);
            }
            answers
        }
    }
}

/// The configured way out.
pub enum Delivery {
    Relays(smtp::SmtpRelays),
    Mx(Box<mx::MxDelivery>),
}

impl Delivery {
    /// Says QUIT on every idle connection: the last step of shutdown, after the drain.
    pub async fn close(&self) {
        match self {
            Delivery::Relays(r) => r.close().await,
            Delivery::Mx(m) => m.close().await,
        }
    }
}

impl Transport for Delivery {
    async fn send(&self, envelope: &Envelope, message: &[u8]) -> Result<SmtpReply, SendError> {
        match self {
            Delivery::Relays(r) => r.send(envelope, message).await,
            Delivery::Mx(m) => m.send(envelope, message).await,
        }
    }

    fn pipelines_runs(&self) -> bool {
        matches!(self, Delivery::Relays(_))
    }

    async fn send_all(&self, messages: &[(Envelope, Vec<u8>)]) -> Vec<Result<SmtpReply, SendError>> {
        match self {
            Delivery::Relays(r) => r.send_all(messages).await,
            Delivery::Mx(m) => m.send_all(messages).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::SmtpReply;

    #[test]
    fn enhanced_codes_are_split_from_the_text() {
        let r = SmtpReply::parse(550, "5.1.1 The email account that you tried to reach does not exist");
        assert_eq!(r.enhanced.as_deref(), Some("5.1.1"));
        assert!(r.text.starts_with("The email account"));
        let r = SmtpReply::parse(554, "delivery error: dd This user doesn't have a yahoo.com account");
        assert_eq!(r.enhanced, None);
        assert!(r.text.starts_with("delivery error"));
        assert_eq!(SmtpReply::parse(421, "4.7.28 rate limited").enhanced.as_deref(), Some("4.7.28"));
    }
}

#[cfg(test)]
mod pipelined_tests;
