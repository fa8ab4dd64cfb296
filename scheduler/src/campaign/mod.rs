//! Campaigns: parsing and validating requests ([`request`]), and storing them ([`store`]).

pub mod ndjson;
pub mod request;
pub mod store;
pub mod submit;
