//! RFC 8058 one-click unsubscribe. `POST /u/{token}` with `List-Unsubscribe=One-Click`
//! (form-urlencoded or multipart) suppresses the address and answers 200: no redirect, no
//! cookie, no login. `GET /u/{token}` shows a page whose button makes that same POST, so link
//! scanners that fetch URLs never unsubscribe anyone.

use crate::late::{self, LateKind, Recorded};
use axum::{
    body::Bytes,
    extract::{Path, State},
    http::{HeaderMap, StatusCode, header},
    response::{Html, IntoResponse, Response},
};
use serde_json::json;
use sluice_shared::tokens::Recipient;

use super::PublicState;

fn html_page(status: StatusCode, title: &str, body: &str) -> Response {
    let html = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><meta name=\"viewport\" \
         content=\"width=device-width\"><title>{title}</title></head><body style=\"font-family:sans-serif;\
         max-width:32em;margin:4em auto\"><h1>{title}</h1>{body}</body></html>"
    );
    (status, [(header::CACHE_CONTROL, "no-store")], Html(html)).into_response()
}

fn invalid_link() -> Response {
    html_page(
        StatusCode::BAD_REQUEST,
        "Invalid link",
        "<p>This unsubscribe link is not valid. Please use the link from the message as it arrived.</p>",
    )
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// The human page: what will happen, and a button.
pub async fn confirm_page(State(state): State<PublicState>, Path(token): Path<String>) -> Response {
    let Some(u) = state.tokens.open_unsubscribe(&token) else { return invalid_link() };
    html_page(
        StatusCode::OK,
        "Unsubscribe",
        &format!(
            "<p>Stop sending mail to <b>{}</b>?</p><form method=\"post\">\
             <input type=\"hidden\" name=\"List-Unsubscribe\" value=\"One-Click\">\
             <button type=\"submit\">Unsubscribe</button></form>",
            escape(&u.address)
        ),
    )
}

/// The one-click POST (from a mailbox provider, or the page's button).
pub async fn one_click(
    State(state): State<PublicState>,
    Path(token): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(u) = state.tokens.open_unsubscribe(&token) else { return invalid_link() };
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    if !asks_one_click(content_type, &body) {
        return html_page(
            StatusCode::BAD_REQUEST,
            "Unsubscribe",
            "<p>The request must carry <code>List-Unsubscribe=One-Click</code> (RFC 8058).</p>",
        );
    }
    match record(&state, &u).await {
        Ok(()) => html_page(
            StatusCode::OK,
            "Unsubscribed",
            &format!("<p><b>{}</b> will receive no more mail from us.</p>", escape(&u.address)),
        ),
        Err(e) => {
            tracing::error!(error = %e, "unsubscribe could not be recorded");
            html_page(StatusCode::SERVICE_UNAVAILABLE, "Please try again", "<p>We could not record this right now.</p>")
        }
    }
}

/// Suppresses the address (a genuine link works even after its campaign expired), then
/// records the unsubscribe once on its campaign.
async fn record(state: &PublicState, u: &Recipient) -> anyhow::Result<()> {
    let mut conn = state.pool.get().await?;
    let detail = json!({"method": "one-click"});
    let maxlen = state.config.campaigns.events_maxlen;
    let kind = LateKind::Unsubscribed;
    late::suppress(&mut conn, kind, &u.campaign, &u.address, &detail, "unsubscribed").await?;
    let recorded = late::record(&mut conn, maxlen, kind, &u.campaign, u.index, &u.address, &detail).await?;
    if recorded == Recorded::New {
        metrics::counter!(sluice_shared::metrics::UNSUBSCRIBES).increment(1);
        tracing::info!(campaign = %u.campaign, index = u.index, "recipient unsubscribed");
    }
    Ok(())
}

/// Whether the body says `List-Unsubscribe=One-Click`, as form-urlencoded or multipart.
fn asks_one_click(content_type: &str, body: &[u8]) -> bool {
    let Ok(text) = std::str::from_utf8(body) else { return false };
    let mime = content_type.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    if mime == "multipart/form-data" {
        let Some(boundary) = content_type
            .split(';')
            .filter_map(|p| p.trim().strip_prefix("boundary="))
            .next()
            .map(|b| b.trim_matches('"'))
        else {
            return false;
        };
        return text.split(&format!("--{boundary}")).any(|part| {
            let Some((head, value)) = part.split_once("\r\n\r\n") else { return false };
            let named = head.to_ascii_lowercase().contains("name=\"list-unsubscribe\"");
            named && value.trim_end_matches("\r\n").trim() == "One-Click"
        });
    }
    form_urlencoded::parse(text.trim().as_bytes()).any(|(k, v)| k == "List-Unsubscribe" && v == "One-Click")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_click_bodies_in_both_encodings() {
        assert!(asks_one_click("application/x-www-form-urlencoded", b"List-Unsubscribe=One-Click"));
        assert!(asks_one_click("", b"List-Unsubscribe=One-Click\r\n"));
        assert!(asks_one_click("application/x-www-form-urlencoded", b"a=b&List-Unsubscribe=One%2DClick"));
        let multipart =
            "--XyZ\r\nContent-Disposition: form-data; name=\"List-Unsubscribe\"\r\n\r\nOne-Click\r\n--XyZ--\r\n";
        assert!(asks_one_click("multipart/form-data; boundary=XyZ", multipart.as_bytes()));
        assert!(asks_one_click("multipart/form-data; boundary=\"XyZ\"", multipart.as_bytes()));
        assert!(!asks_one_click("application/x-www-form-urlencoded", b"List-Unsubscribe=Maybe"));
        assert!(!asks_one_click("application/x-www-form-urlencoded", b""));
        assert!(!asks_one_click("multipart/form-data", multipart.as_bytes()), "no boundary");
    }
}
