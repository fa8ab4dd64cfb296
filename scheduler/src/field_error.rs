//! A request problem tied to one field, the one error shape every way in answers with: the
//! HTTP API, the Redis intake, inbound SMTP, templates and messages.

use serde::Serialize;

/// A request problem tied to one field.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FieldError {
    pub field: String,
    pub message: String,
    /// Malformed JSON (400) rather than a well-formed but invalid value (422), or too large (413).
    #[serde(skip)]
    pub kind: ErrorKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ErrorKind {
    Malformed,
    #[default]
    Invalid,
    TooLarge,
}

impl FieldError {
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> FieldError {
        FieldError { field: field.into(), message: message.into(), kind: ErrorKind::Invalid }
    }
}
