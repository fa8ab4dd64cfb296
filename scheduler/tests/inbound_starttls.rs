//! STARTTLS on the inbound SMTP listener, with a certificate from a CA made at test time:
//! Python's smtplib, verifying against that CA, delivers a report over TLS; a client that does
//! not trust the CA refuses to go on; commands pipelined behind STARTTLS (a plaintext injection
//! into the encrypted session, RFC 3207 section 5) end the connection; a client that never
//! starts its handshake is cut off at the session deadline.

mod common;

use std::{net::SocketAddr, process::Command, time::Duration};

use common::Api;
use sluice_shared::keys;
use sluice_testkit::{free_port, test_ca::TestCa, wait_for};
use tokio::{
    io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader},
    net::TcpStream,
};

/// Sends one message with smtplib over STARTTLS, trusting only `ca`; prints the TLS version.
const CLIENT: &str = r#"
import smtplib, ssl, sys
port, ca = int(sys.argv[1]), sys.argv[2]
context = ssl.create_default_context(cafile=ca)
with smtplib.SMTP("127.0.0.1", port, timeout=10) as s:
    s.ehlo("reporter.example")
    s.starttls(context=context)
    s.ehlo("reporter.example")
    s.sendmail("mailer-daemon@reporter.example", ["bounce@bounces.shop.example"],
               "From: mailer-daemon@reporter.example\r\nSubject: Undelivered\r\n\r\nno such user\r\n")
    print(s.sock.version())
"#;

fn python(port: u16, ca: &std::path::Path) -> std::process::Output {
    Command::new("python3")
        .args(["-c", CLIENT, &port.to_string(), ca.to_str().unwrap()])
        .output()
        .expect("python3 (scripts/test.sh installs it)")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reports_arrive_over_starttls_to_a_verifying_client_only() {
    let ca = TestCa::new("inbound");
    let server = ca.issue("mx", &["127.0.0.1", "localhost"]);
    let port = free_port();
    let config = format!(
        "[public]\nlisten = \"127.0.0.1:{}\"\nbase_url = \"https://m.shop.example\"\nsecret = \"{}\"\n\n\
         [bounces]\nreturn_path_domain = \"bounces.shop.example\"\n\n\
         [inbound]\nsmtp_listen = \"127.0.0.1:{port}\"\ntls_cert = \"{}\"\ntls_key = \"{}\"\nsession_timeout = \"2s\"\n",
        free_port(),
        "s".repeat(40),
        server.cert.display(),
        server.key.display()
    );
    let api = Api::start(&config).await;

    let sent = tokio::task::spawn_blocking({
        let ca = ca.ca_file.clone();
        move || python(port, &ca)
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&sent.stdout);
    assert!(sent.status.success(), "{}\n{}", stdout, String::from_utf8_lossy(&sent.stderr));
    assert!(stdout.trim().starts_with("TLSv1."), "{stdout}");
    wait_for("the report kept", Duration::from_secs(10), || async {
        let kept: usize = redis::cmd("XLEN").arg(keys::inbound_unmatched()).query(&mut api.redis.conn()).unwrap();
        (kept == 1).then_some(())
    })
    .await;

    let stranger = TestCa::new("inbound-other");
    let refused = tokio::task::spawn_blocking(move || python(port, &stranger.ca_file)).await.unwrap();
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("CERTIFICATE_VERIFY_FAILED"), "{refused:?}");

    // STARTTLS with a command behind it in the same write: 220, then the connection ends.
    let mut c = BufReader::new(TcpStream::connect(SocketAddr::from(([127, 0, 0, 1], port))).await.unwrap());
    let mut line = String::new();
    c.read_line(&mut line).await.unwrap();
    c.get_mut().write_all(b"EHLO x\r\n").await.unwrap();
    let mut ehlo = String::new();
    while !ehlo.contains("250 ") {
        c.read_line(&mut ehlo).await.unwrap();
    }
    assert!(ehlo.contains("250-STARTTLS"), "{ehlo}");
    c.get_mut().write_all(b"STARTTLS\r\nMAIL FROM:<evil@x.example>\r\n").await.unwrap();
    line.clear();
    c.read_line(&mut line).await.unwrap();
    assert!(line.starts_with("220"), "{line}");
    let mut rest = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), c.read_to_end(&mut rest)).await;
    assert!(matches!(read, Ok(Ok(0))), "closed without a reply: {read:?} {rest:?}");

    // STARTTLS, then no handshake: the session deadline (2 s here) still ends it.
    let mut c = BufReader::new(TcpStream::connect(SocketAddr::from(([127, 0, 0, 1], port))).await.unwrap());
    line.clear();
    c.read_line(&mut line).await.unwrap();
    c.get_mut().write_all(b"STARTTLS\r\n").await.unwrap();
    line.clear();
    c.read_line(&mut line).await.unwrap();
    assert!(line.starts_with("220"), "{line}");
    let started = std::time::Instant::now();
    let read = tokio::time::timeout(Duration::from_secs(10), c.read_to_end(&mut rest)).await;
    assert!(matches!(read, Ok(Ok(_))), "closed by the server: {read:?}");
    assert!(started.elapsed() < Duration::from_secs(5), "within the session deadline: {:?}", started.elapsed());
}
