//! An HTTPS server that answers every request with one fixed response (an MTA-STS policy
//! host, say), with a certificate from a [`super::test_ca::TestCa`]; it counts requests.

use std::{
    net::SocketAddr,
    path::Path,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
};

use tokio::{
    io::{AsyncBufReadExt, AsyncWriteExt, BufReader},
    net::TcpListener,
};

pub struct StaticHttps {
    pub addr: SocketAddr,
    pub requests: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl StaticHttps {
    /// Serves `body` as `content_type` on `listen` over TLS with `cert` and `key` (PEM files).
    pub async fn start(listen: &str, cert: &Path, key: &Path, content_type: &str, body: &str) -> StaticHttps {
        Self::start_with(listen, cert, key, "200 OK", &format!("Content-Type: {content_type}\r\n"), body).await
    }

    /// Answers `302 Found` pointing at `location`.
    pub async fn redirect(listen: &str, cert: &Path, key: &Path, location: &str) -> StaticHttps {
        Self::start_with(listen, cert, key, "302 Found", &format!("Location: {location}\r\n"), "").await
    }

    async fn start_with(listen: &str, cert: &Path, key: &Path, status: &str, headers: &str, body: &str) -> StaticHttps {
        let acceptor = super::test_ca::acceptor_from_files(cert, key);
        let listener = TcpListener::bind(listen).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let response =
            format!("HTTP/1.1 {status}\r\n{headers}Content-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len());
        let requests = Arc::new(AtomicU64::new(0));
        let counted = requests.clone();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (acceptor, response, counted) = (acceptor.clone(), response.clone(), counted.clone());
                tokio::spawn(async move {
                    let Ok(tls) = acceptor.accept(stream).await else { return };
                    let mut tls = BufReader::new(tls);
                    let mut line = String::new();
                    // The request head ends at an empty line.
                    while tls.read_line(&mut line).await.unwrap_or(0) > 0 && line != "\r\n" {
                        line.clear();
                    }
                    counted.fetch_add(1, Ordering::SeqCst);
                    let _ = tls.get_mut().write_all(response.as_bytes()).await;
                    let _ = tls.get_mut().shutdown().await;
                });
            }
        });
        StaticHttps { addr, requests, task }
    }

    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::SeqCst)
    }
}

impl Drop for StaticHttps {
    fn drop(&mut self) {
        self.task.abort();
    }
}
