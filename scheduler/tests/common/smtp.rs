//! A raw SMTP client for the listener tests: connect from any 127.0.0.0/8 address, say a
//! line, read a whole (multi-line) reply.

use std::net::SocketAddr;

use tokio::{
    io::{AsyncBufReadExt, AsyncWriteExt, BufReader},
    net::{TcpSocket, TcpStream},
};

/// A connection from `from` and its first reply.
pub async fn connect(from: [u8; 4], to: SocketAddr) -> (BufReader<TcpStream>, String) {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(SocketAddr::from((from, 0))).unwrap();
    let mut c = BufReader::new(socket.connect(to).await.unwrap());
    let greeting = reply(&mut c).await;
    (c, greeting)
}

/// One reply, all its lines; empty when the server closed.
pub async fn reply(c: &mut BufReader<TcpStream>) -> String {
    let mut all = String::new();
    loop {
        let mut l = String::new();
        if c.read_line(&mut l).await.unwrap_or(0) == 0 {
            return all;
        }
        all.push_str(&l);
        if l.len() < 4 || l.as_bytes()[3] != b'-' {
            return all;
        }
    }
}

/// Writes `line` (CRLF included) and reads the reply.
pub async fn say(c: &mut BufReader<TcpStream>, line: &str) -> String {
    c.get_mut().write_all(line.as_bytes()).await.unwrap();
    reply(c).await
}
