//! DKIM through the real path: keys made at test time, a campaign sent by the real binaries,
//! every captured message verified by dkimpy (independent of our code) for both the RSA-2048
//! and the Ed25519 signature; tampered copies fail. A campaign from a domain without a key is
//! refused when `dkim.missing_key = "refuse"`.

use crate::common;

use std::{path::Path, process::Command, time::Duration};

use base64::{Engine, engine::general_purpose::STANDARD as B64};
use serde_json::json;

fn openssl(args: &[&str]) -> Vec<u8> {
    let out = Command::new("openssl").args(args).output().expect("openssl is installed by scripts/test.sh");
    assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    out.stdout
}

/// Makes a key; returns its TXT record as openssl sees the public key.
pub(crate) fn make_key(path: &Path, algorithm: &str) -> String {
    let p = path.to_str().unwrap();
    match algorithm {
        "rsa" => openssl(&["genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", p]),
        _ => openssl(&["genpkey", "-algorithm", "ed25519", "-out", p]),
    };
    let der = openssl(&["pkey", "-in", p, "-pubout", "-outform", "DER"]);
    match algorithm {
        "rsa" => format!("v=DKIM1; k=rsa; p={}", B64.encode(der)),
        // RFC 8463: the raw 32-byte key, the tail of the SubjectPublicKeyInfo.
        _ => format!("v=DKIM1; k=ed25519; p={}", B64.encode(&der[der.len() - 32..])),
    }
}

/// dkimpy's verdict per signature, e.g. `["pass", "pass"]`.
pub(crate) fn verify(dir: &Path, message: &[u8], records: &[(String, String)]) -> Vec<String> {
    let file = dir.join("message.eml");
    std::fs::write(&file, message).unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/delivery/dkim_verify.py");
    let args: Vec<String> = records.iter().map(|(n, r)| format!("{n}={r}")).collect();
    let out = Command::new("/usr/bin/python3")
        .arg(script)
        .arg(&file)
        .args(&args)
        .output()
        .expect("python3 with dkimpy (python3-dkim, python3-nacl) is installed by scripts/test.sh");
    assert!(out.status.success(), "dkimpy: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().split_whitespace().map(String::from).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_messages_verify_with_dkimpy_and_tampered_ones_do_not() {
    let dir = std::env::temp_dir().join(format!("sluice-dkim-e2e-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let rsa = make_key(&dir.join("rsa.pem"), "rsa");
    let ed = make_key(&dir.join("ed.pem"), "ed25519");
    let records =
        vec![("s2026._domainkey.shop.example".to_string(), rsa), ("ed2026._domainkey.shop.example".to_string(), ed)];
    let extra = format!(
        "[[dkim.keys]]\ndomain = \"shop.example\"\nselector = \"s2026\"\nkey_file = \"{}\"\n\n\
         [[dkim.keys]]\ndomain = \"shop.example\"\nselector = \"ed2026\"\nalgorithm = \"ed25519-sha256\"\nkey_file = \"{}\"\n",
        dir.join("rsa.pem").display(),
        dir.join("ed.pem").display()
    );
    let stack = common::start_with(&extra, 1, true).await;
    let mut body = common::campaign_body(
        "signed",
        (0..3)
            .map(|i| json!({"email": format!("u{i}@x.example"), "vars": {"name": format!("ユーザー {i}")}}))
            .collect(),
    );
    body["subject"] = "こんにちは {{name}}".into();
    body["text"] = "Hello {{name}}\n.leading dot\n\n\n".into();
    body["headers"] = json!({"Feedback-ID": "spring:news:shop"});
    let (status, reply) = stack.call("POST", "/v1/campaigns", Some(body)).await;
    assert_eq!(status, 201, "{reply}");
    stack.wait_status("signed", "completed", Duration::from_secs(30)).await;

    let messages = stack.sink.state.messages.lock().unwrap().clone();
    assert_eq!(messages.len(), 3);
    for (rcpt, raw) in &messages {
        let head = String::from_utf8_lossy(&raw[..raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap()]).to_string();
        let unfolded = head.replace("\r\n\t", " ");
        assert!(unfolded.contains("a=rsa-sha256") && unfolded.contains("a=ed25519-sha256"), "{head}");
        assert!(unfolded.contains("c=relaxed/relaxed") && !unfolded.contains(" l="), "{head}");
        assert!(unfolded.contains("feedback-id") && unfolded.contains(":from:subject;"), "h= oversigns: {head}");
        assert_eq!(verify(&dir, raw, &records), ["pass", "pass"], "{rcpt}:\n{}", String::from_utf8_lossy(raw));

        let text = String::from_utf8_lossy(raw).to_string();
        // The html part is base64 "<p>Hello...": change one character of it.
        let body_changed = text.replacen("PHA+", "PHB+", 1);
        assert_ne!(body_changed, text);
        assert_eq!(verify(&dir, body_changed.as_bytes(), &records), ["fail", "fail"], "altered body");
        let extra_from = text.replacen("\r\nFrom: ", "\r\nFrom: evil@attacker.example\r\nFrom: ", 1);
        assert_eq!(verify(&dir, extra_from.as_bytes(), &records), ["fail", "fail"], "a second From");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_campaign_from_a_domain_without_a_key_is_refused() {
    let mut stack = common::start("", 0).await;
    let _strict = stack.add_scheduler_with("strict", &[("SLUICE__DKIM__MISSING_KEY", "refuse")]).await;
    let body = common::campaign_body("nokey", vec![json!({"email": "a@x.example", "vars": {"name": "A"}})]);
    let (status, reply) = stack.call("POST", "/v1/campaigns", Some(body)).await;
    assert_eq!(status, 422, "{reply}");
    assert_eq!(reply["error"]["field"], "from.email", "{reply}");
    assert!(reply["error"]["message"].as_str().unwrap().contains("no DKIM key"), "{reply}");
    let (status, _) = stack.call("GET", "/v1/campaigns/nokey", None).await;
    assert_eq!(status, 404, "nothing was written");
}

/// A key file that is not a key stops the worker at startup (exit 2) naming the key, before
/// it takes any job; the scheduler, which signs nothing, does not read it.
#[test]
fn a_worker_with_an_unreadable_key_file_exits_2_naming_it() {
    let dir = std::env::temp_dir().join(format!("sluice-dkim-bad-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let key = dir.join("not-a-key.pem");
    std::fs::write(&key, "not a key").unwrap();
    let extra = format!(
        "[[dkim.keys]]\ndomain = \"shop.example\"\nselector = \"s1\"\nkey_file = \"{}\"\n\n\
         [[smtp.relays]]\nhost = \"127.0.0.1\"\nport = 2525\n",
        key.display()
    );
    let port = sluice_testkit::free_port;
    let text = sluice_testkit::config_toml("redis://127.0.0.1:1", port(), port(), "t-0123456789", &extra);
    let config = dir.join("sluice.toml");
    std::fs::write(&config, text).unwrap();
    let worker = Command::new(sluice_testkit::bin_path("sluice-worker")).arg("--config").arg(&config).output().unwrap();
    let stderr = String::from_utf8_lossy(&worker.stderr);
    assert_eq!(worker.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("dkim.keys[0].key_file") && stderr.contains("not-a-key.pem"), "{stderr}");
    std::fs::remove_dir_all(&dir).unwrap();
}
