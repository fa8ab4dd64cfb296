//! Startup behaviour of the real binary: a bad config exits non-zero naming the key and
//! value; a submission port in use stops it naming the key; Redis down at startup is
//! reported clearly and retried until it comes up.

mod common;

use std::{process::Command, time::Duration};

use sluice_testkit::{Process, RedisServer, free_port, wait_for};

fn run_with(config_extra: &str, env: &[(&str, &str)]) -> (i32, String) {
    let (path, _, _) = common::config_with_ops("url = \"redis://127.0.0.1:1/0\"", config_extra);
    let mut cmd = Command::new(common::bin());
    cmd.arg("--config").arg(&path);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn a_bad_config_names_the_key_and_exits_non_zero() {
    type Env<'a> = &'a [(&'a str, &'a str)];
    let cases: [(&str, Env, &str); 5] = [
        ("[limits.default]\nrate = \"fast\"\n", &[], "rate"),
        ("[limits.default]\nburts = 5\n", &[], "burts"),
        ("[limits.domains.\"gmail.com\"]\nconnections = 0\n", &[], "connections"),
        ("", &[("SLUICE__LIMITS__DEFAULT__BURST", "0")], "limits.default.burst"),
        ("", &[("SLUICE__API__LISTEN", "nowhere")], "api.listen"),
    ];
    for (extra, env, needle) in cases {
        let (code, stderr) = run_with(extra, env);
        assert_eq!(code, 2, "{extra:?} {env:?}: {stderr}");
        assert!(stderr.contains(needle), "{extra:?} {env:?}: {stderr}");
    }
}

#[test]
fn a_redis_url_it_cannot_use_is_refused_without_printing_the_password() {
    for url in ["http://user:hunter2-secret@10.0.0.1/", "ftp://:hunter2-secret@10.0.0.1:6380/0"] {
        let (code, stderr) = run_with("", &[("SLUICE__REDIS__URL", url)]);
        assert_eq!(code, 2, "{url}: {stderr}");
        assert!(stderr.contains("redis.url") && stderr.contains("***@10.0.0.1"), "{url}: {stderr}");
        assert!(!stderr.contains("hunter2"), "the password leaked: {stderr}");
    }
    // A value of the wrong type is quoted by the config parser: its credentials are not.
    let (code, stderr) = run_with("", &[("SLUICE__REDIS__MODE", "redis://u:hunter2-secret@10.0.0.1/0")]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("redis://***@10.0.0.1/0") && !stderr.contains("hunter2"), "{stderr}");
    let (code, stderr) = run_with("", &[("SLUICE__REDIS__CA_FILE", "/etc/hosts")]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("redis.ca_file") && stderr.contains("only with rediss://"), "{stderr}");
}

#[tokio::test]
async fn redis_down_at_startup_is_retried_until_it_comes_up() {
    let port = free_port();
    let (path, base, ops) = common::config_with_ops(&format!("url = \"redis://127.0.0.1:{port}/0\""), "");
    let mut scheduler = Process::spawn("scheduler", &common::bin(), &["--config", path.to_str().unwrap()], &[]);
    wait_for("the unreachable-Redis message", Duration::from_secs(10), || async {
        scheduler.log_text().contains("Redis is unreachable; retrying").then_some(())
    })
    .await;
    let http = reqwest::Client::new();
    let status = |path: &'static str| {
        let (http, url) = (http.clone(), format!("{ops}{path}"));
        async move { http.get(url).send().await.map(|r| r.status().as_u16()).unwrap_or(0) }
    };
    assert_eq!(status("/healthz").await, 200, "alive while waiting for Redis");
    assert_eq!(status("/readyz").await, 503, "not ready without Redis");
    let _redis = RedisServer::start_on(port, false);
    wait_for("the API after Redis came up", Duration::from_secs(20), || {
        let (http, url) = (http.clone(), format!("{base}/v1/campaigns"));
        async move {
            http.get(url).bearer_auth(common::TOKEN).send().await.ok().filter(|r| r.status().is_success()).map(|_| ())
        }
    })
    .await;
    assert_eq!(status("/readyz").await, 200, "ready once Redis answers");
    assert!(scheduler.terminate().success(), "SIGTERM exits 0");
}
