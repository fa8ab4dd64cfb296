//! Open and click tracking through the real binaries: links in the HTML are rewritten to
//! signed click links and a pixel is added, the text part keeps its links, opens and clicks are
//! counted (total and unique) and recorded as events, proxy prefetches are flagged, and
//! forged or altered tokens get 404 without a redirect.

use crate::common;

use std::time::Duration;

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD as B64URL};
use serde_json::json;

/// The message with quoted-printable undone (soft line breaks and `=XX`), good enough to
/// find links in.
pub(crate) fn unquote(raw: &str) -> String {
    let joined = raw.replace("=\r\n", "");
    let mut out = String::new();
    let mut rest = joined.as_str();
    while let Some(i) = rest.find('=') {
        out.push_str(&rest[..i]);
        match rest.get(i + 1..i + 3).and_then(|h| u8::from_str_radix(h, 16).ok()) {
            Some(b) => {
                out.push(b as char);
                rest = &rest[i + 3..];
            }
            None => {
                out.push('=');
                rest = &rest[i + 1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// The URLs in `raw` that start with `prefix`, up to the closing quote.
pub(crate) fn links(raw: &str, prefix: &str) -> Vec<String> {
    raw.match_indices(prefix).map(|(i, _)| raw[i..].split(['"', '\r', '\n']).next().unwrap().to_string()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn opens_and_clicks_are_recorded_and_tokens_cannot_be_forged() {
    let stack = common::start_with("", 1, true).await;
    let mut body = common::campaign_body("tracked", common::recipients(2, 1, |i| format!("t{i}")));
    body["html"] = r#"<html><body><p>Hi {{name}}</p><a href="https://shop.example/sale?a=1&amp;b=2">Sale</a>
        <a href="{{unsubscribe_url}}">Unsubscribe</a></body></html>"#
        .into();
    body["text"] = "Sale: https://shop.example/sale?a=1&b=2".into();
    body["tracking"] = json!({"opens": true, "clicks": true});
    let (status, reply) = stack.call("POST", "/v1/campaigns", Some(body)).await;
    assert_eq!(status, 201, "{reply}");
    stack.wait_status("tracked", "completed", Duration::from_secs(20)).await;

    let raw = {
        let messages = stack.sink.state.messages.lock().unwrap();
        unquote(&String::from_utf8_lossy(&messages.iter().find(|(r, _)| r == "t0@d0.example").unwrap().1))
    };
    let clicks = links(&raw, &format!("{}/c/", stack.public));
    let pixels = links(&raw, &format!("{}/o/", stack.public));
    assert_eq!((clicks.len(), pixels.len()), (1, 1), "{raw}");
    assert!(links(&raw, &format!("{}/u/", stack.public)).len() >= 2, "unsubscribe links stay direct: {raw}");
    assert!(raw.contains("Sale: https://shop.example/sale?a=1&b=2"), "the text part keeps its link: {raw}");

    let client_at = |last: u8| {
        reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .local_address(std::net::IpAddr::from([127, 0, 0, last]))
            .build()
            .unwrap()
    };
    let (http, http2, http3) = (client_at(1), client_at(2), client_at(3));
    let get_from = |http: &reqwest::Client, url: String, ua: &'static str| {
        let http = http.clone();
        async move { http.get(url).header("user-agent", ua).send().await.unwrap() }
    };
    let get = |url: String, ua: &'static str| get_from(&http, url, ua);
    // A person opens three times (one client: counted once within the repeat window), Apple's
    // proxy fetches once (flagged), and the person opens again from another address.
    let reader = "Mozilla/5.0 (Macintosh) AppleWebKit/605.1.15 Thunderbird";
    // Opens within 2 s of the send are a machine's (public/tracking.rs, TOO_SOON_S): this
    // waits for the clock, not for an event.
    tokio::time::sleep(Duration::from_millis(2100)).await;
    for (client, ua) in [(&http, reader), (&http, reader), (&http, reader), (&http2, "Mozilla/5.0"), (&http3, reader)] {
        let r = get_from(client, pixels[0].clone(), ua).await;
        assert_eq!((r.status().as_u16(), r.headers()["content-type"].to_str().unwrap()), (200, "image/gif"));
    }
    // A click redirects to the original URL, entities decoded; clicked again at once by the
    // same client, it redirects again but counts once.
    for _ in 0..2 {
        let r = get(clicks[0].clone(), reader).await;
        assert_eq!(r.status(), 302);
        assert_eq!(r.headers()["location"], "https://shop.example/sale?a=1&b=2");
    }

    // Forged: a flipped bit at the end or in the sealed URL, or garbage. 404, never a redirect.
    let (base, token) = clicks[0].rsplit_once('/').unwrap();
    let sealed = B64URL.decode(token).unwrap();
    assert!(!String::from_utf8_lossy(&sealed).contains("shop.example"), "neither URL nor address in clear");
    let mut flipped = sealed.clone();
    *flipped.last_mut().unwrap() ^= 1;
    let mut in_the_url = sealed.clone();
    in_the_url[sealed.len() / 2] ^= 1;
    let forged_tokens = [B64URL.encode(&flipped), B64URL.encode(&in_the_url), "nonsense".to_string()];
    for forged in forged_tokens.map(|t| format!("{base}/{t}")) {
        let r = get(forged.clone(), reader).await;
        assert_eq!(r.status(), 404, "{forged}");
        assert!(r.headers().get("location").is_none());
    }
    let r = get(format!("{}/o/forged.token", stack.public), reader).await;
    assert_eq!(r.status(), 404);

    let view = stack.campaign("tracked").await;
    let c = &view["counts"];
    assert_eq!((c["opened"].as_u64(), c["opened_unique"].as_u64()), (Some(3), Some(1)), "{view}");
    assert_eq!((c["clicked"].as_u64(), c["clicked_unique"].as_u64()), (Some(1), Some(1)), "{view}");
    let (_, page) = stack.call("GET", "/v1/events?campaign=tracked&type=opened,clicked", None).await;
    let events = page["events"].as_array().unwrap();
    assert_eq!(events.len(), 4, "{page}");
    let flagged: Vec<bool> =
        events.iter().filter(|e| e["type"] == "opened").map(|e| e["data"]["prefetch"].as_bool().unwrap()).collect();
    assert_eq!(flagged, [false, true, false]);
    let click = events.iter().find(|e| e["type"] == "clicked").unwrap();
    assert_eq!(
        (click["recipient"].as_str(), click["data"]["url"].as_str()),
        (Some("t0@d0.example"), Some("https://shop.example/sale?a=1&b=2"))
    );
}
