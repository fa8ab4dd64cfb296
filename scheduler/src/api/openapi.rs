//! The admin API's OpenAPI 3.1 document, served at `GET /v1/openapi.json` (no token needed).
//! It is built from the code that serves the API: each handler's `#[utoipa::path]` gives its
//! path, parameters and answers, and [`scoped`] registers a handler and documents its scope
//! from the one value that enforces it. Every operation answers 401 and 403 in the shared
//! error shape ([`ErrorBody`], the type that serialises every error answer), and any other error in it too (the `default` response).

use axum::{
    body::Bytes,
    http::header,
    response::{IntoResponse, Response},
    routing::MethodRouter,
};
use sluice_shared::config::Scope;
use utoipa::{
    Modify, OpenApi,
    openapi::{
        Content, OpenApi as Document, Ref, RefOr, ResponseBuilder,
        path::Operation,
        security::{HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme},
    },
};
use utoipa_axum::router::UtoipaMethodRouter;

use super::{
    AppState, auth,
    error::{ErrorBody, ErrorDetail},
};

/// Handlers registered with their document, as `utoipa_axum::routes!` makes them.
pub type Routes = UtoipaMethodRouter<AppState>;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Sluice admin API",
        description = "Campaigns, transactional messages, templates, events, webhooks, suppressions and operations. \
                       Every call needs `Authorization: Bearer <token>` of a key holding the operation's scope \
                       (listed under `security`); `admin` holds every scope. See docs/http-api.md."
    ),
    components(schemas(ErrorBody, ErrorDetail)),
    modifiers(&BearerScheme)
)]
struct ApiDoc;

struct BearerScheme;

impl Modify for BearerScheme {
    fn modify(&self, doc: &mut Document) {
        let scheme = SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build());
        doc.components.get_or_insert_with(Default::default).add_security_scheme("bearer", scheme);
    }
}

/// The document's frame (info, shared schemas, the bearer scheme); the routes add the paths.
pub fn base() -> Document {
    ApiDoc::openapi()
}

/// `routes` answering only callers holding `scope` (or admin), each operation documented with
/// that scope and the shared error answers.
pub fn scoped(scope: Scope, (schemas, mut paths, router): Routes) -> Routes {
    for item in paths.paths.values_mut() {
        let operations = [&mut item.get, &mut item.put, &mut item.post, &mut item.delete, &mut item.patch];
        for operation in operations.into_iter().flatten() {
            document_scope(operation, scope);
        }
    }
    (schemas, paths, auth::scoped(scope, router))
}

/// `routes` with their axum method router changed by `change` (a body limit, say).
pub fn with(
    (schemas, paths, router): Routes,
    change: impl FnOnce(MethodRouter<AppState>) -> MethodRouter<AppState>,
) -> Routes {
    (schemas, paths, change(router))
}

fn document_scope(operation: &mut Operation, scope: Scope) {
    operation.security = Some(vec![SecurityRequirement::new("bearer", [scope.as_str()])]);
    let error = |description: &str| {
        let content = Content::new(Some(RefOr::Ref(Ref::from_schema_name("ErrorBody"))));
        RefOr::T(ResponseBuilder::new().description(description).content("application/json", content).build())
    };
    let responses = &mut operation.responses.responses;
    responses.insert("401".into(), error("No Bearer token, or an unknown one"));
    responses.insert("403".into(), error(&format!("The key lacks the `{}` scope", scope.as_str())));
    responses.entry("default".into()).or_insert_with(|| {
        error("Any other error: 400 malformed, 404 unknown, 409 conflict, 413 too large, 422 invalid, 503 storage unavailable")
    });
}

/// The document as served at `GET /v1/openapi.json`: serialised once, at startup.
#[derive(Clone)]
pub struct Served(Bytes);

impl Served {
    pub fn new(document: &Document) -> Served {
        Served(Bytes::from(document.to_pretty_json().expect("an OpenAPI document serialises")))
    }

    pub fn response(&self) -> Response {
        ([(header::CONTENT_TYPE, "application/json")], self.0.clone()).into_response()
    }
}
