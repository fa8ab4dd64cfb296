//! `sluice doctor` against a local DNS server: good records pass every check (exit 0); bad
//! ones fail each check with the reason (exit 1).

use std::process::Command;

use base64::{Engine, engine::general_purpose::STANDARD as B64};
use sluice_testkit::dns_server::{DnsServer, Entry, ip};

fn openssl_key(path: &std::path::Path) -> String {
    let p = path.to_str().unwrap();
    let ok = Command::new("openssl")
        .args(["genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", p])
        .output()
        .expect("openssl is installed by scripts/test.sh");
    assert!(ok.status.success());
    let der = Command::new("openssl").args(["pkey", "-in", p, "-pubout", "-outform", "DER"]).output().unwrap().stdout;
    B64.encode(der)
}

fn config(dir: &std::path::Path, nameserver: &str) -> std::path::PathBuf {
    let file = dir.join("sluice.toml");
    let text = format!(
        "[redis]\nurl = \"redis://127.0.0.1:1/0\"\n\n[smtp]\nmode = \"mx\"\n\n[[smtp.ip_pool]]\naddress = \"192.0.2.10\"\nhelo = \"mta1.shop.example\"\n\n\
         [dns]\nnameservers = [\"{nameserver}\"]\n\n[[dkim.keys]]\ndomain = \"shop.example\"\nselector = \"s1\"\nkey_file = \"{}\"\n",
        dir.join("s1.pem").display()
    );
    std::fs::write(&file, text).unwrap();
    file
}

fn doctor(config: &std::path::Path) -> (i32, String) {
    // No API answers here: the guard check is skipped, not failed.
    let nowhere = format!("http://127.0.0.1:{}", sluice_testkit::free_port());
    let out = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .env("SLUICE_API_URL", nowhere)
        .arg("--config")
        .arg(config)
        .args(["doctor", "shop.example"])
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
    )
}

fn txt(name: &str, text: &str) -> Entry {
    Entry::Txt { name: name.into(), text: text.into() }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn good_records_pass_and_bad_ones_say_what_is_wrong() {
    let dir = std::env::temp_dir().join(format!("sluice-doctor-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let public = openssl_key(&dir.join("s1.pem"));
    let other = openssl_key(&dir.join("other.pem"));

    let good = DnsServer::start(vec![
        txt("shop.example", "v=spf1 include:_spf.relay.example ip4:192.0.2.0/24 -all"),
        txt("_spf.relay.example", "v=spf1 ip4:198.51.100.0/24 -all"),
        txt("s1._domainkey.shop.example", &format!("v=DKIM1; k=rsa; p={public}")),
        txt("_dmarc.shop.example", "v=DMARC1; p=none; rua=mailto:dmarc@shop.example"),
        Entry::Ptr { address: ip("192.0.2.10"), target: "mta1.shop.example".into() },
        Entry::A { name: "mta1.shop.example".into(), address: ip("192.0.2.10") },
    ])
    .await;
    let cfg = config(&dir, &good.nameserver());
    let (code, out) = tokio::task::spawn_blocking(move || doctor(&cfg)).await.unwrap();
    assert_eq!(code, 0, "{out}");
    for check in ["spf", "dkim", "dmarc", "docomo", "ptr"] {
        assert!(out.lines().any(|l| l.starts_with("PASS") && l.contains(&format!(" {check} "))), "{check}:\n{out}");
    }
    assert!(out.contains("consider p=quarantine"), "p=none is named for docomo:\n{out}");
    assert!(out.lines().any(|l| l.starts_with("SKIP") && l.contains(" guard ")), "no API here:\n{out}");

    let bad = DnsServer::start(vec![
        txt("shop.example", "v=spf1 ip4:198.51.100.0/24 -all"),
        txt("s1._domainkey.shop.example", &format!("v=DKIM1; k=rsa; p={other}")),
        Entry::Ptr { address: ip("192.0.2.10"), target: "other.example.net".into() },
        Entry::A { name: "other.example.net".into(), address: ip("203.0.113.5") },
    ])
    .await;
    let cfg = config(&dir, &bad.nameserver());
    let (code, out) = tokio::task::spawn_blocking(move || doctor(&cfg)).await.unwrap();
    assert_eq!(code, 1, "{out}");
    let fail = |check: &str, words: &str| {
        assert!(
            out.lines().any(|l| l.starts_with("FAIL") && l.contains(&format!(" {check} ")) && l.contains(words)),
            "{check} should fail with {words:?}:\n{out}"
        );
    };
    fail("spf", "192.0.2.10 is not covered");
    fail("dkim", "not the configured key");
    fail("dmarc", "no DMARC record");
    fail("docomo", "marks this domain's mail as spoofed");
    fail("ptr", "does not resolve back");

    // A bad config is exit 2 with the key named.
    let broken = dir.join("broken.toml");
    std::fs::write(&broken, "[redis]\nurl = \"nope\"\n").unwrap();
    let (code, out) = tokio::task::spawn_blocking(move || doctor(&broken)).await.unwrap();
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("redis.url"), "{out}");
}
