//! Where the connector sends requests and what it repeats of an answer: redirects are
//! never followed (neither the secret nor the token goes where an answer points), links
//! outside the configured Graph root are refused, and bodies that are not Microsoft's
//! error answers are described, never quoted.

use tributary_emulator::testing::trap::{Canned, Trap};

/// A token answer the connector accepts.
const TOKEN_ANSWER: &str = r#"{"token_type":"Bearer","expires_in":3599,"ext_expires_in":3599,"access_token":"trap-token"}"#;

/// A trap that answers the token endpoint with a token and everything else with `answer`.
async fn graph(answer: Canned) -> Trap {
    Trap::routed(
        vec![("/oauth2/v2.0/token".into(), Canned::json(200, TOKEN_ANSWER))],
        answer,
    )
    .await
}
use tributary_core::ProviderErrorKind;
use tributary_microsoft::{
    AppCredentials, ClientCredential, ClientSecret, ConnectorOptions, DeltaOptions,
    MicrosoftConnector, MicrosoftEndpoints,
};

const MARKER: &str = "INTERNAL-PAGE-MARKER";

fn connector(base_url: &str) -> MicrosoftConnector {
    MicrosoftConnector::new(
        AppCredentials {
            tenant: "contoso.example".into(),
            client_id: "app".into(),
            credential: ClientCredential::Secret(ClientSecret::new("the-secret")),
        },
        ConnectorOptions {
            endpoints: MicrosoftEndpoints::from_base_url(base_url),
            ..ConnectorOptions::default()
        },
    )
    .unwrap()
}

#[tokio::test]
async fn a_redirecting_graph_is_not_followed() {
    let elsewhere = graph(Canned::json(200, r#"{"value": []}"#)).await;
    for status in [301, 302, 303, 307, 308] {
        let graph = graph(Canned::redirect(
            status,
            &format!("{}/v1.0/users", elsewhere.url),
        ))
        .await;
        let error = connector(&graph.url)
            .directory()
            .list_users()
            .await
            .unwrap_err();
        assert_eq!(error.kind(), ProviderErrorKind::Other, "{error}");
        assert_eq!(error.status(), Some(status));
        assert!(error.message().contains("redirect"), "{error}");
    }
    assert_eq!(
        elsewhere.seen(),
        [],
        "nothing reaches the redirect's target"
    );
}

#[tokio::test]
async fn a_redirecting_token_endpoint_never_gets_the_secret_elsewhere() {
    let elsewhere = graph(Canned::json(200, TOKEN_ANSWER)).await;
    let identity = Trap::start(Canned::redirect(
        307,
        &format!("{}/t/oauth2/v2.0/token", elsewhere.url),
    ))
    .await;
    let error = connector(&identity.url)
        .check_credentials()
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ProviderErrorKind::Other, "{error}");
    assert_eq!(error.status(), Some(307));
    assert_eq!(elsewhere.seen(), []);
    assert_eq!(identity.seen().len(), 1);
}

#[tokio::test]
async fn links_outside_the_graph_root_are_refused_before_any_request() {
    let elsewhere = graph(Canned::json(200, r#"{"value": []}"#)).await;
    let graph = graph(Canned::json(
        200,
        &format!(
            r#"{{"value": [], "@odata.nextLink": "{}/v1.0/users/u/mailFolders/inbox/messages/delta?$skiptoken=x"}}"#,
            elsewhere.url
        ),
    ))
    .await;
    let mail = connector(&graph.url).mailbox("u");
    let page = mail
        .delta_start("inbox", &DeltaOptions::default())
        .await
        .unwrap();
    let error = mail
        .delta_follow(page.link.as_str(), None)
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ProviderErrorKind::Other, "{error}");
    // A stored cursor tampered with is refused the same way.
    let error = mail
        .delta_follow("http://169.254.169.254/v1.0/latest", None)
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ProviderErrorKind::Other, "{error}");
    assert_eq!(
        elsewhere.seen(),
        [],
        "the token never leaves for another host"
    );
}

#[tokio::test]
async fn html_answers_are_described_never_echoed() {
    let page = format!("<html><body>{MARKER}</body></html>");
    for (status, kind) in [
        (200, ProviderErrorKind::Other),
        (403, ProviderErrorKind::Unauthorized),
        (404, ProviderErrorKind::Other),
        (502, ProviderErrorKind::Transient),
    ] {
        let graph = graph(Canned::html(status, &page)).await;
        let error = connector(&graph.url)
            .directory()
            .list_users()
            .await
            .unwrap_err();
        assert_eq!(error.kind(), kind, "{status}: {error}");
        assert!(!error.to_string().contains(MARKER), "{error}");
        assert!(error.message().contains("text/html"), "{error}");
        // The Graph answer came with the trap's token.
        let seen = graph.seen();
        assert_eq!(
            seen.last().unwrap().authorization.as_deref(),
            Some("Bearer trap-token")
        );
    }
    let identity = Trap::start(Canned::html(200, &page)).await;
    let error = connector(&identity.url)
        .check_credentials()
        .await
        .unwrap_err();
    assert!(!error.to_string().contains(MARKER), "{error}");
    assert!(error.message().contains("not JSON"), "{error}");
}
