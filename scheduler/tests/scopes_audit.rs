//! API keys are stored as hashes and carry scopes: no or an unknown token is 401, a known key
//! without the route's scope is 403, each scope opens its routes; every mutating call is in
//! the audit log (who, key, what, when, result), readable with the admin scope only.

mod common;

use serde_json::{Value, json};
use sluice_testkit::api_key_toml;

const KEYS: [(&str, &str, &str); 5] = [
    ("sender", "token-send-0001", "\"send\""),
    ("reader", "token-read-0001", "\"campaigns:read\""),
    ("writer", "token-write-001", "\"campaigns:write\""),
    ("lists", "token-supp-0001", "\"suppressions\""),
    ("ops", "token-admin-001", "\"admin\""),
];

fn token(id: &str) -> &'static str {
    KEYS.iter().find(|(i, _, _)| *i == id).unwrap().1
}

fn campaign(id: &str) -> String {
    json!({"id": id, "from": {"email": "news@shop.example"}, "subject": "s", "text": "t",
           "recipients": [{"email": "a@x.example"}], "start": false})
    .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_scope_opens_its_routes_and_every_change_is_audited() {
    let keys: String = KEYS.iter().map(|(id, t, s)| api_key_toml(id, t, s)).collect::<Vec<_>>().join("\n");
    let api = common::Api::start(&keys).await;
    let call = |id: Option<&'static str>, method: &'static str, path: &'static str, body: Option<String>| {
        let api = &api;
        async move { api.request(method, path, id.map(token), body).await }
    };

    // 401: no token, an unknown token (the hash of nothing configured).
    assert_eq!(call(None, "GET", "/v1/campaigns", None).await.0, 401);
    let (status, _) = api.request("GET", "/v1/campaigns", Some("not-a-known-token"), None).await;
    assert_eq!(status, 401);

    // campaigns:write creates; campaigns:read cannot.
    let (status, body) = call(Some("writer"), "POST", "/v1/campaigns", Some(campaign("c1"))).await;
    assert_eq!(status, 201, "{body}");
    let (status, body) = call(Some("reader"), "POST", "/v1/campaigns", Some(campaign("c2"))).await;
    assert_eq!(status, 403, "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("campaigns:write"), "{body}");
    // campaigns:read reads; campaigns:write alone cannot read.
    assert_eq!(call(Some("reader"), "GET", "/v1/campaigns/c1", None).await.0, 200);
    assert_eq!(call(Some("reader"), "GET", "/v1/destinations", None).await.0, 200);
    assert_eq!(call(Some("writer"), "GET", "/v1/campaigns/c1", None).await.0, 403);
    // suppressions.
    let put = Some(json!({"reason": "asked"}).to_string());
    assert_eq!(call(Some("lists"), "PUT", "/v1/suppressions/b@x.example", put.clone()).await.0, 201);
    assert_eq!(call(Some("reader"), "PUT", "/v1/suppressions/b@x.example", put.clone()).await.0, 403);
    assert_eq!(call(Some("lists"), "GET", "/v1/campaigns", None).await.0, 403);
    // send: no campaign or admin route.
    assert_eq!(call(Some("sender"), "GET", "/v1/campaigns", None).await.0, 403);
    assert_eq!(call(Some("sender"), "GET", "/v1/suppressions", None).await.0, 403);
    // admin-only routes; admin does everything.
    assert_eq!(call(Some("lists"), "GET", "/v1/dead-letters", None).await.0, 403);
    assert_eq!(call(Some("ops"), "GET", "/v1/dead-letters", None).await.0, 200);
    assert_eq!(call(Some("ops"), "POST", "/v1/campaigns/c1/start", None).await.0, 200);
    assert_eq!(call(Some("reader"), "GET", "/v1/audit", None).await.0, 403);

    let (status, audit) = call(Some("ops"), "GET", "/v1/audit", None).await;
    assert_eq!(status, 200, "{audit}");
    let items = audit["items"].as_array().unwrap();
    let seen: Vec<(String, String, String, u64)> = items
        .iter()
        .map(|i: &Value| {
            let s = |k: &str| i[k].as_str().unwrap_or_default().to_string();
            (s("key"), s("method"), s("path"), i["status"].as_u64().unwrap())
        })
        .collect();
    // Changes, refusals (401 with no key, 403) and reads of recipients' data, in order.
    let expect = [
        ("-", "GET", "/v1/campaigns", 401),
        ("-", "GET", "/v1/campaigns", 401),
        ("writer", "POST", "/v1/campaigns", 201),
        ("reader", "POST", "/v1/campaigns", 403),
        ("writer", "GET", "/v1/campaigns/c1", 403),
        ("lists", "PUT", "/v1/suppressions/b@x.example", 201),
        ("reader", "PUT", "/v1/suppressions/b@x.example", 403),
        ("lists", "GET", "/v1/campaigns", 403),
        ("sender", "GET", "/v1/campaigns", 403),
        ("sender", "GET", "/v1/suppressions", 403),
        ("lists", "GET", "/v1/dead-letters", 403),
        ("ops", "GET", "/v1/dead-letters", 200),
        ("ops", "POST", "/v1/campaigns/c1/start", 200),
        ("reader", "GET", "/v1/audit", 403),
    ];
    let expect: Vec<(String, String, String, u64)> =
        expect.iter().map(|(k, m, p, s)| (k.to_string(), m.to_string(), p.to_string(), *s)).collect();
    assert_eq!(seen, expect, "audited calls, in order, with their result: {audit}");
    assert!(items.iter().all(|i| i["at"].is_string() && !i["request_id"].as_str().unwrap().is_empty()));
    assert!(items.iter().all(|i| i["client"] == "127.0.0.1"), "each names the client: {audit}");
    // Reads without personal data are not audited; reads of it are.
    assert_eq!(call(Some("ops"), "GET", "/v1/campaigns", None).await.0, 200);
    assert_eq!(call(Some("ops"), "GET", "/v1/suppressions", None).await.0, 200);
    let (_, audit) = call(Some("ops"), "GET", "/v1/audit?limit=1000", None).await;
    let last = audit["items"].as_array().unwrap().last().unwrap().clone();
    assert_eq!((last["path"].as_str(), last["key"].as_str()), (Some("/v1/suppressions"), Some("ops")), "{audit}");
    // Paging: after the second entry come the rest.
    let after = items[1]["id"].as_str().unwrap();
    let (_, page) = api.request("GET", &format!("/v1/audit?after={after}&limit=2"), Some(token("ops")), None).await;
    assert_eq!(page["items"].as_array().unwrap().len(), 2);
    assert_eq!(page["items"][0]["path"], "/v1/campaigns");
    assert_eq!(page["items"][0]["key"], "writer");
    assert!(page["next"].is_string(), "{page}");
    let (status, _) = api.request("GET", "/v1/audit?after=yesterday", Some(token("ops")), None).await;
    assert_eq!(status, 422);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_response_carries_a_request_id() {
    let api = common::Api::start("").await;
    let http = reqwest::Client::new();
    let resp = http.get(format!("{}/v1/campaigns", api.base)).bearer_auth(common::TOKEN).send().await.unwrap();
    let id = resp.headers().get("x-request-id").unwrap().to_str().unwrap().to_string();
    assert_eq!(id.len(), 36, "a UUID: {id}");
    let given = http
        .get(format!("{}/v1/campaigns", api.base))
        .bearer_auth(common::TOKEN)
        .header("x-request-id", "caller-42")
        .send()
        .await
        .unwrap();
    assert_eq!(given.headers().get("x-request-id").unwrap(), "caller-42");
    assert!(api.process.log_text().contains("request_id=caller-42"), "API log lines carry the id");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_logs_carry_the_request_id() {
    let redis = sluice_testkit::TestRedis::start();
    let (path, base) = common::config(&redis, "");
    let process = sluice_testkit::Process::spawn(
        "scheduler",
        &common::bin(),
        &["--config", path.to_str().unwrap()],
        &[("SLUICE_LOG_FORMAT", "json")],
    );
    let http = reqwest::Client::new();
    sluice_testkit::wait_for("API", std::time::Duration::from_secs(20), || {
        let (http, url) = (http.clone(), format!("{base}/healthz"));
        async move { http.get(url).send().await.ok().filter(|r| r.status().is_success()).map(|_| ()) }
    })
    .await;
    http.get(format!("{base}/v1/campaigns"))
        .bearer_auth(common::TOKEN)
        .header("x-request-id", "json-7")
        .send()
        .await
        .unwrap();
    sluice_testkit::wait_for("the API log line", std::time::Duration::from_secs(5), || {
        let text = process.log_text();
        async move {
            text.lines()
                .filter_map(|l| serde_json::from_str::<Value>(l).ok())
                .find(|v| v["span"]["request_id"] == "json-7" && v["fields"]["message"] == "api call")
                .map(|_| ())
        }
    })
    .await;
}
