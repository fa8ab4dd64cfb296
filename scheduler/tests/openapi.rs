//! `GET /v1/openapi.json` serves an OpenAPI 3.1 document of the admin API without a token, and
//! the document cannot drift from the router: every operation it lists is served at that path
//! and method, under exactly the scope it names (a key with another scope gets 403, a key with
//! that scope gets past the scope check), and answers errors in the documented shape.

mod common;

use sluice_testkit::api_key_toml;

const SCOPES: [&str; 6] = ["send", "campaigns:read", "campaigns:write", "suppressions", "privacy", "admin"];

fn token_of(scope: &str) -> String {
    format!("token-{}", scope.replace(':', "-"))
}

/// The path with each `{param}` filled in.
fn concrete(path: &str) -> String {
    path.replace("{action}", "pause").replace("{email}", "nobody@x.example").replace(['{', '}'], "")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_document_lists_every_route_with_the_scope_it_enforces() {
    let keys: Vec<String> =
        SCOPES.iter().map(|s| api_key_toml(&token_of(s), &token_of(s), &format!("{s:?}"))).collect();
    let api = common::Api::start(&keys.join("\n")).await;
    let (status, doc) = api.request("GET", "/v1/openapi.json", None, None).await;
    assert_eq!(status, 200, "served without a token: {doc}");
    assert_eq!(doc["openapi"], "3.1.0");
    assert_eq!(doc["components"]["securitySchemes"]["bearer"]["scheme"], "bearer");
    assert!(doc["components"]["schemas"]["ErrorBody"].is_object());

    let paths = doc["paths"].as_object().unwrap();
    let mut operations = 0;
    for (path, item) in paths {
        assert!(path.starts_with("/v1/"), "{path}");
        for (method, operation) in item.as_object().unwrap() {
            operations += 1;
            let method = method.to_uppercase();
            let scope = operation["security"][0]["bearer"][0].as_str().unwrap_or_else(|| panic!("{method} {path}"));
            assert!(SCOPES.contains(&scope), "{method} {path}: {scope}");
            for code in ["401", "403", "default"] {
                let schema = &operation["responses"][code]["content"]["application/json"]["schema"]["$ref"];
                assert_eq!(schema, "#/components/schemas/ErrorBody", "{method} {path} {code}");
            }
            let url = concrete(path);
            let other = if scope == "send" { "campaigns:read" } else { "send" };
            let (status, reply) = api.request(&method, &url, Some(&token_of(other)), None).await;
            assert_eq!(status, 403, "{method} {url} with a {other} key: {reply}");
            assert!(reply["error"]["message"].as_str().unwrap().contains(scope), "{reply}");
            let (status, reply) = api.request(&method, &url, Some(&token_of(scope)), None).await;
            assert!(![401, 403, 405].contains(&status), "{method} {url} with a {scope} key: {status} {reply}");
            if status >= 400 {
                assert!(reply["error"]["message"].is_string(), "{method} {url}: {reply}");
            }
        }
    }
    assert_eq!(operations, 37, "every operation of the admin API is documented");
    let scope_of = |path: &str, method: &str| paths[path][method]["security"][0]["bearer"][0].clone();
    assert_eq!(scope_of("/v1/messages", "post"), "send");
    assert_eq!(scope_of("/v1/campaigns", "get"), "campaigns:read");
    assert_eq!(scope_of("/v1/campaigns", "post"), "campaigns:write");
    assert_eq!(scope_of("/v1/suppressions/{email}", "delete"), "suppressions");
    assert_eq!(scope_of("/v1/audit", "get"), "admin");
}
