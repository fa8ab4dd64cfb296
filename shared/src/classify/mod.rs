//! Reading SMTP replies as data: an ordered list of regex rules (operator rules first, then the
//! built-in `rules.toml`) maps a reply's code, enhanced code and text to a category and an
//! action. The first rule whose every given field matches wins.

use std::fmt;

use regex::Regex;
use serde::{Deserialize, Serialize};

use crate::units::Span;

/// What a reply says about the recipient or the destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Category {
    InvalidRecipient,
    InactiveMailbox,
    MailboxFull,
    Throttled,
    ReputationBlock,
    AuthFailure,
    SpamContent,
    Policy,
    TlsRequired,
    Transient,
    Other,
}

impl Category {
    pub fn as_str(self) -> &'static str {
        match self {
            Category::InvalidRecipient => "invalid_recipient",
            Category::InactiveMailbox => "inactive_mailbox",
            Category::MailboxFull => "mailbox_full",
            Category::Throttled => "throttled",
            Category::ReputationBlock => "reputation_block",
            Category::AuthFailure => "auth_failure",
            Category::SpamContent => "spam_content",
            Category::Policy => "policy",
            Category::TlsRequired => "tls_required",
            Category::Transient => "transient",
            Category::Other => "other",
        }
    }
}

impl fmt::Display for Category {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What to do about a reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Action {
    /// Try the message again later.
    Retry,
    /// Give up on the message; keep the address.
    Bounce,
    /// Give up on the message and suppress the address.
    BounceAndSuppress,
    /// Give up on the message: the problem is ours or the destination's (block, auth), not the
    /// address's; nothing is suppressed.
    Fail,
    /// Retry, and cut the destination's rate to `factor` for `for`, then ramp back.
    Slow,
    /// Retry, and send nothing to the destination for `for`.
    Suspend,
}

/// One rule as written in TOML.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleSpec {
    pub name: Option<String>,
    pub code: Option<String>,
    pub enhanced: Option<String>,
    pub text: Option<String>,
    pub category: Category,
    pub action: Action,
    /// slow: the share of the configured rate left (0 < factor < 1).
    pub factor: Option<f64>,
    /// slow, suspend: how long.
    #[serde(rename = "for")]
    pub duration: Option<Span>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleFile {
    #[serde(default)]
    rule: Vec<RuleSpec>,
}

/// A compiled rule.
#[derive(Debug)]
pub struct Rule {
    pub name: String,
    code: Option<Regex>,
    enhanced: Option<Regex>,
    text: Option<Regex>,
    pub category: Category,
    pub action: Action,
    /// What the rule does to the destination, if anything.
    pub destination: Option<DestinationAction>,
}

/// A change to a whole destination's sending, shared by every worker through Redis.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum DestinationAction {
    Slow { factor: f64, duration: Span },
    Suspend { duration: Span },
}

const DEFAULT_SLOW_FACTOR: f64 = 0.1;
const DEFAULT_SLOW: &str = "10m";
const DEFAULT_SUSPEND: &str = "2h";

impl Rule {
    fn compile(spec: &RuleSpec, index: usize) -> Result<Rule, (String, String)> {
        let regex = |field: &str, pattern: &Option<String>| -> Result<Option<Regex>, (String, String)> {
            match pattern {
                None => Ok(None),
                Some(p) => Regex::new(p).map(Some).map_err(|e| (field.to_string(), format!("{p:?}: {e}"))),
            }
        };
        if spec.code.is_none() && spec.enhanced.is_none() && spec.text.is_none() {
            return Err(("code".into(), "a rule needs at least one of code, enhanced, text".into()));
        }
        let destination = match spec.action {
            Action::Slow => {
                let factor = spec.factor.unwrap_or(DEFAULT_SLOW_FACTOR);
                if !(factor > 0.0 && factor < 1.0) {
                    return Err(("factor".into(), format!("{factor} must be between 0 and 1")));
                }
                let duration = spec.duration.unwrap_or_else(|| Span::try_from(DEFAULT_SLOW).unwrap());
                Some(DestinationAction::Slow { factor, duration })
            }
            Action::Suspend => Some(DestinationAction::Suspend {
                duration: spec.duration.unwrap_or_else(|| Span::try_from(DEFAULT_SUSPEND).unwrap()),
            }),
            _ if spec.factor.is_some() || spec.duration.is_some() => {
                return Err(("action".into(), "factor and for apply to slow and suspend only".into()));
            }
            _ => None,
        };
        if destination.is_some_and(|d| d.duration().as_millis() == 0) {
            return Err(("for".into(), "must be positive".into()));
        }
        Ok(Rule {
            name: spec.name.clone().unwrap_or_else(|| format!("rule {index}")),
            code: regex("code", &spec.code)?,
            enhanced: regex("enhanced", &spec.enhanced)?,
            text: regex("text", &spec.text)?,
            category: spec.category,
            action: spec.action,
            destination,
        })
    }

    fn matches(&self, code: &str, enhanced: &str, text: &str) -> bool {
        self.code.as_ref().is_none_or(|r| r.is_match(code))
            && self.enhanced.as_ref().is_none_or(|r| r.is_match(enhanced))
            && self.text.as_ref().is_none_or(|r| r.is_match(text))
    }
}

impl DestinationAction {
    pub fn duration(&self) -> Span {
        match self {
            DestinationAction::Slow { duration, .. } | DestinationAction::Suspend { duration } => *duration,
        }
    }
}

/// A rule problem: where it is (`bounces.rules[2].text`, `rules.toml rule[5].code`) and what.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{location}: {problem}")]
pub struct RuleError {
    pub location: String,
    pub problem: String,
}

const BUILTIN: &str = include_str!("rules.toml");

/// The ordered rules.
#[derive(Debug)]
pub struct Classifier {
    rules: Vec<Rule>,
}

impl Classifier {
    /// Operator rules (inline, then from `rules_file`) ahead of the built-in ones.
    pub fn new(inline: &[RuleSpec], rules_file: Option<&str>) -> Result<Classifier, RuleError> {
        let mut rules = Vec::new();
        push_rules(&mut rules, inline, "bounces.rules")?;
        if let Some(path) = rules_file {
            let text = std::fs::read_to_string(path)
                .map_err(|e| RuleError { location: "bounces.rules_file".into(), problem: format!("{path}: {e}") })?;
            let file = parse_file(&text, path)?;
            push_rules(&mut rules, &file, &format!("{path} rule"))?;
        }
        push_rules(&mut rules, &parse_file(BUILTIN, "built-in rules")?, "built-in rule")?;
        Ok(Classifier { rules })
    }

    /// The built-in rules alone.
    pub fn builtin() -> Classifier {
        Classifier::new(&[], None).expect("built-in rules compile")
    }

    /// The rule for a reply. Every 4xx and 5xx reply matches at least the fallbacks; anything
    /// else (a 2xx given by mistake, an odd code) gets the generic transient rule.
    pub fn classify(&self, code: u16, enhanced: Option<&str>, text: &str) -> &Rule {
        let code_text = code.to_string();
        let enhanced = enhanced.unwrap_or("");
        self.rules
            .iter()
            .find(|r| r.matches(&code_text, enhanced, text))
            .or_else(|| self.rules.iter().find(|r| r.matches("400", "", "")))
            .expect("the built-in rules end with a 4xx fallback")
    }
}

fn parse_file(text: &str, location: &str) -> Result<Vec<RuleSpec>, RuleError> {
    let file: RuleFile =
        toml::from_str(text).map_err(|e| RuleError { location: location.to_string(), problem: e.to_string() })?;
    Ok(file.rule)
}

fn push_rules(out: &mut Vec<Rule>, specs: &[RuleSpec], location: &str) -> Result<(), RuleError> {
    for (i, spec) in specs.iter().enumerate() {
        let rule = Rule::compile(spec, out.len())
            .map_err(|(field, problem)| RuleError { location: format!("{location}[{i}].{field}"), problem })?;
        out.push(rule);
    }
    Ok(())
}

#[cfg(test)]
mod tests;
