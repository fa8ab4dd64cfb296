//! What every SMTP listener of the scheduler shares, held like Postfix's smtpd against a
//! stranger on the internet: sessions are capped in total and per client address (421 past
//! either), every session has a deadline (421 when it passes), and STARTTLS (RFC 3207) is
//! offered when a certificate is configured, without carrying commands pipelined behind it
//! into the encrypted session; the handshake counts against the session deadline. A listener
//! may instead speak TLS from the first byte (implicit TLS, RFC 8314). What is said in a
//! session is the listener's own [`Conversation`].

use std::{
    collections::HashMap,
    future::Future,
    net::{IpAddr, SocketAddr},
    sync::{Arc, Mutex},
    time::Duration,
};

use sluice_shared::shutdown::Shutdown;
use tokio::{
    io::{AsyncRead, AsyncWrite, AsyncWriteExt, BufReader},
    net::{TcpListener, TcpStream},
    sync::Semaphore,
    time::Instant,
};
use tokio_rustls::TlsAcceptor;

/// How many sessions a listener holds, and for how long.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_connections: usize,
    pub max_connections_per_client: usize,
    pub session_timeout: Duration,
}

/// How a conversation on one stream ended.
pub enum Next {
    Done,
    /// The client asked for STARTTLS and got 220: the session goes on over TLS.
    StartTls,
}

/// Where a session stands with TLS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tls {
    /// Plaintext; STARTTLS may be offered.
    Offered,
    /// Plaintext, and no certificate to offer STARTTLS with.
    Unavailable,
    /// Encrypted (after STARTTLS, or from the start).
    Active,
}

/// What a conversation knows of its session.
#[derive(Debug, Clone, Copy)]
pub struct Session {
    pub peer: SocketAddr,
    /// Send the greeting first (not after STARTTLS).
    pub greet: bool,
    pub tls: Tls,
}

/// What a listener says in a session.
pub trait Conversation: Send + Sync + 'static {
    /// Names the listener in logs ("inbound SMTP").
    const NAME: &'static str;

    /// One conversation on `stream` until it ends, or until the client asked for STARTTLS and
    /// was answered 220. A command timeout is an error of kind `TimedOut`.
    fn converse<S: AsyncRead + AsyncWrite + Unpin + Send>(
        &self,
        stream: &mut BufReader<S>,
        session: Session,
    ) -> impl Future<Output = std::io::Result<Next>> + Send;
}

pub struct Server<C> {
    conversation: C,
    limits: Limits,
    tls: Option<TlsAcceptor>,
    /// TLS from the first byte rather than after STARTTLS.
    implicit_tls: bool,
    /// Open sessions per client address.
    clients: Mutex<HashMap<IpAddr, usize>>,
}

/// One client's place in the per-client count, given back when the session ends.
struct ClientSlot<'a, C> {
    server: &'a Server<C>,
    ip: IpAddr,
}

impl<C> Drop for ClientSlot<'_, C> {
    fn drop(&mut self) {
        let mut clients = self.server.clients.lock().unwrap();
        if let Some(n) = clients.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                clients.remove(&self.ip);
            }
        }
    }
}

impl<C: Conversation> Server<C> {
    pub fn new(conversation: C, limits: Limits, tls: Option<TlsAcceptor>) -> Server<C> {
        Server { conversation, limits, tls, implicit_tls: false, clients: Mutex::default() }
    }

    /// A listener that speaks TLS from the first byte with `tls` (port 465).
    pub fn implicit_tls(conversation: C, limits: Limits, tls: TlsAcceptor) -> Server<C> {
        Server { conversation, limits, tls: Some(tls), implicit_tls: true, clients: Mutex::default() }
    }

    pub async fn run(self: Arc<Self>, listener: TcpListener, shutdown: Shutdown) {
        let sessions = Arc::new(Semaphore::new(self.limits.max_connections));
        loop {
            let accepted = tokio::select! {
                a = listener.accept() => a,
                _ = shutdown.wait() => break,
            };
            let Ok((stream, peer)) = accepted else { continue };
            let permit = sessions.clone().try_acquire_owned().ok();
            let me = self.clone();
            tokio::spawn(async move {
                let Some(permit) = permit else {
                    return refuse(stream, peer, C::NAME, "Too many connections, try later").await;
                };
                let Some(slot) = me.take_client_slot(peer.ip()) else {
                    return refuse(stream, peer, C::NAME, "Too many connections from your address, try later").await;
                };
                me.serve(stream, peer).await;
                drop(slot);
                drop(permit);
            });
        }
    }

    fn take_client_slot(&self, ip: IpAddr) -> Option<ClientSlot<'_, C>> {
        let mut clients = self.clients.lock().unwrap();
        let n = clients.entry(ip).or_insert(0);
        if *n >= self.limits.max_connections_per_client {
            return None;
        }
        *n += 1;
        Some(ClientSlot { server: self, ip })
    }

    /// One session under the session deadline, upgraded to TLS when the client asks for it
    /// (or from the start, with implicit TLS).
    async fn serve(&self, stream: TcpStream, peer: SocketAddr) {
        let deadline = Instant::now() + self.limits.session_timeout;
        if self.implicit_tls {
            return self.encrypted(stream, peer, deadline, true).await;
        }
        let mut plain = BufReader::new(stream);
        let tls = if self.tls.is_some() { Tls::Offered } else { Tls::Unavailable };
        let session = Session { peer, greet: true, tls };
        let Some(Next::StartTls) = self.bounded(&mut plain, session, deadline).await else { return };
        if !plain.buffer().is_empty() {
            // Commands sent behind STARTTLS before the handshake (RFC 3207 section 5): a
            // plaintext injection into the encrypted session. Refused by closing.
            tracing::info!(%peer, listener = C::NAME, "commands pipelined behind STARTTLS; closing");
            return;
        }
        self.encrypted(plain.into_inner(), peer, deadline, false).await;
    }

    /// The TLS handshake, then the conversation over it.
    async fn encrypted(&self, stream: TcpStream, peer: SocketAddr, deadline: Instant, greet: bool) {
        let Some(acceptor) = self.tls.clone() else { return };
        let encrypted = match tokio::time::timeout_at(deadline, acceptor.accept(stream)).await {
            Ok(Ok(encrypted)) => encrypted,
            Ok(Err(e)) => return tracing::debug!(%peer, listener = C::NAME, error = %e, "TLS handshake failed"),
            Err(_) => return tracing::debug!(%peer, listener = C::NAME, "TLS handshake past the session deadline"),
        };
        let session = Session { peer, greet, tls: Tls::Active };
        self.bounded(&mut BufReader::new(encrypted), session, deadline).await;
    }

    /// A conversation until `deadline`; a timeout is answered 421 before closing.
    async fn bounded<S: AsyncRead + AsyncWrite + Unpin + Send>(
        &self,
        stream: &mut BufReader<S>,
        session: Session,
        deadline: Instant,
    ) -> Option<Next> {
        let peer = session.peer;
        let conversation = self.conversation.converse(stream, session);
        let ended = match tokio::time::timeout_at(deadline, conversation).await {
            Ok(Ok(next)) => return Some(next),
            Ok(Err(e)) if e.kind() == std::io::ErrorKind::TimedOut => "421 4.4.2 Timeout exceeded, closing\r\n",
            Ok(Err(e)) => {
                tracing::debug!(%peer, listener = C::NAME, error = %e, "SMTP session ended");
                return None;
            }
            Err(_) => "421 4.4.2 Session too long, closing\r\n",
        };
        tracing::info!(%peer, listener = C::NAME, reply = ended.trim_end(), "SMTP session closed");
        let _ = tokio::time::timeout(Duration::from_secs(5), stream.get_mut().write_all(ended.as_bytes())).await;
        None
    }
}

/// Over `max_connections` or `max_connections_per_client`: 421 and close.
async fn refuse(mut stream: TcpStream, peer: SocketAddr, listener: &str, text: &str) {
    tracing::info!(%peer, listener, reason = text, "SMTP connection refused");
    let reply = format!("421 4.7.0 {text}\r\n");
    let _ = tokio::time::timeout(Duration::from_secs(5), stream.write_all(reply.as_bytes())).await;
}
