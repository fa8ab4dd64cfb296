//! The admin API as the CLI sees it: base URL and token from flags or `SLUICE_API_URL` /
//! `SLUICE_TOKEN`, JSON in and out, and errors that map to exit codes.

use std::process::ExitCode;

use serde_json::Value;

/// Why a command failed, and the exit code it means.
#[derive(Debug)]
pub enum CliError {
    /// Bad usage or a bad input file (exit 2).
    Usage(String),
    /// The API answered with an error (exit 1).
    Api { status: u16, message: String },
    /// The API could not be reached (exit 3).
    Unreachable(String),
}

impl CliError {
    pub fn exit_code(&self) -> ExitCode {
        ExitCode::from(match self {
            CliError::Api { .. } => 1,
            CliError::Usage(_) => 2,
            CliError::Unreachable(_) => 3,
        })
    }
}

impl std::fmt::Display for CliError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CliError::Usage(m) => write!(f, "{m}"),
            CliError::Api { status, message } => write!(f, "the API answered {status}: {message}"),
            CliError::Unreachable(m) => write!(f, "cannot reach the API: {m}"),
        }
    }
}

pub struct Client {
    base: String,
    token: String,
    http: reqwest::Client,
}

impl Client {
    pub fn new(base: &str, token: &str) -> Client {
        Client { base: base.trim_end_matches('/').to_string(), token: token.to_string(), http: reqwest::Client::new() }
    }

    /// Sends a request; a 2xx answer's JSON body, or the API's error message.
    pub async fn call(&self, method: &str, path: &str, body: Option<Body>) -> Result<Value, CliError> {
        let method: reqwest::Method = method.parse().map_err(|_| CliError::Usage(format!("bad method {method}")))?;
        let mut req = self.http.request(method, format!("{}{path}", self.base)).bearer_auth(&self.token);
        req = match body {
            Some(Body::Json(v)) => req.json(&v),
            Some(Body::Raw(bytes)) => req.header("content-type", "application/x-ndjson").body(bytes),
            None => req,
        };
        self.answer(req).await
    }

    /// Sends the file at `file` as the body, streamed, with `content_type`.
    pub async fn upload(&self, path: &str, content_type: &str, file: &std::path::Path) -> Result<Value, CliError> {
        let opened =
            tokio::fs::File::open(file).await.map_err(|e| CliError::Usage(format!("{}: {e}", file.display())))?;
        let req = self
            .http
            .post(format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .header("content-type", content_type)
            .body(reqwest::Body::from(opened));
        self.answer(req).await
    }

    /// GETs `path` and copies the body to `out` as it arrives.
    pub async fn download(&self, path: &str, out: &mut impl std::io::Write) -> Result<(), CliError> {
        let req = self.http.get(format!("{}{path}", self.base)).bearer_auth(&self.token);
        let mut resp = req.send().await.map_err(|e| CliError::Unreachable(format!("{}: {e}", self.base)))?;
        if !resp.status().is_success() {
            return Err(Self::error_of(resp.status().as_u16(), resp.text().await.unwrap_or_default()));
        }
        let cut = |e: reqwest::Error| CliError::Unreachable(format!("the answer was cut off: {e}"));
        while let Some(chunk) = resp.chunk().await.map_err(cut)? {
            out.write_all(&chunk).map_err(|e| CliError::Usage(format!("writing the output: {e}")))?;
        }
        Ok(())
    }

    async fn answer(&self, req: reqwest::RequestBuilder) -> Result<Value, CliError> {
        let resp = req.send().await.map_err(|e| CliError::Unreachable(format!("{}: {e}", self.base)))?;
        let status = resp.status().as_u16();
        let text = resp.text().await.map_err(|e| CliError::Unreachable(e.to_string()))?;
        if (200..300).contains(&status) {
            return Ok(serde_json::from_str(&text).unwrap_or(Value::String(text)));
        }
        Err(Self::error_of(status, text))
    }

    fn error_of(status: u16, text: String) -> CliError {
        let value: Value = serde_json::from_str(&text).unwrap_or(Value::String(text));
        let message = match (&value["error"]["field"], &value["error"]["message"]) {
            (Value::String(field), Value::String(m)) => format!("{field}: {m}"),
            (_, Value::String(m)) => m.clone(),
            _ => value.to_string(),
        };
        CliError::Api { status, message }
    }
}

pub enum Body {
    Json(Value),
    Raw(Vec<u8>),
}
