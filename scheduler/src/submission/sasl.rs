//! SMTP AUTH (RFC 4954) with PLAIN (RFC 4616) and LOGIN: the user name is an API key's id,
//! the password its token. Failed attempts are counted per client address: past
//! [`FREE_FAILURES`] each further answer is slowed (by `submission.auth_failure_delay` more
//! each time, at most five times it), and at [`LOCKOUT_FAILURES`] within
//! [`WINDOW`] the address is refused AUTH for [`LOCKOUT`] (like Postfix's anvil and
//! `smtpd_error_sleep_time`). Counts are per scheduler process.

use std::{
    collections::HashMap,
    net::IpAddr,
    sync::Mutex,
    time::{Duration, Instant},
};

use base64::{Engine, engine::general_purpose::STANDARD};

/// Failures from one address answered at once.
pub const FREE_FAILURES: u32 = 3;
/// Failures within [`WINDOW`] that lock an address out.
pub const LOCKOUT_FAILURES: u32 = 10;
pub const WINDOW: Duration = Duration::from_secs(15 * 60);
pub const LOCKOUT: Duration = Duration::from_secs(15 * 60);
/// Longest slowdown of one answer, in steps of `submission.auth_failure_delay`.
const MAX_DELAY_STEPS: u32 = 5;
/// Addresses remembered at most; past it those not locked out are forgotten first.
const MAX_CLIENTS: usize = 65_536;

/// Mechanisms offered, as EHLO lists them.
pub const MECHANISMS: &str = "PLAIN LOGIN";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mechanism {
    Plain,
    Login,
}

impl Mechanism {
    pub fn parse(name: &str) -> Option<Mechanism> {
        match name.to_ascii_uppercase().as_str() {
            "PLAIN" => Some(Mechanism::Plain),
            "LOGIN" => Some(Mechanism::Login),
            _ => None,
        }
    }
}

/// A client response that cannot be read.
#[derive(Debug, PartialEq, Eq)]
pub enum Undecodable {
    /// `*`: the client gave up (RFC 4954 section 4).
    Cancelled,
    Malformed,
}

/// One base64 response as text.
pub fn decode(response: &str) -> Result<String, Undecodable> {
    match response.trim() {
        "*" => Err(Undecodable::Cancelled),
        "=" => Ok(String::new()),
        text => {
            let bytes = STANDARD.decode(text).map_err(|_| Undecodable::Malformed)?;
            String::from_utf8(bytes).map_err(|_| Undecodable::Malformed)
        }
    }
}

/// PLAIN's `authzid NUL authcid NUL passwd`: the user name and password. An authorization
/// identity other than the user's own is refused (a key acts for itself only).
pub fn plain(response: &str) -> Result<(String, String), Undecodable> {
    let text = decode(response)?;
    let mut parts = text.split('\0');
    let (Some(authz), Some(user), Some(password), None) = (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(Undecodable::Malformed);
    };
    if !authz.is_empty() && authz != user {
        return Err(Undecodable::Malformed);
    }
    Ok((user.to_string(), password.to_string()))
}

#[derive(Debug, Clone, Copy)]
struct Record {
    failures: u32,
    since: Instant,
    locked_until: Option<Instant>,
}

/// Failed attempts per client address.
pub struct Failures {
    clients: Mutex<HashMap<IpAddr, Record>>,
    /// The slowdown added by each failure past [`FREE_FAILURES`].
    step: Duration,
}

impl Failures {
    pub fn new(step: Duration) -> Failures {
        Failures { clients: Mutex::default(), step }
    }

    /// When `ip` is locked out, until when.
    pub fn locked(&self, ip: IpAddr, now: Instant) -> Option<Instant> {
        let clients = self.clients.lock().unwrap();
        clients.get(&ip).and_then(|r| r.locked_until).filter(|until| *until > now)
    }

    /// Counts one failure from `ip`; returns how long to hold the answer back.
    pub fn fail(&self, ip: IpAddr, now: Instant) -> Duration {
        let mut clients = self.clients.lock().unwrap();
        if clients.len() >= MAX_CLIENTS && !clients.contains_key(&ip) {
            clients.retain(|_, r| now.duration_since(r.since) < WINDOW || r.locked_until.is_some_and(|u| u > now));
            if clients.len() >= MAX_CLIENTS {
                clients.retain(|_, r| r.locked_until.is_some_and(|u| u > now));
            }
        }
        let record = clients.entry(ip).or_insert(Record { failures: 0, since: now, locked_until: None });
        if now.duration_since(record.since) >= WINDOW && record.locked_until.is_none_or(|u| u <= now) {
            *record = Record { failures: 0, since: now, locked_until: None };
        }
        record.failures += 1;
        if record.failures >= LOCKOUT_FAILURES {
            record.locked_until = Some(now + LOCKOUT);
        }
        let over = record.failures.saturating_sub(FREE_FAILURES).min(MAX_DELAY_STEPS);
        self.step * over
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_and_login_responses() {
        let encode = |s: &str| STANDARD.encode(s);
        assert_eq!(plain(&encode("\0key\0tok")), Ok(("key".into(), "tok".into())));
        assert_eq!(plain(&encode("key\0key\0tok")), Ok(("key".into(), "tok".into())));
        assert_eq!(plain(&encode("other\0key\0tok")), Err(Undecodable::Malformed), "acting for another");
        assert_eq!(plain(&encode("key\0tok")), Err(Undecodable::Malformed));
        assert_eq!(plain(&encode("\0a\0b\0c")), Err(Undecodable::Malformed));
        assert_eq!(plain("not base64!"), Err(Undecodable::Malformed));
        assert_eq!(plain("*"), Err(Undecodable::Cancelled));
        assert_eq!(decode(&encode("key")), Ok("key".into()));
        assert_eq!(decode("="), Ok(String::new()));
        assert_eq!(Mechanism::parse("login"), Some(Mechanism::Login));
        assert_eq!(Mechanism::parse("CRAM-MD5"), None);
    }

    #[test]
    fn failures_slow_down_then_lock_out_then_expire() {
        let failures = Failures::new(Duration::from_secs(1));
        let ip: IpAddr = "192.0.2.7".parse().unwrap();
        let other: IpAddr = "192.0.2.8".parse().unwrap();
        let t0 = Instant::now();
        let delays: Vec<u64> = (0..LOCKOUT_FAILURES).map(|_| failures.fail(ip, t0).as_secs()).collect();
        assert_eq!(delays, [0, 0, 0, 1, 2, 3, 4, 5, 5, 5]);
        assert_eq!(failures.locked(ip, t0), Some(t0 + LOCKOUT));
        assert_eq!(failures.locked(other, t0), None, "per address");
        assert_eq!(failures.locked(ip, t0 + LOCKOUT), None, "the lockout ends");
        assert_eq!(failures.fail(ip, t0 + LOCKOUT + WINDOW), Duration::ZERO, "counted afresh after the window");
    }
}
