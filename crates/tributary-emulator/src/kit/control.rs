//! The control API's plumbing, the same for every provider: `{"error": "..."}` answers,
//! a JSON body extractor that answers in that form, and the handlers that read, replace
//! (`PUT`) and change (`PATCH`) live settings such as limits and faults. The routes
//! themselves, and everything they act on, are each provider's own.
//! Reference: `docs/emulator-control.md`.

use super::settings::LiveSettings;
use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use std::sync::Arc;

/// A control-API failure: `{"error": "..."}` with its status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ControlError {
    pub status: StatusCode,
    pub message: String,
}

impl ControlError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        ControlError {
            status,
            message: message.into(),
        }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        ControlError::new(StatusCode::BAD_REQUEST, message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        ControlError::new(StatusCode::NOT_FOUND, message)
    }

    pub fn conflict(message: impl Into<String>) -> Self {
        ControlError::new(StatusCode::CONFLICT, message)
    }
}

impl IntoResponse for ControlError {
    fn into_response(self) -> Response {
        (self.status, Json(json!({"error": self.message}))).into_response()
    }
}

/// What a control handler answers.
pub type Answer = Result<Response, ControlError>;

/// `200` with `value` as JSON.
pub fn ok(value: impl Serialize) -> Answer {
    Ok(Json(value).into_response())
}

/// `201` with `value` as JSON.
pub fn created(value: impl Serialize) -> Answer {
    Ok((StatusCode::CREATED, Json(value)).into_response())
}

/// `Json<T>` whose rejections answer in the control API's `{"error"}` form with `400`
/// (axum's own are plain text, some with 415 or 422).
pub struct Body<T>(pub T);

impl<S, T> FromRequest<S> for Body<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ControlError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        match Json::<T>::from_request(request, state).await {
            Ok(Json(value)) => Ok(Body(value)),
            Err(rejection) => Err(json_rejection(rejection)),
        }
    }
}

/// A JSON body rejection in the `{"error"}` form.
pub fn json_rejection(rejection: JsonRejection) -> ControlError {
    ControlError::bad_request(rejection.body_text())
}

/// `current` with the fields of the JSON object `patch` replaced (unknown fields are
/// errors when `T` denies them).
pub fn merged<T: Serialize + DeserializeOwned>(
    current: &T,
    patch: Value,
) -> Result<T, ControlError> {
    let Value::Object(changes) = patch else {
        return Err(ControlError::bad_request("expected a JSON object"));
    };
    let mut value = serde_json::to_value(current).expect("settings serialize");
    if let Value::Object(fields) = &mut value {
        fields.extend(changes);
    }
    serde_json::from_value(value).map_err(|e| ControlError::bad_request(e.to_string()))
}

/// Answers the settings in force.
pub fn read_settings<L: LiveSettings>(live: &L) -> Answer {
    ok(live.current())
}

/// Replaces the settings (absent fields take their defaults); answers those in force.
pub fn replace_settings<L: LiveSettings>(live: &L, config: L::Config) -> Answer {
    live.replace(config)
        .map_err(|e| ControlError::bad_request(e.to_string()))?;
    ok(live.current())
}

/// Changes only the fields `patch` gives; answers the settings in force.
pub fn patch_settings<L: LiveSettings>(live: &L, patch: Value) -> Answer {
    let config = merged(&live.current(), patch)?;
    replace_settings(live, config)
}

/// `GET`, `PUT` and `PATCH` of the live settings `pick` finds in the state `S` (e.g.
/// `settings_routes(|s: &MyState| &s.faults)`).
pub fn settings_routes<S, L>(pick: fn(&S) -> &L) -> MethodRouter<Arc<S>>
where
    S: Send + Sync + 'static,
    L: LiveSettings,
{
    get(move |State(state): State<Arc<S>>| async move { read_settings(pick(&state)) })
        .put(
            move |State(state): State<Arc<S>>, Body(config): Body<L::Config>| async move {
                replace_settings(pick(&state), config)
            },
        )
        .patch(
            move |State(state): State<Arc<S>>, Body(patch): Body<Value>| async move {
                patch_settings(pick(&state), patch)
            },
        )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kit::{FaultConfig, FaultSwitch};

    #[test]
    fn patches_change_only_the_given_fields_and_name_unknown_ones() {
        let switch = FaultSwitch::new(FaultConfig {
            latency_ms: 7,
            ..FaultConfig::default()
        });
        patch_settings(&switch, json!({"server_error_probability": 0.5})).unwrap();
        let config = switch.config();
        assert_eq!(config.latency_ms, 7);
        assert_eq!(config.server_error_probability, 0.5);

        let error = patch_settings(&switch, json!({"bogus": 1})).unwrap_err();
        assert_eq!(error.status, StatusCode::BAD_REQUEST);
        assert!(error.message.contains("bogus"), "{}", error.message);
        let error = patch_settings(&switch, json!([1])).unwrap_err();
        assert_eq!(error.message, "expected a JSON object");
    }

    #[test]
    fn invalid_settings_are_refused_and_leave_the_old_ones() {
        let switch = FaultSwitch::default();
        let error = replace_settings(
            &switch,
            FaultConfig {
                server_error_probability: 2.0,
                ..FaultConfig::default()
            },
        )
        .unwrap_err();
        assert_eq!(error.status, StatusCode::BAD_REQUEST);
        assert!(error.message.contains("server_error_probability"));
        assert_eq!(switch.config(), FaultConfig::default());
    }
}
