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

/// The human page: what will happen, and a button; two when the campaign is on a list (that
/// list, or every campaign).
pub async fn confirm_page(State(state): State<PublicState>, Path(token): Path<String>) -> Response {
    let Some(u) = state.tokens.open_unsubscribe(&token) else { return invalid_link() };
    let list = match list_of(&state, &u.campaign).await {
        Ok(list) => list,
        Err(e) => return unavailable(e),
    };
    let button = |scope: &str, label: &str| {
        format!(
            "<form method=\"post\"><input type=\"hidden\" name=\"List-Unsubscribe\" value=\"One-Click\">\
             <input type=\"hidden\" name=\"scope\" value=\"{scope}\"><button type=\"submit\">{label}</button></form>"
        )
    };
    let buttons = match &list {
        Some(name) => format!(
            "{}{}",
            button("list", &format!("Unsubscribe from {}", escape(name))),
            button("everything", "Unsubscribe from every campaign")
        ),
        None => button("everything", "Unsubscribe"),
    };
    html_page(
        StatusCode::OK,
        "Unsubscribe",
        &format!("<p>Stop sending mail to <b>{}</b>?</p>{buttons}", escape(&u.address)),
    )
}

/// The one-click POST (from a mailbox provider, or the page's buttons). A provider's POST
/// unsubscribes from the campaign's list when it has one, as its List-Unsubscribe promises;
/// the page may ask for every campaign (`scope=everything`).
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
    let everything = asks_everything(&body);
    match record(&state, &u, everything).await {
        Ok(None) => html_page(
            StatusCode::OK,
            "Unsubscribed",
            &format!("<p><b>{}</b> will receive no more campaigns from us.</p>", escape(&u.address)),
        ),
        Ok(Some(list)) => html_page(
            StatusCode::OK,
            "Unsubscribed",
            &format!("<p><b>{}</b> will receive no more mail of {}.</p>", escape(&u.address), escape(&list)),
        ),
        Err(e) => unavailable(e),
    }
}

fn unavailable(e: anyhow::Error) -> Response {
    tracing::error!(error = %e, "unsubscribe could not be read or recorded");
    html_page(StatusCode::SERVICE_UNAVAILABLE, "Please try again", "<p>We could not record this right now.</p>")
}

async fn list_of(state: &PublicState, campaign: &str) -> anyhow::Result<Option<String>> {
    let mut conn = state.pool.get().await?;
    Ok(late::list_of(&mut conn, campaign).await?)
}

/// Unsubscribes the address (a genuine link works even after its campaign expired) from the
/// campaign's list, or every campaign; then records the unsubscribe once on its campaign.
/// The list unsubscribed from, if only one.
async fn record(state: &PublicState, u: &Recipient, everything: bool) -> anyhow::Result<Option<String>> {
    let mut conn = state.pool.get().await?;
    let list = if everything { None } else { late::list_of(&mut conn, &u.campaign).await? };
    let detail = match &list {
        Some(name) => json!({"method": "one-click", "list": name}),
        None => json!({"method": "one-click"}),
    };
    let maxlen = state.config.campaigns.events_maxlen;
    let kind = LateKind::Unsubscribed;
    late::unsubscribe(&mut conn, &u.campaign, &u.address, list.as_deref(), &detail).await?;
    let recorded = late::record(&mut conn, maxlen, kind, &u.campaign, u.index, &u.address, &detail).await?;
    if recorded == Recorded::New {
        metrics::counter!(sluice_shared::metrics::UNSUBSCRIBES).increment(1);
        tracing::info!(campaign = %u.campaign, index = u.index, "recipient unsubscribed");
    }
    Ok(list)
}

/// Whether the page's form asked to leave every campaign rather than the campaign's list.
fn asks_everything(body: &[u8]) -> bool {
    form_urlencoded::parse(body).any(|(k, v)| k == "scope" && v == "everything")
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
