//! Turns a send result into an outcome, reading replies with the configured rules
//! ([`sluice_shared::classify`]): 2xx sent; otherwise the matching rule's action decides
//! (retry/slow/suspend: deferred; bounce: bounced; fail: failed). A connection problem is a
//! deferral of the destination; an unsendable message fails.

use serde_json::{Value, json};
use sluice_shared::{
    classify::{Action, Category, Classifier, DestinationAction},
    model::OutcomeKind,
};

use crate::transport::{SendError, SmtpReply};

/// The outcome of one attempt, with what the record keeps.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    pub kind: OutcomeKind,
    pub detail: Value,
    /// What the reply says (None for delivered messages).
    pub category: Option<Category>,
    /// Add the recipient to the suppression list.
    pub suppress: bool,
    /// Slow or suspend the whole destination.
    pub destination: Option<DestinationAction>,
    /// Not attempted: the job waits until then without using an attempt.
    pub hold_until: Option<i64>,
}

impl Verdict {
    fn plain(kind: OutcomeKind, category: Option<Category>, detail: Value) -> Verdict {
        Verdict { kind, detail, category, suppress: false, destination: None, hold_until: None }
    }
}

pub fn classify(rules: &Classifier, result: &Result<SmtpReply, SendError>) -> Verdict {
    match result {
        Ok(reply) => Verdict::plain(OutcomeKind::Sent, None, reply_detail(reply, None)),
        Err(SendError::Rejected(reply)) => {
            let rule = rules.classify(reply.code, reply.enhanced.as_deref(), &reply.text);
            let kind = match rule.action {
                Action::Retry | Action::Slow | Action::Suspend => OutcomeKind::Deferred,
                Action::Bounce | Action::BounceAndSuppress => OutcomeKind::Bounced,
                Action::Fail => OutcomeKind::Failed,
            };
            metrics::counter!(sluice_shared::metrics::REPLIES, "category" => rule.category.as_str(), "action" => action_label(rule.action)).increment(1);
            Verdict {
                kind,
                detail: reply_detail(reply, Some((rule.category, &rule.name))),
                category: Some(rule.category),
                suppress: rule.action == Action::BounceAndSuppress,
                destination: rule.destination,
                hold_until: None,
            }
        }
        Err(SendError::Connection(e)) => Verdict::plain(
            OutcomeKind::Deferred,
            Some(Category::Transient),
            json!({"error": e, "category": "transient"}),
        ),
        Err(SendError::Unsendable(e)) => {
            Verdict::plain(OutcomeKind::Failed, Some(Category::Other), json!({"error": e, "category": "other"}))
        }
        Err(SendError::Hold { until_ms, reason }) => Verdict {
            hold_until: Some(*until_ms),
            ..Verdict::plain(OutcomeKind::Deferred, None, json!({"reason": "warmup_cap", "detail": reason}))
        },
    }
}

fn action_label(action: Action) -> &'static str {
    match action {
        Action::Retry => "retry",
        Action::Bounce => "bounce",
        Action::BounceAndSuppress => "bounce-and-suppress",
        Action::Fail => "fail",
        Action::Slow => "slow",
        Action::Suspend => "suspend",
    }
}

fn reply_detail(r: &SmtpReply, rule: Option<(Category, &str)>) -> Value {
    let mut detail = json!({"code": r.code, "enhanced": r.enhanced, "text": r.text});
    if let Some((category, name)) = rule {
        detail["category"] = category.as_str().into();
        detail["rule"] = name.into();
    }
    detail
}

/// A message that could not be rendered or built fails with the reason recorded.
pub fn render_failure(reason: &str) -> Verdict {
    Verdict::plain(OutcomeKind::Failed, Some(Category::Other), json!({"error": "render", "reason": reason}))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rejected(code: u16, text: &str) -> Verdict {
        classify(&Classifier::builtin(), &Err(SendError::Rejected(SmtpReply::parse(code, text))))
    }

    #[test]
    fn replies_map_to_outcomes() {
        let ok = classify(&Classifier::builtin(), &Ok(SmtpReply::parse(250, "2.0.0 Ok: queued")));
        assert_eq!(ok.kind, OutcomeKind::Sent);
        let hard = rejected(550, "5.1.1 The email account that you tried to reach does not exist");
        assert_eq!((hard.kind, hard.suppress), (OutcomeKind::Bounced, true));
        assert_eq!(hard.detail["enhanced"], "5.1.1");
        assert_eq!(hard.detail["category"], "invalid_recipient");
        let block = rejected(550, "5.7.28 unusual rate of unsolicited email, blocked");
        assert_eq!((block.kind, block.suppress), (OutcomeKind::Failed, false));
        let soft = rejected(451, "4.3.0 try later");
        assert_eq!((soft.kind, soft.category), (OutcomeKind::Deferred, Some(Category::Transient)));
        let throttled = rejected(421, "4.7.28 temporarily rate limited");
        assert_eq!(throttled.kind, OutcomeKind::Deferred);
        assert!(matches!(throttled.destination, Some(DestinationAction::Slow { .. })));
        let full = rejected(452, "4.2.2 The recipient's inbox is out of storage space");
        assert_eq!((full.kind, full.category), (OutcomeKind::Deferred, Some(Category::MailboxFull)));
        let down = classify(&Classifier::builtin(), &Err(SendError::Connection("refused".into())));
        assert_eq!(down.kind, OutcomeKind::Deferred);
        let bad = classify(&Classifier::builtin(), &Err(SendError::Unsendable("no SMTPUTF8".into())));
        assert_eq!(bad.kind, OutcomeKind::Failed);
    }
}
