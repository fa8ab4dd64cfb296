//! Turns a send result into an outcome: 2xx sent; 4xx or a connection problem deferred;
//! 5xx bounced (5.1.x also suppresses the address); an unsendable message failed.

use serde_json::{Value, json};
use sluice_shared::model::OutcomeKind;

use crate::transport::{SendError, SmtpReply};

/// The outcome of one attempt, with what the record keeps.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    pub kind: OutcomeKind,
    pub detail: Value,
    /// Add the recipient to the suppression list (invalid recipient).
    pub suppress: bool,
}

fn reply_detail(r: &SmtpReply) -> Value {
    json!({"code": r.code, "enhanced": r.enhanced, "text": r.text})
}

pub fn classify(result: &Result<SmtpReply, SendError>) -> Verdict {
    match result {
        Ok(reply) => Verdict { kind: OutcomeKind::Sent, detail: reply_detail(reply), suppress: false },
        Err(SendError::Rejected(reply)) if reply.code >= 500 => {
            let invalid_recipient = reply.enhanced.as_deref().is_some_and(|e| e.starts_with("5.1."));
            Verdict { kind: OutcomeKind::Bounced, detail: reply_detail(reply), suppress: invalid_recipient }
        }
        Err(SendError::Rejected(reply)) => {
            Verdict { kind: OutcomeKind::Deferred, detail: reply_detail(reply), suppress: false }
        }
        Err(SendError::Connection(e)) => {
            Verdict { kind: OutcomeKind::Deferred, detail: json!({"error": e}), suppress: false }
        }
        Err(SendError::Unsendable(e)) => {
            Verdict { kind: OutcomeKind::Failed, detail: json!({"error": e}), suppress: false }
        }
    }
}

/// A message that could not be rendered or built fails with the reason recorded.
pub fn render_failure(reason: &str) -> Verdict {
    Verdict { kind: OutcomeKind::Failed, detail: json!({"error": "render", "reason": reason}), suppress: false }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rejected(code: u16, text: &str) -> Result<SmtpReply, SendError> {
        Err(SendError::Rejected(SmtpReply::parse(code, text)))
    }

    #[test]
    fn replies_map_to_outcomes() {
        let ok = classify(&Ok(SmtpReply::parse(250, "2.0.0 Ok: queued")));
        assert_eq!(ok.kind, OutcomeKind::Sent);
        let hard = classify(&rejected(550, "5.1.1 The email account that you tried to reach does not exist"));
        assert_eq!((hard.kind, hard.suppress), (OutcomeKind::Bounced, true));
        assert_eq!(hard.detail["enhanced"], "5.1.1");
        let block = classify(&rejected(550, "5.7.28 unusual rate of unsolicited email, blocked"));
        assert_eq!((block.kind, block.suppress), (OutcomeKind::Bounced, false));
        let soft = classify(&rejected(451, "4.3.0 try later"));
        assert_eq!(soft.kind, OutcomeKind::Deferred);
        let down = classify(&Err(SendError::Connection("refused".into())));
        assert_eq!(down.kind, OutcomeKind::Deferred);
        let bad = classify(&Err(SendError::Unsendable("no SMTPUTF8".into())));
        assert_eq!(bad.kind, OutcomeKind::Failed);
    }
}
