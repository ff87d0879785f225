//! Where the connector sends requests is the operator's choice, never a tenant's: a key
//! file's `token_uri` is refused at upload unless it is the configured token endpoint and
//! is never requested; redirects are not followed; answers that are not Google's error
//! shapes are described, never quoted. Each trap below records every request it gets.

mod common;

use common::{key_file_json, start_fixture};
use tributary_emulator::server::RunningEmulator;
use tributary_emulator::testing::trap::{Canned, Trap};
use tributary_google::{
    ConnectorOptions, GoogleConnector, GoogleEndpoints, KeyFileError, ServiceAccountKey, scopes,
};

/// Text only the traps answer with: it must never reach an error message.
const MARKER: &str = "TRAP-MARKER-7f3a";

const TOKEN_ANSWER: &str = r#"{"access_token": "from-the-trap", "expires_in": 3600}"#;

/// The emulator's key file with another `token_uri`.
fn key_naming(emulator: &RunningEmulator, token_uri: &str) -> Vec<u8> {
    let mut key: serde_json::Value = serde_json::from_slice(&key_file_json(emulator)).unwrap();
    key["token_uri"] = serde_json::json!(token_uri);
    serde_json::to_vec(&key).unwrap()
}

fn emulator_endpoints(emulator: &RunningEmulator) -> GoogleEndpoints {
    GoogleEndpoints::from_base_url(&emulator.base_url)
}

fn connector(key: &[u8], endpoints: GoogleEndpoints) -> GoogleConnector {
    let key = ServiceAccountKey::from_json(key).expect("the key loads");
    GoogleConnector::new(
        key,
        ConnectorOptions {
            endpoints,
            ..ConnectorOptions::default()
        },
    )
    .expect("the connector builds")
}

#[tokio::test]
async fn a_key_naming_another_token_endpoint_is_refused_at_upload() {
    let trap = Trap::start(Canned::json(200, TOKEN_ANSWER)).await;
    let fixture = start_fixture().await;
    let emulator = &fixture.emulator;
    for token_uri in [
        format!("{}/token", trap.url),
        "http://oauth2.googleapis.com/token".to_owned(),
        "https://oauth2.googleapis.com.trap.example/token".to_owned(),
    ] {
        let key = key_naming(emulator, &token_uri);
        for endpoints in [GoogleEndpoints::default(), emulator_endpoints(emulator)] {
            let error = ServiceAccountKey::from_upload(&key, &endpoints).unwrap_err();
            assert!(
                matches!(error, KeyFileError::UntrustedTokenUri { .. }),
                "{token_uri}: {error}"
            );
            assert_eq!(error.field(), Some("token_uri"));
            assert!(error.to_string().contains("`token_uri`"), "{error}");
        }
    }
    // Google's own address on a server reaching Google; the emulator's on one pointed at it.
    let google = key_naming(emulator, "https://oauth2.googleapis.com/token");
    ServiceAccountKey::from_upload(&google, &GoogleEndpoints::default()).unwrap();
    ServiceAccountKey::from_upload(&key_file_json(emulator), &emulator_endpoints(emulator))
        .unwrap();
    assert_eq!(trap.seen(), []);
}

/// A key stored before uploads were checked may still name a trap: tokens are minted at
/// the configured endpoint anyway, and the emulator (like Google) accepts the assertion.
#[tokio::test]
async fn tokens_are_minted_at_the_configured_endpoint_never_the_keys() {
    let trap = Trap::start(Canned::json(200, TOKEN_ANSWER)).await;
    let fixture = start_fixture().await;
    let key = key_naming(&fixture.emulator, &format!("{}/token", trap.url));
    let connector = connector(&key, emulator_endpoints(&fixture.emulator));
    connector
        .tokens()
        .token(&fixture.admin(), &scopes::ALL)
        .await
        .expect("the configured endpoint mints a token");
    let page = connector
        .directory(&fixture.admin())
        .list_users_page(None)
        .await
        .expect("the directory accepts that token");
    assert!(!page.accounts.is_empty());
    assert_eq!(trap.seen(), []);
}

#[tokio::test]
async fn a_redirect_from_the_token_endpoint_is_not_followed() {
    let trap = Trap::start(Canned::json(200, TOKEN_ANSWER)).await;
    let fixture = start_fixture().await;
    for status in [301, 302, 303, 307, 308] {
        let redirector =
            Trap::start(Canned::redirect(status, &format!("{}/token", trap.url))).await;
        let endpoints = GoogleEndpoints {
            token_url: format!("{}/token", redirector.url),
            ..emulator_endpoints(&fixture.emulator)
        };
        let connector = connector(&key_file_json(&fixture.emulator), endpoints);
        let error = connector
            .tokens()
            .token(&fixture.admin(), &scopes::ALL)
            .await
            .unwrap_err();
        assert_eq!(error.status(), Some(status), "{error}");
        assert!(error.message().contains(&status.to_string()), "{error}");
        assert!(error.message().contains("redirect"), "{error}");
        assert_eq!(redirector.seen().len(), 1);
    }
    assert_eq!(trap.seen(), []);
}

#[tokio::test]
async fn a_redirect_from_an_api_is_not_followed() {
    let trap = Trap::start(Canned::json(200, r#"{"users": []}"#)).await;
    let fixture = start_fixture().await;
    let redirector = Trap::start(Canned::redirect(
        302,
        &format!("{}/admin/directory/v1/users", trap.url),
    ))
    .await;
    let endpoints = GoogleEndpoints {
        directory_base: format!("{}/admin/directory/v1", redirector.url),
        ..emulator_endpoints(&fixture.emulator)
    };
    let connector = connector(&key_file_json(&fixture.emulator), endpoints);
    let error = connector
        .directory(&fixture.admin())
        .list_users_page(None)
        .await
        .unwrap_err();
    assert_eq!(error.status(), Some(302), "{error}");
    assert!(error.message().contains("302"), "{error}");
    assert_eq!(redirector.seen().len(), 1);
    assert_eq!(trap.seen(), []);
}

#[tokio::test]
async fn answers_that_are_not_googles_are_described_never_echoed() {
    let fixture = start_fixture().await;
    let page = format!("<html><body><h1>Internal admin</h1><p>{MARKER}</p></body></html>");
    let answers = [
        Canned::html(200, &page),
        Canned::html(403, &page),
        Canned::html(502, &page),
        // JSON, but not a token answer: serde's own message would quote the value.
        Canned::json(
            200,
            &format!(r#"{{"access_token": "x", "expires_in": "{MARKER}"}}"#),
        ),
        // JSON, but not Google's error shape.
        Canned::json(400, &format!(r#"{{"detail": "{MARKER}"}}"#)),
    ];
    for answer in answers {
        let endpoint = Trap::start(answer.clone()).await;
        let endpoints = GoogleEndpoints {
            token_url: format!("{}/token", endpoint.url),
            ..emulator_endpoints(&fixture.emulator)
        };
        let connector = connector(&key_file_json(&fixture.emulator), endpoints);
        let error = connector
            .tokens()
            .token(&fixture.admin(), &scopes::ALL)
            .await
            .unwrap_err();
        let shown = format!("{error} {error:?}");
        assert!(!shown.contains(MARKER), "{answer:?} echoed: {shown}");
        assert!(
            error.message().contains(&answer.status.to_string()),
            "the answer is described by its status: {error}"
        );
        assert!(
            error
                .message()
                .contains(&format!("{} bytes", answer.body.len())),
            "and its length: {error}"
        );
        assert_eq!(endpoint.seen().len(), 1);
    }

    // An API answering HTML (a proxy's error page) is described the same way.
    let api = Trap::start(Canned::html(404, &page)).await;
    let endpoints = GoogleEndpoints {
        directory_base: format!("{}/admin/directory/v1", api.url),
        ..emulator_endpoints(&fixture.emulator)
    };
    let connector = connector(&key_file_json(&fixture.emulator), endpoints);
    let error = connector
        .directory(&fixture.admin())
        .list_users_page(None)
        .await
        .unwrap_err();
    let shown = format!("{error} {error:?}");
    assert!(!shown.contains(MARKER), "{shown}");
    assert!(error.message().contains("404"), "{error}");
    assert!(error.message().contains("text/html"), "{error}");
}
