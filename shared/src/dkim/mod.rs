//! DKIM signing (RFC 6376, relaxed/relaxed, no `l=`; RSA-SHA256 and Ed25519-SHA256, RFC 8463).
//!
//! Keys are read and parsed once at startup ([`Signer::from_config`]); per message we hash and
//! sign only. RSA signs with OpenSSL (its assembly is ~2.5x faster than ring's RSA here, and
//! RSA signing is most of a signed message's CPU); Ed25519 with ring. Several keys for one From domain and algorithm rotate by their `from` time: the
//! latest whose time has come signs.

mod canon;

use std::collections::BTreeMap;

use base64::{Engine, engine::general_purpose::STANDARD as B64};
use chrono::{DateTime, Utc};
use openssl::{hash::MessageDigest, pkey::PKey, rsa::Rsa};
use ring::signature::{Ed25519KeyPair, KeyPair};
use sha2::{Digest, Sha256};

use crate::config::{DkimAlgorithm, DkimConfig, DkimKeyConfig};

/// Headers signed when present (DOMAIN.md section 1; RFC 8058 requires the unsubscribe pair).
const SIGNED: &[&str] = &[
    "from",
    "to",
    "subject",
    "date",
    "message-id",
    "mime-version",
    "content-type",
    "reply-to",
    "list-unsubscribe",
    "list-unsubscribe-post",
    "feedback-id",
];
/// Signed once more than present, so a second From or Subject cannot be added unnoticed.
const OVERSIGNED: &[&str] = &["from", "subject"];

enum Private {
    Rsa(PKey<openssl::pkey::Private>),
    Ed25519(Ed25519KeyPair),
}

/// One parsed key.
pub struct Key {
    pub domain: String,
    pub selector: String,
    pub algorithm: DkimAlgorithm,
    /// From this time on the key signs (rotation); None: always.
    pub from: Option<DateTime<Utc>>,
    private: Private,
}

impl Key {
    /// The public key as it belongs in the selector's TXT record `p=` (base64 of the
    /// SubjectPublicKeyInfo for RSA, of the raw 32 bytes for Ed25519).
    pub fn public_key_b64(&self) -> String {
        match &self.private {
            Private::Rsa(k) => B64.encode(k.public_key_to_der().expect("an RSA key has a public key")),
            Private::Ed25519(k) => B64.encode(k.public_key().as_ref()),
        }
    }

    /// The TXT record to publish at `<selector>._domainkey.<domain>`.
    pub fn dns_record(&self) -> String {
        let k = match self.algorithm {
            DkimAlgorithm::RsaSha256 => "rsa",
            DkimAlgorithm::Ed25519Sha256 => "ed25519",
        };
        format!("v=DKIM1; k={k}; p={}", self.public_key_b64())
    }

    fn sign(&self, data: &[u8]) -> Result<Vec<u8>, DkimError> {
        match &self.private {
            // PKCS#1 v1.5 padding, OpenSSL's default for RSA.
            Private::Rsa(k) => openssl::sign::Signer::new(MessageDigest::sha256(), k)
                .and_then(|mut s| s.sign_oneshot_to_vec(data))
                .map_err(|_| DkimError::Sign(self.domain.clone())),
            // RFC 8463: Ed25519 over the SHA-256 of the data.
            Private::Ed25519(k) => Ok(k.sign(&Sha256::digest(data)).as_ref().to_vec()),
        }
    }
}

/// A DKIM problem.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DkimError {
    #[error("dkim.keys[{index}].key_file {path:?}: {problem}")]
    Key { index: usize, path: String, problem: String },
    #[error("no DKIM key for From domain {0:?}")]
    NoKey(String),
    #[error("signing for {0:?} failed")]
    Sign(String),
}

/// Every configured key, by From domain.
#[derive(Default)]
pub struct Signer {
    keys: BTreeMap<String, Vec<Key>>,
}

impl Signer {
    /// Reads and parses every key file.
    pub fn from_config(config: &DkimConfig) -> Result<Signer, DkimError> {
        let mut keys: BTreeMap<String, Vec<Key>> = BTreeMap::new();
        for (index, k) in config.keys.iter().enumerate() {
            let key = load(index, k)?;
            keys.entry(key.domain.clone()).or_default().push(key);
        }
        Ok(Signer { keys })
    }

    /// Whether any key exists for `domain`.
    pub fn has_key(&self, domain: &str) -> bool {
        self.keys.contains_key(&domain.to_ascii_lowercase())
    }

    /// The keys for `domain` in force at `now`: per algorithm, the one with the latest `from`
    /// not after `now`. RSA first, so its signature is on top.
    pub fn active(&self, domain: &str, now: DateTime<Utc>) -> Vec<&Key> {
        let Some(all) = self.keys.get(&domain.to_ascii_lowercase()) else { return Vec::new() };
        let mut out = Vec::new();
        for algorithm in [DkimAlgorithm::RsaSha256, DkimAlgorithm::Ed25519Sha256] {
            let current = all
                .iter()
                .filter(|k| k.algorithm == algorithm && k.from.is_none_or(|f| f <= now))
                .max_by_key(|k| k.from.unwrap_or(DateTime::<Utc>::MIN_UTC));
            out.extend(current);
        }
        out
    }

    /// All keys of a domain (doctor, rotation overviews).
    pub fn keys_for(&self, domain: &str) -> &[Key] {
        self.keys.get(&domain.to_ascii_lowercase()).map(Vec::as_slice).unwrap_or(&[])
    }

    /// The `DKIM-Signature` header fields (each ending in CRLF) to put on top of `message`,
    /// one per active key of `domain`; empty when the domain has no key.
    pub fn sign(&self, domain: &str, message: &[u8], now: DateTime<Utc>) -> Result<Vec<u8>, DkimError> {
        let keys = self.active(domain, now);
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let (fields, body) = canon::split(message);
        let mut hasher = Sha256::new();
        canon::relaxed_body(body, |piece| hasher.update(piece));
        let body_hash = B64.encode(hasher.finalize());
        let names = canon::signed_names(&fields, SIGNED, OVERSIGNED);
        let headers = canon::header_data(&fields, &names);
        let mut out = Vec::new();
        for key in keys {
            let a = match key.algorithm {
                DkimAlgorithm::RsaSha256 => "rsa-sha256",
                DkimAlgorithm::Ed25519Sha256 => "ed25519-sha256",
            };
            let value = format!(
                " v=1; a={a}; c=relaxed/relaxed; d={}; s={};\r\n\tt={}; h={};\r\n\tbh={body_hash};\r\n\tb=",
                key.domain,
                key.selector,
                now.timestamp(),
                names.join(":"),
            );
            let mut data = headers.clone();
            canon::relaxed_header("DKIM-Signature", &value, &mut data);
            let signature = B64.encode(key.sign(&data)?);
            out.extend_from_slice(b"DKIM-Signature:");
            out.extend_from_slice(value.as_bytes());
            for (i, chunk) in signature.as_bytes().chunks(72).enumerate() {
                if i > 0 {
                    out.extend_from_slice(b"\r\n\t");
                }
                out.extend_from_slice(chunk);
            }
            out.extend_from_slice(b"\r\n");
        }
        Ok(out)
    }
}

/// A private key others on the host can read is a leaked key: refused, as OpenDKIM does.
fn private_to_owner(path: &str) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path).map_err(|e| e.to_string())?.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(format!(
            "is open to group or others (mode {mode:o}); make it readable by its owner only (chmod 600)"
        ));
    }
    Ok(())
}

fn load(index: usize, k: &DkimKeyConfig) -> Result<Key, DkimError> {
    let fail = |problem: String| DkimError::Key { index, path: k.key_file.clone(), problem };
    private_to_owner(&k.key_file).map_err(fail)?;
    let pem = std::fs::read_to_string(&k.key_file).map_err(|e| fail(e.to_string()))?;
    let (label, der) = pem_decode(&pem).ok_or_else(|| fail("not a PEM private key".into()))?;
    let private = match (k.algorithm, label.as_str()) {
        (DkimAlgorithm::RsaSha256, "PRIVATE KEY") => {
            let key = PKey::private_key_from_pkcs8(&der).map_err(|e| fail(format!("not an RSA key: {e}")))?;
            if key.rsa().is_err() {
                return Err(fail("not an RSA key".into()));
            }
            Private::Rsa(key)
        }
        (DkimAlgorithm::RsaSha256, "RSA PRIVATE KEY") => Private::Rsa(
            Rsa::private_key_from_der(&der)
                .and_then(PKey::from_rsa)
                .map_err(|e| fail(format!("not an RSA key: {e}")))?,
        ),
        (DkimAlgorithm::Ed25519Sha256, "PRIVATE KEY") => Private::Ed25519(
            Ed25519KeyPair::from_pkcs8_maybe_unchecked(&der).map_err(|e| fail(format!("not an Ed25519 key: {e}")))?,
        ),
        (_, other) => return Err(fail(format!("PEM label {other:?} does not fit algorithm {:?}", k.algorithm))),
    };
    if let Private::Rsa(r) = &private
        && r.bits() < 1024
    {
        return Err(fail("RSA keys need at least 1024 bits (2048 recommended)".into()));
    }
    Ok(Key {
        domain: k.domain.to_ascii_lowercase(),
        selector: k.selector.clone(),
        algorithm: k.algorithm,
        from: k.from,
        private,
    })
}

/// The first PEM block: its label and decoded bytes.
fn pem_decode(pem: &str) -> Option<(String, Vec<u8>)> {
    let begin = pem.find("-----BEGIN ")?;
    let rest = &pem[begin + 11..];
    let label_end = rest.find("-----")?;
    let label = rest[..label_end].to_string();
    let body_start = label_end + 5;
    let end = rest.find(&format!("-----END {label}-----"))?;
    let b64: String = rest[body_start..end].chars().filter(|c| !c.is_whitespace()).collect();
    Some((label, B64.decode(b64).ok()?))
}

#[cfg(test)]
mod tests;
