//! Idle SMTP connections kept for reuse, per key (a relay; an MX host and source address).
//!
//! No connection is reused after `smtp.idle_timeout` idle or `smtp.max_connection_age` old.
//! A sweeper closes those with QUIT in the background, so a server never has to time us out;
//! [`IdlePool::close_all`] says QUIT on the rest at shutdown. Every close is counted by reason.

use std::{
    collections::HashMap,
    future::Future,
    hash::Hash,
    sync::{Arc, Mutex, Weak},
    time::{Duration, Instant},
};

use sluice_shared::{config::SmtpConfig, metrics as m};

use super::{
    SendError, SmtpReply,
    session::{Outgoing, Session},
};

/// The last connection of a run (None when it was closed), and one answer per message.
pub type Answers = (Option<Pooled>, Vec<Result<SmtpReply, SendError>>);

/// A connection and what it has done.
pub struct Pooled {
    pub session: Session,
    opened: Instant,
    idle_since: Instant,
    /// Messages sent on it (mx mode closes it after the destination's `messages_per_connection`).
    pub sent: u32,
}

impl Pooled {
    /// A connection just opened.
    fn new(session: Session) -> Pooled {
        metrics::counter!(m::SMTP_CONNECTIONS_OPENED).increment(1);
        let now = Instant::now();
        Pooled { session, opened: now, idle_since: now, sent: 0 }
    }
}

/// Why Sluice closes a connection (the label of [`m::SMTP_CONNECTIONS_CLOSED`]).
#[derive(Clone, Copy)]
pub enum Close {
    /// Idle past `smtp.idle_timeout`.
    Idle,
    /// Older than `smtp.max_connection_age`.
    Age,
    /// Sent the destination's `messages_per_connection`.
    Limit,
    Shutdown,
    /// The server closed it, answered 421, or the exchange broke: no QUIT is possible.
    Lost,
    /// Found dead on first use from the pool, and replaced.
    Stale,
}

impl Close {
    fn label(self) -> &'static str {
        match self {
            Close::Idle => "idle",
            Close::Age => "age",
            Close::Limit => "limit",
            Close::Shutdown => "shutdown",
            Close::Lost => "lost",
            Close::Stale => "stale",
        }
    }
}

pub struct IdlePool<K> {
    idle: Mutex<HashMap<K, Vec<Pooled>>>,
    idle_timeout: Duration,
    max_age: Duration,
    /// `smtp.timeout`: the bound on one message's exchange, on opening a connection, on QUIT.
    timeout: Duration,
}

impl<K: Hash + Eq + Send + 'static> IdlePool<K> {
    /// A pool with its sweeper running on the current runtime until the pool is dropped.
    pub fn new(config: &SmtpConfig) -> Arc<IdlePool<K>> {
        let pool = Arc::new(IdlePool {
            idle: Mutex::new(HashMap::new()),
            idle_timeout: config.idle_timeout.get(),
            max_age: config.max_connection_age.get(),
            timeout: config.timeout.get(),
        });
        tokio::spawn(sweep(Arc::downgrade(&pool)));
        pool
    }

    /// Sends messages in order on one connection: an idle one for `key`, else a new one from
    /// `connect`. When a connection turns out dead before it answered a message's MAIL (a
    /// pooled one the server closed while it waited, or one that dies between messages),
    /// that message and the rest go on the next connection: nothing of them reached a
    /// server, so no attempt is counted. A new connection dead at once, or an exchange past
    /// `smtp.timeout`, ends the run: the messages left get that connection problem as their
    /// answer. Err: no connection could be opened for the first message.
    /// The caller gives the last connection back ([`IdlePool::put`]) or closes it.
    pub async fn send_all<C, F>(&self, key: &K, connect: C, messages: &[Outgoing<'_>]) -> Result<Answers, SendError>
    where
        C: Fn() -> F,
        F: Future<Output = Result<Session, SendError>>,
    {
        let mut answers = Vec::with_capacity(messages.len());
        while answers.len() < messages.len() {
            let (mut pooled, reused) = match self.take(key) {
                Some(p) => (p, true),
                None => match self.open(&connect).await {
                    Ok(p) => (p, false),
                    Err(e) if answers.is_empty() => return Err(e),
                    Err(e) => {
                        answers.resize(messages.len(), Err(e));
                        break;
                    }
                },
            };
            let run = pooled.session.send_all(&messages[answers.len()..], self.timeout).await;
            let progressed = !run.answers.is_empty();
            pooled.sent += run.answers.len() as u32;
            answers.extend(run.answers);
            if run.timed_out {
                let why = answers.last().cloned().expect("a timed-out run answers its last message");
                answers.resize(messages.len(), why);
            }
            let Some(why) = run.dead else { return Ok((Some(pooled), answers)) };
            if !progressed && reused {
                // The server closed it while it waited here: nothing was sent.
                self.close(pooled, Close::Stale);
                continue;
            }
            self.close(pooled, Close::Lost);
            if !progressed {
                answers.resize(messages.len(), Err(why));
            }
        }
        Ok((None, answers))
    }

    /// [`IdlePool::send_all`] for one message.
    pub async fn send<C, F>(
        &self,
        key: &K,
        connect: C,
        message: Outgoing<'_>,
    ) -> Result<(Option<Pooled>, Result<SmtpReply, SendError>), SendError>
    where
        C: Fn() -> F,
        F: Future<Output = Result<Session, SendError>>,
    {
        let (pooled, mut answers) = self.send_all(key, connect, &[message]).await?;
        Ok((pooled, answers.pop().expect("one answer per message")))
    }

    /// A new connection, within `smtp.timeout`.
    async fn open<C, F>(&self, connect: &C) -> Result<Pooled, SendError>
    where
        C: Fn() -> F,
        F: Future<Output = Result<Session, SendError>>,
    {
        match tokio::time::timeout(self.timeout, connect()).await {
            Ok(session) => Ok(Pooled::new(session?)),
            Err(_) => Err(SendError::Connection(format!("no connection within {:?}", self.timeout))),
        }
    }

    /// The most recently used connection for `key` that may still be used; expired ones met
    /// on the way are closed.
    fn take(&self, key: &K) -> Option<Pooled> {
        let now = Instant::now();
        let mut expired = Vec::new();
        let found = {
            let mut idle = self.idle.lock().unwrap();
            let list = idle.get_mut(key)?;
            loop {
                match list.pop() {
                    Some(p) => match self.expiry(&p, now) {
                        None => break Some(p),
                        Some(why) => expired.push((p, why)),
                    },
                    None => break None,
                }
            }
        };
        self.close_each(expired);
        found
    }

    /// Returns a connection after a message; one too old, or no longer usable, is closed.
    pub fn put(&self, key: K, mut pooled: Pooled) {
        if !pooled.session.is_usable() {
            return self.close(pooled, Close::Lost);
        }
        let now = Instant::now();
        if now.duration_since(pooled.opened) >= self.max_age {
            return self.close(pooled, Close::Age);
        }
        pooled.idle_since = now;
        self.idle.lock().unwrap().entry(key).or_default().push(pooled);
    }

    /// Closes a connection in the background: QUIT if the server is still there.
    pub fn close(&self, pooled: Pooled, why: Close) {
        self.close_each(vec![(pooled, why)]);
    }

    /// Says QUIT on every idle connection and waits (each within `smtp.timeout`).
    pub async fn close_all(&self) {
        let all: Vec<Pooled> = self.idle.lock().unwrap().drain().flat_map(|(_, list)| list).collect();
        let quits = all.into_iter().map(|p| quit(p, Close::Shutdown, self.timeout));
        futures::future::join_all(quits).await;
    }

    fn expiry(&self, p: &Pooled, now: Instant) -> Option<Close> {
        if now.duration_since(p.opened) >= self.max_age {
            Some(Close::Age)
        } else if now.duration_since(p.idle_since) >= self.idle_timeout {
            Some(Close::Idle)
        } else {
            None
        }
    }

    fn close_each(&self, closing: Vec<(Pooled, Close)>) {
        if closing.is_empty() {
            return;
        }
        let timeout = self.timeout;
        tokio::spawn(async move {
            futures::future::join_all(closing.into_iter().map(|(p, why)| quit(p, why, timeout))).await;
        });
    }

    /// Takes every expired connection out of the pool.
    fn expired(&self) -> Vec<(Pooled, Close)> {
        let now = Instant::now();
        let mut out = Vec::new();
        for list in self.idle.lock().unwrap().values_mut() {
            let mut keep = Vec::with_capacity(list.len());
            for p in list.drain(..) {
                match self.expiry(&p, now) {
                    None => keep.push(p),
                    Some(why) => out.push((p, why)),
                }
            }
            *list = keep;
        }
        out
    }
}

async fn quit(pooled: Pooled, why: Close, timeout: Duration) {
    metrics::counter!(m::SMTP_CONNECTIONS_CLOSED, "reason" => why.label()).increment(1);
    let _ = tokio::time::timeout(timeout, pooled.session.quit()).await;
}

/// Every half idle timeout (at most a second), closes what has expired; ends with the pool.
async fn sweep<K: Hash + Eq + Send + 'static>(pool: Weak<IdlePool<K>>) {
    let every = pool.upgrade().map_or(Duration::from_secs(1), |p| (p.idle_timeout / 2).min(Duration::from_secs(1)));
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Some(pool) = pool.upgrade() else { return };
        let expired = pool.expired();
        pool.close_each(expired);
    }
}
