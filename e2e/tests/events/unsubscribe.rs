//! RFC 8058 one-click unsubscribe end to end: the headers are on the message and covered by
//! DKIM, the public POST answers 200 without redirect or cookie and suppresses the address
//! within a second, the unsubscribe is counted and recorded as an event once, forged and
//! altered tokens get 400, and the next campaign skips the address.

use crate::common;

use std::{
    process::Command,
    time::{Duration, Instant},
};

use serde_json::json;
use sluice_shared::keys;

fn header(head: &str, name: &str) -> Option<String> {
    let unfolded = head.replace("\r\n ", " ").replace("\r\n\t", " ");
    unfolded
        .split("\r\n")
        .find_map(|l| l.strip_prefix(&format!("{name}: ")).map(String::from))
        .filter(|_| !head.is_empty())
}

fn recipients() -> Vec<serde_json::Value> {
    ["ann", "bob", "cat"].iter().map(|n| json!({"email": format!("{n}@x.example"), "vars": {"name": n}})).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_click_unsubscribe_suppresses_and_the_next_campaign_skips() {
    let dir = std::env::temp_dir().join(format!("sluice-unsub-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let key = dir.join("ed.pem");
    let made = Command::new("openssl").args(["genpkey", "-algorithm", "ed25519", "-out"]).arg(&key).status().unwrap();
    assert!(made.success());
    let extra = format!(
        "[[dkim.keys]]\ndomain = \"shop.example\"\nselector = \"ed\"\nalgorithm = \"ed25519-sha256\"\nkey_file = \"{}\"\n",
        key.display()
    );
    let stack = common::start_with(&extra, 1, true).await;
    let mut body = common::campaign_body("first", recipients());
    body["html"] = "<p>Hello {{name}}</p><a href=\"{{unsubscribe_url}}\">Unsubscribe</a>".into();
    let (status, reply) = stack.call("POST", "/v1/campaigns", Some(body)).await;
    assert_eq!(status, 201, "{reply}");
    stack.wait_status("first", "completed", Duration::from_secs(20)).await;

    let messages = stack.sink.state.messages.lock().unwrap().clone();
    let link_for = |rcpt: &str| {
        let raw = &messages.iter().find(|(r, _)| r == rcpt).unwrap().1;
        let text = String::from_utf8_lossy(raw).to_string();
        let head = text[..text.find("\r\n\r\n").unwrap()].to_string();
        let list = header(&head, "List-Unsubscribe").expect("List-Unsubscribe header");
        assert_eq!(header(&head, "List-Unsubscribe-Post").as_deref(), Some("List-Unsubscribe=One-Click"));
        let dkim = header(&head, "DKIM-Signature").unwrap();
        assert!(dkim.contains("list-unsubscribe:list-unsubscribe-post"), "both headers signed: {dkim}");
        let url = list.trim_start_matches('<').split('>').next().unwrap().to_string();
        assert!(url.starts_with(&format!("{}/u/", stack.public)), "{url}");
        url
    };
    let (ann, bob) = (link_for("ann@x.example"), link_for("bob@x.example"));
    assert_ne!(ann, bob);

    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    // The human page: a button, and nothing unsubscribed yet.
    let page = http.get(&ann).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(html.contains("<form method=\"post\"") && html.contains("ann@x.example"), "{html}");
    let (status, _) = stack.call("GET", "/v1/suppressions/ann@x.example", None).await;
    assert_eq!(status, 404, "a GET never unsubscribes");

    // The provider's one-click POST.
    let started = Instant::now();
    let resp = http
        .post(&ann)
        .header("content-type", "application/x-www-form-urlencoded")
        .body("List-Unsubscribe=One-Click")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(resp.headers().get("location").is_none() && resp.headers().get("set-cookie").is_none());
    let (status, entry) = stack.call("GET", "/v1/suppressions/ann@x.example", None).await;
    assert!(started.elapsed() < Duration::from_secs(1), "suppressed within a second");
    assert_eq!(status, 200, "{entry}");
    assert_eq!((entry["reason"].as_str(), entry["campaign"].as_str()), (Some("unsubscribed"), Some("first")));
    // A repeat is fine: counted in the total, once in the unique count.
    let again = http.post(&ann).body("List-Unsubscribe=One-Click").send().await.unwrap();
    assert_eq!(again.status(), 200);

    // Multipart, as some providers send it.
    let form = reqwest::multipart::Form::new().text("List-Unsubscribe", "One-Click");
    assert_eq!(http.post(&bob).multipart(form).send().await.unwrap().status(), 200);

    // Forged and altered tokens, and a POST without the one-click body.
    let mut altered = ann.clone();
    let last = altered.pop().unwrap();
    altered.push(if last == 'A' { 'B' } else { 'A' });
    for bad in [altered, format!("{}/u/forged.token", stack.public), format!("{}/u/", stack.public)] {
        let status = http.post(&bad).body("List-Unsubscribe=One-Click").send().await.unwrap().status().as_u16();
        assert!((400..500).contains(&status), "{bad} answered {status}");
    }
    // The token hides the address; flipping any one of its bytes is caught.
    {
        use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD as B64URL};
        let (base, token) = ann.rsplit_once('/').unwrap();
        let sealed = B64URL.decode(token).unwrap();
        assert!(!String::from_utf8_lossy(&sealed).contains("ann@"), "the address is not in the link");
        for i in [0, sealed.len() / 2, sealed.len() - 1] {
            let mut flipped = sealed.clone();
            flipped[i] ^= 0x20;
            let url = format!("{base}/{}", B64URL.encode(&flipped));
            let status = http.post(&url).body("List-Unsubscribe=One-Click").send().await.unwrap().status();
            assert!(status.is_client_error(), "an altered token is caught: {status}");
        }
    }
    assert_eq!(http.post(&ann).body("").send().await.unwrap().status(), 400, "the body is required");

    let first = stack.campaign("first").await;
    assert_eq!(
        (first["counts"]["unsubscribed_unique"].as_u64(), first["counts"]["unsubscribed"].as_u64()),
        (Some(2), Some(3)),
        "{first}"
    );
    let events: Vec<(String, Vec<(String, String)>)> = redis::cmd("XRANGE")
        .arg(keys::campaign_events("first"))
        .arg("-")
        .arg("+")
        .query(&mut stack.redis.conn())
        .unwrap();
    let unsubscribed: Vec<String> = events
        .iter()
        .filter(|(_, f)| f.iter().any(|(k, v)| k == "type" && v == "unsubscribed"))
        .filter_map(|(_, f)| f.iter().find(|(k, _)| k == "r").map(|(_, v)| v.clone()))
        .collect();
    assert_eq!(unsubscribed, ["ann@x.example", "ann@x.example", "bob@x.example"]);

    // The next campaign skips both.
    let (status, reply) =
        stack.call("POST", "/v1/campaigns", Some(common::campaign_body("second", recipients()))).await;
    assert_eq!(status, 201, "{reply}");
    let second = stack.wait_status("second", "completed", Duration::from_secs(20)).await;
    let counts = common::counts(&second);
    assert_eq!((counts["suppressed"], counts["sent"]), (2, 1), "{second}");
    assert_eq!(stack.sink.state.delivered_to("ann@x.example"), 1);
    assert_eq!(stack.sink.state.delivered_to("cat@x.example"), 2);
}

/// An unsubscribe link of the first format (fields in clear, a truncated HMAC tag), as mail
/// sent before sealed tokens carries; built here from the format, not from our code.
fn first_format_link(stack: &common::Stack, campaign: &str, index: u64, address: &str) -> String {
    use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD as B64URL};
    let payload = format!("{campaign}\n{index}\n{address}");
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, stack.secret.as_bytes());
    let mut ctx = ring::hmac::Context::with_key(&key);
    ctx.update(b"sluice-unsubscribe-v1\0");
    ctx.update(payload.as_bytes());
    let tag = ctx.sign();
    format!("{}/u/{}.{}", stack.public, B64URL.encode(payload), B64URL.encode(&tag.as_ref()[..16]))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn links_in_mail_sent_before_sealed_tokens_still_unsubscribe() {
    let stack = common::start("", 0).await;
    let http = reqwest::Client::new();
    let old = first_format_link(&stack, "spring-2025", 3, "legacy@x.example");
    let response = http.post(&old).body("List-Unsubscribe=One-Click").send().await.unwrap();
    assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());
    let (status, entry) = stack.call("GET", "/v1/suppressions/legacy@x.example", None).await;
    assert_eq!((status, entry["reason"].as_str()), (200, Some("unsubscribed")), "{entry}");
    // The old form is still checked: the same tag over another address is refused.
    let tag = old.rsplit_once('.').unwrap().1;
    let other = first_format_link(&stack, "spring-2025", 3, "forged@x.example");
    let forged = format!("{}.{tag}", other.rsplit_once('.').unwrap().0);
    let status = http.post(&forged).body("List-Unsubscribe=One-Click").send().await.unwrap().status();
    assert!(status.is_client_error(), "{status}");
}
