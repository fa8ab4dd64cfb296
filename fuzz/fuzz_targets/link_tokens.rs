//! Link tokens (`tokens::TokenKey`) on any text a stranger can put in a URL or a report: no
//! panic, and a token opens only to the fields it was sealed from (sealing what opened gives
//! back the very same token, so no second spelling of a token exists). Then the other way:
//! fields from the input, sealed and opened again, come back unchanged.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sluice_shared::tokens::TokenKey;
use std::sync::LazyLock;

static KEY: LazyLock<TokenKey> = LazyLock::new(|| TokenKey::new("fuzz-secret"));

fuzz_target!(|text: &str| {
    let key = &*KEY;
    let sealed_form = !text.contains('.');
    if let Some(r) = key.open_unsubscribe(text) {
        assert!(!sealed_form || key.unsubscribe(&r.campaign, r.index, &r.address) == text);
    }
    if let Some(r) = key.open_reference(text) {
        assert!(!sealed_form || key.reference(&r.campaign, r.index, &r.address) == text);
    }
    if let Some((r, sent)) = key.open_open_pixel(text) {
        assert!(!sealed_form || key.open_pixel(&r.campaign, r.index, &r.address, sent) == text);
    }
    if let Some((r, sent, url)) = key.open_click(text) {
        assert!(!sealed_form || key.click(&r.campaign, r.index, &r.address, sent, &url).as_deref() == Some(text));
    }
    let (local, address) = text.split_once('@').map_or((text, "a@b.example"), |(l, _)| (l, text));
    if let Some((campaign, index)) = key.open_message_id_local(local, address) {
        assert!(!campaign.contains('\n'), "{index}");
    }

    // Fields as the sender would have them: no line break (campaign ids and addresses are
    // validated at intake; a URL with one gets no token).
    let mut parts = text.splitn(3, '\u{1f}');
    let (campaign, address, url) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    if url.contains('\n') {
        assert!(key.click(campaign, 7, address, 1_700_000_000, url).is_none(), "a URL with a line break gets no token");
        return;
    }
    if campaign.contains('\n') || address.contains('\n') {
        return;
    }
    let index = text.len() as u64;
    let r = key.open_unsubscribe(&key.unsubscribe(campaign, index, address)).expect("a genuine token opens");
    assert_eq!((r.campaign.as_str(), r.index, r.address.as_str()), (campaign, index, address));
    let (r, sent, back) = key.open_click(&key.click(campaign, index, address, -5, url).unwrap()).unwrap();
    assert_eq!((r.campaign.as_str(), r.address.as_str(), sent, back.as_str()), (campaign, address, -5, url));
    let local = key.message_id_local(campaign, 1_700_000_000_000, index, address);
    assert_eq!(key.open_message_id_local(&local, &address.to_ascii_uppercase()), Some((campaign.to_string(), index)));
    assert_eq!(key.open_unsubscribe(&local), None, "a token of one purpose never opens as another");
});
