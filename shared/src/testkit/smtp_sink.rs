//! A scriptable SMTP server over real TCP, for tests, the demo and the benchmarks.
//!
//! What it answers depends on the recipient's local part:
//! - `soft<N>-...`: `451 4.3.0` at RCPT the first N times, then accepted;
//! - `hard-...`: `550 5.1.1` at RCPT (invalid recipient), every time;
//! - `block-...`: `554 5.7.1` after DATA (spam content), every time;
//! - anything else: accepted.
//!
//! It counts, per recipient, the messages it accepted, so tests can check exactly-once.

use std::{
    collections::HashMap,
    net::SocketAddr,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
};

use tokio::{
    io::{AsyncBufReadExt, AsyncWriteExt, BufReader},
    net::{TcpListener, TcpStream},
};

/// What the sink has seen.
#[derive(Default)]
pub struct SinkState {
    /// Accepted messages per recipient address (lower-cased).
    pub delivered: Mutex<HashMap<String, u32>>,
    /// RCPT attempts per recipient address (lower-cased), accepted or not.
    pub attempts: Mutex<HashMap<String, u32>>,
    /// Raw accepted messages, if `keep_messages` was set.
    pub messages: Mutex<Vec<(String, Vec<u8>)>>,
    pub accepted_total: AtomicU64,
    pub connections: AtomicU64,
    keep_messages: bool,
}

impl SinkState {
    pub fn delivered_to(&self, rcpt: &str) -> u32 {
        self.delivered.lock().unwrap().get(&rcpt.to_ascii_lowercase()).copied().unwrap_or(0)
    }
    pub fn attempts_for(&self, rcpt: &str) -> u32 {
        self.attempts.lock().unwrap().get(&rcpt.to_ascii_lowercase()).copied().unwrap_or(0)
    }
    pub fn accepted(&self) -> u64 {
        self.accepted_total.load(Ordering::Relaxed)
    }
}

/// A running sink.
pub struct SmtpSink {
    pub addr: SocketAddr,
    pub state: Arc<SinkState>,
    task: tokio::task::JoinHandle<()>,
}

impl SmtpSink {
    /// Starts on 127.0.0.1 with a free port.
    pub async fn start(keep_messages: bool) -> SmtpSink {
        Self::bind("127.0.0.1:0", keep_messages).await.expect("bind SMTP sink")
    }

    /// Starts on `listen`.
    pub async fn bind(listen: &str, keep_messages: bool) -> std::io::Result<SmtpSink> {
        let listener = TcpListener::bind(listen).await?;
        let addr = listener.local_addr()?;
        let state = Arc::new(SinkState { keep_messages, ..Default::default() });
        let shared = state.clone();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                shared.connections.fetch_add(1, Ordering::Relaxed);
                let state = shared.clone();
                tokio::spawn(async move {
                    let _ = session(stream, state).await;
                });
            }
        });
        Ok(SmtpSink { addr, state, task })
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The reply scripted for `rcpt` at RCPT time, given how often it was tried before.
fn rcpt_reply(rcpt: &str, tries_before: u32) -> &'static str {
    let local = rcpt.split('@').next().unwrap_or("");
    if local.starts_with("hard-") {
        return "550 5.1.1 The email account that you tried to reach does not exist\r\n";
    }
    if let Some(rest) = local.strip_prefix("soft")
        && let Some((n, _)) = rest.split_once('-')
        && let Ok(n) = n.parse::<u32>()
        && tries_before < n
    {
        return "451 4.3.0 Temporary failure, try again later\r\n";
    }
    "250 2.1.5 Ok\r\n"
}

fn address_in(line: &str) -> String {
    let start = line.find('<').map(|i| i + 1).unwrap_or(0);
    let end = line.rfind('>').unwrap_or(line.len());
    line[start..end.max(start)].to_ascii_lowercase()
}

async fn session(stream: TcpStream, state: Arc<SinkState>) -> std::io::Result<()> {
    stream.set_nodelay(true)?;
    let (read, mut write) = stream.into_split();
    let mut reader = BufReader::new(read);
    write.write_all(b"220 sluice-sink ESMTP ready\r\n").await?;
    let mut line = String::new();
    let mut rcpts: Vec<String> = Vec::new();
    loop {
        line.clear();
        if reader.read_line(&mut line).await? == 0 {
            return Ok(());
        }
        let upper = line.to_ascii_uppercase();
        let reply: &[u8] = if upper.starts_with("EHLO") {
            b"250-sluice-sink\r\n250-PIPELINING\r\n250-8BITMIME\r\n250-SMTPUTF8\r\n250 SIZE 52428800\r\n"
        } else if upper.starts_with("HELO") {
            b"250 sluice-sink\r\n"
        } else if upper.starts_with("MAIL FROM") {
            rcpts.clear();
            b"250 2.1.0 Ok\r\n"
        } else if upper.starts_with("RCPT TO") {
            let rcpt = address_in(&line);
            let before = {
                let mut attempts = state.attempts.lock().unwrap();
                let n = attempts.entry(rcpt.clone()).or_insert(0);
                *n += 1;
                *n - 1
            };
            let reply = rcpt_reply(&rcpt, before);
            if reply.starts_with('2') {
                rcpts.push(rcpt);
            }
            reply.as_bytes()
        } else if upper.starts_with("DATA") {
            if rcpts.is_empty() {
                b"554 5.5.1 No valid recipients\r\n"
            } else {
                write.write_all(b"354 End data with <CR><LF>.<CR><LF>\r\n").await?;
                let body = read_data(&mut reader).await?;
                let blocked = rcpts.iter().any(|r| r.starts_with("block-"));
                if blocked {
                    rcpts.clear();
                    b"554 5.7.1 Message rejected as likely unsolicited mail\r\n"
                } else {
                    accept(&state, &rcpts, body);
                    rcpts.clear();
                    b"250 2.0.0 Ok: queued\r\n"
                }
            }
        } else if upper.starts_with("RSET") {
            rcpts.clear();
            b"250 2.0.0 Ok\r\n"
        } else if upper.starts_with("NOOP") {
            b"250 2.0.0 Ok\r\n"
        } else if upper.starts_with("QUIT") {
            write.write_all(b"221 2.0.0 Bye\r\n").await?;
            return Ok(());
        } else {
            b"502 5.5.2 Command not recognized\r\n"
        };
        write.write_all(reply).await?;
    }
}

fn accept(state: &SinkState, rcpts: &[String], body: Vec<u8>) {
    {
        let mut delivered = state.delivered.lock().unwrap();
        for r in rcpts {
            *delivered.entry(r.clone()).or_insert(0) += 1;
        }
    }
    state.accepted_total.fetch_add(rcpts.len() as u64, Ordering::Relaxed);
    if state.keep_messages {
        state.messages.lock().unwrap().push((rcpts[0].clone(), body));
    }
}

/// Reads a DATA section up to the lone dot, undoing dot-stuffing.
async fn read_data<R: tokio::io::AsyncBufRead + Unpin>(reader: &mut R) -> std::io::Result<Vec<u8>> {
    let mut body = Vec::with_capacity(4096);
    let mut line = Vec::with_capacity(256);
    loop {
        line.clear();
        if reader.read_until(b'\n', &mut line).await? == 0 {
            return Err(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "eof in DATA"));
        }
        if line == b".\r\n" || line == b".\n" {
            return Ok(body);
        }
        let start = usize::from(line.starts_with(b".."));
        body.extend_from_slice(&line[start..]);
    }
}

#[cfg(test)]
mod tests {
    use super::rcpt_reply;

    #[test]
    fn scripted_replies_follow_the_local_part() {
        assert!(rcpt_reply("hard-1@x.example", 0).starts_with("550 5.1.1"));
        assert!(rcpt_reply("soft2-1@x.example", 0).starts_with("451"));
        assert!(rcpt_reply("soft2-1@x.example", 1).starts_with("451"));
        assert!(rcpt_reply("soft2-1@x.example", 2).starts_with("250"));
        assert!(rcpt_reply("ann@x.example", 0).starts_with("250"));
    }
}
