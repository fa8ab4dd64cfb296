//! Turns a send result into an outcome, reading replies with the configured rules
//! ([`sluice_shared::classify`]): 2xx sent; otherwise the matching rule's action decides
//! (retry/slow/suspend: deferred; bounce: bounced; fail: failed). A connection problem is a
//! deferral of the destination; an unsendable message fails.

use serde_json::{Value, json};
use sluice_shared::{
    classify::{Action, Category, Classifier, DestinationAction},
    model::OutcomeKind,
    units::Span,
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

/// At a destination whose resets are throttling (`reset_is_throttling`, au): a session it broke
/// off with a reset slows the destination like a throttling reply, not a passing network fault.
pub fn reset_as_throttling(verdict: Verdict, result: &Result<SmtpReply, SendError>) -> Verdict {
    match result {
        Err(SendError::Connection(e)) if is_reset(e) => {
            let slow = Span::try_from(RESET_SLOW_FOR).expect("a valid span");
            Verdict {
                category: Some(Category::Throttled),
                destination: Some(DestinationAction::Slow { factor: RESET_SLOW_FACTOR, duration: slow }),
                detail: json!({"error": e, "category": "throttled", "rule": "reset-is-throttling"}),
                ..verdict
            }
        }
        _ => verdict,
    }
}

const RESET_SLOW_FACTOR: f64 = 0.1;
const RESET_SLOW_FOR: &str = "10m";

/// A connection the peer reset (or whose writes it refused), as the OS words it.
fn is_reset(error: &str) -> bool {
    let e = error.to_ascii_lowercase();
    e.contains("reset") || e.contains("broken pipe")
}

/// A message larger than its destination takes (`max_message_bytes`) fails unsent.
pub fn oversize(bytes: usize, max: usize) -> Verdict {
    let error =
        format!("the message is {bytes} bytes; this destination takes at most {max} (limits max_message_bytes)");
    Verdict::plain(OutcomeKind::Failed, Some(Category::Policy), json!({"error": error, "category": "policy"}))
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
        let reset = Err(SendError::Connection("network error: Connection reset by peer (os error 104)".into()));
        let throttled = reset_as_throttling(classify(&Classifier::builtin(), &reset), &reset);
        assert_eq!((throttled.kind, throttled.category), (OutcomeKind::Deferred, Some(Category::Throttled)));
        assert!(matches!(throttled.destination, Some(DestinationAction::Slow { .. })));
        assert_eq!(reset_as_throttling(down.clone(), &Err(SendError::Connection("refused".into()))), down);
        let big = oversize(3_000_001, 3_000_000);
        assert_eq!((big.kind, big.suppress), (OutcomeKind::Failed, false));
        let bad = classify(&Classifier::builtin(), &Err(SendError::Unsendable("no SMTPUTF8".into())));
        assert_eq!(bad.kind, OutcomeKind::Failed);
    }
}
