//! The unsubscribe page in a real headless Chromium (Debian's, over WebDriver): it speaks the
//! campaign's language, else the browser's (Japanese here), names the sender, and for a
//! campaign on a list offers that list or everything from the sender; each button does what it
//! says, as the suppression API then shows.

use crate::common;

use std::time::Duration;

use serde_json::{Value, json};
use sluice_testkit::browser::Browser;

fn campaign(id: &str, to: &str, list: &str, locale: Option<&str>) -> Value {
    let mut body = json!({
        "id": id, "from": {"email": "news@shop.example", "name": "山田商店"}, "subject": "お知らせ",
        "html": "<p>こんにちは</p>", "recipients": [{"email": to}], "list": list,
    });
    if let Some(l) = locale {
        body["locale"] = l.into();
    }
    body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_unsubscribe_page_speaks_the_campaigns_language_and_offers_list_or_everything() {
    let stack = common::start_with("", 1, true).await;
    for (id, to, list, locale) in
        [("shinshun", "ann@x.example", "news", None), ("spring", "bob@x.example", "offers", Some("en"))]
    {
        let (status, reply) = stack.call("POST", "/v1/campaigns", Some(campaign(id, to, list, locale))).await;
        assert_eq!(status, 201, "{reply}");
        stack.wait_status(id, "completed", Duration::from_secs(20)).await;
    }
    let browser = Browser::start("ja").await;

    // No locale on the campaign: the browser's Japanese. The list's button.
    browser.goto(&stack.unsubscribe_link("ann@x.example")).await;
    assert_eq!(browser.eval("return document.documentElement.lang").await, "ja");
    let page = browser.text().await;
    assert!(page.contains("配信停止") && page.contains("山田商店") && page.contains("ann@x.example"), "{page}");
    assert!(page.contains("newsの配信を停止する") && page.contains("山田商店からのすべての配信を停止する"), "{page}");
    browser.click("button#list").await;
    let done = sluice_testkit::wait_for("the answer page", Duration::from_secs(10), || async {
        let text = browser.text().await;
        text.contains("配信を停止しました").then_some(text)
    })
    .await;
    assert!(done.contains("news"), "{done}");
    let (_, entry) = stack.call("GET", "/v1/suppressions/ann@x.example", None).await;
    assert_eq!((entry["scope"].as_str(), entry["list"].as_str()), (Some("list"), Some("news")), "{entry}");

    // The campaign says English: English, whatever the browser prefers. Everything.
    browser.goto(&stack.unsubscribe_link("bob@x.example")).await;
    assert_eq!(browser.eval("return document.documentElement.lang").await, "en");
    let page = browser.text().await;
    assert!(page.contains("Stop mail from 山田商店 to bob@x.example?"), "{page}");
    browser.click("button#everything").await;
    let done = sluice_testkit::wait_for("the answer page", Duration::from_secs(10), || async {
        let text = browser.text().await;
        text.contains("no more campaigns").then_some(text)
    })
    .await;
    assert!(done.contains("bob@x.example will receive no more campaigns from 山田商店"), "{done}");
    let (_, entry) = stack.call("GET", "/v1/suppressions/bob@x.example", None).await;
    assert_eq!(entry["scope"], "campaigns", "{entry}");
}
