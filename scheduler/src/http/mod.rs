//! Serving the scheduler's HTTP listeners (admin API, public) under `[http]` limits, the way
//! servers facing the internet are held: a request's head must arrive within
//! `header_timeout` (which also ends idle keep-alive connections), a body may not pause
//! longer than `body_timeout`, and at most `max_connections` are served at once (more wait to
//! be accepted). Each request carries its socket peer ([`Peer`]) for [`client`]. With a TLS
//! acceptor the listener speaks HTTPS only, and the handshake too must end within
//! `header_timeout`.

pub mod client;
pub mod rate;

use std::{net::SocketAddr, sync::Arc};

use axum::Router;
use hyper::{body::Incoming, server::conn::http1};
use hyper_util::rt::{TokioIo, TokioTimer};
use sluice_shared::{config::HttpConfig, shutdown::Shutdown};
use tokio::{
    io::{AsyncRead, AsyncWrite},
    net::TcpListener,
    sync::Semaphore,
    task::JoinSet,
};
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;
use tower_http::timeout::TimeoutBody;

/// The socket peer of a request.
#[derive(Debug, Clone, Copy)]
pub struct Peer(pub SocketAddr);

/// Serves `app` on `listener` until shutdown, then lets open requests finish.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: &HttpConfig,
    tls: Option<TlsAcceptor>,
    shutdown: Shutdown,
) {
    let connections = Arc::new(Semaphore::new(limits.max_connections));
    let (header_timeout, body_timeout) = (limits.header_timeout.get(), limits.body_timeout.get());
    let mut open = JoinSet::new();
    loop {
        let permit = tokio::select! {
            p = connections.clone().acquire_owned() => p.expect("the connection semaphore is never closed"),
            _ = shutdown.wait() => break,
        };
        let (stream, peer) = tokio::select! {
            a = listener.accept() => match a {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!(error = %e, "accepting an HTTP connection failed");
                    continue;
                }
            },
            _ = shutdown.wait() => break,
        };
        let _ = stream.set_nodelay(true);
        let (app, shutdown, tls) = (app.clone(), shutdown.clone(), tls.clone());
        open.spawn(async move {
            let limits = Limits { header_timeout, body_timeout };
            match tls {
                None => serve_connection(stream, peer, app, limits, shutdown).await,
                Some(tls) => match tokio::time::timeout(header_timeout, tls.accept(stream)).await {
                    Ok(Ok(encrypted)) => serve_connection(encrypted, peer, app, limits, shutdown).await,
                    Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                    Err(_) => tracing::debug!(%peer, "TLS handshake not done within header_timeout"),
                },
            }
            drop(permit);
        });
        while open.try_join_next().is_some() {}
    }
    while open.join_next().await.is_some() {}
}

#[derive(Clone, Copy)]
struct Limits {
    header_timeout: std::time::Duration,
    body_timeout: std::time::Duration,
}

/// Serves one connection (cleartext or TLS) until it ends or shutdown lets it finish.
async fn serve_connection<S>(stream: S, peer: SocketAddr, app: Router, limits: Limits, shutdown: Shutdown)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
        let mut request = request.map(|body| TimeoutBody::new(limits.body_timeout, body));
        request.extensions_mut().insert(Peer(peer));
        app.clone().oneshot(request)
    });
    let mut builder = http1::Builder::new();
    builder.timer(TokioTimer::new()).header_read_timeout(limits.header_timeout);
    let connection = builder.serve_connection(TokioIo::new(stream), service);
    tokio::pin!(connection);
    let ended = tokio::select! {
        r = connection.as_mut() => r,
        _ = shutdown.wait() => {
            connection.as_mut().graceful_shutdown();
            connection.await
        }
    };
    if let Err(e) = ended {
        tracing::debug!(%peer, error = %e, "HTTP connection ended");
    }
}
