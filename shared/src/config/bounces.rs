//! The `[bounces]` section: reply classification rules, VERP and soft-bounce suppression.

use serde::Deserialize;

use super::{ConfigError, invalid};

use crate::units::Span;

/// How replies are read ([`crate::classify`]) and what repeated soft bounces lead to.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BouncesConfig {
    /// Rules checked before the built-in ones, in order.
    #[serde(default)]
    pub rules: Vec<crate::classify::RuleSpec>,
    /// A TOML file of more rules (`[[rule]]` tables), checked after `rules`, before the built-ins.
    pub rules_file: Option<String>,
    /// Reply categories that count as soft bounces of the address.
    #[serde(default = "defaults::soft_categories")]
    pub soft_categories: Vec<crate::classify::Category>,
    /// Soft bounces within `soft_window` after which the address is suppressed (0: never).
    #[serde(default = "defaults::soft_limit")]
    pub soft_limit: u32,
    #[serde(default = "defaults::soft_window")]
    pub soft_window: Span,
    /// Envelope senders become VERP addresses at this domain (point its MX at the inbound
    /// listener); needs `[public]` for the signing secret. Absent: the From address.
    pub return_path_domain: Option<String>,
}

impl Default for BouncesConfig {
    fn default() -> Self {
        BouncesConfig {
            rules: Vec::new(),
            rules_file: None,
            soft_categories: defaults::soft_categories(),
            soft_limit: defaults::soft_limit(),
            soft_window: defaults::soft_window(),
            return_path_domain: None,
        }
    }
}

impl BouncesConfig {
    /// The operator's rules ahead of the built-in ones.
    pub fn classifier(&self) -> Result<crate::classify::Classifier, crate::classify::RuleError> {
        crate::classify::Classifier::new(&self.rules, self.rules_file.as_deref())
    }
}

impl BouncesConfig {
    /// Rules that compile, a lower-case VERP domain signed by `[public]`'s secret.
    pub(super) fn validate(&self, has_public: bool) -> Result<(), ConfigError> {
        if let Err(e) = self.classifier() {
            return Err(invalid(e.location, "", e.problem));
        }
        if let Some(d) = &self.return_path_domain {
            if crate::validate::domain(d).is_err() || d != &d.to_ascii_lowercase() {
                return Err(invalid("bounces.return_path_domain", d, "must be a lower-case domain"));
            }
            if !has_public {
                return Err(invalid(
                    "bounces.return_path_domain",
                    d,
                    "needs a [public] section (its secret signs VERP addresses)",
                ));
            }
        }
        if self.soft_window.as_millis() == 0 {
            return Err(invalid("bounces.soft_window", "0", "must be positive"));
        }
        Ok(())
    }
}

mod defaults {
    use super::*;
    pub fn soft_categories() -> Vec<crate::classify::Category> {
        vec![crate::classify::Category::MailboxFull]
    }
    pub fn soft_limit() -> u32 {
        5
    }
    pub fn soft_window() -> Span {
        Span::try_from("7d").unwrap()
    }
}
