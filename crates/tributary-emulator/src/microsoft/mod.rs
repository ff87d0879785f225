//! The Microsoft 365 emulator: the organization as an Entra ID tenant with Exchange
//! mailboxes, served over TLS with the identity platform (token endpoint, OpenID
//! configuration, admin consent) and Microsoft Graph v1.0 (users, mail folders, messages,
//! message delta, `$batch`), Outlook's throttling, faults, and a control API. Start it
//! with [`start`]; see `docs/emulator.md`. Never imports `crate::google`.

pub mod access;
pub mod app;
pub mod batch;
pub mod calendar;
pub mod control;
pub mod counters;
pub mod credentials;
pub mod envelope;
pub mod identity;
pub mod ids;
pub mod mail;
pub mod query;
pub mod state;
pub mod subscriptions;
pub mod tenant;
pub mod throttling;
pub mod tls;
pub mod truth;
pub mod users;

pub use app::{
    MicrosoftConfig, MicrosoftInfo, MicrosoftStartError, RunningMicrosoft, TenantSource, start,
};
