//! What every Gmail and Directory request goes through, in Google's order: bearer token,
//! scope, quota (the permit is held while the request runs), injected faults, the
//! handler under a read lock of the organization, and the counters.
//! Outer requests and the parts of a batch take this same path.

use super::auth::AccessGrant;
use super::error::ApiError;
use super::quota::GmailMethod;
use super::state::EmulatorState;
use crate::model::Organization;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Serialize, Serializer};
use std::borrow::Cow;

/// Google's JSON content type.
pub const JSON_CONTENT_TYPE: &str = "application/json; charset=UTF-8";

/// A JSON response with Google's content type, serialized straight into the body.
pub fn json_response<T: Serialize + ?Sized>(status: StatusCode, value: &T) -> Response {
    match serde_json::to_vec(value) {
        Ok(body) => {
            let mut response = (status, body).into_response();
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static(JSON_CONTENT_TYPE),
            );
            response
        }
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

/// An int64 field, which Google's JSON carries as a string.
#[derive(Debug, Clone, Copy)]
pub struct Int64(pub i64);

impl Serialize for Int64 {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(&self.0)
    }
}

/// A uint64 field, carried as a string too.
#[derive(Debug, Clone, Copy)]
pub struct Uint64(pub u64);

impl Serialize for Uint64 {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(&self.0)
    }
}

/// A request's query string, keeping repeated parameters (`labelIds=A&labelIds=B`).
#[derive(Debug, Default)]
pub struct QueryParams<'q> {
    pairs: Vec<(Cow<'q, str>, Cow<'q, str>)>,
}

impl<'q> QueryParams<'q> {
    pub fn parse(query: Option<&'q str>) -> Self {
        QueryParams {
            pairs: query
                .map(|q| form_urlencoded::parse(q.as_bytes()).collect())
                .unwrap_or_default(),
        }
    }

    /// The first value of `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_ref())
    }

    /// Every value of `name`, in order.
    pub fn all<'s>(&'s self, name: &'s str) -> impl Iterator<Item = &'s str> + 's {
        self.pairs
            .iter()
            .filter(move |(k, _)| k == name)
            .map(|(_, v)| v.as_ref())
    }

    /// A boolean parameter (`true`/`false`, default false).
    pub fn flag(&self, name: &str) -> Result<bool, ApiError> {
        match self.get(name) {
            None => Ok(false),
            Some(v) if v.eq_ignore_ascii_case("true") => Ok(true),
            Some(v) if v.eq_ignore_ascii_case("false") => Ok(false),
            Some(v) => Err(ApiError::invalid_argument(format!(
                "Invalid value for {name}: {v}"
            ))),
        }
    }

    /// `maxResults`: `default` when absent, clamped to `max` as Google does.
    pub fn max_results(&self, default: usize, max: usize) -> Result<usize, ApiError> {
        match self.get("maxResults") {
            None => Ok(default),
            Some(v) => match v.trim().parse::<u64>() {
                Ok(0) => Ok(default),
                Ok(n) => Ok(usize::try_from(n).unwrap_or(max).min(max)),
                Err(_) => Err(ApiError::invalid_argument(format!(
                    "Invalid value for maxResults: {v}"
                ))),
            },
        }
    }
}

/// Checks the bearer token of a request.
pub fn authenticate(state: &EmulatorState, headers: &HeaderMap) -> Result<AccessGrant, ApiError> {
    state.auth.authenticate(headers)
}

/// Charges `method` to `user`, applies injected faults, runs `handler` against the
/// organization, and counts the request.
pub async fn charged<F>(
    state: &EmulatorState,
    user: &str,
    method: GmailMethod,
    handler: F,
) -> Response
where
    F: FnOnce(&Organization) -> Result<Response, ApiError>,
{
    let permit = match state
        .quotas
        .try_admit_at(user, method, std::time::Instant::now())
    {
        Ok(permit) => permit,
        Err(refusal) => {
            state
                .counters
                .record_rate_limited(user, method, refusal.kind);
            state.counters.record_request(user, method, 0);
            return state.quotas.render(&refusal).into_response();
        }
    };
    let fault = state.faults.decide();
    if let Some(latency) = fault.latency {
        tokio::time::sleep(latency).await;
    }
    let response = match fault.error {
        Some(error) => error.into_response(),
        None => {
            let org = state.org();
            handler(&org).unwrap_or_else(IntoResponse::into_response)
        }
    };
    state.counters.record_request(user, method, method.units());
    drop(permit);
    response
}
