//! HTTPS on the admin API and the public listener, with a certificate from a CA made at test
//! time: a client that verifies against that CA is served; one that does not trust it, or
//! speaks cleartext, is not; a client that opens a connection and never starts the handshake
//! is dropped after `http.header_timeout`.

mod common;

use std::{
    io::Read,
    net::TcpStream,
    time::{Duration, Instant},
};

use sluice_testkit::{Process, TestRedis, free_port, test_ca::TestCa};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_and_the_public_listener_serve_https_to_a_verifying_client() {
    let ca = TestCa::new("https");
    let server = ca.issue("scheduler", &["127.0.0.1", "localhost"]);
    let (cert, key) = (server.cert.to_str().unwrap(), server.key.to_str().unwrap());
    let public_port = free_port();
    let extra = format!(
        "[http]\nheader_timeout = \"1s\"\n\n[public]\nlisten = \"127.0.0.1:{public_port}\"\n\
         base_url = \"https://127.0.0.1:{public_port}\"\nsecret = \"{}\"\ntls_cert = \"{cert}\"\ntls_key = \"{key}\"\n",
        "s".repeat(40)
    );
    let redis = TestRedis::start();
    let (path, base) = common::config(&redis, &extra);
    let api_base = base.replace("http://", "https://");
    let env = [("SLUICE__API__TLS_CERT", cert), ("SLUICE__API__TLS_KEY", key)];
    let scheduler = Process::spawn("scheduler", &common::bin(), &["--config", path.to_str().unwrap()], &env);

    let trusting = reqwest::Client::builder()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(&std::fs::read(&ca.ca_file).unwrap()).unwrap())
        .build()
        .unwrap();
    let healthz = format!("{api_base}/healthz");
    sluice_testkit::wait_for("the API over HTTPS", Duration::from_secs(20), || async {
        trusting.get(&healthz).send().await.ok().filter(|r| r.status().is_success())
    })
    .await;
    let campaigns = trusting.get(format!("{api_base}/v1/campaigns")).bearer_auth(common::TOKEN).send().await.unwrap();
    assert_eq!(campaigns.status(), 200, "an authenticated call over HTTPS");
    let public = trusting.get(format!("https://127.0.0.1:{public_port}/u/not-a-token")).send().await.unwrap();
    assert!(public.status().is_client_error(), "the public listener answers over HTTPS: {}", public.status());

    // A client that does not trust the CA, and one that speaks cleartext, get nothing.
    let stranger = reqwest::Client::builder().tls_built_in_root_certs(false).build().unwrap();
    let refused = stranger.get(&healthz).send().await.unwrap_err();
    assert!(format!("{refused:?}").contains("UnknownIssuer"), "{refused:?}");
    for plain in [base.clone(), format!("http://127.0.0.1:{public_port}")] {
        let cleartext = reqwest::get(format!("{plain}/healthz")).await;
        assert!(cleartext.is_err() || !cleartext.unwrap().status().is_success(), "{plain}: no cleartext service");
    }

    // A connection that never starts its handshake is closed after the header timeout.
    let port: u16 = base.rsplit(':').next().unwrap().parse().unwrap();
    let started = Instant::now();
    let ended = tokio::task::spawn_blocking(move || {
        let mut idle = TcpStream::connect(("127.0.0.1", port)).unwrap();
        idle.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        idle.read(&mut [0u8; 16])
    })
    .await
    .unwrap();
    assert!(matches!(ended, Ok(0)), "closed by the server: {ended:?}");
    assert!(started.elapsed() < Duration::from_secs(5), "within the header timeout: {:?}", started.elapsed());
    drop(scheduler);
}
