//! Open and click tracking on the public listener. `GET /o/{token}` answers a 1x1 GIF and
//! records an `opened` event; `GET /c/{token}` records a `clicked` event and answers 302 to the
//! URL the token carries (signed: only URLs that were in the message). Forged or altered
//! tokens get 404, never a redirect. Opens that look like a proxy fetching on the recipient's
//! behalf rather than a person reading are flagged in the event's data (`prefetch`). The same
//! client fetching the same token again within `http.repeat_window` is served but counted
//! once, so replaying one genuine token cannot flood the counts or the event feed.

use crate::late::{self, LateKind};
use axum::{
    Extension,
    extract::{Path, State},
    http::{HeaderMap, StatusCode, header},
    response::{IntoResponse, Response},
};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use sluice_shared::{keys, tokens::Recipient};

use super::PublicState;
use crate::http::client::ClientAddr;

/// The smallest transparent GIF.
const PIXEL: &[u8] = &[
    0x47, 0x49, 0x46, 0x38, 0x39, 0x61, 0x01, 0x00, 0x01, 0x00, 0x80, 0x00, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff,
    0x21, 0xf9, 0x04, 0x01, 0x00, 0x00, 0x00, 0x00, 0x2c, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x01, 0x00, 0x00, 0x02,
    0x02, 0x44, 0x01, 0x00, 0x3b,
];

/// An open this soon after the message was rendered is a machine fetching it on arrival.
const TOO_SOON_S: i64 = 2;

fn not_found() -> Response {
    (StatusCode::NOT_FOUND, [(header::CACHE_CONTROL, "no-store")], "unknown link").into_response()
}

fn user_agent(headers: &HeaderMap) -> String {
    headers.get(header::USER_AGENT).and_then(|v| v.to_str().ok()).unwrap_or_default().chars().take(256).collect()
}

/// Why an open looks like a prefetch, if it does: Apple Mail Privacy Protection fetches every
/// image on delivery with the bare user agent `Mozilla/5.0`; Yahoo's proxy prefetches too;
/// anything within seconds of the send is a machine.
pub fn prefetch_reason(user_agent: &str, seconds_after_send: i64) -> Option<&'static str> {
    if user_agent.trim() == "Mozilla/5.0" {
        return Some("apple_mpp");
    }
    if user_agent.contains("YahooMailProxy") {
        return Some("yahoo_proxy");
    }
    if seconds_after_send < TOO_SOON_S {
        return Some("immediately_after_send");
    }
    None
}

/// Records the event unless `client` fetched this `token` within the repeat window.
async fn record(
    state: &PublicState,
    token: &str,
    client: Option<Extension<ClientAddr>>,
    kind: LateKind,
    r: &Recipient,
    detail: &Value,
) -> anyhow::Result<()> {
    let mut conn = state.pool.get().await?;
    if let Some(Extension(ClientAddr(client))) = client {
        let digest = Sha256::digest(format!("{token}\n{client}"));
        let first: Option<String> = redis::cmd("SET")
            .arg(keys::tracked_repeat(&hex::encode(&digest[..16])))
            .arg(1)
            .arg("NX")
            .arg("PX")
            .arg(state.config.http.repeat_window.as_millis())
            .query_async(&mut *conn)
            .await?;
        if first.is_none() {
            return Ok(());
        }
    }
    let maxlen = state.config.campaigns.events_maxlen;
    late::record(&mut conn, maxlen, kind, &r.campaign, r.index, &r.address, detail).await?;
    // A person read or clicked: the address is engaged (a prefetch is no one reading).
    if detail["prefetch"] != true {
        crate::hygiene::engaged(&mut conn, &state.config.hygiene, &r.address, kind == LateKind::Clicked).await?;
    }
    Ok(())
}

pub async fn open(
    State(state): State<PublicState>,
    Path(token): Path<String>,
    headers: HeaderMap,
    client: Option<Extension<ClientAddr>>,
) -> Response {
    let token = token.trim_end_matches(".gif");
    let Some((recipient, sent_s)) = state.tokens.open_open_pixel(token) else { return not_found() };
    let ua = user_agent(&headers);
    let after = chrono::Utc::now().timestamp() - sent_s;
    let prefetch = prefetch_reason(&ua, after);
    let detail = json!({"user_agent": ua, "prefetch": prefetch.is_some(), "prefetch_reason": prefetch});
    if let Err(e) = record(&state, token, client, LateKind::Opened, &recipient, &detail).await {
        // The image is served anyway: a reader must never see a broken message for our sake.
        tracing::warn!(error = %e, "recording an open failed");
    }
    metrics::counter!(sluice_shared::metrics::TRACKED, "kind" => "open").increment(1);
    let no_cache = "no-store, no-cache, must-revalidate, private";
    ([(header::CONTENT_TYPE, "image/gif"), (header::CACHE_CONTROL, no_cache)], PIXEL).into_response()
}

pub async fn click(
    State(state): State<PublicState>,
    Path(token): Path<String>,
    headers: HeaderMap,
    client: Option<Extension<ClientAddr>>,
) -> Response {
    let Some((recipient, _, url)) = state.tokens.open_click(&token) else { return not_found() };
    let detail = json!({"url": url, "user_agent": user_agent(&headers)});
    if let Err(e) = record(&state, &token, client, LateKind::Clicked, &recipient, &detail).await {
        tracing::warn!(error = %e, "recording a click failed");
    }
    metrics::counter!(sluice_shared::metrics::TRACKED, "kind" => "click").increment(1);
    (StatusCode::FOUND, [(header::LOCATION, url.as_str()), (header::CACHE_CONTROL, "no-store")]).into_response()
}

#[cfg(test)]
mod tests {
    use super::prefetch_reason;

    #[test]
    fn proxies_and_instant_opens_are_flagged() {
        assert_eq!(prefetch_reason("Mozilla/5.0", 3600), Some("apple_mpp"));
        assert_eq!(prefetch_reason("Mozilla/5.0 (X11) YahooMailProxy", 3600), Some("yahoo_proxy"));
        assert_eq!(prefetch_reason("Mozilla/5.0 (Windows NT 10.0) Thunderbird/128", 0), Some("immediately_after_send"));
        assert_eq!(prefetch_reason("Mozilla/5.0 (Windows NT 10.0) Thunderbird/128", 60), None);
    }
}
