//! `rediss://` through the real binaries against redis-servers with TLS ports and
//! certificates made at test time: a campaign runs end to end, on one server and on a
//! three-master cluster (TLS on the cluster bus too), each requiring client certificates; and a server whose certificate the configured CA did not sign, or a
//! client without the certificate the server requires, is never talked to.

use crate::common;

use std::time::Duration;

use sluice_testkit::{
    Process, RedisCluster, RedisServer, TestRedis, bin_path, config_toml_for, free_port, smtp_sink::SmtpSink,
    test_ca::TestCa, wait_for,
};

/// A campaign end to end over `redis`; every client but this test's own came in on a TLS
/// port (`ports`: each server's plain and TLS port).
async fn campaign_over_tls(redis: TestRedis, ports: Vec<(u16, u16)>) {
    let stack = common::start_full(redis, SmtpSink::start(false).await, "", 1).await;
    let recipients = common::recipients(40, 4, |i| format!("u{i}"));
    let (status, reply) = stack.call("POST", "/v1/campaigns", Some(common::campaign_body("tls", recipients))).await;
    assert_eq!(status, 201, "{reply}");
    let done = stack.wait_status("tls", "completed", Duration::from_secs(30)).await;
    assert_eq!(common::counts(&done)["sent"], 40, "{done}");
    for (plain, tls) in ports {
        let mut conn = redis::Client::open(format!("redis://127.0.0.1:{plain}/0")).unwrap().get_connection().unwrap();
        let clients: String = redis::cmd("CLIENT").arg("LIST").query(&mut conn).unwrap();
        let on = |port: u16| clients.lines().filter(|l| l.contains(&format!("laddr=127.0.0.1:{port} "))).count();
        assert!(on(tls) >= 2, "the scheduler and the worker use TLS:\n{clients}");
        assert!(on(plain) <= 2, "only this test uses the plain port:\n{clients}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_campaign_runs_over_rediss_with_client_certificates() {
    let ca = TestCa::new("redis");
    let redis = RedisServer::start_tls(&ca, true);
    let ports = vec![(redis.port, redis.tls.as_ref().unwrap().port)];
    campaign_over_tls(TestRedis::Single(redis), ports).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_campaign_runs_over_rediss_on_a_cluster() {
    let ca = TestCa::new("redis-cluster");
    let cluster = RedisCluster::start_tls(&ca, true);
    let ports = cluster.nodes.iter().map(|n| (n.port, n.tls.as_ref().unwrap().port)).collect();
    campaign_over_tls(TestRedis::Cluster(cluster), ports).await;
}

/// Starts a scheduler with `redis_body` and returns its log once it reports Redis unreachable.
async fn unreachable_log(redis_body: &str) -> String {
    let path = std::env::temp_dir().join(format!("sluice-rediss-{}-{}.toml", std::process::id(), free_port()));
    std::fs::write(&path, config_toml_for(redis_body, free_port(), free_port(), common::TOKEN, "")).unwrap();
    let scheduler =
        Process::spawn("scheduler", &bin_path("sluice-scheduler"), &["--config", path.to_str().unwrap()], &[]);
    wait_for("the unreachable-Redis message", Duration::from_secs(20), || async {
        let log = scheduler.log_text();
        log.contains("Redis is unreachable; retrying").then_some(log)
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_the_ca_did_not_sign_or_a_missing_client_certificate_is_refused() {
    let ca = TestCa::new("redis-real");
    let redis = RedisServer::start_tls(&ca, true);
    let endpoint = redis.tls.as_ref().unwrap();
    let client = endpoint.client.as_ref().unwrap();

    let impostor_ca = TestCa::new("redis-other");
    let wrong_ca = format!(
        "url = \"rediss://127.0.0.1:{}/0\"\nca_file = \"{}\"\nclient_cert = \"{}\"\nclient_key = \"{}\"",
        endpoint.port,
        impostor_ca.ca_file.display(),
        client.cert.display(),
        client.key.display()
    );
    let log = unreachable_log(&wrong_ca).await;
    assert!(log.to_lowercase().contains("certificate"), "the reason names the certificate:\n{log}");

    let no_client_cert =
        format!("url = \"rediss://127.0.0.1:{}/0\"\nca_file = \"{}\"", endpoint.port, ca.ca_file.display());
    let log = unreachable_log(&no_client_cert).await;
    assert!(log.contains("CertificateRequired"), "the server asked for a client certificate:\n{log}");

    let clients: String = redis::cmd("CLIENT").arg("LIST").query(&mut redis.conn()).unwrap();
    assert_eq!(clients.lines().count(), 1, "no refused client got a session:\n{clients}");
}
