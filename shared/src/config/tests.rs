use super::*;

const ISSUE_EXAMPLE: &str = r#"
[redis]
url = "redis://127.0.0.1:6379/0" # the example as the issue wrote it: parsed only, never connected to

[api]
listen = "127.0.0.1:8025"
tokens = ["change-me"]

[metrics]
listen = "127.0.0.1:9464"

[[smtp.relays]]
host = "127.0.0.1"
port = 2525
tls = "none"

[limits.default]
rate = "100/s"
burst = 100
connections = 10

[limits.domains."gmail.com"]
rate = "20/s"
"#;

#[test]
fn the_documented_example_loads_for_both_roles() {
    let c = Config::from_toml(ISSUE_EXAMPLE, Role::Scheduler).unwrap();
    Config::from_toml(ISSUE_EXAMPLE, Role::Worker).unwrap();
    assert_eq!(c.smtp.relays[0].port, 2525);
    let g = c.limits.for_domain("gmail.com");
    assert_eq!((g.per_second, g.burst, g.connections), (20.0, 20, 10));
    let o = c.limits.for_domain("example.org");
    assert_eq!((o.per_second, o.burst, o.connections), (100.0, 100, 10));
    assert_eq!(c.limits.label("gmail.com"), "gmail.com");
    assert_eq!(c.limits.label("example.org"), "other");
}

fn error_of(text: &str, role: Role) -> String {
    Config::from_toml(text, role).unwrap_err().to_string()
}

#[test]
fn bad_values_name_the_key() {
    let base = "[redis]\nurl = \"redis://x\"\n[api]\ntokens=[\"long-enough\"]\n";
    let cases = [
        (format!("{base}[limits.default]\nrate = \"fast\"\n"), "rate"),
        (format!("{base}[limits.default]\nburst = 0\n"), "limits.default.burst"),
        (format!("{base}[limits.domains.\"gmail.com\"]\nconnections = 0\n"), "connections"),
        (format!("{base}[metrics]\nlisten = \"nowhere\"\n"), "metrics.listen"),
        (format!("{base}[retry]\nschedule = []\n"), "retry.schedule"),
        ("[redis]\nurl = \"http://x\"\n[api]\ntokens=[\"long-enough\"]\n".to_string(), "redis.url"),
        ("[redis]\nurl = \"redis://x\"\n".to_string(), "api.tokens"),
        (format!("{base}[api.extra]\n"), "extra"),
        (format!("{base}[limits.default]\nrte = \"1/s\"\n"), "rte"),
        ("[redis]\nseeds = [\"redis://a:1\", \"a:2\"]\n[api]\ntokens=[\"long-enough\"]\n".to_string(), "redis.seeds"),
        ("[redis]\nmode = \"ring\"\nurl = \"redis://x\"\n[api]\ntokens=[\"long-enough\"]\n".to_string(), "ring"),
        ("[redis]\npool_size = 4\n[api]\ntokens=[\"long-enough\"]\n".to_string(), "redis.url"),
        ("[redis]\nurl = \"rediss://x\"\nca_file = \"/no/such.pem\"\n".to_string(), "redis.ca_file"),
        (
            "[redis]\nurl = \"rediss://x\"\nclient_cert = \"/etc/hosts\"\n".to_string(),
            "client_cert and client_key go together",
        ),
        ("[redis]\nurl = \"redis://x\"\nclient_key = \"/etc/hosts\"\n".to_string(), "only with rediss://"),
        ("[redis]\nseeds = [\"rediss://a:1\", \"redis://b:1\"]\n".to_string(), "mix rediss:// and redis://"),
        ("[redis]\nurl = \"redis://x\"\nreplica_ack_timeout = \"6s\"\n".to_string(), "redis.replica_ack_timeout"),
        (
            format!(
                "{base}[[api.keys]]\nid = \"k\"\nsha256 = \"{}\"\nscopes = [\"send\"]\nsend_rate = \"fast\"\n",
                "a".repeat(64)
            ),
            "send_rate",
        ),
        (
            format!(
                "{base}[[api.keys]]\nid = \"k\"\nsha256 = \"{}\"\nscopes = [\"send\"]\nsend_rate = \"0/s\"\n",
                "a".repeat(64)
            ),
            "greater than zero",
        ),
    ];
    for (text, needle) in cases {
        let err = error_of(&text, Role::Scheduler);
        assert!(err.contains(needle), "expected {needle:?} in {err:?}");
    }
}

#[test]
fn passwords_in_redis_urls_are_redacted() {
    assert_eq!(super::redacted_url("rediss://u:p@h:1/0"), "rediss://***@h:1/0");
    assert_eq!(super::redacted_url("redis://h:1/0"), "redis://h:1/0");
    assert_eq!(super::redacted_url("redis://h/a@b"), "redis://h/a@b");
    assert_eq!(super::redacted_url("no scheme :p@h"), "***");
}

#[test]
fn a_cluster_is_named_by_seeds_or_by_mode() {
    let tail = "\n[api]\ntokens=[\"long-enough\"]\n";
    let by_seeds =
        Config::from_toml(&format!("[redis]\nseeds = [\"redis://a:1\", \"redis://b:2\"]{tail}"), Role::Scheduler)
            .unwrap();
    assert!(by_seeds.redis.is_cluster());
    assert_eq!(by_seeds.redis.nodes(), ["redis://a:1", "redis://b:2"]);
    let by_mode =
        Config::from_toml(&format!("[redis]\nmode = \"cluster\"\nurl = \"redis://a:1\"{tail}"), Role::Scheduler)
            .unwrap();
    assert!(by_mode.redis.is_cluster());
    assert_eq!(by_mode.redis.nodes(), ["redis://a:1"]);
    let single = Config::from_toml(&format!("[redis]\nurl = \"redis://a:1\"{tail}"), Role::Scheduler).unwrap();
    assert!(!single.redis.is_cluster());
}

#[test]
fn sentinel_mode_names_its_sentinels_and_master_and_nothing_else() {
    let tail = "\n[api]\ntokens=[\"long-enough\"]\n";
    let sentinels = "sentinels = [\"redis://:pw@a:26379/2\", \"redis://b:26379\"]";
    let cfg =
        Config::from_toml(&format!("[redis]\n{sentinels}\nmaster_name = \"main\"{tail}"), Role::Scheduler).unwrap();
    assert!(cfg.redis.is_sentinel() && !cfg.redis.is_cluster());
    assert_eq!(cfg.redis.nodes(), ["redis://:pw@a:26379/2", "redis://b:26379"]);
    assert_eq!(cfg.redis.describe(), "master \"main\" via sentinels redis://***@a:26379/2,redis://b:26379");
    let login = format!("[redis]\n{sentinels}\nmaster_name = \"main\"\nurl = \"redis://u:pw@main:6379/3\"{tail}");
    assert!(Config::from_toml(&login, Role::Scheduler).unwrap().redis.is_sentinel());
    let cases = [
        ("mode = \"sentinel\"\nmaster_name = \"main\"".to_string(), "redis.sentinels"),
        (sentinels.to_string(), "redis.master_name` = \"\": is required"),
        (format!("{sentinels}\nmaster_name = \"\""), "redis.master_name` = \"\": is required"),
        (format!("{sentinels}\nmaster_name = \"m\"\nurl = \"redis://:pw@x\""), "redis://user:password@m/db"),
        (format!("{sentinels}\nmaster_name = \"m\"\nurl = \"rediss://:pw@m\""), "redis://user:password@m/db"),
        (format!("{sentinels}\nmaster_name = \"m\"\nmode = \"cluster\""), "a cluster has no sentinels"),
        (format!("{sentinels}\nmaster_name = \"m\"\nseeds = [\"redis://c:1\"]"), "a cluster has no sentinels"),
        ("sentinels = [\"rediss://a:1\"]\nmaster_name = \"m\"".to_string(), "not supported yet"),
        ("sentinels = [\"redis+unix:///s\"]\nmaster_name = \"m\"".to_string(), "not unix sockets"),
        ("sentinels = [\"http://a:1\"]\nmaster_name = \"m\"".to_string(), "redis.sentinels"),
        ("url = \"redis://x\"\nmaster_name = \"m\"".to_string(), "only with `redis.sentinels`"),
    ];
    for (body, needle) in cases {
        let err = error_of(&format!("[redis]\n{body}{tail}"), Role::Scheduler);
        assert!(err.contains(needle), "{body}: expected {needle:?} in {err:?}");
        assert!(!err.contains(":pw@"), "{body}: a password in {err:?}");
    }
}

#[test]
fn worker_needs_a_relay() {
    let err = error_of("[redis]\nurl = \"redis://x\"\n", Role::Worker);
    assert!(err.contains("smtp.relays"), "{err}");
    let err =
        error_of("[redis]\nurl = \"redis://x\"\n[[smtp.relays]]\nhost=\"h\"\nport=25\ntls=\"ssl\"\n", Role::Worker);
    assert!(err.contains("tls") || err.contains("ssl"), "{err}");
}

#[test]
fn bulk_niceness_is_a_niceness_and_defaults_to_five() {
    let relay = "[redis]\nurl = \"redis://x\"\n[api]\ntokens=[\"long-enough\"]\n[[smtp.relays]]\nhost=\"h\"\nport=25\n";
    let c = Config::from_toml(relay, Role::Worker).unwrap();
    assert_eq!((c.bulk_niceness(Role::Worker), c.bulk_niceness(Role::Scheduler)), (5, 5));
    let c = Config::from_toml(
        &format!("{relay}[worker]\nbulk_niceness = 19\n[scheduler]\nbulk_niceness = 0\n"),
        Role::Worker,
    )
    .unwrap();
    assert_eq!((c.bulk_niceness(Role::Worker), c.bulk_niceness(Role::Scheduler)), (19, 0));
    for (role, section) in [(Role::Worker, "worker"), (Role::Scheduler, "scheduler")] {
        let err = error_of(&format!("{relay}[{section}]\nbulk_niceness = 20\n"), role);
        assert!(err.contains(&format!("{section}.bulk_niceness")) && err.contains("between 0 and 19"), "{err}");
        let err = error_of(&format!("{relay}[{section}]\nbulk_niceness = -1\n"), role);
        assert!(err.contains("bulk_niceness"), "{err}");
    }
}

#[test]
fn credentials_in_any_url_of_a_message_are_redacted() {
    let message = "invalid type: string \"redis://u:hunter2@a:1/0,rediss://:pw2@b:2/0\", expected a sequence; see http://docs/x@y";
    let clean = redacted_urls_in(message);
    assert!(!clean.contains("hunter2") && !clean.contains("pw2"), "{clean}");
    assert!(clean.contains("redis://***@a:1/0,rediss://***@b:2/0"), "{clean}");
    assert!(clean.contains("http://docs/x@y"), "a path's @ is not a credential: {clean}");
}

#[test]
fn relay_auth_needs_tls_unless_plaintext_is_allowed() {
    let relay =
        "[redis]\nurl = \"redis://x\"\n[[smtp.relays]]\nhost=\"h\"\nport=25\nusername=\"u\"\npassword=\"secret-p\"\n";
    let err = error_of(relay, Role::Worker);
    assert!(err.contains("smtp.relays[0].username") && err.contains("in the clear"), "{err}");
    assert!(!err.contains("secret-p"), "{err}");
    for allowed in ["tls = \"starttls\"\n", "tls = \"tls\"\n", "allow_plaintext_auth = true\n"] {
        assert!(Config::from_toml(&format!("{relay}{allowed}"), Role::Worker).is_ok(), "{allowed}");
    }
}

#[test]
fn retry_schedule_repeats_its_last_step() {
    let r = RetryConfig::default();
    let secs: Vec<u64> = (1..=7).map(|n| r.delay_before(n).as_millis() / 1000).collect();
    assert_eq!(secs, vec![60, 300, 1800, 7200, 21600, 21600, 21600]);
}

#[test]
fn a_bad_bounce_rule_names_its_key() {
    let text = format!(
        "{ISSUE_EXAMPLE}\n[[bounces.rules]]\ncode = \"^4\"\ncategory = \"throttled\"\naction = \"slow\"\nfactor = 2.0\n"
    );
    let e = Config::from_toml(&text, Role::Worker).unwrap_err().to_string();
    assert!(e.contains("bounces.rules[0].factor"), "{e}");
    let unknown =
        format!("{ISSUE_EXAMPLE}\n[[bounces.rules]]\ncode = \"^4\"\ncategory = \"late\"\naction = \"retry\"\n");
    let e = Config::from_toml(&unknown, Role::Worker).unwrap_err().to_string();
    assert!(e.contains("late"), "{e}");
}

#[test]
fn submission_needs_a_way_in_and_sane_bounds() {
    let base = "[redis]\nurl = \"redis://a:1\"\n[api]\ntokens = [\"long-enough\"]\n[submission]\n";
    let err = |tail: &str| Config::from_toml(&format!("{base}{tail}"), Role::Scheduler).unwrap_err().to_string();
    let e = err("listen = \"127.0.0.1:587\"\n");
    assert!(e.contains("`submission.listen`") && e.contains("trusted_networks"), "{e}");
    let e = err("listen_tls = \"127.0.0.1:465\"\ntrusted_networks = [\"10.0.0.0/8\"]\n");
    assert!(e.contains("`submission.listen_tls`") && e.contains("tls_cert"), "{e}");
    let e = err("listen = \"587\"\n");
    assert!(e.contains("must be an address"), "{e}");
    let e = err("trusted_networks = [\"10.0.0.0/8\", \"10.0.0.0/33\"]\n");
    assert!(e.contains("`submission.trusted_networks[1]`"), "{e}");
    let trusted = "listen = \"127.0.0.1:587\"\ntrusted_networks = [\"127.0.0.1\"]\n";
    let e = err(&format!("{trusted}max_connections = 4\nmax_connections_per_client = 5\n"));
    assert!(e.contains("`submission.max_connections_per_client`"), "{e}");
    let e = err(&format!("{trusted}max_recipients = 0\n"));
    assert!(e.contains("`submission.max_recipients`"), "{e}");
    let c = Config::from_toml(&format!("{base}{trusted}"), Role::Scheduler).unwrap();
    assert!(c.submission.enabled() && c.submission.trusted()[0].contains("127.0.0.1".parse().unwrap()));
    assert_eq!((c.submission.max_recipients, c.submission.max_message_bytes), (50, 10 * 1024 * 1024));
}

#[test]
fn history_needs_a_postgres_url_and_whole_days() {
    let base = "[redis]\nurl = \"redis://a:1\"\n[api]\ntokens = [\"long-enough\"]\n[history]\n";
    let err = |tail: &str| Config::from_toml(&format!("{base}{tail}"), Role::Scheduler).unwrap_err().to_string();
    let e = err("url = \"mysql://root:secret@db/x\"\n");
    assert!(e.contains("`history.url`") && e.contains("postgres://") && !e.contains("secret"), "{e}");
    let e = err("url = \"postgres://db/x\"\nretention = \"12h\"\n");
    assert!(e.contains("`history.retention`") && e.contains("1d"), "{e}");
    let e = err("batch = 0\n");
    assert!(e.contains("`history.batch`"), "{e}");
    let e = err("pool_size = 1\n");
    assert!(e.contains("`history.pool_size`"), "{e}");
    let e = err("rows = 5\n");
    assert!(e.contains("rows"), "{e}");
    let c = Config::from_toml(&format!("{base}url = \"postgres://sluice@127.0.0.1:5432/sluice\"\n"), Role::Scheduler)
        .unwrap();
    assert_eq!((c.history.batch, c.history.retention.get().as_secs()), (5000, 400 * 86_400));
    let none =
        Config::from_toml("[redis]\nurl = \"redis://a:1\"\n[api]\ntokens = [\"long-enough\"]\n", Role::Scheduler);
    assert!(none.unwrap().history.url.is_none());
}
