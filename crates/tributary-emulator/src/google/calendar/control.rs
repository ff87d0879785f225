//! The calendars' control routes on the Google emulator: the shared ones of
//! `org::meetings_control`, under `/control`.

use crate::google::state::EmulatorState;
use crate::org::meetings_control;
use axum::Router;
use std::sync::Arc;

pub fn routes() -> Router<Arc<EmulatorState>> {
    Router::new().nest(
        "/control",
        meetings_control::routes(|s: &EmulatorState| &s.calendars),
    )
}
