//! Every failure the emulator can stage, seen through the connector: its kind in the
//! taxonomy, the link status the admin would see, and Google's own message kept.

mod common;

use common::{connector_for, start_fixture};
use serde_json::json;
use std::time::Duration;
use tributary_core::{HeaderField, ProviderError, ProviderErrorKind};
use tributary_emulator::server::auth::TRIBUTARY_SCOPES;
use tributary_google::{
    ConnectorOptions, GoogleConnector, GoogleEndpoints, HistoryQuery, MessageListQuery,
    ServiceAccountKey, scopes,
};

const UNAUTHORIZED_CLIENT: &str = "Client is unauthorized to retrieve access tokens using this method, or client not authorized for any of the scopes requested.";

fn assert_failure(
    error: &ProviderError,
    kind: ProviderErrorKind,
    link_status: &str,
    status: u16,
    reason: &str,
    message: &str,
) {
    assert_eq!(error.kind(), kind, "{error}");
    assert_eq!(error.link_status().as_str(), link_status, "{error}");
    assert_eq!(error.status(), Some(status), "{error}");
    assert_eq!(error.reason(), Some(reason), "{error}");
    assert_eq!(error.message(), message, "{error}");
}

async fn profile_error(connector: &GoogleConnector, user: &str) -> ProviderError {
    connector
        .gmail(user)
        .get_profile()
        .await
        .expect_err("the call fails")
}

#[tokio::test]
async fn a_deleted_key_is_an_authentication_error() {
    let fixture = start_fixture().await;
    let key_id = fixture.connector.key_info().private_key_id.clone();
    fixture
        .control
        .delete(&format!("/service-account/keys/{key_id}"))
        .await;
    let error = profile_error(&fixture.connector, &fixture.member()).await;
    assert_failure(
        &error,
        ProviderErrorKind::AuthenticationError,
        "authentication_error",
        400,
        "invalid_grant",
        "Invalid JWT Signature.",
    );
}

#[tokio::test]
async fn a_disabled_service_account_is_an_authentication_error() {
    let fixture = start_fixture().await;
    fixture
        .control
        .post("/service-account/disable", json!({"disabled": true}))
        .await;
    let error = profile_error(&fixture.connector, &fixture.member()).await;
    assert_failure(
        &error,
        ProviderErrorKind::AuthenticationError,
        "authentication_error",
        400,
        "invalid_grant",
        "Robot is disabled.",
    );
}

#[tokio::test]
async fn removed_delegation_is_unauthorized() {
    let fixture = start_fixture().await;
    fixture
        .control
        .put("/delegation", json!({"scopes": []}))
        .await;
    let error = profile_error(&fixture.connector, &fixture.member()).await;
    assert_failure(
        &error,
        ProviderErrorKind::Unauthorized,
        "unauthorized",
        401,
        "unauthorized_client",
        UNAUTHORIZED_CLIENT,
    );
    let directory = fixture
        .connector
        .directory(&fixture.admin())
        .list_users()
        .await
        .unwrap_err();
    assert_eq!(directory.kind(), ProviderErrorKind::Unauthorized);
}

#[tokio::test]
async fn a_scope_missing_from_the_grant_fails_only_what_needs_it() {
    let fixture = start_fixture().await;
    let without_gmail: Vec<&str> = TRIBUTARY_SCOPES
        .iter()
        .copied()
        .filter(|s| *s != scopes::GMAIL_READONLY)
        .collect();
    fixture
        .control
        .put("/delegation", json!({"scopes": without_gmail}))
        .await;
    let error = profile_error(&fixture.connector, &fixture.member()).await;
    assert_failure(
        &error,
        ProviderErrorKind::Unauthorized,
        "unauthorized",
        401,
        "unauthorized_client",
        UNAUTHORIZED_CLIENT,
    );
    let accounts = fixture
        .connector
        .directory(&fixture.admin())
        .list_users()
        .await;
    assert!(accounts.is_ok(), "{accounts:?}");
}

#[tokio::test]
async fn restricted_api_access_is_unauthorized() {
    let fixture = start_fixture().await;
    fixture
        .control
        .post("/api-access", json!({"restricted": true}))
        .await;
    let error = profile_error(&fixture.connector, &fixture.member()).await;
    assert_failure(
        &error,
        ProviderErrorKind::Unauthorized,
        "unauthorized",
        400,
        "admin_policy_enforced",
        "Access to this app has been restricted by your administrator.",
    );
}

#[tokio::test]
async fn a_deleted_user_is_an_authentication_error_even_with_a_cached_token() {
    let fixture = start_fixture().await;
    let user = fixture.member();
    let gmail = fixture.connector.gmail(&user);
    gmail
        .get_profile()
        .await
        .expect("works before the deletion");
    fixture.control.delete(&format!("/users/{user}")).await;
    // The cached token is revoked (401): the connector mints a new one, which the token
    // endpoint refuses.
    let error = gmail.get_profile().await.unwrap_err();
    assert_failure(
        &error,
        ProviderErrorKind::AuthenticationError,
        "authentication_error",
        400,
        "invalid_grant",
        "The account has been deleted",
    );
}

#[tokio::test]
async fn a_user_outside_the_organization_is_an_authentication_error() {
    let fixture = start_fixture().await;
    let error = profile_error(&fixture.connector, "nobody@elsewhere.example").await;
    assert_failure(
        &error,
        ProviderErrorKind::AuthenticationError,
        "authentication_error",
        400,
        "invalid_grant",
        "Invalid email or User ID",
    );
}

#[tokio::test]
async fn a_mailbox_without_mail_service_is_unauthorized() {
    let fixture = start_fixture().await;
    let user = fixture.member();
    fixture
        .control
        .post(
            &format!("/users/{user}/mail-service"),
            json!({"enabled": false}),
        )
        .await;
    let error = profile_error(&fixture.connector, &user).await;
    assert_failure(
        &error,
        ProviderErrorKind::Unauthorized,
        "unauthorized",
        400,
        "failedPrecondition",
        "Mail service not enabled",
    );
}

#[tokio::test]
async fn reading_the_directory_as_a_non_admin_is_unauthorized() {
    let fixture = start_fixture().await;
    let error = fixture
        .connector
        .directory(&fixture.member())
        .list_users()
        .await
        .unwrap_err();
    assert_failure(
        &error,
        ProviderErrorKind::Unauthorized,
        "unauthorized",
        403,
        "forbidden",
        "Not Authorized to access this resource/api",
    );
}

#[tokio::test]
async fn expired_history_is_cursor_gone() {
    let fixture = start_fixture().await;
    let user = fixture.member();
    let gmail = fixture.connector.gmail(&user);
    let start = gmail.get_profile().await.unwrap().history_id;
    fixture
        .control
        .post(&format!("/users/{user}/history/expire"), json!({}))
        .await;
    let error = gmail
        .list_history(&HistoryQuery {
            start_history_id: start,
            ..HistoryQuery::default()
        })
        .await
        .unwrap_err();
    assert_failure(
        &error,
        ProviderErrorKind::CursorGone,
        "linkage_error",
        404,
        "notFound",
        "Requested entity was not found.",
    );
}

#[tokio::test]
async fn backend_errors_are_transient_call_by_call() {
    let fixture = start_fixture().await;
    let user = fixture.member();
    let gmail = fixture.connector.gmail(&user);
    let ids: Vec<String> = gmail
        .list_messages(&MessageListQuery {
            max_results: Some(3),
            ..MessageListQuery::default()
        })
        .await
        .unwrap()
        .messages
        .into_iter()
        .map(|m| m.id)
        .collect();
    fixture
        .control
        .put("/faults", json!({"backend_error_probability": 1.0}))
        .await;

    let error = gmail.get_profile().await.unwrap_err();
    assert_failure(
        &error,
        ProviderErrorKind::Transient,
        "linkage_error",
        500,
        "backendError",
        "Backend Error",
    );
    let directory = fixture
        .connector
        .directory(&fixture.admin())
        .list_users()
        .await
        .unwrap_err();
    assert!(directory.is_transient(), "{directory}");

    let parts = gmail
        .batch_get_metadata(&ids, &HeaderField::ALL)
        .await
        .expect("the batch itself is answered");
    assert_eq!(parts.len(), ids.len());
    for part in parts {
        let error = part.unwrap_err();
        assert!(error.is_transient(), "{error}");
        assert_eq!(error.message(), "Backend Error");
    }
}

#[tokio::test]
async fn an_exhausted_quota_is_transient_with_a_retry_hint() {
    let fixture = start_fixture().await;
    let gmail = fixture.connector.gmail(&fixture.member());
    // One quota minute's budget is the burst: five units pay for exactly one list call.
    fixture
        .control
        .patch("/quota", json!({"per_user_units_per_minute": 5}))
        .await;
    let query = MessageListQuery::default();
    gmail
        .list_messages(&query)
        .await
        .expect("within the budget");
    let error = gmail.list_messages(&query).await.unwrap_err();
    assert_eq!(error.kind(), ProviderErrorKind::Transient, "{error}");
    assert_eq!(error.status(), Some(403));
    assert_eq!(error.reason(), Some("userRateLimitExceeded"));
    assert!(
        error
            .message()
            .starts_with("User-rate limit exceeded.  Retry after "),
        "{error}"
    );
    let wait = error.retry_after().expect("a retry hint");
    assert!(
        wait > Duration::ZERO && wait <= Duration::from_secs(61),
        "{wait:?}"
    );
}

#[tokio::test]
async fn an_unreachable_api_is_transient() {
    let fixture = start_fixture().await;
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    };
    let key = ServiceAccountKey::from_json(&common::key_file_json(&fixture.emulator)).unwrap();
    let connector = GoogleConnector::new(
        key,
        ConnectorOptions {
            endpoints: GoogleEndpoints::from_base_url(&format!("http://{closed}")),
            ..ConnectorOptions::default()
        },
    )
    .unwrap();
    let error = connector
        .gmail(&fixture.member())
        .get_profile()
        .await
        .unwrap_err();
    assert!(error.is_transient(), "{error}");
    assert_eq!(error.status(), None);
    assert_eq!(error.link_status().as_str(), "linkage_error");
}

#[tokio::test]
async fn errors_never_show_the_private_key() {
    let fixture = start_fixture().await;
    let key_id = fixture.connector.key_info().private_key_id.clone();
    fixture
        .control
        .delete(&format!("/service-account/keys/{key_id}"))
        .await;
    let connector = connector_for(&fixture.emulator);
    let error = profile_error(&connector, &fixture.member()).await;
    let pem = fixture.emulator.key_file.private_key.clone();
    let key_line = pem.lines().nth(1).unwrap();
    for shown in [
        format!("{error}"),
        format!("{error:?}"),
        format!("{connector:?}"),
    ] {
        assert!(!shown.contains(key_line), "{shown}");
        assert!(!shown.contains("PRIVATE KEY"), "{shown}");
    }
}
