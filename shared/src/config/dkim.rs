//! The `[dkim]` section: signing keys per From domain, and what to do without one.

use serde::Deserialize;

use super::{ConfigError, invalid};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DkimAlgorithm {
    RsaSha256,
    Ed25519Sha256,
}

/// What happens to a message whose From domain has no DKIM key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MissingKey {
    /// Campaigns are refused at creation; a message that still meets no key fails.
    Refuse,
    /// Sent unsigned.
    Send,
}

/// One signing key.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DkimKeyConfig {
    /// The From domain the key signs for (`d=`).
    pub domain: String,
    /// `s=`: the key is published at `<selector>._domainkey.<domain>`.
    pub selector: String,
    #[serde(default = "defaults::dkim_algorithm")]
    pub algorithm: DkimAlgorithm,
    /// PEM private key: PKCS#8 (`PRIVATE KEY`) or, for RSA, PKCS#1 (`RSA PRIVATE KEY`).
    pub key_file: String,
    /// Rotation: the key signs from this time on (RFC 3339), replacing an older key of the
    /// same domain and algorithm. Absent: from the start.
    pub from: Option<chrono::DateTime<chrono::Utc>>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DkimConfig {
    #[serde(default)]
    pub keys: Vec<DkimKeyConfig>,
    #[serde(default = "defaults::missing_key")]
    pub missing_key: MissingKey,
}

impl Default for DkimConfig {
    fn default() -> Self {
        DkimConfig { keys: Vec::new(), missing_key: defaults::missing_key() }
    }
}

impl DkimConfig {
    /// Whether a message from `domain` may be sent: it has a key, or unsigned mail is allowed.
    pub fn allows(&self, domain: &str) -> bool {
        self.missing_key == MissingKey::Send || self.keys.iter().any(|k| k.domain.eq_ignore_ascii_case(domain))
    }
}

impl DkimConfig {
    /// Lower-case domains and DNS-label selectors (the key files are read by the worker).
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        for (i, k) in self.keys.iter().enumerate() {
            if crate::validate::domain(&k.domain).is_err() || k.domain != k.domain.to_ascii_lowercase() {
                return Err(invalid(format!("dkim.keys[{i}].domain"), &k.domain, "must be a lower-case domain"));
            }
            let selector_ok = !k.selector.is_empty()
                && k.selector
                    .split('.')
                    .all(|l| !l.is_empty() && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'));
            if !selector_ok {
                return Err(invalid(
                    format!("dkim.keys[{i}].selector"),
                    &k.selector,
                    "must be DNS labels (letters, digits, -)",
                ));
            }
        }
        Ok(())
    }
}

mod defaults {
    use super::*;
    pub fn dkim_algorithm() -> DkimAlgorithm {
        DkimAlgorithm::RsaSha256
    }
    pub fn missing_key() -> MissingKey {
        MissingKey::Refuse
    }
}
