//! Messages sent in a row on one connection, against a scripted SMTP server over loopback TCP:
//! each content goes out with the next envelope (the server here will not answer a `.` until
//! the next MAIL has arrived), and every way a connection can end mid-run costs no message
//! and sends none twice.

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use lettre::transport::smtp::{client::AsyncSmtpConnection, extension::ClientId};
use sluice_shared::{config::SmtpConfig, units::Span};
use tokio::{
    io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader},
    net::{TcpListener, TcpStream},
};

use super::{
    SendError,
    pool::IdlePool,
    session::{Outgoing, Session},
};

/// What the server does after the `.` of its connection's message `m` (from 0).
#[derive(Clone, Copy, PartialEq)]
enum AfterDot {
    Accept,
    Refuse,
    /// 421, and the connection is closed.
    Close421,
    /// Closed with no reply (the message's fate is unknown to the client).
    Drop,
    /// No reply, ever.
    Stall,
    /// 250, then the connection is closed (as a server's idle timeout would).
    AcceptThenClose,
}

/// The scripted server: whether it offers PIPELINING, and the one message (connection and
/// message on it, both by order of arrival from 0) that gets something else than Accept.
#[derive(Clone, Copy)]
struct Script {
    pipelining: bool,
    at: Option<(usize, usize, AfterDot)>,
}

impl Script {
    fn after_dot(&self, conn: usize, m: usize) -> AfterDot {
        match self.at {
            Some((c, n, what)) if (c, n) == (conn, m) => what,
            _ => AfterDot::Accept,
        }
    }
}

#[derive(Default)]
struct Seen {
    /// Recipients whose message the server accepted, in order.
    accepted: Vec<String>,
    connections: usize,
    /// Times the next MAIL had arrived before the `.` was answered.
    pipelined: usize,
}

async fn server(script: Script) -> (u16, Arc<Mutex<Seen>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen = Arc::new(Mutex::new(Seen::default()));
    let shared = seen.clone();
    tokio::spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            let n = {
                let mut s = shared.lock().unwrap();
                s.connections += 1;
                s.connections - 1
            };
            tokio::spawn(serve(stream, n, script, shared.clone()));
        }
    });
    (port, seen)
}

async fn serve(stream: TcpStream, conn: usize, script: Script, seen: Arc<Mutex<Seen>>) {
    let pipelining = script.pipelining;
    let mut stream = BufReader::new(stream);
    let _ = stream.get_mut().write_all(b"220 scripted\r\n").await;
    let (mut line, mut rcpt, mut m) = (String::new(), String::new(), 0);
    // A MAIL read early, while the previous `.` waited for its answer.
    let mut early: Option<String> = None;
    loop {
        line = match early.take() {
            Some(l) => l,
            None => {
                line.clear();
                if stream.read_line(&mut line).await.unwrap_or(0) == 0 {
                    return;
                }
                line
            }
        };
        let reply: &[u8] = if line.starts_with("EHLO") {
            if pipelining { b"250-scripted\r\n250 PIPELINING\r\n" } else { b"250 scripted\r\n" }
        } else if line.starts_with("MAIL") {
            b"250 ok\r\n"
        } else if line.starts_with("RCPT") {
            rcpt = line[9..line.find('>').unwrap()].to_string();
            if rcpt.starts_with("refused") { b"550 5.1.1 no such user\r\n" } else { b"250 ok\r\n" }
        } else if line.starts_with("DATA") && rcpt.starts_with("refused") {
            b"554 5.5.1 no valid recipients\r\n"
        } else if line.starts_with("DATA") {
            let _ = stream.get_mut().write_all(b"354 go on\r\n").await;
            let mut body = String::new();
            while body != ".\r\n" {
                body.clear();
                if stream.read_line(&mut body).await.unwrap_or(0) == 0 {
                    return;
                }
            }
            let what = script.after_dot(conn, m);
            m += 1;
            if pipelining && !rcpt.starts_with("last") && what != AfterDot::Stall {
                // Answer only once the next envelope is here: a client that waits for this
                // answer before sending it never gets one.
                let mut next = String::new();
                if stream.read_line(&mut next).await.unwrap_or(0) == 0 {
                    return;
                }
                seen.lock().unwrap().pipelined += 1;
                early = Some(next);
            }
            match what {
                AfterDot::Accept => {
                    seen.lock().unwrap().accepted.push(rcpt.clone());
                    b"250 queued\r\n"
                }
                AfterDot::AcceptThenClose => {
                    seen.lock().unwrap().accepted.push(rcpt.clone());
                    let _ = stream.get_mut().write_all(b"250 queued\r\n").await;
                    return;
                }
                AfterDot::Refuse => b"554 5.7.1 rejected\r\n",
                AfterDot::Close421 => {
                    let _ = stream.get_mut().write_all(b"421 4.3.2 closing\r\n").await;
                    return;
                }
                AfterDot::Drop => return,
                AfterDot::Stall => {
                    let _ = stream.read_to_end(&mut Vec::new()).await;
                    return;
                }
            }
        } else if line.starts_with("RSET") {
            b"250 ok\r\n"
        } else if line.starts_with("QUIT") {
            let _ = stream.get_mut().write_all(b"221 bye\r\n").await;
            return;
        } else {
            b"502 what\r\n"
        };
        if stream.get_mut().write_all(reply).await.is_err() {
            return;
        }
    }
}

async fn connect(port: u16) -> Result<Session, SendError> {
    let tcp = TcpStream::connect(("127.0.0.1", port)).await.map_err(|e| SendError::Connection(e.to_string()))?;
    tcp.set_nodelay(true).unwrap();
    let hello = ClientId::Domain("client.example".into());
    let conn = AsyncSmtpConnection::connect_with_transport(Box::new(tcp), &hello)
        .await
        .map_err(|e| SendError::Connection(e.to_string()))?;
    Session::start(conn, &hello).await.map_err(|e| SendError::Connection(e.to_string()))
}

/// Sends to `to` (the last one named `last...`, which the server answers without waiting)
/// through a pool whose exchanges are bounded by a second; the answers as short strings.
async fn send_all(port: u16, to: &[&str]) -> (Vec<String>, Arc<IdlePool<u8>>) {
    let config = SmtpConfig { timeout: Span(Duration::from_secs(1)), ..SmtpConfig::default() };
    let pool = IdlePool::new(&config);
    let message = b"Subject: hi\r\n\r\nHello.\r\n".as_slice();
    let messages: Vec<Outgoing> = to.iter().map(|to| Outgoing { from: "news@shop.example", to, message }).collect();
    let (last, answers) = pool.send_all(&0, || connect(port), &messages).await.unwrap();
    if let Some(p) = last {
        pool.put(0, p);
    }
    let short = answers
        .into_iter()
        .map(|a| match a {
            Ok(r) => r.code.to_string(),
            Err(SendError::Rejected(r)) => r.code.to_string(),
            Err(SendError::Connection(_)) => "connection".to_string(),
            Err(e) => e.to_string(),
        })
        .collect();
    (short, pool)
}

/// A server that accepts everything.
const ACCEPTING: Script = Script { pipelining: true, at: None };

#[tokio::test]
async fn a_run_goes_out_on_one_connection_each_content_with_the_next_envelope() {
    let (port, seen) = server(ACCEPTING).await;
    let (answers, _) = send_all(port, &["a@x.example", "b@x.example", "c@x.example", "last@x.example"]).await;
    assert_eq!(answers, ["250", "250", "250", "250"]);
    let seen = seen.lock().unwrap();
    assert_eq!(seen.accepted, ["a@x.example", "b@x.example", "c@x.example", "last@x.example"]);
    assert_eq!((seen.connections, seen.pipelined), (1, 3));
}

#[tokio::test]
async fn without_pipelining_each_command_waits_for_its_reply() {
    let (port, seen) = server(Script { pipelining: false, ..ACCEPTING }).await;
    let (answers, _) = send_all(port, &["a@x.example", "b@x.example", "last@x.example"]).await;
    assert_eq!(answers, ["250", "250", "250"]);
    let seen = seen.lock().unwrap();
    assert_eq!((seen.connections, seen.pipelined, seen.accepted.len()), (1, 0, 3));
}

#[tokio::test]
async fn a_refused_recipient_or_content_is_that_message_answer_and_the_run_goes_on() {
    let (port, seen) = server(Script { at: Some((0, 1, AfterDot::Refuse)), ..ACCEPTING }).await;
    let (answers, _) = send_all(port, &["a@x.example", "b@x.example", "refused@x.example", "last@x.example"]).await;
    assert_eq!(answers, ["250", "554", "550", "250"]);
    let seen = seen.lock().unwrap();
    assert_eq!(seen.accepted, ["a@x.example", "last@x.example"]);
    assert_eq!(seen.connections, 1);
}

#[tokio::test]
async fn a_421_after_a_content_sends_the_announced_message_on_a_new_connection() {
    let (port, seen) = server(Script { at: Some((0, 0, AfterDot::Close421)), ..ACCEPTING }).await;
    let (answers, _) = send_all(port, &["a@x.example", "b@x.example", "last@x.example"]).await;
    assert_eq!(answers, ["421", "250", "250"], "b was announced on the closed connection, never sent there");
    let seen = seen.lock().unwrap();
    assert_eq!(seen.accepted, ["b@x.example", "last@x.example"]);
    assert_eq!(seen.connections, 2);
}

#[tokio::test]
async fn a_connection_lost_after_a_content_leaves_that_message_unknown_and_sends_the_rest() {
    let (port, seen) = server(Script { at: Some((0, 1, AfterDot::Drop)), ..ACCEPTING }).await;
    let (answers, _) = send_all(port, &["a@x.example", "b@x.example", "c@x.example", "last@x.example"]).await;
    assert_eq!(answers, ["250", "connection", "250", "250"]);
    let seen = seen.lock().unwrap();
    assert_eq!(seen.accepted, ["a@x.example", "c@x.example", "last@x.example"], "each sent once");
    assert_eq!(seen.connections, 2);
}

#[tokio::test]
async fn a_server_that_stops_answering_ends_the_run_within_the_bound() {
    let (port, seen) = server(Script { at: Some((0, 1, AfterDot::Stall)), ..ACCEPTING }).await;
    let started = std::time::Instant::now();
    let (answers, _) = send_all(port, &["a@x.example", "b@x.example", "c@x.example", "last@x.example"]).await;
    assert_eq!(answers, ["250", "connection", "connection", "connection"], "the rest is not tried past a stall");
    assert!(started.elapsed() < Duration::from_secs(3), "one bound, not one per message: {:?}", started.elapsed());
    assert_eq!(seen.lock().unwrap().connections, 1);
}

#[tokio::test]
async fn a_pooled_connection_closed_while_idle_is_replaced_and_costs_no_message() {
    let (port, seen) = server(Script { at: Some((0, 1, AfterDot::AcceptThenClose)), ..ACCEPTING }).await;
    let (answers, pool) = send_all(port, &["a@x.example", "last@x.example"]).await;
    assert_eq!(answers, ["250", "250"]);
    let message = b"Hello.\r\n".as_slice();
    let run = [Outgoing { from: "news@shop.example", to: "last2@x.example", message }];
    // The pooled connection is found closed when the next run starts: it goes on a new one.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while seen.lock().unwrap().connections < 2 {
        let (last, answers) = pool.send_all(&0, || connect(port), &run).await.unwrap();
        assert!(answers[0].is_ok(), "{:?}", answers[0]);
        pool.put(0, last.expect("a usable connection"));
        assert!(std::time::Instant::now() < deadline, "the closed connection was never noticed");
    }
    let seen = seen.lock().unwrap();
    assert_eq!(seen.accepted.iter().filter(|r| *r == "last2@x.example").count(), seen.accepted.len() - 2);
}
