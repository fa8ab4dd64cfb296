//! The CLI against a running scheduler (its own redis-server): campaign create from JSON with
//! recipients from a CSV with bad rows, status, pause/resume/cancel, suppressions (add, list,
//! import with a bad row, export, remove), dead letters; exit codes and --json output.

use std::{
    path::Path,
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use serde_json::Value;
use sluice_testkit::{Process, RedisServer, bin_path, config_toml, free_port, wait_for};

const TOKEN: &str = "cli-token-0123456";

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

fn sluice(api: &str, token: &str, args: &[&str]) -> Run {
    let out = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .env("SLUICE_API_URL", api)
        .env("SLUICE_TOKEN", token)
        .args(args)
        .output()
        .unwrap();
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// [`sluice`] that fails the test, instead of hanging it, when the command runs past `deadline`.
fn sluice_within(api: &str, args: &[&str], deadline: Duration) -> Run {
    let mut child = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .env("SLUICE_API_URL", api)
        .env("SLUICE_TOKEN", TOKEN)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > deadline {
            child.kill().unwrap();
            panic!("sluice {args:?} still running after {deadline:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().unwrap();
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn json(run: &Run) -> Value {
    serde_json::from_str(run.stdout.trim()).unwrap_or_else(|e| panic!("{e}: {}\n{}", run.stdout, run.stderr))
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn campaign_suppression_and_dead_letter_commands() {
    let redis = RedisServer::start();
    let (api_port, ops_port) = (free_port(), free_port());
    let dir = std::env::temp_dir().join(format!("sluice-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = write(&dir, "sluice.toml", &config_toml(&redis.url(), api_port, ops_port, TOKEN, ""));
    let _scheduler = Process::spawn("scheduler", &bin_path("sluice-scheduler"), &["--config", &config], &[]);
    let api = format!("http://127.0.0.1:{api_port}");
    let http = reqwest::Client::new();
    // Ready, not just alive: /readyz answers 200 once Redis answers the scheduler.
    wait_for("scheduler ready", Duration::from_secs(20), || {
        let (http, url) = (http.clone(), format!("http://127.0.0.1:{ops_port}/readyz"));
        async move { http.get(url).send().await.ok().filter(|r| r.status().is_success()).map(|_| ()) }
    })
    .await;
    let api = api.as_str();
    let run = |args: &[&str]| sluice(api, TOKEN, args);

    // Create with a CSV: the header names the vars; rows 3 and 4 are bad.
    let campaign = write(
        &dir,
        "c.json",
        r#"{"id": "spring", "from": {"email": "news@shop.example"}, "subject": "Hi {{name}}", "text": "Plan {{plan}}"}"#,
    );
    let csv = write(
        &dir,
        "r.csv",
        "email,name,plan\nann@x.example,Ann,gold\nnot-an-address,Bob,silver\ncat@x.example,Cat\ndan@x.example,Dan,bronze\n",
    );
    let created = run(&["--json", "campaign", "create", &campaign, "--csv", &csv]);
    assert_eq!(created.code, 1, "created, with row errors: {}\n{}", created.stdout, created.stderr);
    assert!(created.stderr.contains("row 3:") && created.stderr.contains("row 4:"), "{}", created.stderr);
    let body = json(&created);
    assert_eq!(
        (body["campaign"]["accepted"].as_u64(), body["campaign"]["status"].as_str()),
        (Some(2), Some("running")),
        "{body}"
    );
    assert_eq!(body["row_errors"].as_array().unwrap().len(), 2);

    let status = run(&["--json", "campaign", "status", "spring"]);
    assert_eq!(status.code, 0, "{}", status.stderr);
    assert_eq!(json(&status)["counts"]["total"], 2);
    assert!(run(&["campaign", "status", "spring"]).stdout.starts_with("spring running: 2 total"));
    for (action, expect) in [("pause", "paused"), ("resume", "running"), ("cancel", "cancelled")] {
        let r = run(&["campaign", action, "spring"]);
        assert_eq!((r.code, r.stdout.trim()), (0, format!("spring: {expect}").as_str()), "{}", r.stderr);
    }
    let watched = run(&["--json", "campaign", "status", "spring", "--watch"]);
    assert_eq!((watched.code, json(&watched)["status"].as_str()), (0, Some("cancelled")), "watch ends when finished");
    let again = run(&["campaign", "resume", "spring"]);
    assert_eq!(again.code, 1, "a refused transition: {}", again.stderr);
    assert!(again.stderr.contains("409"), "{}", again.stderr);

    // Suppressions.
    assert_eq!(run(&["suppress", "add", "eve@x.example", "--reason", "asked"]).code, 0);
    let import = write(&dir, "s.csv", "email,reason\nfay@x.example,complaint\n,empty\ngus@x.example,\n");
    let imported = run(&["suppress", "import", &import]);
    assert_eq!(imported.code, 1, "{}", imported.stderr);
    assert!(
        imported.stdout.contains("added 2") && imported.stderr.contains("line 3: missing field `email`"),
        "{}{}",
        imported.stdout,
        imported.stderr
    );
    let scoped = run(&["suppress", "add", "hal@x.example", "--scope", "list", "--list", "news"]);
    assert_eq!(scoped.code, 0, "{}", scoped.stderr);
    let listed = json(&run(&["--json", "suppress", "list"]));
    let mut emails: Vec<String> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|i| format!("{} {}", i["email"].as_str().unwrap(), i["scope"].as_str().unwrap()))
        .collect();
    emails.sort();
    assert_eq!(emails, ["eve@x.example all", "fay@x.example all", "gus@x.example all", "hal@x.example list"]);
    let export = run(&["suppress", "export"]);
    assert!(
        export.stdout.starts_with("email,scope,list,reason,source,created_at,campaign,detail\r\n")
            && export.stdout.contains("fay@x.example,all,,complaint,import,")
            && export.stdout.contains("hal@x.example,list,news,manual,api,"),
        "{}",
        export.stdout
    );
    let only_news = run(&["suppress", "export", "--format", "ndjson", "--list", "news"]);
    assert_eq!(only_news.stdout.lines().count(), 1, "{}", only_news.stdout);
    // The export imports back as it was: nothing new.
    let again = write(&dir, "again.csv", &export.stdout);
    let reimported = json(&run(&["--json", "suppress", "import", &again]));
    assert_eq!((reimported["added"].as_u64(), reimported["existing"].as_u64()), (Some(0), Some(4)), "{reimported}");
    let bad_scope = run(&["suppress", "add", "ivy@x.example", "--scope", "every"]);
    assert!(bad_scope.code == 1 && bad_scope.stderr.contains("scope"), "{}", bad_scope.stderr);
    assert_eq!(run(&["suppress", "remove", "eve@x.example"]).code, 0);
    assert_eq!(run(&["suppress", "remove", "eve@x.example"]).code, 1, "404 the second time");
    assert_eq!(run(&["suppress", "remove", "hal@x.example", "--list", "news"]).code, 0);

    // Dead letters: none.
    let dlq = run(&["--json", "dlq", "list"]);
    assert_eq!((dlq.code, json(&dlq)), (0, Value::Array(vec![])));

    // Queues: nothing queued after the cancel; the table prints its header.
    let queues = run(&["queues", "--once"]);
    assert_eq!(queues.code, 0, "{}", queues.stderr);
    assert!(queues.stdout.starts_with("DESTINATION"), "{}", queues.stdout);
    assert!(json(&run(&["--json", "queues", "--once"]))["destinations"].is_array());
    // Piped, as here, without --once: one frame, no screen-clearing codes, and it exits.
    let piped = sluice_within(api, &["queues", "--every", "1"], Duration::from_secs(20));
    assert_eq!(piped.code, 0, "{}", piped.stderr);
    assert!(piped.stdout.starts_with("DESTINATION") && !piped.stdout.contains('\x1b'), "{:?}", piped.stdout);
    assert_eq!(piped.stdout.matches("DESTINATION").count(), 1, "one frame: {}", piped.stdout);

    // Exit codes: refused token 1, unreachable 3, bad input file 2.
    let refused = sluice(api, "wrong-token-000000", &["campaign", "status", "spring"]);
    assert_eq!(refused.code, 1);
    assert!(refused.stderr.contains("401"), "{}", refused.stderr);
    let down = sluice(&format!("http://127.0.0.1:{}", free_port()), TOKEN, &["suppress", "list"]);
    assert_eq!(down.code, 3, "{}", down.stderr);
    let missing = run(&["campaign", "create", "/nonexistent/c.json"]);
    assert_eq!(missing.code, 2);
    assert!(missing.stderr.contains("/nonexistent/c.json"), "{}", missing.stderr);
}
