//! One SMTP session of the sink: the greeting, the command loop with its scripted replies,
//! STARTTLS, and what is kept of each accepted message.

use std::{net::IpAddr, sync::atomic::Ordering};

use tokio::{
    io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader},
    net::TcpStream,
};
use tokio_rustls::TlsAcceptor;

use super::SinkState;

/// The reply scripted for `rcpt` at RCPT time, given how often it was tried before.
pub(super) fn rcpt_reply(rcpt: &str, tries_before: u32) -> &'static str {
    let local = rcpt.split('@').next().unwrap_or("");
    if local.starts_with("hard-") {
        return "550 5.1.1 The email account that you tried to reach does not exist\r\n";
    }
    if local.starts_with("full-") {
        return "452 4.2.2 The recipient's inbox is out of storage space\r\n";
    }
    let failing_first = |prefix: &str| {
        local
            .strip_prefix(prefix)
            .and_then(|rest| rest.split_once('-'))
            .and_then(|(n, _)| n.parse::<u32>().ok())
            .is_some_and(|n| tries_before < n)
    };
    if local.starts_with("unauth-") {
        return "550 5.7.26 Unauthenticated email from this sender is not accepted due to domain's DMARC policy\r\n";
    }
    if failing_first("reset") {
        return RESET;
    }
    if failing_first("soft") {
        return "451 4.3.0 Temporary failure, try again later\r\n";
    }
    if failing_first("throttle") {
        return "421 4.7.28 Our system has detected an unusual rate of unsolicited email originating from \
                your IP address; it has been temporarily rate limited\r\n";
    }
    "250 2.1.5 Ok\r\n"
}

/// Not a reply: the sink resets the connection (TCP RST) instead of answering.
pub(super) const RESET: &str = "RESET";

fn address_in(line: &str) -> String {
    let start = line.find('<').map(|i| i + 1).unwrap_or(0);
    let end = line.rfind('>').unwrap_or(line.len());
    line[start..end.max(start)].to_ascii_lowercase()
}

/// How a session on one stream ended.
pub(super) enum Ended<S = ()> {
    Quit,
    /// The client closed the connection without QUIT.
    Left,
    /// The sink answered 421 and closed it.
    ClosedBySink,
    /// The client asked for STARTTLS and got 220: continue on TLS over this stream.
    Starttls(S),
    /// A scripted reset: the sink drops the connection with a TCP RST (on plain TCP).
    Reset(S),
}

impl<S> Ended<S> {
    /// The end of a session that continues on no other stream.
    fn last(self) -> Ended {
        match self {
            Ended::Quit => Ended::Quit,
            Ended::ClosedBySink => Ended::ClosedBySink,
            Ended::Left | Ended::Starttls(_) | Ended::Reset(_) => Ended::Left,
        }
    }
}

/// How the sink speaks TLS.
#[derive(Clone)]
pub(super) struct Tls {
    pub(super) acceptor: TlsAcceptor,
    pub(super) implicit: bool,
}

const GREETING: &[u8] = b"220 sluice-sink ESMTP ready\r\n";

pub(super) async fn session(
    stream: TcpStream,
    peer: IpAddr,
    state: &SinkState,
    tls: Option<Tls>,
) -> std::io::Result<Ended> {
    stream.set_nodelay(true)?;
    if let Some(Tls { acceptor, implicit: true }) = &tls {
        let mut encrypted = BufReader::new(acceptor.accept(stream).await?);
        encrypted.get_mut().write_all(GREETING).await?;
        return Ok(exchange(encrypted, peer, state, false, true).await?.last());
    }
    let mut stream = BufReader::new(stream);
    stream.get_mut().write_all(GREETING).await?;
    match exchange(stream, peer, state, tls.is_some(), false).await? {
        Ended::Starttls(tcp) => {
            let acceptor = tls.expect("STARTTLS is offered only with TLS configured").acceptor;
            let encrypted = acceptor.accept(tcp).await?;
            Ok(exchange(BufReader::new(encrypted), peer, state, false, true).await?.last())
        }
        Ended::Reset(tcp) => {
            // A zero linger makes the close a RST, as a carrier blocking a heavy sender does.
            tcp.set_zero_linger()?;
            drop(tcp);
            Ok(Ended::Left)
        }
        other => Ok(other.last()),
    }
}

/// The next command line, or None when the session has been silent past the idle limit.
async fn next_line<S: AsyncRead + Unpin>(
    stream: &mut BufReader<S>,
    line: &mut String,
    state: &SinkState,
) -> std::io::Result<Option<usize>> {
    match state.idle_close_ms.load(Ordering::SeqCst) {
        0 => stream.read_line(line).await.map(Some),
        ms => match tokio::time::timeout(std::time::Duration::from_millis(ms), stream.read_line(line)).await {
            Ok(read) => read.map(Some),
            Err(_) => Ok(None),
        },
    }
}

async fn exchange<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: BufReader<S>,
    peer: IpAddr,
    state: &SinkState,
    offer_starttls: bool,
    encrypted: bool,
) -> std::io::Result<Ended<S>> {
    let mut line = String::new();
    let mut t = Transaction::default();
    loop {
        line.clear();
        match next_line(&mut stream, &mut line, state).await? {
            None => {
                stream.get_mut().write_all(b"421 4.4.2 sluice-sink Error: timeout exceeded\r\n").await?;
                return Ok(Ended::ClosedBySink);
            }
            Some(0) => return Ok(Ended::Left),
            Some(_) => {}
        }
        let upper = line.to_ascii_uppercase();
        if state.is_refusing() {
            stream.get_mut().write_all(b"421 4.3.2 Service not available, closing channel\r\n").await?;
            return Ok(Ended::ClosedBySink);
        }
        if upper.starts_with("EHLO") || upper.starts_with("HELO") {
            t.helo = line[4..].trim().to_string();
            state.helo_names.lock().unwrap().push(t.helo.clone());
        }
        let reply: &[u8] = if upper.starts_with("EHLO") {
            ehlo_reply(offer_starttls, !state.no_pipelining.load(Ordering::SeqCst))
        } else if upper.starts_with("STARTTLS") && offer_starttls {
            stream.get_mut().write_all(b"220 2.0.0 Ready to start TLS\r\n").await?;
            return Ok(Ended::Starttls(stream.into_inner()));
        } else if upper.starts_with("HELO") {
            b"250 sluice-sink\r\n"
        } else if upper.starts_with("MAIL FROM") {
            if !stream.buffer().is_empty() {
                state.pipelined.fetch_add(1, Ordering::Relaxed);
            }
            t.rcpts.clear();
            t.sender = address_in(&line);
            let parameters = upper.get(upper.rfind('>').unwrap_or(0)..).unwrap_or_default();
            t.utf8 = parameters.contains(" SMTPUTF8");
            t.eight_bit = t.utf8 || parameters.contains(" BODY=8BITMIME");
            b"250 2.1.0 Ok\r\n"
        } else if upper.starts_with("RCPT TO") {
            let (rcpt, reply) = rcpt_answer(state, &line, t.utf8).await;
            if reply == RESET {
                return Ok(Ended::Reset(stream.into_inner()));
            }
            if reply.starts_with("421") {
                stream.get_mut().write_all(reply.as_bytes()).await?;
                return Ok(Ended::ClosedBySink);
            }
            if reply.starts_with('2') {
                t.rcpts.push(rcpt);
            }
            reply.as_bytes()
        } else if upper.starts_with("DATA") {
            if t.rcpts.is_empty() {
                b"554 5.5.1 No valid recipients\r\n"
            } else {
                stream.get_mut().write_all(b"354 End data with <CR><LF>.<CR><LF>\r\n").await?;
                let body = read_data(&mut stream).await?;
                let reply = message_reply(state, &t, body, peer, encrypted);
                t.rcpts.clear();
                reply
            }
        } else if upper.starts_with("RSET") {
            t.rcpts.clear();
            b"250 2.0.0 Ok\r\n"
        } else if upper.starts_with("NOOP") {
            b"250 2.0.0 Ok\r\n"
        } else if upper.starts_with("QUIT") {
            stream.get_mut().write_all(b"221 2.0.0 Bye\r\n").await?;
            return Ok(Ended::Quit);
        } else {
            b"502 5.5.2 Command not recognized\r\n"
        };
        stream.get_mut().write_all(reply).await?;
    }
}

/// The recipient RCPT names and the scripted answer (counting the attempt; `slow-` waits 2 s).
async fn rcpt_answer(state: &SinkState, line: &str, utf8: bool) -> (String, &'static str) {
    let rcpt = address_in(line);
    let before = {
        let mut attempts = state.attempts.lock().unwrap();
        let n = attempts.entry(rcpt.clone()).or_insert(0);
        *n += 1;
        *n - 1
    };
    if rcpt.starts_with("slow-") {
        tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    }
    let reply = match rcpt.is_ascii() || utf8 {
        true => rcpt_reply(&rcpt, before),
        false => "553 5.6.7 SMTPUTF8 is required for a non-ASCII address\r\n",
    };
    (rcpt, reply)
}

/// One mail transaction as MAIL, RCPT and EHLO/HELO left it.
#[derive(Default)]
struct Transaction {
    sender: String,
    helo: String,
    rcpts: Vec<String>,
    /// MAIL's SMTPUTF8 and BODY=8BITMIME parameters, which non-ASCII mail needs.
    utf8: bool,
    eight_bit: bool,
}

fn ehlo_reply(starttls: bool, pipelining: bool) -> &'static [u8] {
    match (starttls, pipelining) {
        (true, true) => {
            b"250-sluice-sink\r\n250-PIPELINING\r\n250-8BITMIME\r\n250-SMTPUTF8\r\n250-STARTTLS\r\n250 SIZE 52428800\r\n"
        }
        (false, true) => b"250-sluice-sink\r\n250-PIPELINING\r\n250-8BITMIME\r\n250-SMTPUTF8\r\n250 SIZE 52428800\r\n",
        (true, false) => b"250-sluice-sink\r\n250-8BITMIME\r\n250-SMTPUTF8\r\n250-STARTTLS\r\n250 SIZE 52428800\r\n",
        (false, false) => b"250-sluice-sink\r\n250-8BITMIME\r\n250-SMTPUTF8\r\n250 SIZE 52428800\r\n",
    }
}

/// The answer to a message after DATA: refused for a `block-` recipient or 8-bit content
/// without BODY=8BITMIME, else accepted (and counted) for every recipient.
fn message_reply(state: &SinkState, t: &Transaction, body: Vec<u8>, peer: IpAddr, encrypted: bool) -> &'static [u8] {
    if t.rcpts.iter().any(|r| r.starts_with("block-")) {
        return b"554 5.7.1 Message rejected as likely unsolicited mail\r\n";
    }
    if !body.is_ascii() && !t.eight_bit {
        return b"554 5.6.0 8-bit content needs BODY=8BITMIME\r\n";
    }
    let trace = format!("Return-Path: <{}>\r\nReceived: from {} ([{peer}])\r\n", t.sender, t.helo);
    accept(state, &t.rcpts, &trace, body);
    if encrypted {
        state.accepted_encrypted.fetch_add(t.rcpts.len() as u64, Ordering::Relaxed);
    }
    b"250 2.0.0 Ok: queued\r\n"
}

/// Kept messages start with `Return-Path: <MAIL FROM>` and `Received: from HELO ([peer])`,
/// as a final delivery agent writes them.
fn accept(state: &SinkState, rcpts: &[String], trace: &str, body: Vec<u8>) {
    {
        let mut delivered = state.delivered.lock().unwrap();
        for r in rcpts {
            *delivered.entry(r.clone()).or_insert(0) += 1;
        }
    }
    state.accepted_total.fetch_add(rcpts.len() as u64, Ordering::Relaxed);
    state.record_latency(&body);
    if state.keep_messages {
        let mut kept = trace.as_bytes().to_vec();
        kept.extend(body);
        state.messages.lock().unwrap().push((rcpts[0].clone(), kept));
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
